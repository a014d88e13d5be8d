"""The sandbox's callback sender (sandbox/lifecycle.py CallbackPoster) against a real server on 127.0.0.1:
one kept-alive connection per host, a connection the server closed while idle replaced before use, and
failures that are errors, never a retry."""
from __future__ import annotations

import time

import pytest

from harness_core.callbacks.server import LoopServer
from harness_core.sandbox.lifecycle import CallbackPoster

T = 5


class Recorder:
    """A handler that answers 200 and notes each request's body and client port (one port: one connection)."""

    def __init__(self):
        self.seen = []

    def __call__(self, request, respond):
        self.seen.append((request.body, request.remote, request.headers.get("content-type")))
        respond(200, [("Content-Type", "application/json")], b"{}")


def wait_until(condition, timeout=T):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_callbacks_share_one_connection_and_a_closed_one_is_replaced_before_use():
    recorder = Recorder()
    server = LoopServer(recorder, "127.0.0.1", 0, idle_timeout=0.2, cleanup_interval=0.05).start()
    poster = CallbackPoster(timeout=T)
    try:
        url = f"http://127.0.0.1:{server.port}/tavus/callback?token=t"
        assert [poster.post(url, b'{"n": %d}' % i) for i in range(3)] == [200, 200, 200]
        assert len(server.connections) == 1, "three callbacks, one kept-alive connection"
        wait_until(lambda: not server.connections)  # the server closed it while it sat idle
        assert poster.post(url, b'{"n": 3}') == 200, "a fresh connection, not an error"
        assert [body for body, _, _ in recorder.seen] == [b'{"n": %d}' % i for i in range(4)]
        assert {ctype for _, _, ctype in recorder.seen} == {"application/json"}
    finally:
        poster.close()
        server.stop(T)


def test_a_refused_connection_is_an_error_and_nothing_is_retried():
    recorder = Recorder()
    server = LoopServer(recorder, "127.0.0.1", 0).start()
    port = server.port
    server.stop(T)
    poster = CallbackPoster(timeout=T)
    with pytest.raises(ConnectionRefusedError):
        poster.post(f"http://127.0.0.1:{port}/cb", b"{}")
    with pytest.raises(ValueError, match="not an http"):
        poster.post("ftp://127.0.0.1/cb", b"{}")
    poster.close()
