"""The project-wide tasks as a user runs them: sandbox, doctor, the no-API error, --list."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import closed_port_url
from tests.helpers import interrupt, run_cli, spawn

BIN = Path(sys.executable).parent


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env.update(extra)
    return env


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_invoke_sandbox_prints_its_url_serves_and_stops_on_ctrl_c_or_sigterm(tmp_path, sig):
    proc = spawn([str(BIN / "tune"), "sandbox", "--port", "0", "--state", "state.json"], cwd=tmp_path,
                 env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        assert first.startswith("Tavus sandbox listening on http://127.0.0.1:")
        url = second.strip().split("=", 1)[1]
        created = requests.post(f"{url}/personas", json={"system_prompt": "x", "persona_name": "kept"},
                                headers={"x-api-key": "k"}, timeout=5)
        assert created.status_code == 200
    finally:
        interrupt(proc, sig)
    assert proc.returncode == 0
    assert "kept" in (tmp_path / "state.json").read_text()


def test_without_key_or_url_a_task_stops_before_sending_with_both_ways_forward(project, monkeypatch):
    monkeypatch.delenv("TAVUS_API_URL")
    result = run_cli("persona", "--persona-name", "X", "--system-prompt", "y")
    assert result.code == 2
    line = result.err.strip()
    assert line.count("\n") == 0 and line.startswith("error: no TAVUS_API_KEY and no TAVUS_API_URL")
    assert "`tune sandbox`" in line and "`tune demo`" in line, "hints name the program that runs (tune)"


def test_doctor_reports_a_healthy_sandbox_setup(project, sandbox):
    result = run_cli("doctor")
    assert result.code == 0, result.out + result.err
    assert "local sandbox at " + sandbox.url in result.out and "the API answered" in result.out


def test_doctor_fails_with_a_fix_when_the_api_does_not_answer(project):
    result = run_cli("doctor")
    assert result.code == 5
    assert "BAD reachable" in result.out and "fix:" in result.out and "`tune sandbox`" in result.out


def test_doctor_never_shows_the_key(project, sandbox, monkeypatch):
    monkeypatch.setenv("TAVUS_API_KEY", "tk-doctor-secret-42")
    result = run_cli("doctor", "--json")
    assert "tk-doctor-secret-42" not in result.out + result.err
    assert "env TAVUS_API_KEY" in result.out


def test_invoke_and_tune_list_the_same_tasks(tmp_path):
    env = clean_env()
    root = Path(__file__).resolve().parents[2]
    via_invoke = subprocess.run([str(BIN / "invoke"), "--list"], cwd=root, env=env, capture_output=True, text=True, timeout=60)
    via_tune = subprocess.run([str(BIN / "tune"), "--list"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    names = lambda out: sorted(line.split()[0] for line in out.splitlines()[2:] if line.startswith("  ") and line.strip())
    assert names(via_invoke.stdout) == names(via_tune.stdout)
    for task in ("demo", "doctor", "plugins", "sandbox", "persona", "webhook"):
        assert task in names(via_tune.stdout)


@pytest.mark.parametrize("task", ["trigger", "run", "set-webhook-url"])
def test_help_after_a_task_with_a_positional_argument_shows_that_tasks_help(tmp_path, task):
    proc = subprocess.run([str(BIN / "tune"), task, "--help"], cwd=tmp_path, env=clean_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: tune") and f" {task} " in proc.stdout.splitlines()[0]
    assert "Docstring:" in proc.stdout and proc.stderr == ""


def test_doctor_passes_webhook_url_only_when_a_real_receiver_answers(project, sandbox, collector, monkeypatch):
    from harness_core.context import make_context
    from harness_core.callbacks.receiver import Receiver

    monkeypatch.setenv("WEBHOOK_URL", collector.url + "?token=abc")  # a web server answering 200, not a receiver
    result = run_cli("doctor")
    assert result.code == 5 and "BAD webhook" in result.out and "`tune webhook`" in result.out, result.out
    with Receiver(make_context(quiet=True), token="t0ken-123") as rx:
        monkeypatch.setenv("WEBHOOK_URL", rx.callback_url)
        result = run_cli("doctor")
    assert result.code == 0, result.out + result.err
    assert "ok  webhook" in result.out and "t0ken-123" not in result.out


def test_tune_offers_only_the_core_options_that_apply():
    import sys

    shown = run_cli("--help")
    core = shown.out.split("Subcommands:")[0]
    assert shown.code == 0 and "--print-completion-script" in core and "--list" in core
    for flag in ("--pty", "--echo", "--warn-only", "--hide", "--command-timeout", "--dry", "--config", "--write-pyc"):
        assert flag not in core, flag
    refused = run_cli("-f", "configs/persona/facilitator.example.json", "doctor")
    assert refused.code != 0 and "'-f'" in refused.err, "a persona file is no longer read as invoke's config"
    assert run_cli("--version").code == 0 and sys.dont_write_bytecode is False, "an installed harness keeps its bytecode"


def test_the_seed_script_outside_the_venv_says_how_to_use_the_venv():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    base = getattr(sys, "_base_executable", None) or "python3"
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    if subprocess.run([base, "-c", "import harness_core"], env=env, cwd="/", capture_output=True).returncode == 0:
        import pytest
        pytest.skip("the base interpreter has tavus-harness installed too")
    proc = subprocess.run([base, "bin/webhook_server.py", "--port", "1"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"{Path(sys.prefix)}" in proc.stderr and "/bin/python bin/webhook_server.py --port 1" in proc.stderr, proc.stderr


def test_hints_name_the_program_that_runs(project):
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    shutil.copy(Path(__file__).resolve().parents[2] / "tasks.py", project / "tasks.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    for program in ("invoke", "tune"):
        proc = subprocess.run([str(Path(sys.executable).parent / program), "persona", "--persona-name", "X",
                               "--system-prompt", "y"], cwd=project, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and f"`{program} sandbox`" in proc.stderr and f"`{program} demo`" in proc.stderr, \
            proc.stderr


def test_sandbox_on_a_taken_port_is_one_error_line_without_a_traceback(tmp_path):
    import socket
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = subprocess.run([str(BIN / "tune"), "sandbox", "--port", str(port)], cwd=tmp_path, env=clean_env(),
                              capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"error: --port {port}: cannot listen on 127.0.0.1:{port}") and "--port" in proc.stderr


def test_doctor_is_bad_when_webhook_url_names_a_port_without_a_receiver_while_one_runs_elsewhere(project, sandbox,
                                                                                                  monkeypatch):
    from harness_core.context import make_context
    from harness_core.callbacks.receiver import Receiver

    with Receiver(make_context(quiet=True), token="t0ken-123") as rx:
        closed = closed_port_url().replace("/v2", "")
        monkeypatch.setenv("WEBHOOK_URL", f"{closed}/tavus/callback?token=t0ken-123")
        assert closed != rx.base_url
        result = run_cli("doctor")
    assert result.code == 5 and "BAD webhook" in result.out and "ok  webhook" not in result.out, result.out
