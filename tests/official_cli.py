"""Run the official Tavus CLI (tavus-cli 0.11.0), unchanged, against a sandbox: N/M commands pass.

The CLI is both how Tavus itself calls its API and a client our sandbox must satisfy (issue 14).
`cli_plan()` is its in-scope command set, in phases of independent tracks run side by side (each CLI
start costs a second or two), ordered so that each command finds what an earlier one created;
`{name}` in an argument is a value captured from an earlier command's JSON output.

Out of scope, with the reason: `auth login/logout` (the OS keyring), `builder *`, `deployment *`,
`pal build` (the persona builder, not emulated), `embed` (writes a local manifest, no API),
`chat turn` (joins the Daily room over WebRTC), `document upload` and `pal knowledge upload`
(the portal's upload endpoint with a portal bearer token).

Run by hand: `python -m tests.official_cli [path/to/tavus]` prints every command and N/M.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

TOOL_PATCH = {"description": "Get the weather for a city, in Celsius."}
PRONUNCIATION_PATCH = {"name": "tavus-defaults-2"}
OBJECTIVE_PATCH = [{"op": "replace", "path": "/data/0/objective_prompt", "value": "Greet the caller warmly."}]


@dataclass
class Step:
    """One CLI command: `argv` (with {placeholders}), what to capture from its JSON output."""

    argv: list[str]
    capture: dict[str, str] = field(default_factory=dict)  # name -> key in the JSON output (dotted)
    until: str | None = None  # re-run (bounded) until this text appears in stdout


def cli_plan() -> list[list[list[Step]]]:
    """The in-scope command set as phases of tracks: the tracks of a phase run side by side (each in
    order), a phase starts when the one before has finished, so every command finds what an earlier
    one created. Tracks never touch each other's resources (or only disjoint fields of the PAL)."""
    S = Step
    basics = [S(["doctor"]),
              S(["face", "list"]),
              S(["face", "list", "--stock", "--json"], {"face_id": "0.face_id"}),
              S(["resource", "list", "voices"]),
              S(["quickstart", "--system-prompt", "You greet visitors.", "--name", "Quickstart PAL"])]
    tools = [S(["tool", "example"]),
             S(["tool", "create", "--file", "{dir}/tool.json"], {"tool_id": "tool_id"}),
             S(["tool", "list"]),
             S(["tool", "get", "{tool_id}"]),
             S(["tool", "patch", "{tool_id}", "--file", "{dir}/tool_patch.json"]),
             S(["resource", "list", "tools"]),
             S(["resource", "get", "tools", "{tool_id}"])]
    documents = [S(["document", "create", "--url", "https://example.com/handbook", "--name", "Handbook", "--tag", "kb",
                    "--crawl-depth", "1", "--crawl-max-pages", "5"],  # a crawled website: only those can be recrawled
                   {"document_id": "document_id"}),
                 S(["document", "get", "{document_id}"], until="ready"),
                 S(["document", "list"]),
                 S(["document", "list", "--tag", "kb", "--json"]),
                 S(["document", "tags"]),
                 S(["document", "chunks", "{document_id}"]),
                 S(["document", "recrawl", "{document_id}"]),
                 S(["resource", "list", "documents"])]
    dictionaries = [S(["pronunciation-dictionary", "example"]),
                    S(["pronunciation-dictionary", "create", "--file", "{dir}/pronunciation.json"],
                      {"dictionary_id": "pronunciation_dictionary_id"}),
                    S(["pronunciation-dictionary", "list"]),
                    S(["pronunciation-dictionary", "get", "{dictionary_id}"]),
                    S(["pronunciation-dictionary", "patch", "{dictionary_id}", "--file", "{dir}/pronunciation_patch.json"]),
                    S(["pronunciation-dictionary", "delete", "{dictionary_id}"])]
    objectives = [S(["objective", "example"]),
                  S(["objective", "validate", "--file", "{dir}/objective.json"]),
                  S(["objective", "create", "--file", "{dir}/objective.json"], {"objectives_id": "objectives_id"}),
                  S(["objective", "list"]),
                  S(["objective", "get", "{objectives_id}"]),
                  S(["objective", "patch", "{objectives_id}", "--file", "{dir}/objective_patch.json"]),
                  S(["resource", "list", "objectives"])]
    guardrails = [S(["guardrail", "create", "--name", "no_medical_advice", "--prompt", "Never give medical advice.",
                     "--tag", "safety"], {"guardrail_id": "uuid"}),
                  S(["guardrail", "list"]),
                  S(["guardrail", "get", "{guardrail_id}"]),
                  S(["guardrail", "patch", "{guardrail_id}", "--prompt", "Never give medical or legal advice."]),
                  S(["guardrail", "tags"]),
                  S(["resource", "list", "guardrails"])]
    skills = [S(["skill", "list"]),
              S(["skill", "list", "--json"], {"skill_id": "0.skill_id"}),
              S(["skill", "get", "{skill_id}"]),
              S(["pal", "capabilities", "catalog"])]
    create_pal = [S(["pal", "create", "--system-prompt", "You are a helpful support agent.", "--name", "Support PAL",
                     "--face-id", "{face_id}", "--document-id", "{document_id}", "--tool-id", "{tool_id}",
                     "--objectives-id", "{objectives_id}", "--guardrail-id", "{guardrail_id}"], {"pal_id": "pal_id"})]
    pal = [S(["pal", "list"]),
           S(["pal", "get", "{pal_id}"]),
           S(["pal", "options", "{pal_id}"]),
           S(["pal", "paths"]),
           S(["pal", "patch", "{pal_id}", "--op", "replace", "--path", "/pal_name", "--value", "Support PAL 2"]),
           S(["pal", "preview", "{pal_id}"])]
    knowledge = [S(["pal", "knowledge", "list", "{pal_id}"]),
                 S(["pal", "knowledge", "add", "{pal_id}", "--document-tag", "kb"]),
                 S(["pal", "knowledge", "remove", "{pal_id}", "--document-tag", "kb"]),
                 S(["pal", "knowledge", "replace", "{pal_id}", "--document-id", "{document_id}"]),
                 S(["pal", "knowledge", "settings", "{pal_id}", "--rag-n-chunks", "4"])]
    pal_tools = [S(["pal", "tools", "list", "{pal_id}"]),
                 S(["pal", "tools", "detach", "{pal_id}", "{tool_id}"]),
                 S(["pal", "tools", "attach", "{pal_id}", "{tool_id}"])]
    pal_skills = [S(["pal", "skills", "list", "{pal_id}"]),
                  S(["pal", "skills", "attach", "{pal_id}", "{skill_id}", "--config", "{}"]),
                  S(["pal", "skills", "patch", "{pal_id}", "{skill_id}", "--config", '{"enabled": true}']),
                  S(["pal", "skills", "detach", "{pal_id}", "{skill_id}"]),
                  # capabilities are skills too (web_search is internet_search): the same track
                  S(["pal", "capabilities", "list", "{pal_id}"]),
                  S(["pal", "capabilities", "attach", "{pal_id}", "web_search"]),
                  S(["pal", "capabilities", "detach", "{pal_id}", "web_search"])]
    calls = [S(["conversation", "create", "--pal-id", "{pal_id}", "--name", "CLI call"], {"conversation_id": "conversation_id"}),
             S(["conversation", "end", "{conversation_id}"]),
             S(["chat", "start", "--pal-id", "{pal_id}"], {"chat_id": "conversation_id"}),
             S(["chat", "end", "{chat_id}"])]
    # clean-up, in reverse dependency order: the PAL first, then what it named
    cleanup = [[S(["pal", "delete", "{pal_id}"])],
               [S(["guardrail", "delete", "{guardrail_id}"])], [S(["objective", "delete", "{objectives_id}"])],
               [S(["tool", "delete", "{tool_id}"])]]
    return [[basics, tools, documents, dictionaries, objectives, guardrails, skills], [create_pal],
            [pal, knowledge, pal_tools, pal_skills, calls], cleanup[:1], cleanup[1:]]


def cli_commands() -> list[Step]:
    """Every command of the plan, in the order the report lists them."""
    return [step for phase in cli_plan() for track in phase for step in track]


@dataclass
class Outcome:
    """What one command did."""

    argv: list[str]
    ok: bool
    detail: str = ""


def find_cli(explicit: str | None = None) -> str | None:
    """The `tavus` executable: an explicit path, $TAVUS_CLI, or `tavus` on PATH."""
    for candidate in (explicit, os.environ.get("TAVUS_CLI"), shutil.which("tavus")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def fill(arg: str, values: dict[str, str]) -> str:
    """`arg` with each {name} replaced by its captured value; other braces (a JSON `{}`) stay as written."""
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), m.group(0)), arg)


def dig(data, dotted: str):
    """`data` at a dotted path whose numeric parts index lists ("0.face_id"); also looks under "data"."""
    for candidate in (data, data.get("data") if isinstance(data, dict) else None):
        value = candidate
        try:
            for part in dotted.split("."):
                value = value[int(part)] if isinstance(value, list) else value[part]
            return value
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    return None


def parse_json(text: str):
    """The JSON document a command printed (rich may have coloured it; --json prints plain)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).strip()
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    return json.loads(text[start:]) if start >= 0 else None


def run_all(cli: str, api_url: str, api_key: str = "sandbox-key", deadline: float = 240.0) -> list[Outcome]:
    """Run every command against `api_url` (ending in /v2); stop nothing early, report each, in plan order."""
    env = {**os.environ, "TAVUS_PUBLIC_API_BASE_URL": api_url, "TAVUS_API_KEY": api_key,
           "NO_COLOR": "1", "COLUMNS": "200", "HOME": tempfile.mkdtemp(prefix="tavus-cli-home-")}
    env.pop("TAVUS_ENV", None)
    stop_at = time.monotonic() + deadline
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="tavus-cli-") as workdir:
        values: dict[str, str] = {"dir": workdir}  # each name is written by one track only
        for phase in cli_plan():
            with ThreadPoolExecutor(max_workers=len(phase)) as pool:
                tracks = list(pool.map(lambda track: [run_step(cli, step, env, values, stop_at) for step in track], phase))
            outcomes += [outcome for track in tracks for outcome in track]
    return outcomes


def run_step(cli: str, step: Step, env: dict, values: dict[str, str], stop_at: float) -> Outcome:
    """One command: its placeholders filled, run, its output captured into `values`."""
    missing = [m for a in step.argv for m in re.findall(r"{(\w+)}", a) if m not in values]
    if missing:
        return Outcome(step.argv, False, f"not run: {', '.join(missing)} was not captured")
    argv = [fill(a, values) for a in step.argv]
    if time.monotonic() > stop_at:
        return Outcome(argv, False, "not run: deadline reached")
    outcome, out = _run_one(cli, argv, env, step, stop_at)
    if outcome.ok and step.argv[-1] == "example":  # the CLI's own starter bodies become our files
        _write_inputs(Path(values["dir"]), step.argv[0], out)
    if outcome.ok and step.capture:
        data = parse_json(out)
        for name, key in step.capture.items():
            value = dig(data, key)
            if value is None:
                outcome = Outcome(argv, False, f"no {key!r} in its output: {out.strip()[:200]}")
            else:
                values[name] = str(value)
    return outcome


def _run_one(cli: str, argv: list[str], env: dict, step: Step, stop_at: float) -> tuple[Outcome, str]:
    while True:
        try:
            done = subprocess.run([cli, *argv], env=env, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return Outcome(argv, False, "timed out after 60 s"), ""
        out = done.stdout
        if done.returncode != 0:
            said = [line.strip("│ ") for line in (done.stderr.strip() or out.strip()).splitlines()
                    if re.search(r"\w", line)]
            return Outcome(argv, False, f"exit {done.returncode}: {said[-1] if said else ''}"[:300]), out
        if step.until is None or step.until in out:
            return Outcome(argv, True), out
        if time.monotonic() > stop_at:
            return Outcome(argv, False, f"{step.until!r} never appeared: {out.strip()[:200]}"), out
        time.sleep(0.2)


def _write_inputs(workdir: Path, group: str, example: str) -> None:
    """Files for the create/patch commands: the CLI's own example, and a small patch."""
    body = parse_json(example)
    name = {"tool": "tool", "objective": "objective", "pronunciation-dictionary": "pronunciation"}[group]
    (workdir / f"{name}.json").write_text(json.dumps(body))
    patch = {"tool": TOOL_PATCH, "objective": OBJECTIVE_PATCH, "pronunciation": PRONUNCIATION_PATCH}[name]
    (workdir / f"{name}_patch.json").write_text(json.dumps(patch))


def report(outcomes: list[Outcome]) -> str:
    """One line per command and the N/M summary."""
    lines = [f"{'ok  ' if o.ok else 'FAIL'} tavus {' '.join(o.argv)}" + (f"\n       {o.detail}" if o.detail else "")
             for o in outcomes]
    passed = sum(o.ok for o in outcomes)
    lines.append(f"{passed}/{len(outcomes)} official CLI commands pass against the sandbox")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Start a time-scaled sandbox, run the command set, print the report."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness_core.sandbox import Sandbox, SandboxSettings

    cli = find_cli(argv[0] if argv else None)
    if not cli:
        print("tavus-cli not found: pass its path, set TAVUS_CLI, or `pip install tavus-cli==0.11.0` in a scratch venv")
        return 2
    with Sandbox(SandboxSettings(time_scale=0.01, max_concurrent=16)) as sb:
        outcomes = run_all(cli, sb.url)
    print(report(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
