"""The real receiver on 127.0.0.1: rejections, durable storage, plugins, a 1,000-callback burst, the CLI."""
from __future__ import annotations

import itertools
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from harness_core import hookimpl
from harness_core.context import make_context
from harness_core.callbacks.eventstore import DB_NAME
from harness_core.callbacks.receiver import MAX_BODY, Receiver
from tests.helpers import interrupt, logs_bytes, run_cli, spawn, stored_callbacks

TOKEN = "tok-e2e-0123456789abcdef"
T = 5  # seconds: every request's timeout


_STAMPS = itertools.count()


def envelope(cid="c0eaa60a267274af", kind="system.replica_joined", **props):
    """A distinct callback each call (its own timestamp), so the receiver's dedupe keeps them all."""
    return {"properties": {"replica_id": "r90bbd427f71", **props}, "conversation_id": cid,
            "webhook_url": f"http://127.0.0.1/tavus/callback?token={TOKEN}", "event_type": kind,
            "message_type": kind.split(".")[0], "timestamp": f"2025-07-11T06:45:47.{next(_STAMPS):06d}Z"}


def deep(levels: int) -> dict:
    node: dict = {}
    for _ in range(levels):
        node = {"x": node}
    return node


class Seen:
    """A throwaway plugin that records every event it is handed."""

    def __init__(self):
        self.events = []

    @hookimpl
    def harness_handle_callback(self, event):
        self.events.append(event)


@pytest.fixture
def ctx(project):
    c = make_context(project, quiet=True)
    c.hook  # build the plugin manager with the built-ins
    return c


@pytest.fixture
def seen(ctx):
    plugin = Seen()
    ctx.pm.register(plugin)
    return plugin


@pytest.fixture
def rx(ctx, seen):
    problems = []
    with Receiver(ctx, token=TOKEN, on_problem=problems.append) as receiver:
        receiver.problems = problems
        yield receiver


def url(rx, path=None, token=TOKEN):
    return f"{rx.base_url}{path or rx.path}" + (f"?token={token}" if token else "")


def stored(project: Path) -> list[dict]:
    return stored_callbacks(project)


def rejected(project: Path) -> list[dict]:
    path = project / "logs" / "webhook.jsonl"
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["type"] == "rejected"] if path.exists() else []


def test_an_accepted_callback_is_stored_durably_shown_to_plugins_and_answered_200(rx, seen, project):
    event = envelope(kind="system.shutdown", shutdown_reason="end_conversation_endpoint_hit")
    resp = requests.post(url(rx), json=event, timeout=T)
    assert resp.status_code == 200 and resp.json() == {"ok": True}
    rx.wait_for(lambda evs: len(evs) == 1, T)
    assert seen.events == [event], "the plugin got the envelope as posted"
    records = stored_callbacks(project, "c0eaa60a267274af")
    assert len(records) == 1 and records[0]["type"] == "callback" and records[0]["ts"].endswith("Z")
    assert records[0]["event"]["properties"]["shutdown_reason"] == "end_conversation_endpoint_hit"
    assert records[0]["event"]["webhook_url"] == "http://127.0.0.1/tavus/callback?token=[redacted]"
    assert TOKEN.encode() not in logs_bytes(project)


def test_callback_url_carries_this_instances_token(ctx):
    with Receiver(ctx) as a, Receiver(ctx) as b:
        assert a.token != b.token and len(a.token) >= 24
        assert a.callback_url == f"http://127.0.0.1:{a.port}/tavus/callback?token={a.token}"
        assert requests.post(a.callback_url, json=envelope(), timeout=T).status_code == 200
        assert requests.post(f"{b.base_url}/tavus/callback?token={a.token}", json=envelope(), timeout=T).status_code == 403


def test_healthz_answers_liveness_without_a_token(rx):
    for path in ("/healthz", "/tavus/healthz"):
        resp = requests.get(rx.base_url + path, timeout=T)
        assert resp.status_code == 200 and resp.json() == {"ok": True, "receiver": rx.instance}


@pytest.mark.parametrize("name, send, status", [
    ("non-JSON", lambda rx: requests.post(url(rx), data=b"not json{", timeout=T), 400),
    ("invalid UTF-8", lambda rx: requests.post(url(rx), data=b"\xff\xfe{}", timeout=T), 400),
    ("no token", lambda rx: requests.post(url(rx, token=None), json=envelope(), timeout=T), 403),
    ("wrong token", lambda rx: requests.post(url(rx, token="guess"), json=envelope(), timeout=T), 403),
    ("unknown path", lambda rx: requests.post(url(rx, path="/other"), json=envelope(), timeout=T), 404),
    ("GET on the callback path", lambda rx: requests.get(url(rx), timeout=T), 405),
    ("POST on healthz", lambda rx: requests.post(rx.base_url + "/healthz", json={}, timeout=T), 405),
    ("over 1 MiB", lambda rx: requests.post(url(rx), data=b"x" * (MAX_BODY + 1), timeout=T), 413),
    ("over 1 MiB, chunked", lambda rx: requests.post(url(rx), data=iter([b"x" * MAX_BODY, b"yy"]), timeout=T), 413),
    ("missing conversation_id", lambda rx: requests.post(
        url(rx), json={k: v for k, v in envelope().items() if k != "conversation_id"}, timeout=T), 422),
    ("a JSON list", lambda rx: requests.post(url(rx), json=[envelope()], timeout=T), 422),
    ("path-like conversation id", lambda rx: requests.post(url(rx), json=envelope(cid="../x"), timeout=T), 422),
    ("conversation id with a newline", lambda rx: requests.post(url(rx), json=envelope(cid="abc\n"), timeout=T), 422),
    ("JSON nested past the parser", lambda rx: requests.post(url(rx), data=b"[" * 200_000, timeout=T), 400),
    ("properties nested 100 deep", lambda rx: requests.post(url(rx), json={**envelope(), "properties": deep(100)},
                                                            timeout=T), 422),
])
def test_bad_requests_are_refused_logged_and_never_stop_the_receiver(rx, project, seen, name, send, status):
    resp = send(rx)
    assert resp.status_code == status, resp.text
    assert resp.json()["status"] == status and resp.json()["error"]
    logged = rejected(project)
    assert [r["status"] for r in logged] == [status], name
    assert logged[0]["path"].startswith("/") and "?" not in logged[0]["path"], "no query string kept"
    assert rx.rejected == 1 and len(rx.problems) == 1 and f"rejected {status}" in rx.problems[0]
    # the receiver keeps working and nothing bad was stored
    assert requests.post(url(rx), json=envelope(), timeout=T).status_code == 200
    rx.wait_for(lambda evs: len(evs) == 1, T)
    assert len(stored(project)) == 1 and len(seen.events) == 1
    assert TOKEN not in (project / "logs" / "webhook.jsonl").read_text()


def test_a_1000_callback_burst_from_several_threads_is_stored_exactly_once(rx, seen, project):
    total, senders = 1000, 16
    statuses, lock = [], threading.Lock()

    def send(start):
        session = requests.Session()
        mine = [session.post(url(rx), json=envelope(cid=f"cburst{i % 7}", n=i), timeout=10).status_code
                for i in range(start, total, senders)]
        with lock:
            statuses.extend(mine)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(senders)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.perf_counter() - started
    assert statuses.count(200) == total, f"non-200 answers: {sorted(set(statuses))}"
    rx.wait_for(lambda evs: len(evs) == total, 20)
    numbers = [r["event"]["properties"]["n"] for r in stored(project)]
    assert sorted(numbers) == list(range(total)), "every callback stored, none twice"
    assert {r["event"]["conversation_id"] for r in stored(project)} == {f"cburst{k}" for k in range(7)}
    assert sorted(e["properties"]["n"] for e in seen.events) == list(range(total)), "the hook saw each once"
    print(f"\nburst: {total} callbacks from {senders} threads in {elapsed:.2f}s ({total / elapsed:.0f}/s)")


def test_a_failing_plugin_is_logged_and_the_others_still_run(ctx, seen, project):
    class Broken:
        @hookimpl(tryfirst=True)
        def harness_handle_callback(self, event):
            raise RuntimeError("plugin bug")

    ctx.pm.register(Broken(), name="broken")
    problems = []
    with Receiver(ctx, token=TOKEN, on_problem=problems.append) as rx:
        for i in range(3):
            assert requests.post(url(rx), json=envelope(n=i), timeout=T).status_code == 200
        rx.wait_for(lambda evs: len(evs) == 3, T)
    assert len(seen.events) == 3
    errors = [json.loads(line) for line in (project / "logs/webhook.jsonl").read_text().splitlines()]
    assert [e["plugin"] for e in errors if e["type"] == "plugin_error"] == ["broken"] * 3
    assert "RuntimeError: plugin bug" in errors[0]["error"] and "Traceback" in errors[0]["traceback"]
    assert len(problems) == 3 and "plugin broken failed on system.replica_joined" in problems[0]


def test_a_slow_plugin_does_not_delay_the_answer(ctx, seen):
    release = threading.Event()

    class Slow:
        @hookimpl
        def harness_handle_callback(self, event):
            release.wait(5)

    ctx.pm.register(Slow())
    with Receiver(ctx, token=TOKEN) as rx:
        started = time.perf_counter()
        for i in range(5):
            assert requests.post(url(rx), json=envelope(n=i), timeout=T).status_code == 200
        assert time.perf_counter() - started < 1.0
        assert rx.events == [], "events appear once the plugins have seen them"
        release.set()
        rx.wait_for(lambda evs: len(evs) == 5, T)
        assert [e["properties"]["n"] for e in rx.events] == list(range(5)), "arrival order"


def test_wait_for_has_a_deadline_and_stop_is_quick(ctx):
    rx = Receiver(ctx).start()
    started = time.perf_counter()
    with pytest.raises(TimeoutError, match="no matching callback within 0.2s"):
        rx.wait_for(lambda evs: False, 0.2)
    rx.stop()
    assert time.perf_counter() - started < 2.0
    with pytest.raises(requests.ConnectionError):
        requests.get(rx.base_url + "/healthz", timeout=1)


def test_a_busy_port_is_a_config_error(ctx):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        from harness_core import ConfigError
        with pytest.raises(ConfigError, match="cannot listen on 127.0.0.1"):
            Receiver(ctx, port=s.getsockname()[1]).start()


# -- the CLI: `tune webhook` as a real process --------------------------------------------------
TUNE = str(Path(sys.executable).parent / "tune")


def start_cli(project, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOK_", "NGROK_"))}
    proc = spawn([TUNE, "webhook", "--port", "0", *args], cwd=project, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc


def read_until(stream, needle, deadline=15.0):
    """Read lines from a pipe until one contains `needle` (bounded by a watchdog)."""
    got, found = [], threading.Event()

    def reader():
        for line in stream:
            got.append(line)
            if needle in line:
                found.set()
                return

    threading.Thread(target=reader, daemon=True).start()
    assert found.wait(deadline), f"never saw {needle!r}; got {got}"
    return got


def test_tune_webhook_generates_the_token_prints_ready_and_one_json_line_per_event(project):
    proc = start_cli(project, "--json")
    try:
        lines = read_until(proc.stderr, "Ready!")
        ready = lines[-1]
        assert "?token=[redacted]" in ready and "Ctrl-C" in ready
        assert any("generated WEBHOOK_TOKEN and saved it to .env" in line for line in lines)
        env_file = project / ".env"
        token = env_file.read_text().split("WEBHOOK_TOKEN=", 1)[1].split()[0]
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        port = ready.split("http://127.0.0.1:", 1)[1].split("/", 1)[0]
        base = f"http://127.0.0.1:{port}/tavus/callback"
        assert requests.post(f"{base}?token={token}", json=envelope(kind="system.shutdown",
                             shutdown_reason="participant_left_timeout reached"), timeout=T).status_code == 200
        assert requests.post(base, json=envelope(), timeout=T).status_code == 403
        read_until(proc.stderr, "rejected 403")
    finally:
        out, err = interrupt(proc)
    assert proc.returncode == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["event"]["event_type"] for r in records] == ["system.shutdown"], "stdout holds only the callbacks"
    assert records[0]["event"]["webhook_url"].endswith("token=[redacted]")
    listed = run_cli("events", "--json")  # the same shape as `events --json`, line for line
    assert [json.loads(line) for line in listed.out.splitlines()] == records
    assert "Stopped: 1 callbacks stored, 1 requests refused." in err
    assert token not in out + err and token.encode() not in logs_bytes(project)


def test_tune_webhook_readable_lines(project):
    (project / ".env").write_text(f"WEBHOOK_TOKEN={TOKEN}\n")
    proc = start_cli(project, "--path", "/hooks/tavus")
    try:
        ready = read_until(proc.stdout, "Ready!")[-1]
        port = ready.split("http://127.0.0.1:", 1)[1].split("/", 1)[0]
        event = envelope(cid="cread", kind="application.transcription_ready",
                         transcript=[{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."}])
        assert requests.post(f"http://127.0.0.1:{port}/hooks/tavus?token={TOKEN}", json=event, timeout=T).status_code == 200
        line = read_until(proc.stdout, "cread")[-1]
        assert "application.transcription_ready" in line and "transcript: 2 entries" in line
        read_until(proc.stderr, "assistant: Hello.")  # the built-in transcript plugin
    finally:
        interrupt(proc)


def test_print_url_prints_just_the_url_with_its_token(project):
    (project / ".env").write_text(f"WEBHOOK_TOKEN={TOKEN}\n")
    result = run_cli("webhook", "--print-url", "--port", "8123", "--path", "/cb")
    assert result.code == 0, result.err
    assert result.out == f"http://127.0.0.1:8123/cb?token={TOKEN}\n"


def test_print_url_names_the_port_of_the_receiver_that_runs(project):
    (project / ".env").write_text(f"WEBHOOK_TOKEN={TOKEN}\n")
    proc = start_cli(project, "--path", "/hooks/tavus")
    try:
        ready = read_until(proc.stdout, "Ready!")[-1]
        port = ready.split("http://127.0.0.1:", 1)[1].split("/", 1)[0]
        result = run_cli("webhook", "--print-url")
        assert result.code == 0, result.err
        assert result.out == f"http://127.0.0.1:{port}/hooks/tavus?token={TOKEN}\n", "not the default 8000"
    finally:
        interrupt(proc)
    assert run_cli("webhook", "--print-url").out == f"http://127.0.0.1:8000/tavus/callback?token={TOKEN}\n", \
        "once it stopped, the default again"


def test_print_url_without_a_receiver_uses_the_configured_port(project):
    (project / ".env").write_text(f"WEBHOOK_TOKEN={TOKEN}\nWEBHOOK_URL=http://127.0.0.1:8555/cb?token={TOKEN}\n")
    result = run_cli("webhook", "--print-url")
    assert result.code == 0 and result.out == f"http://127.0.0.1:8555/cb?token={TOKEN}\n", result.out + result.err


def test_a_bad_path_flag_is_one_error_line(project):
    result = run_cli("webhook", "--port", "0", "--path", "/healthz")
    assert result.code == 2 and result.err.startswith("error: --path: '/healthz' cannot be the callback path")


def test_a_failed_write_is_a_500_that_is_logged_and_the_receiver_keeps_running(ctx, project):
    (project / "logs" / DB_NAME).mkdir(parents=True)  # a folder where the database should be
    with Receiver(ctx, token=TOKEN) as rx:
        assert rx.log.problem and DB_NAME in rx.log.problem, "the CLI can say so at start"
        resp = requests.post(url(rx), json=envelope(), timeout=T)
        assert resp.status_code == 500 and "logs/webhook.jsonl" in resp.json()["error"]
        [record] = rejected(project)
        assert record["status"] == 500 and "internal error" in record["reason"] and "Traceback" in record["detail"]
        assert rx.events == [] and requests.get(rx.base_url + "/healthz", timeout=T).status_code == 200
        (project / "logs" / DB_NAME).rmdir()
        assert requests.post(url(rx), json=envelope(), timeout=T).json() == {"ok": True}, "stored, not a duplicate"
        rx.wait_for(lambda evs: len(evs) == 1, T)
    assert len(stored(project)) == 1


def test_a_run_on_the_real_api_can_tell_whether_a_receiver_answers_at_webhook_url(project, collector):
    from harness_core.context import make_context
    from harness_core.callbacks.publicurl import receiver_answers
    from harness_core.callbacks.receiver import Receiver
    from tests.conftest import closed_port_url

    with Receiver(make_context(quiet=True), token="t0ken-123") as rx:
        up, detail = receiver_answers(rx.callback_url)
    assert up, detail
    down, detail = receiver_answers(closed_port_url() + "/tavus/callback?token=x")
    assert not down and "nothing that looks like a receiver answered" in detail
    other, detail = receiver_answers(collector.url)  # something answers, but it is not our receiver
    assert not other, detail


def test_a_wait_for_one_conversation_wakes_on_its_callbacks_only(ctx):
    with Receiver(ctx, token=TOKEN) as rx:
        url = rx.callback_url
        assert requests.post(url, json=envelope(cid="cOther"), timeout=T).json() == {"ok": True}
        rx.wait_for(lambda evs: len(evs) == 1, T)
        assert rx.wait_for_more("cMine", 0, 0.2) is False, "another conversation's callback does not count"
        woke = []
        waiter = threading.Thread(target=lambda: woke.append(rx.wait_for_more("cMine", 0, T)))
        waiter.start()
        assert requests.post(url, json=envelope(cid="cMine"), timeout=T).json() == {"ok": True}
        waiter.join(T)
        assert woke == [True] and [e["conversation_id"] for e in rx.events_of("cMine")] == ["cMine"]
        assert rx.wait_for_more("cMine", 1, 0.05) is False and rx.wait_for_more("cMine", 0, 0) is True
