"""`--tunnel` against a local fake of the ngrok agent API (a real HTTP server serving /api/tunnels).

A real ngrok public URL cannot be reached from here, so the fake hands out loopback
`public_url`s: one that forwards to the receiver (the end-to-end ping must pass) and ones
that do not (the ping must fail, plainly).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from dotenv import dotenv_values

from harness_core import PluginError
from harness_core.context import make_context
from harness_core.serving import BackgroundServer
from harness_core.callbacks.listener import serve
from harness_core.callbacks.receiver import Receiver
from tests.conftest import closed_port_url
from tests.helpers import interrupt, run_cli, spawn, stored_callbacks

TOKEN = "tok-tunnel-0123456789abcd"


class FakeNgrokAgent:
    """Serves GET /api/tunnels with whatever `tunnels` holds; counts the requests."""

    def __init__(self):
        self.tunnels: list[dict] = []
        self.hits = 0
        self.server = BackgroundServer(self.app, threads=2)
        self.api_url = f"{self.server.base_url}/api/tunnels"

    def app(self, environ, start_response):
        if environ["PATH_INFO"] != "/api/tunnels":
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "not found"}']
        self.hits += 1
        body = json.dumps({"tunnels": self.tunnels, "uri": "/api/tunnels"}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    def forward(self, public_url: str, port: int, proto="https"):
        self.tunnels.append({"name": f"t{len(self.tunnels)}", "public_url": public_url, "proto": proto,
                             "config": {"addr": f"http://localhost:{port}", "inspect": True}})


@pytest.fixture
def agent(monkeypatch, project):
    fake = FakeNgrokAgent()
    fake.server.start()
    monkeypatch.setenv("NGROK_API_URL", fake.api_url)
    (project / ".env").write_text(f"WEBHOOK_TOKEN={TOKEN}\nOTHER_SETTING=kept\n")
    try:
        yield fake
    finally:
        fake.server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Console:
    """serve() in a thread, its say/warn lines collected, stopped through its stop Event."""

    def __init__(self, project, **options):
        self.out, self.err, self.stop, self.error, self.summary = [], [], threading.Event(), None, None
        self.ctx = make_context(project, quiet=True)

        def run():
            try:
                self.summary = serve(self.ctx, say=self.out.append, warn=self.err.append, stop=self.stop, **options)
            except Exception as exc:  # noqa: BLE001 - surfaced to the test
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def wait_line(self, needle, timeout=10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.out + self.err:
                if needle in line:
                    return line
            if self.error or not self.thread.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no line with {needle!r}: {self.out + self.err} error={self.error!r}")

    def close(self):
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def test_tunnel_to_our_port_is_saved_to_dotenv_and_checked_end_to_end(agent, project):
    port = free_port()
    agent.forward(f"http://127.0.0.1:{port}", port)  # the "public" URL reaches the receiver itself
    console = Console(project, port=port, path="/tavus/callback", tunnel=True)
    try:
        console.wait_line("Ready!")
        public = f"http://127.0.0.1:{port}/tavus/callback?token={TOKEN}"
        values = dotenv_values(project / ".env")
        assert values["WEBHOOK_URL"] == public and values["OTHER_SETTING"] == "kept"
        assert any("Checked end to end: a ping through" in line for line in console.out)
        assert any(f"Public URL http://127.0.0.1:{port}/tavus/callback?token=" in line for line in console.out)
        event = {"conversation_id": "ctunnel", "event_type": "system.replica_joined", "message_type": "system",
                 "properties": {"replica_id": "r90bbd427f71"}, "timestamp": "2025-07-11T06:45:47.472000Z",
                 "webhook_url": public}
        assert requests.post(public, json=event, timeout=5).status_code == 200
        console.wait_line("ctunnel")
    finally:
        console.close()
    assert console.summary.reachable is True and console.summary.accepted == 1
    assert [r["event"]["event_type"] for r in stored_callbacks(project, "ctunnel")] == ["system.replica_joined"]
    assert agent.hits == 1


def test_a_public_url_that_does_not_reach_the_receiver_is_said_plainly_and_not_saved(agent, project):
    port = free_port()
    agent.forward(closed_port_url().rsplit("/", 1)[0], port)
    working = "https://working.example/tavus/callback?token=" + TOKEN
    with (project / ".env").open("a") as env:
        env.write(f"WEBHOOK_URL={working}\n")
    console = Console(project, port=port, tunnel=True)
    try:
        line = console.wait_line("NOT READY for Tavus")
        assert "nothing answered at" in line and f"forwards to port {port}" in line
        assert "NOT saved as WEBHOOK_URL (.env is unchanged)" in line
        assert "Listening locally only." in console.wait_line("Listening locally only.")
        assert not any("Ready!" in line for line in console.out + console.err)
    finally:
        console.close()
    assert console.summary.reachable is False
    assert dotenv_values(project / ".env")["WEBHOOK_URL"] == working, "a failed check never replaces a working value"


def test_a_public_url_that_reaches_another_receiver_is_not_ready(agent, project):
    port = free_port()
    with Receiver(make_context(project, quiet=True)) as stranger:
        agent.forward(stranger.base_url, port)
        console = Console(project, port=port, tunnel=True)
        try:
            assert "reached a different receiver" in console.wait_line("NOT READY for Tavus")
        finally:
            console.close()


def test_no_tunnel_for_our_port_names_what_the_agent_has(agent, project):
    agent.forward("https://elsewhere.ngrok-free.app", 9999)
    port = free_port()
    result = run_cli("webhook", "--port", str(port), "--tunnel")
    assert result.code == 4
    assert f"has no tunnel to port {port} (it has: https://elsewhere.ngrok-free.app -> http://localhost:9999)" in result.err
    assert f"`ngrok http {port}`" in result.err
    assert "WEBHOOK_URL" not in (project / ".env").read_text()
    with pytest.raises(requests.ConnectionError):  # the receiver was stopped again
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)


def test_no_agent_running_explains_how_to_start_ngrok(project, monkeypatch):
    monkeypatch.setenv("NGROK_API_URL", closed_port_url().replace("/v2", "/api/tunnels"))
    (project / ".env").write_text(f"WEBHOOK_TOKEN={TOKEN}\n")
    result = run_cli("webhook", "--port", "0", "--tunnel")
    assert result.code == 4, result.err
    assert "error: no ngrok agent answers at http://127.0.0.1:" in result.err
    assert "`ngrok http " in result.err and "pyngrok" in result.err and "NGROK_API_URL" in result.err
    assert len([line for line in result.err.splitlines() if line.startswith("error:")]) == 1


def test_an_agent_answering_garbage_is_a_plugin_error(agent, project, monkeypatch):
    monkeypatch.setenv("NGROK_API_URL", agent.api_url.replace("/api/tunnels", "/elsewhere"))
    ctx = make_context(project, quiet=True)
    from harness_core.callbacks.publicurl import public_url
    with pytest.raises(PluginError, match="answered 404 without a tunnel list"):
        public_url(ctx, 8000, "/tavus/callback")


def test_print_url_with_tunnel_prints_the_public_callback_url(agent, project):
    agent.forward("https://abc123.ngrok-free.app", 8000)
    result = run_cli("webhook", "--print-url", "--tunnel")
    assert result.code == 0, result.err
    assert result.out == f"https://abc123.ngrok-free.app/tavus/callback?token={TOKEN}\n"


TUNE = str(Path(sys.executable).parent / "tune")


def test_the_one_terminal_flow_command_as_written(agent, project):
    """`invoke webhook --port 8000 --path /tavus/callback --tunnel` (on a free port), as a real process."""
    port = free_port()
    agent.forward(f"http://127.0.0.1:{port}", port)
    env = {**os.environ, "NGROK_API_URL": agent.api_url}
    proc = spawn([TUNE, "webhook", "--port", str(port), "--path", "/tavus/callback", "--tunnel"],
                            cwd=project, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while "WEBHOOK_URL" not in (project / ".env").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = dotenv_values(project / ".env")["WEBHOOK_URL"]
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        assert url == f"http://127.0.0.1:{port}/tavus/callback?token={TOKEN}"
        trig = run_cli("trigger", "system.shutdown", "--reason", "participant_left_timeout",
                       "--conversation-id", "cone", "--to", url)
        assert trig.code == 0, trig.err
        while not stored_callbacks(project, "cone") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        out, err = interrupt(proc)
    assert "Checked end to end" in out and "Ready!" in out, out + err
    assert "cone" in out and "reason: participant_left_timeout" in out
    assert TOKEN not in out + err


def test_pyngrok_is_given_the_ngrok_authtoken_from_dotenv(project, monkeypatch):
    """pyngrok is not a dependency: a stand-in module with its API shows what the plugin hands it."""
    import types
    seen = {}

    class PyngrokConfig:
        def __init__(self, auth_token=None, **other):
            self.auth_token = auth_token

    def connect(addr=None, proto=None, pyngrok_config=None, **options):
        seen.update(addr=addr, proto=proto, auth_token=getattr(pyngrok_config, "auth_token", None))
        return types.SimpleNamespace(public_url="https://from-pyngrok.ngrok-free.app")

    package = types.ModuleType("pyngrok")
    package.conf = types.SimpleNamespace(PyngrokConfig=PyngrokConfig)
    package.ngrok = types.SimpleNamespace(connect=connect)
    monkeypatch.setitem(sys.modules, "pyngrok", package)
    monkeypatch.setenv("NGROK_API_URL", closed_port_url().replace("/v2", "/api/tunnels"))
    (project / ".env").write_text(f"WEBHOOK_TOKEN={TOKEN}\nNGROK_AUTHTOKEN=2ngrok-auth-token-from-dotenv\n")
    result = run_cli("webhook", "--print-url", "--tunnel", "--port", "8123")
    assert result.code == 0, result.err
    assert result.out == f"https://from-pyngrok.ngrok-free.app/tavus/callback?token={TOKEN}\n"
    assert seen == {"addr": 8123, "proto": "http", "auth_token": "2ngrok-auth-token-from-dotenv"}
    assert "2ngrok-auth-token-from-dotenv" not in result.out + result.err
