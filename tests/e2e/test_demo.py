"""`invoke demo` as a newcomer runs it: a real subprocess, an embedded sandbox, real callbacks."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import logs_bytes, stored_callbacks

BIN = Path(sys.executable).parent
SECRET = "tk-demo-should-never-show-1234"


def run_demo(cwd, **env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env.update(env_extra)
    return subprocess.run([str(BIN / "invoke"), "demo"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_demo_runs_end_to_end_on_the_embedded_sandbox(project):
    (project / "tasks.py").write_text("from harness_core.cli import ns  # noqa: F401\n")
    proc = run_demo(project)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Ran against the local Tavus sandbox at http://127.0.0.1:" in out and "nothing reached Tavus" in out
    assert "'Meeting Facilitator'" in out and "status: ended" in out and "https://tavus.daily.co/c" in out
    order = [line.split()[1] for line in out.splitlines() if line.startswith("  20")]
    assert order == ["system.replica_joined", "system.pal_joined", "system.shutdown",
                     "application.transcription_ready", "application.perception_analysis"]
    assert "reason: end_conversation_endpoint_hit" in out
    stored = stored_callbacks(project)
    assert len({r["event"]["conversation_id"] for r in stored}) == 1 and len(stored) == 5
    assert "Traceback" not in proc.stderr


def test_demo_ignores_a_real_key_and_never_shows_or_logs_it(project):
    (project / "tasks.py").write_text("from harness_core.cli import ns  # noqa: F401\n")
    proc = run_demo(project, TAVUS_API_KEY=SECRET, TAVUS_API_URL="https://tavusapi.com/v2")
    assert proc.returncode == 0, proc.stderr
    assert "TAVUS_API_KEY is set, but the demo always uses the embedded sandbox" in proc.stdout
    artifacts = proc.stdout + proc.stderr + logs_bytes(project).decode("utf-8", "replace")
    assert SECRET not in artifacts
    assert "tavusapi.com" not in "".join(p.read_text() for p in (project / "logs").rglob("api.jsonl"))


def test_demo_leaves_no_state_file_behind(project):
    (project / "tasks.py").write_text("from harness_core.cli import ns  # noqa: F401\n")
    assert run_demo(project).returncode == 0
    assert not (project / "tavus-harness.lock.toml").exists(), "an embedded sandbox dies with the demo"


def test_demo_that_runs_out_of_time_is_one_error_line(project, monkeypatch):
    from harness_core.testing import demo
    from tests.helpers import run_cli

    monkeypatch.setattr(demo, "TIME_SCALE", 100.0)  # the replica takes minutes to join: the wait must run out
    result = run_cli("demo", "--timeout", "0.3")
    assert result.code == 5, result.err
    assert "Traceback" not in result.err
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: demo: the sandbox sent no ") and "--timeout" in errors[0]


def test_the_embedded_sandbox_never_sees_the_key_from_dotenv(project, monkeypatch):
    """The sandbox is made to accept only the placeholder key: a key read from .env would be a 401."""
    import functools

    from harness_core import sandbox
    from harness_core.env import SANDBOX_PLACEHOLDER_KEY
    from tests.helpers import run_cli

    monkeypatch.setattr(sandbox, "SandboxSettings", functools.partial(sandbox.SandboxSettings,
                                                                      api_key=SANDBOX_PLACEHOLDER_KEY))
    (project / ".env").write_text(f"TAVUS_API_KEY={SECRET}\n")
    result = run_cli("demo")
    assert result.code == 0, result.err
    assert "TAVUS_API_KEY is set, but the demo always uses the embedded sandbox" in result.out
    artifacts = result.out + result.err + logs_bytes(project).decode("utf-8", "replace")
    assert SECRET not in artifacts


def test_demo_and_init_report_as_json(project, monkeypatch, tmp_path):
    import json

    from tests.helpers import run_cli

    monkeypatch.delenv("TAVUS_API_URL")
    demo = run_cli("demo", "--json")
    assert demo.code == 0, demo.err
    body = json.loads(demo.out)
    assert body["status"] == "ended" and body["conversation_id"] and any(
        e["event_type"] == "application.transcription_ready" for e in body["events"])
    made = run_cli("init", str(tmp_path / "fresh"), "--json")
    report = json.loads(made.out)
    assert made.code == 0 and "tavus-harness.toml" in report["written"] and report["kept"] == []
    assert report["next"][0].endswith("tune demo")
