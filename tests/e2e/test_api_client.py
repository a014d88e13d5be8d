"""The API client over real HTTP against a small scripted server on 127.0.0.1."""
from __future__ import annotations

import json
import threading

import pytest

from harness_core.api import TavusClient
from harness_core.env import Target
from harness_core.errors import ApiError
from harness_core.serving import BackgroundServer
from harness_core.store import Store

SECRET = "tk-client-secret-123"


class Scripted:
    """Answers POST /v2/things from a script of (status, headers); records what it created."""

    def __init__(self, script):
        self.script = list(script)
        self.created: list[dict] = []
        self.posts = 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        if method == "GET":
            body = json.dumps({"data": self.created, "total_count": len(self.created)}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        size = int(environ.get("CONTENT_LENGTH") or 0)
        payload = json.loads(environ["wsgi.input"].read(size) or b"{}")
        with self.lock:
            self.posts += 1
            status, headers, creates = self.script.pop(0) if self.script else (200, {}, True)
            if creates:
                self.created.append({"id": f"t{len(self.created)}", "name": payload.get("name")})
        if status == 200:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(self.created[-1]).encode()]
        start_response(f"{status} X", [("Content-Type", "application/json"), *headers.items()])
        return [json.dumps({"message": f"scripted {status}"}).encode()]


@pytest.fixture
def server_for():
    servers = []

    def start(app):
        srv = BackgroundServer(app).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def client_for(srv, tmp_path) -> TavusClient:
    target = Target(f"{srv.base_url}/v2", SECRET, "test", "test")
    return TavusClient(target, Store(tmp_path / "logs", [SECRET]))


def find_named(client, name):
    return lambda: next((r for r in client.get("/things")["data"] if r["name"] == name), None)


def test_create_after_an_ambiguous_500_finds_the_created_resource_instead_of_duplicating(server_for, tmp_path):
    app = Scripted([(500, {}, True)])  # the server created it, then failed to answer
    client = client_for(server_for(app), tmp_path)
    result = client.create("/things", {"name": "alpha"}, find_existing=find_named(client, "alpha"), sleep=lambda s: None)
    assert result == {"id": "t0", "name": "alpha"}
    assert app.posts == 1 and len(app.created) == 1


def test_create_retries_after_a_500_that_created_nothing(server_for, tmp_path):
    app = Scripted([(503, {}, False)])
    client = client_for(server_for(app), tmp_path)
    result = client.create("/things", {"name": "beta"}, find_existing=find_named(client, "beta"), sleep=lambda s: None)
    assert result["name"] == "beta" and app.posts == 2 and len(app.created) == 1


def test_create_honours_retry_after_on_429_and_bounds_the_wait(server_for, tmp_path):
    waits = []
    app = Scripted([(429, {"Retry-After": "2"}, False)])
    client = client_for(server_for(app), tmp_path)
    assert client.create("/things", {"name": "g"}, sleep=waits.append)["name"] == "g"
    assert waits == [2.0]
    app2 = Scripted([(429, {"Retry-After": "30"}, False)] * 5)
    client2 = client_for(server_for(app2), tmp_path)
    with pytest.raises(ApiError, match="429"):
        client2.create("/things", {"name": "h"}, sleep=waits.append, max_wait=10)
    assert app2.posts == 1, "a wait over the bound is not attempted"


def test_client_errors_are_not_retried_and_carry_the_servers_message(server_for, tmp_path):
    app = Scripted([(400, {}, False)])
    client = client_for(server_for(app), tmp_path)
    with pytest.raises(ApiError) as err:
        client.create("/things", {"name": "x"}, sleep=lambda s: None)
    assert err.value.status == 400 and "scripted 400" in err.value.message and app.posts == 1


def test_every_exchange_is_logged_without_the_api_key(server_for, tmp_path):
    app = Scripted([])
    client = client_for(server_for(app), tmp_path)
    client.post("/things", {"name": "n", "note": f"contains {SECRET}"})
    raw = (tmp_path / "logs" / "api.jsonl").read_text()
    record = json.loads(raw.splitlines()[-1])
    assert record["method"] == "POST" and record["status"] == 200 and record["duration_ms"] >= 0
    assert SECRET not in raw and "x-api-key" not in raw.lower()


def test_unreachable_api_is_one_clear_error(tmp_path):
    from tests.conftest import closed_port_url
    client = TavusClient(Target(closed_port_url(), "k", "test", "test"), None, retries=0)
    with pytest.raises(ApiError) as err:
        client.get("/personas")
    assert "cannot reach local sandbox" in err.value.message and "invoke sandbox" in err.value.hint


def test_only_answers_that_broke_off_are_retried_not_connections_that_never_opened():
    import socket

    import requests

    from harness_core.api import broke_mid_answer
    from tests.conftest import closed_port_url

    with pytest.raises(requests.ConnectionError) as refused:
        requests.get(closed_port_url(), timeout=2)
    assert not broke_mid_answer(refused.value), "nothing listens: urllib3 already retried the connect"

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def hang_up():
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.close()  # reached, then the answer never comes

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        with pytest.raises(requests.ConnectionError) as dropped:
            requests.get(f"http://127.0.0.1:{listener.getsockname()[1]}/v2/personas", timeout=5)
    finally:
        listener.close()
    assert broke_mid_answer(dropped.value)


def test_reads_honour_retry_after_but_never_wait_longer_than_the_bound(server_for, tmp_path, monkeypatch):
    import harness_core.api as api

    calls = []

    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        if len(calls) == 1:
            start_response("429 Too Many Requests", [("Retry-After", "3600"), ("Content-Type", "application/json")])
            return [b'{"message": "slow down"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"data": [], "total_count": 0}']

    monkeypatch.setattr(api, "MAX_RETRY_AFTER", 0.2)
    client = client_for(server_for(app), tmp_path)
    import time
    started = time.monotonic()
    assert client.get("/things") == {"data": [], "total_count": 0}
    assert len(calls) == 2 and 0.15 < time.monotonic() - started < 5
