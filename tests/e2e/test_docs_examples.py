"""Every shell example in the README and under docs/ runs, against a real sandbox in a scratch project.

Each ```bash block is read line by line; a line that starts with `invoke` or `tune` is run in-process,
in order, one fresh project and sandbox per page. Lines that cannot run offline or would not end are
listed in SKIP with the reason (and where they are tested instead); a new example that is neither run
nor listed fails test_every_example_is_run_or_skipped_for_a_stated_reason.
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# (pattern matched at the start of a command line, reason it is not run here)
SKIP = [
    (r"python3 -m venv", "installs the package: CI's .ci/run does exactly this"),
    (r"\.venv/bin/python -m pytest", "the test suite itself"),
    (r"python -m pytest scenarios/", "a pytest session: tests/e2e/test_pytest_plugin.py"),
    (r"echo 'TAVUS_API_KEY", "needs a real Tavus API key"),
    (r"export ", "the test sets TAVUS_API_URL to its own sandbox"),
    (r"(invoke|tune) sandbox", "a server that runs until Ctrl-C: tests/e2e/test_core_cli.py"),
    (r"(invoke|tune) webhook --port", "a server that runs until Ctrl-C: tests/e2e/test_webhook_receiver.py"),
    (r"(invoke|tune) ui", "a server that runs until Ctrl-C: tests/e2e/test_ui_e2e.py"),
    (r"(invoke|tune) webhook .*--tunnel", "needs an ngrok agent: tests/e2e/test_tunnel_e2e.py fakes one"),
    (r"ngrok ", "needs the ngrok program and the network"),
    (r".*\| jq", "pipes into jq, which a machine may not have; `events --jsonl` runs in test_events_e2e.py"),
    (r"tune init my-agent|cd my-agent|tune presets", "the installed tool in a new folder: tests/e2e/test_installed.py"),
]
OK_CODES = {"plan": {0, 6}}  # plan exits 6 when changes are pending, as documented


def commands(page: Path) -> list[str]:
    """The command lines of a page's ```bash blocks, comments removed."""
    found, inside = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash" if not inside else False
            continue
        if inside and line.strip():
            found.append(re.split(r"\s+#\s", line.strip(), maxsplit=1)[0].strip())
    return found


def skipped(command: str) -> str | None:
    return next((reason for pattern, reason in SKIP if re.match(pattern, command)), None)


def test_every_example_is_run_or_skipped_for_a_stated_reason():
    for page in PAGES:
        for command in commands(page):
            assert command.split()[0] in ("invoke", "tune") or skipped(command), \
                f"{page.name}: `{command}` is neither a harness command nor in SKIP (with a reason)"


def _fill(command: str, sandbox, hook_url: str, conversation_id: str) -> str:
    """Put real ids and a listening URL where the docs write placeholders."""
    def value(match):
        before = command[:match.start()]
        if match.group(0) == "<ID_FROM_THE_DASHBOARD>":  # a PAL no config manages yet (pull refuses managed ones)
            import requests
            made = requests.post(f"{sandbox.url}/personas", headers={"x-api-key": "dashboard"}, timeout=10,
                                 json={"persona_name": "Made in the dashboard", "system_prompt": "Hi."})
            return made.json()["persona_id"]
        if before.rstrip().endswith("--persona-id"):
            return sorted(sandbox.store.personas)[0]
        if match.group(0) == "<OBJECTIVES_ID>":
            return next(iter(sandbox.store.objectives))
        if match.group(0) == "<GUARDRAILS_ID>":
            return next(iter(sandbox.store.guardrails))
        return conversation_id
    command = re.sub(r"http://127\.0\.0\.1:(8000|9000)/\S+", hook_url, command)
    return re.sub(r"<[A-Z_]+>", value, command)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_the_pages_shell_examples_run_as_written(page, project, sandbox, collector):
    from harness_core.callbacks.receiver import Receiver
    from harness_core.context import make_context

    runnable = [c for c in commands(page) if not skipped(c)]
    if not runnable:
        pytest.skip(f"{page.name} has no example that runs offline")
    # what a reader has done before these pages: the policies exist, and a conversation with stored callbacks
    for setup in (["objectives", "--config", "configs/objectives/facilitator_core.json"],
                  ["guardrails", "--config", "configs/guardrails/facilitator_safety.json"]):
        assert run_cli(*setup).code == 0
    if not any("persona --config configs/persona/facilitator.example.json" in c for c in runnable):
        assert run_cli("persona", "--config", "configs/persona/facilitator.example.json").code == 0
    made = run_cli("conversation", "--replica-id", "r4317e64d25a", "--test-mode", "--json")
    assert made.code == 0, made.err
    cid = json.loads(made.out)["conversation_id"]
    with Receiver(make_context(project, quiet=True)) as rx:
        assert run_cli("trigger", "system.replica_joined", "--conversation-id", cid, "--to", rx.callback_url).code == 0
        rx.wait_for(lambda events: len(events) == 1, 10)
    for command in runnable:
        argv = shlex.split(_fill(command, sandbox, collector.url, cid))[1:]
        result = run_cli(*argv)
        assert result.code in OK_CODES.get(argv[0], {0}), f"{page.name}: `{command}` exited {result.code}\n{result.err}"
        assert "Traceback" not in result.err


def test_the_docs_site_builds_in_strict_mode(tmp_path):
    """mkdocs.yml in strict mode: a broken link, a missing page or a page left out of nav fails this."""
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "output" / "index.html").is_file()
