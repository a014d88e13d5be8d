"""The receiver as a hostile sender and a hurried operator see it: once-only storage that never calls an
unstored callback "duplicate", a SIGTERM under load that loses nothing acknowledged, and limits that keep
callbacks flowing while hundreds of sockets sit idle or trickle."""
from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from harness_core.callbacks.eventstore import DB_NAME
from harness_core.callbacks.receiver import Receiver
from harness_core.context import make_context
from tests.helpers import run_cli, stored_callbacks

TOKEN = "tok-durable-0123456789abcdef"
T = 5
TUNE = str(Path(sys.executable).parent / "tune")


def envelope(cid="c0eaa60a267274af", kind="application.transcription_ready", stamp="2026-01-01T00:00:00.000001Z",
             **props):
    return {"properties": props, "conversation_id": cid, "event_type": kind, "message_type": kind.split(".")[0],
            "webhook_url": "http://127.0.0.1/tavus/callback", "timestamp": stamp}


@pytest.fixture
def rx(project):
    ctx = make_context(project, quiet=True)
    with Receiver(ctx, token=TOKEN) as receiver:
        yield receiver


def test_two_callbacks_that_differ_only_in_body_are_both_kept(rx, project):
    first = envelope(transcript=[{"role": "user", "content": "Hi."}])
    second = envelope(transcript=[{"role": "user", "content": "Something else entirely."}])
    answers = [requests.post(rx.callback_url, json=e, timeout=T).json() for e in (first, second, second)]
    assert answers == [{"ok": True}, {"ok": True}, {"ok": True, "duplicate": True}]
    rx.wait_for(lambda evs: len(evs) == 2, T)
    listed = run_cli("events", "--conversation-id", first["conversation_id"], "--jsonl")
    assert listed.code == 0, listed.err
    assert [json.loads(line)["event"] for line in listed.out.splitlines()] == [first, second]


def start_receiver(project: Path, *, file_limit: int | None = None) -> tuple[subprocess.Popen, str]:
    """`tune webhook` in its own process (optionally with a file-size limit: a disk that is full)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBHOOK_", "NGROK_"))}
    env["WEBHOOK_TOKEN"] = TOKEN

    def prepare():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if file_limit:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, resource.RLIM_INFINITY))

    proc = subprocess.Popen([TUNE, "webhook", "--port", "0", "--json"], cwd=project, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=prepare)
    deadline = time.monotonic() + 15
    for line in proc.stderr:
        if "Ready!" in line:
            port = line.split("http://127.0.0.1:", 1)[1].split("/", 1)[0]
            return proc, f"http://127.0.0.1:{port}/tavus/callback?token={TOKEN}"
        assert time.monotonic() < deadline, "the receiver never said Ready"
    proc.kill()
    raise AssertionError(f"the receiver exited: {proc.wait()}")


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> str:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=5)
        raise
    return err


def test_a_failed_first_write_is_never_answered_duplicate_and_the_resend_is_stored(project):
    proc, url = start_receiver(project, file_limit=256 * 1024)
    try:
        big = envelope(transcript=[{"role": "user", "content": "x" * 400_000}])  # more than the disk can take
        answers, lock = [], threading.Lock()

        def send():
            resp = requests.post(url, json=big, timeout=T)
            with lock:
                answers.append((resp.status_code, resp.text))

        senders = [threading.Thread(target=send) for _ in range(8)]  # the first copy and its re-sends, at once
        for t in senders:
            t.start()
        for t in senders:
            t.join(2 * T)
        assert len(answers) == 8 and {status for status, _ in answers} == {500}, answers
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert requests.post(url, json=big, timeout=T).json() == {"ok": True}, "stored now, not a duplicate"
        assert requests.post(url, json=big, timeout=T).json() == {"ok": True, "duplicate": True}
    finally:
        err = stop(proc)
    assert proc.returncode == 0 and "Traceback" not in err, err
    [record] = stored_callbacks(project, big["conversation_id"])
    assert record["event"] == big


@pytest.mark.load
def test_sigterm_under_load_answers_or_refuses_cleanly_and_loses_nothing_acknowledged(project):
    proc, url = start_receiver(project)
    acked, lock, counter = [], threading.Lock(), iter(range(100_000))
    stop_sending = threading.Event()

    def sender():
        session = requests.Session()
        while not stop_sending.is_set():
            with lock:
                n = next(counter)
            event = envelope(cid=f"cterm{n:06d}", kind="system.replica_joined", n=n)  # a new conversation each
            try:
                resp = session.post(url, json=event, timeout=T)
            except requests.RequestException:
                session = requests.Session()
                time.sleep(0.01)
                continue
            if resp.status_code == 200 and resp.json() == {"ok": True}:
                with lock:
                    acked.append(n)

    senders = [threading.Thread(target=sender) for _ in range(16)]
    for t in senders:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 400 and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        err = stop(proc)  # mid-burst
    finally:
        stop_sending.set()
        for t in senders:
            t.join(2 * T)
    assert len(acked) >= 400
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Bad file descriptor" not in err, err
    with sqlite3.connect(project / "logs" / DB_NAME) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = [json.loads(text) for (text,) in db.execute("SELECT record FROM events")]  # every row parses
    stored = {r["event"]["properties"]["n"] for r in rows}
    assert len(stored) == len(rows), "none stored twice"
    assert set(acked) <= stored, f"acknowledged but not stored: {sorted(set(acked) - stored)[:10]}"


def open_idle_and_trickling(port: int, count: int) -> list[socket.socket]:
    """`count` connections: half say nothing, half send an unfinished request and stay open."""
    socks = []
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=T)
        if i % 2:
            s.sendall(b"POST /tavus/callback HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        socks.append(s)
    return socks


def test_a_callback_gets_through_while_200_sockets_sit_idle_or_trickle(rx, project):
    socks = open_idle_and_trickling(rx.port, 200)
    try:
        for i in range(3):
            resp = requests.post(rx.callback_url, json=envelope(kind="system.replica_joined", n=i, stamp=f"t{i}"),
                                 timeout=T)
            assert resp.json() == {"ok": True}
    finally:
        for s in socks:
            s.close()
    assert len(stored_callbacks(project)) == 3


def test_a_request_that_trickles_past_the_deadline_is_dropped(project, monkeypatch):
    from harness_core.callbacks import receiver as receiver_module
    monkeypatch.setattr(receiver_module, "CLEANUP_INTERVAL", 1)
    with Receiver(make_context(project, quiet=True), token=TOKEN, request_timeout=0.5) as rx:
        with socket.create_connection(("127.0.0.1", rx.port), timeout=T) as s:
            s.sendall(b"POST /tavus/callback HTTP/1.1\r\nHost: x\r\n")
            deadline = time.monotonic() + 4
            closed = False
            while not closed and time.monotonic() < deadline:
                s.sendall(b"X")  # one byte at a time: never idle, never finished
                s.settimeout(0.2)
                try:
                    closed = s.recv(1) == b""
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
            assert closed, "the server closed the connection of a request that never finished arriving"
        assert requests.post(rx.callback_url, json=envelope(), timeout=T).json() == {"ok": True}
