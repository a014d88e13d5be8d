"""Review fixes, as a user meets them: one `error:` line instead of a traceback, no leaked secret."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness_core.errors import ConfigError
from harness_core.serving import BackgroundServer
from tests.helpers import interrupt, logs_bytes, run_cli, spawn

BIN = Path(sys.executable).parent
OPENAI_KEY = "sk-openai-should-never-show-0123"


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env.update(extra)
    return env


def one_error_line(result) -> str:
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.err
    return lines[0]


def test_a_key_named_by_env_in_a_config_stays_out_of_explain_dry_run_and_logs(project, sandbox):
    (project / ".env").write_text(f"OPENAI_API_KEY={OPENAI_KEY}\nFEATURE_TOKEN=true\n")
    cfg = project / "configs" / "persona" / "openai.json"
    cfg.write_text(json.dumps({"persona_name": "OpenAI", "system_prompt": "Answer: true or false.", "layers": {"llm": {
        "model": "my-model", "base_url": "http://127.0.0.1:9/v1", "extra_body": {"openai_key": {"$env": "OPENAI_API_KEY"}}}}}))
    runs = [run_cli("explain", "--config", str(cfg)), run_cli("persona", "--config", str(cfg), "--dry-run")]
    assert all(r.code == 0 for r in runs), [r.err for r in runs]
    assert "layers.llm.extra_body.openai_key" in runs[0].out and "[redacted]" in runs[0].out
    assert "true or false" in runs[1].out, "a short value (FEATURE_TOKEN=true) is never scrubbed from text"
    logs = logs_bytes(project).decode("utf-8", "replace")
    assert OPENAI_KEY not in "".join(r.out + r.err for r in runs) + logs


def test_env_reference_that_is_not_a_name_is_one_error_line_naming_file_and_field(project):
    cfg = project / "configs" / "persona" / "bad_env.json"
    cfg.write_text(json.dumps({"persona_name": "P", "system_prompt": "p", "context": {"$env": ["A"]}}))
    result = run_cli("persona", "--config", str(cfg), "--dry-run")
    assert result.code == ConfigError.exit_code
    line = one_error_line(result)
    assert line.startswith(f"error: {cfg}: context: $env must be the name of an environment variable, not a list")


def test_meeting_flag_errors_name_the_flag_that_was_typed(project, sandbox):
    result = run_cli("conversation", "--replica-id", "r4317e64d25a", "--duration-minutes", "abc", "--dry-run")
    assert result.code == ConfigError.exit_code
    line = one_error_line(result)
    assert line.startswith("error: flag --duration-minutes: meeting.duration_minutes: 'abc'"), line
    assert "--meeting" not in line.replace("--meeting-title", "")


def test_record_flag_is_reported_as_record(project, sandbox, monkeypatch):
    from harness_core.cli.conversation import Flags
    from harness_core.context import make_context
    from harness_core.resources.conversation import build_conversation
    for name, value in (("TAVUS_RECORDING_S3_BUCKET", "b"), ("TAVUS_RECORDING_S3_REGION", "us-east-1"),
                        ("TAVUS_RECORDING_ROLE_ARN", "arn:aws:iam::123456789012:role/r")):
        monkeypatch.setenv(name, value)
    plan = build_conversation(make_context(quiet=True), Flags(replica_id="r4317e64d25a", enable_recording=True,
                                                              meeting={"title": "Q3"}))
    assert plan.resolved.source("enable_recording") == "flag --record"
    assert plan.resolved.source("meeting.title") == "flag --meeting-title"


def test_sandbox_on_localhost_listens_on_one_loopback_address(tmp_path):
    proc = spawn([str(BIN / "tune"), "sandbox", "--host", "localhost", "--port", "0"], cwd=tmp_path,
                 env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
    finally:
        _, err = interrupt(proc)
    assert first.startswith("Tavus sandbox listening on http://127.0.0.1:"), first + err
    assert "Traceback" not in err


def test_a_host_with_several_addresses_never_crashes(monkeypatch):
    """Where localhost also resolves to ::1, waitress opens several sockets and has no single port."""
    real = socket.getaddrinfo

    def two_addresses(host, port, *args, **kwargs):
        if host in ("localhost", "dual.invalid"):
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, int(port or 0)))
                    for ip in ("127.0.0.1", "127.0.0.2")]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", two_addresses)
    server = BackgroundServer(lambda environ, start_response: [], host="localhost")
    try:
        assert server.base_url.startswith("http://127.0.0.1:") and server.port > 0
    finally:
        server.server.close()
        server.server.task_dispatcher.shutdown()
    with pytest.raises(ConfigError) as err:
        BackgroundServer(lambda environ, start_response: [], host="dual.invalid")
    assert err.value.message.startswith("--host dual.invalid: resolves to several addresses")


def test_an_unknown_host_is_one_error_line(project):
    result = run_cli("sandbox", "--host", "no-such-host.invalid", "--port", "0")
    assert result.code == ConfigError.exit_code
    assert one_error_line(result).startswith("error: --host no-such-host.invalid --port 0: cannot listen there")


def test_a_null_status_from_the_api_is_listed_not_a_crash(project, sandbox):
    # not --test-mode: a conversation created ended is known to be over and never asked about
    assert run_cli("conversation", "--replica-id", "r4317e64d25a").code == 0
    [cid] = sandbox.store.conversations
    sandbox.store.conversations[cid]["status"] = None
    result = run_cli("conversations")
    assert result.code == 0, result.err
    assert result.out.startswith(f"{cid}  ?  ")
    assert json.loads(run_cli("conversations", "--json").out)[0]["status"] == "?"


def test_persona_commands_load_their_modules_only_when_they_run():
    code = ("import sys, harness_core.cli; "
            "print(sorted(m for m in ('harness_core.resources.persona', 'harness_core.resources.policies') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
