"""`invoke persona` against the real local sandbox over HTTP: every command of issue 4.

Each test asserts what the sandbox stored, the exit code, stderr and logs/.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FACILITATOR = "configs/persona/facilitator.example.json"
HARNESS_ONLY = ("llm", "tts", "stt", "perception", "tools", "tools_dir", "layers_dir", "layers_preset",
                "objectives_name", "guardrails_name")


def preset(project: Path, rel: str) -> dict:
    """A layer preset as the harness finds it: the project's own, else the built-in one."""
    from harness_core.project import find_file, preset_folders
    return json.loads(find_file(preset_folders(project, "presets/layers"), rel).read_text())


def writes(sb) -> list[tuple[str, str]]:
    """The requests that change something (anything but GET)."""
    return [(m, p) for m, p in sb.requests if m.upper() != "GET"]


def only_persona(sb) -> dict:
    assert len(sb.store.personas) == 1, sb.store.personas
    return next(iter(sb.store.personas.values()))


def tool_names(persona: dict) -> list[str]:
    return [t["function"]["name"] for t in persona["layers"]["llm"].get("tools", [])]


def api_log(project: Path) -> list[dict]:
    path = project / "logs" / "api.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_one_error(result, *needles):
    assert result.code != 0, result.out
    lines = [line for line in result.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.err
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def policies(project, sandbox):
    """The shipped objectives set and guardrails set, created through their own commands."""
    assert run_cli("objectives", "--config", "configs/objectives/facilitator_core.json").code == 0
    assert run_cli("guardrails", "--config", "configs/guardrails/facilitator_safety.json").code == 0
    (oid,) = sandbox.store.objectives
    (gid,) = sandbox.store.guardrails
    return oid, gid


def create_facilitator(sandbox) -> str:
    result = run_cli("persona", "--config", FACILITATOR)
    assert result.code == 0, result.err
    return only_persona(sandbox)["persona_id"]


# --- create ------------------------------------------------------------------------------
def test_facilitator_example_creates_a_persona_with_modular_layers(project, sandbox):
    result = run_cli("persona", "--config", FACILITATOR)
    assert result.code == 0, result.err
    stored = only_persona(sandbox)
    assert stored["persona_name"] == "Meeting Facilitator" and stored["default_replica_id"] == "r4317e64d25a"
    layers = stored["layers"]
    assert layers["llm"] == preset(project, "llm/tavus_gpt_oss.json")
    assert layers["tts"] == preset(project, "tts/cartesia.json")
    assert layers["stt"] == preset(project, "stt/tavus_auto.json")
    assert layers["perception"] == preset(project, "perception/raven_1.json")
    assert not set(HARNESS_ONLY) & set(stored), "harness-only keys never reach the API"
    assert stored["persona_id"] in result.out and "Meeting Facilitator" in result.out and "r4317e64d25a" in result.out
    assert writes(sandbox) == [("POST", writes(sandbox)[0][1])] and writes(sandbox)[0][1].rstrip("/").endswith("/personas")
    logged = [r for r in api_log(project) if r["method"] == "POST"]
    assert logged and logged[-1]["payload"]["layers"]["llm"]["model"] == "tavus-gpt-oss"
    persona_log = [json.loads(x) for x in (project / "logs" / "persona.jsonl").read_text().splitlines()]
    assert persona_log[-1]["action"] == "created" and persona_log[-1]["persona_id"] == stored["persona_id"]


def test_assistant_modular_config_appends_selected_tools_to_the_llm_layer(project, sandbox):
    result = run_cli("persona", "--config", "configs/persona/assistant_modular.json")
    assert result.code == 0, result.err
    stored = only_persona(sandbox)
    assert stored["layers"]["llm"]["model"] == preset(project, "llm/tavus_llama.json")["model"]
    assert tool_names(stored) == ["schedule_meeting", "lookup_order_status"]
    assert stored["layers"]["llm"]["tools"][0] == preset(project, "llm/tools/schedule_meeting.json")
    assert "tools" not in stored and "llm" not in stored
    assert "schedule_meeting, lookup_order_status" in result.out


def test_flags_only_persona_with_tools(project, sandbox):
    result = run_cli("persona", "--persona-name", "Assistant modular", "--system-prompt", "Use tools.",
                     "--tools", "schedule_meeting,lookup_order_status")
    assert result.code == 0, result.err
    stored = only_persona(sandbox)
    assert stored["persona_name"] == "Assistant modular" and stored["system_prompt"] == "Use tools."
    assert tool_names(stored) == ["schedule_meeting", "lookup_order_status"]


def test_layers_preset_with_replica_and_policy_ids(project, sandbox, policies):
    oid, gid = policies
    result = run_cli("persona", "--persona-name", "Assistant with Tools", "--system-prompt",
                     "You are a helpful assistant that can schedule meetings and check orders using provided tools.",
                     "--layers-preset", "assistant_with_tools", "--default-replica-id", "r4317e64d25a",
                     "--objectives-id", oid, "--guardrails-id", gid)
    assert result.code == 0, result.err
    stored = only_persona(sandbox)
    expected = preset(project, "assistant_with_tools.json")
    assert stored["layers"] == expected
    assert stored["objectives_id"] == oid and stored["guardrails_id"] == gid, "a legacy set id goes to guardrails_id"
    assert not stored.get("guardrail_ids")
    assert oid in result.out and gid in result.out


def test_a_flat_guardrail_id_goes_into_guardrail_ids(project, sandbox, tmp_path):
    flat = tmp_path / "no_pii.json"
    flat.write_text(json.dumps({"guardrail_name": "no_pii", "guardrail_prompt": "Never ask for ID numbers.",
                                "tags": ["facilitator"]}))
    assert run_cli("guardrails", "--config", str(flat)).code == 0
    (uuid,) = sandbox.store.guardrails
    result = run_cli("persona", "--config", FACILITATOR, "--guardrails-id", uuid)
    assert result.code == 0, result.err
    stored = only_persona(sandbox)
    assert stored["guardrail_ids"] == [uuid] and not stored.get("guardrails_id")


def test_update_attaching_a_flat_guardrail_keeps_the_ones_already_attached(project, sandbox, tmp_path):
    uuids = []
    for name in ("no_pii", "no_medical"):
        flat = tmp_path / f"{name}.json"
        flat.write_text(json.dumps({"guardrail_name": name, "guardrail_prompt": f"Rule {name}."}))
        assert run_cli("guardrails", "--config", str(flat)).code == 0
        uuids.append([g for g in sandbox.store.guardrails if g not in uuids][0])
    assert run_cli("persona", "--config", FACILITATOR, "--guardrails-id", uuids[0]).code == 0
    pid = only_persona(sandbox)["persona_id"]
    result = run_cli("persona", "--config", FACILITATOR, "--update", "--guardrails-name", "no_medical")
    assert result.code == 0, result.err
    assert sandbox.store.personas[pid]["guardrail_ids"] == uuids
    again = run_cli("persona", "--config", FACILITATOR, "--update", "--guardrails-id", uuids[0])
    assert again.code == 0 and "unchanged" in again.out


def test_tool_with_an_existing_function_name_replaces_it_with_a_warning(project, sandbox):
    cfg = project / "configs" / "persona" / "tools_conflict.json"
    cfg.write_text(json.dumps({"persona_name": "T", "system_prompt": "p", "layers_preset": "assistant_with_tools",
                               "tools": ["schedule_meeting", "escalate_to_human"]}))
    result = run_cli("persona", "--config", str(cfg.relative_to(project)))
    assert result.code == 0, result.err
    assert tool_names(only_persona(sandbox)) == ["schedule_meeting", "lookup_order_status", "escalate_to_human"]
    assert "warning:" in result.err and "'schedule_meeting' replaces" in result.err


def test_dry_run_prints_the_exact_payload_and_sends_nothing(project, sandbox):
    result = run_cli("persona", "--config", "configs/persona/assistant_modular.json", "--dry-run", "--json")
    assert result.code == 0, result.err
    body = json.loads(result.out)["body"]
    assert tool_names(body) == ["schedule_meeting", "lookup_order_status"] and "tools" not in body
    assert sandbox.store.personas == {} and writes(sandbox) == []
    assert "nothing sent" in result.err


def test_dry_run_works_offline_with_no_api_configured(project, monkeypatch):
    monkeypatch.delenv("TAVUS_API_URL")
    result = run_cli("persona", "--config", FACILITATOR, "--dry-run", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["body"]["persona_name"] == "Meeting Facilitator"
    assert "no API configured" in result.err and "nothing sent" in result.err
    assert run_cli("persona", "--config", FACILITATOR).code != 0  # a real create still needs an API


# --- update ------------------------------------------------------------------------------
def test_update_attaches_policies_by_id_with_only_the_changed_paths(project, sandbox, policies):
    oid, gid = policies
    pid = create_facilitator(sandbox)
    before = len(sandbox.requests)
    result = run_cli("persona", "--config", FACILITATOR, "--update", "--objectives-id", oid, "--guardrails-id", gid)
    assert result.code == 0, result.err
    stored = sandbox.store.personas[pid]
    assert stored["objectives_id"] == oid and stored["guardrails_id"] == gid
    new = [(m, p) for m, p in sandbox.requests[before:] if m != "GET"]
    assert len(new) == 1 and new[0][0] == "PATCH" and new[0][1].endswith(f"/personas/{pid}")
    patch = [r for r in api_log(project) if r["method"] == "PATCH"][-1]["payload"]
    assert sorted(op["path"] for op in patch) == ["/guardrails_id", "/objectives_id"]
    assert "updated" in result.out and pid in result.out


def test_update_attaches_policies_by_name(project, sandbox, policies):
    oid, gid = policies
    pid = create_facilitator(sandbox)
    result = run_cli("persona", "--config", FACILITATOR, "--update", "--objectives-name", "Facilitator Core Objective",
                     "--guardrails-name", "Facilitator Safety Policy")
    assert result.code == 0, result.err
    stored = sandbox.store.personas[pid]
    assert stored["objectives_id"] == oid and stored["guardrails_id"] == gid


def test_with_policies_config_update(project, sandbox, policies):
    oid, gid = policies
    pid = create_facilitator(sandbox)
    result = run_cli("persona", "--config", "configs/persona/facilitator.with_policies.json", "--update")
    assert result.code == 0, result.err
    stored = sandbox.store.personas[pid]
    assert (stored["objectives_id"], stored["guardrails_id"]) == (oid, gid)
    assert "objectives_name" not in stored and "guardrails_name" not in stored


def test_update_with_no_change_sends_nothing_and_says_unchanged(project, sandbox):
    pid = create_facilitator(sandbox)
    before = len(sandbox.requests)
    result = run_cli("persona", "--config", FACILITATOR, "--update")
    assert result.code == 0, result.err
    assert "unchanged" in result.out and pid in result.out
    assert [m for m, _ in sandbox.requests[before:] if m != "GET"] == []


def test_update_changes_only_the_changed_field_and_keeps_fields_set_elsewhere(project, sandbox):
    pid = create_facilitator(sandbox)
    result = run_cli("persona", "--config", FACILITATOR, "--update", "--system-prompt", "Be even briefer.",
                     "--document-tags", "team-a")
    assert result.code == 0, result.err
    patch = [r for r in api_log(project) if r["method"] == "PATCH"][-1]["payload"]
    # only the two changed fields (Tavus stores document_tags as [] when unset: the tag is added to it)
    assert {op["path"].split("/")[1] for op in patch} == {"document_tags", "system_prompt"}
    stored = sandbox.store.personas[pid]
    assert stored["system_prompt"] == "Be even briefer." and stored["document_tags"] == ["team-a"]
    assert stored["layers"]["perception"] == preset(project, "perception/raven_1.json")
    # A field set elsewhere (not managed by this config) survives the next update.
    cfg = project / "configs" / "persona" / "small.json"
    cfg.write_text(json.dumps({"persona_name": "Meeting Facilitator", "llm": "tavus_llama"}))
    assert run_cli("persona", "--config", str(cfg.relative_to(project)), "--update").code == 0
    stored = sandbox.store.personas[pid]
    assert stored["layers"]["llm"]["model"] == "tavus-llama"
    assert stored["document_tags"] == ["team-a"] and stored["system_prompt"] == "Be even briefer."


def test_update_removes_what_the_same_config_sent_before_and_no_longer_sets(project, sandbox):
    cfg = project / "configs" / "persona" / "voice.json"
    cfg.write_text(json.dumps({"persona_name": "Voice", "system_prompt": "p", "tts": "elevenlabs"}))
    rel = str(cfg.relative_to(project))
    assert run_cli("persona", "--config", rel).code == 0
    (pid,) = sandbox.store.personas
    assert "voice_settings" in sandbox.store.personas[pid]["layers"]["tts"]
    cfg.write_text(json.dumps({"persona_name": "Voice", "system_prompt": "p", "tts": "cartesia"}))
    assert run_cli("persona", "--config", rel, "--update").code == 0
    assert sandbox.store.personas[pid]["layers"]["tts"] == preset(project, "tts/cartesia.json"), "no ElevenLabs leftovers"
    # A flags-only update never removes what the config sent: only the same file may take back its own fields.
    assert run_cli("persona", "--persona-id", pid, "--update", "--context", "c").code == 0
    assert sandbox.store.personas[pid]["layers"]["tts"] == preset(project, "tts/cartesia.json")
    # Whatever the harness sent, from any source, is what it may later remove: the config applied
    # again takes back the fields earlier flags set (plan showed them as an update, not "unchanged").
    assert run_cli("persona", "--config", rel, "--update", "--document-tags", "flagged").code == 0
    assert sandbox.store.personas[pid]["document_tags"] == ["flagged"]
    assert run_cli("plan", "--only", "personas").code == 6
    assert run_cli("persona", "--config", str(cfg), "--update").code == 0  # the same file, spelled absolute
    assert "document_tags" not in sandbox.store.personas[pid] and "context" not in sandbox.store.personas[pid]


def test_a_tts_flag_then_another_leaves_no_voice_settings_behind(project, sandbox):
    """The measured bug: `--update --tts elevenlabs`, then `--update --tts cartesia`, kept ElevenLabs'
    voice_settings on a Cartesia persona and plan called it unchanged."""
    cfg = project / "configs" / "persona" / "voice.json"
    cfg.write_text(json.dumps({"persona_name": "Voice", "system_prompt": "p", "tts": "cartesia"}))
    rel = str(cfg.relative_to(project))
    assert run_cli("persona", "--config", rel).code == 0
    (pid,) = sandbox.store.personas
    assert run_cli("persona", "--persona-id", pid, "--update", "--tts", "elevenlabs").code == 0
    assert "voice_settings" in sandbox.store.personas[pid]["layers"]["tts"]
    assert run_cli("persona", "--persona-id", pid, "--update", "--tts", "cartesia").code == 0
    assert sandbox.store.personas[pid]["layers"]["tts"] == preset(project, "tts/cartesia.json")
    assert sandbox.store.personas[pid]["system_prompt"] == "p", "a flag-only update keeps the config's top-level fields"


def test_update_dry_run_prints_the_patch_and_sends_nothing(project, sandbox):
    create_facilitator(sandbox)
    before = len(sandbox.requests)
    result = run_cli("persona", "--config", FACILITATOR, "--update", "--context", "New context.", "--dry-run", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["body"] == [{"op": "replace", "path": "/context", "value": "New context."}]
    assert [m for m, _ in sandbox.requests[before:] if m != "GET"] == []


def test_update_with_two_personas_of_that_name_lists_them(project, sandbox):
    create_facilitator(sandbox)
    # a second one of that name, made behind the harness's back (the state file refuses a second create)
    import requests
    requests.post(f"{sandbox.url}/personas", json={"persona_name": "Meeting Facilitator", "system_prompt": "other"},
                  headers={"x-api-key": "someone"}, timeout=10).raise_for_status()
    ids = sorted(sandbox.store.personas)
    before = len(sandbox.requests)
    error = assert_one_error(run_cli("persona", "--config", FACILITATOR, "--update"), FACILITATOR, "persona_name")
    assert all(i in error for i in ids) and "--persona-id" in error
    assert [m for m, _ in sandbox.requests[before:] if m != "GET"] == []
    ok = run_cli("persona", "--config", FACILITATOR, "--update", "--persona-id", ids[0], "--context", "x")
    assert ok.code == 0, ok.err
    assert sandbox.store.personas[ids[0]]["context"] == "x" and sandbox.store.personas[ids[1]].get("context") != "x"


@pytest.fixture
def wrapped_sandbox(monkeypatch):
    """A sandbox whose GET /personas/{id} answers in the documented {"data": [persona]} wrapper."""
    from harness_core.sandbox import Sandbox, SandboxSettings

    sb = Sandbox(SandboxSettings(time_scale=0.01, persona_get_shape="wrapped"))
    sb.start(host="127.0.0.1", port=0)
    monkeypatch.setenv("TAVUS_API_URL", sb.url)
    try:
        yield sb
    finally:
        sb.stop()


def test_update_reads_the_wrapped_get_shape_too(project, wrapped_sandbox):
    pid = create_facilitator(wrapped_sandbox)
    before = len(wrapped_sandbox.requests)
    assert "unchanged" in run_cli("persona", "--config", FACILITATOR, "--update").out
    assert [m for m, _ in wrapped_sandbox.requests[before:] if m != "GET"] == []
    assert run_cli("persona", "--config", FACILITATOR, "--update", "--pipeline-mode", "echo").code == 0
    assert wrapped_sandbox.store.personas[pid]["pipeline_mode"] == "echo"
    assert "persona_id" in wrapped_sandbox.store.personas[pid] and "data" not in wrapped_sandbox.store.personas[pid]


# --- bad configs: one line naming the file and the field, exit non-zero, nothing sent -----
def _bad(project, name, text):
    path = project / "configs" / "persona" / name
    path.write_text(text)
    return f"configs/persona/{name}"


@pytest.mark.parametrize("name, text, needles", [
    ("broken.json", '{"persona_name": "x",', ("configs/persona/broken.json", "invalid JSON")),
    ("unknown_key.json", json.dumps({"persona_name": "x", "system_prompt": "p", "sytem_prompt": "q"}),
     ("configs/persona/unknown_key.json", "sytem_prompt", "did you mean 'system_prompt'")),
    ("no_prompt.json", json.dumps({"persona_name": "x", "pipeline_mode": "full"}),
     ("configs/persona/no_prompt.json", "system_prompt", "required when pipeline_mode is full")),
    ("bad_tool.json", json.dumps({"persona_name": "x", "system_prompt": "p", "tools": ["book_flight"]}),
     ("configs/persona/bad_tool.json", "tools", "book_flight", "schedule_meeting")),
    ("bad_preset.json", json.dumps({"persona_name": "x", "system_prompt": "p", "layers_preset": "nope"}),
     ("configs/persona/bad_preset.json", "layers_preset", "nope", "assistant_with_tools")),
    ("bad_llm.json", json.dumps({"persona_name": "x", "system_prompt": "p", "llm": "gpt9"}),
     ("configs/persona/bad_llm.json", "llm", "gpt9", "tavus_gpt_oss")),
    ("bad_layer.json", json.dumps({"persona_name": "x", "system_prompt": "p", "layers": {"lmm": {}}}),
     ("configs/persona/bad_layer.json", "layers.lmm", "did you mean 'llm'")),
])
def test_bad_config_is_one_clear_line_and_nothing_is_sent(project, sandbox, name, text, needles):
    rel = _bad(project, name, text)
    assert_one_error(run_cli("persona", "--config", rel), *needles)
    assert writes(sandbox) == [] and sandbox.store.personas == {}


def test_ambiguous_policy_name_fails_naming_both_ids(project, sandbox, policies):
    oid, _ = policies
    cfg = project / "configs" / "objectives" / "copy.json"
    data = json.loads((project / "configs/objectives/facilitator_core.json").read_text())
    cfg.write_text(json.dumps(data))
    again = run_cli("objectives", "--config", str(cfg.relative_to(project)))
    assert again.code == 0 and "unchanged" in again.out, "same name: the existing set is kept, not duplicated"
    assert len(sandbox.store.objectives) == 1
    # A duplicate made behind the harness's back (e.g. in the Tavus portal):
    import requests
    requests.post(sandbox.url + "/objectives", json=data, headers={"x-api-key": "k"}, timeout=5).raise_for_status()
    assert len(sandbox.store.objectives) == 2
    before = len(sandbox.requests)
    error = assert_one_error(run_cli("persona", "--config", "configs/persona/facilitator.with_policies.json"),
                             "configs/persona/facilitator.with_policies.json", "objectives_name",
                             "Facilitator Core Objective")
    assert all(i in error for i in sandbox.store.objectives) and "--objectives-id" in error
    assert [m for m, _ in sandbox.requests[before:] if m != "GET"] == [] and sandbox.store.personas == {}


def test_unknown_policy_id_and_name_fail_before_create(project, sandbox):
    assert_one_error(run_cli("persona", "--config", FACILITATOR, "--objectives-id", "o000missing"),
                     "--objectives-id", "o000missing")
    assert_one_error(run_cli("persona", "--config", FACILITATOR, "--guardrails-name", "Nope"),
                     "--guardrails-name", "Nope", "`tune guardrails")
    assert_one_error(run_cli("persona", "--config", FACILITATOR, "--update", "--persona-id", "p000missing"),
                     "flag --persona-id: persona_id: no persona 'p000missing'")
    assert_one_error(run_cli("persona", "--config", FACILITATOR, "--update"),
                     FACILITATOR, "no persona named 'Meeting Facilitator'", "without --update")
    assert writes(sandbox) == []


# --- the real binaries -------------------------------------------------------------------
def _run(binary, args, cwd, env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env.update(env_extra)
    return subprocess.run([str(BIN / binary), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_invoke_and_tune_binaries_create_personas(project, sandbox):
    shutil.copy(REPO / "tasks.py", project / "tasks.py")
    env = {"TAVUS_API_URL": sandbox.url, "TAVUS_HARNESS_DOTENV": str(project / ".env")}
    proc = _run("invoke", ["persona", "--config", FACILITATOR], project, env)
    assert proc.returncode == 0, proc.stderr
    proc = _run("tune", ["persona", "--persona-name", "Assistant modular", "--system-prompt", "Use tools.",
                         "--tools", "schedule_meeting,lookup_order_status", "--json"], project, env)
    assert proc.returncode == 0, proc.stderr
    created = json.loads(proc.stdout)
    assert created["persona_id"] in sandbox.store.personas
    assert tool_names(sandbox.store.personas[created["persona_id"]]) == ["schedule_meeting", "lookup_order_status"]
    assert {p["persona_name"] for p in sandbox.store.personas.values()} == {"Meeting Facilitator", "Assistant modular"}
    bad = _run("tune", ["persona", "--config", FACILITATOR, "--tools", "nope"], project, env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: flag --tools: tools: unknown tool 'nope'")
    assert "Traceback" not in bad.stderr and len(sandbox.store.personas) == 2


def test_the_documented_persona_commands_run_as_written_in_order_on_one_api(project, sandbox):
    import re
    import shlex
    block = (REPO / "docs" / "resources.md").read_text().split("## Personas", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line.startswith("invoke persona")]
    assert len(commands) == 7
    assert run_cli("objectives", "--config", "configs/objectives/facilitator_core.json").code == 0
    assert run_cli("guardrails", "--config", "configs/guardrails/facilitator_safety.json").code == 0
    ids = {"<OBJECTIVES_ID>": next(iter(sandbox.store.objectives)), "<GUARDRAILS_ID>": next(iter(sandbox.store.guardrails))}
    for command in commands:
        argv = shlex.split(re.sub(r"<[A-Z_]+>", lambda m: ids[m.group(0)], command))[1:]
        result = run_cli(*argv)
        assert result.code == 0, f"{command}\n{result.err}"
    names = sorted(p["persona_name"] for p in sandbox.store.personas.values())
    assert names == ["Assistant modular", "Assistant modular (from config)", "Assistant with Tools", "Meeting Facilitator"]


def test_from_a_sub_folder_the_project_root_keeps_the_lock_file_and_logs(project, sandbox, monkeypatch):
    (project / "tavus-harness.toml").write_text("")
    sub = project / "agents" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    result = run_cli("persona", "--config", "../../configs/persona/facilitator.example.json")
    assert result.code == 0, result.err
    assert (project / "tavus-harness.lock.toml").is_file() and not (sub / "tavus-harness.lock.toml").exists()
    assert (project / "logs" / "api.jsonl").is_file() and not (sub / "logs").exists()
    again = run_cli("persona", "--config", "../../configs/persona/facilitator.example.json")
    assert again.code == 2 and "already created" in again.err, "the same lock file is read from the sub-folder"
