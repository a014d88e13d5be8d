"""The receiver's HTTP/1.1 server (callbacks/server.py) over real sockets on 127.0.0.1: keep-alive and
pipelining, chunked and `Expect: 100-continue` bodies, the body, header and connection limits, the idle
timeout, a failing handler, the loop thread, and a stop that drains."""
from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time
from typing import NamedTuple

import pytest

from harness_core.callbacks import server as server_module
from harness_core.callbacks.receiver import MAX_BODY, Receiver
from harness_core.callbacks.server import MAX_HEADER_BYTES, LoopServer
from harness_core.context import make_context
from tests.helpers import stored_callbacks

TOKEN = "tok-server-0123456789abcdef"
T = 5  # seconds: the bound on every wait for the server


class Answer(NamedTuple):
    status: int
    headers: dict
    body: bytes


class Echo:
    """A handler that answers each request at once with what it saw, and records the request and its thread."""

    def __init__(self):
        self.requests = []
        self.threads = []

    def __call__(self, request, respond):
        self.requests.append(request)
        self.threads.append(threading.current_thread().name)
        body = None if request.body is None else request.body.decode("latin-1")
        respond(200, [("Content-Type", "application/json")], json.dumps(
            {"method": request.method, "path": request.path, "query": request.query, "body": body}).encode())


@contextlib.contextmanager
def serving(handler, **options):
    """A started LoopServer for `handler` on 127.0.0.1 (a free port), stopped on exit."""
    server = LoopServer(handler, "127.0.0.1", 0, **options).start()
    try:
        yield server
    finally:
        server.stop(T)


@contextlib.contextmanager
def connect(port: int):
    """A client socket to 127.0.0.1:port and a buffered reader on it, both closed on exit."""
    with socket.create_connection(("127.0.0.1", port), timeout=T) as sock, sock.makefile("rb") as stream:
        yield sock, stream


def get(path: str) -> bytes:
    """A bodiless GET request, as bytes."""
    return b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode()


def post(path: str, body: bytes) -> bytes:
    """A POST request with a Content-Length body, as bytes."""
    return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (path.encode(), len(body))) + body


def read_answer(stream, *, head: bool = False) -> Answer:
    """One response from `stream`: status, lower-case headers, and the body by its Content-Length (none for HEAD or 1xx)."""
    line = stream.readline()
    if not line:
        raise EOFError("the server closed the connection instead of answering")
    assert line.startswith(b"HTTP/1.1 "), f"not a status line: {line[:200]!r}"
    status = int(line.split()[1])
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head or status < 200 else int(headers.get("content-length", "0"))
    return Answer(status, headers, stream.read(length) if length else b"")


def rest_until_closed(stream) -> bytes:
    """Whatever the server still sends until it closes the connection (socket.timeout if it never does)."""
    try:
        return stream.read()
    except ConnectionResetError:
        return b""


def seen(answer: Answer) -> dict:
    """The request an Echo handler saw, from its answer."""
    assert answer.status == 200, answer
    return json.loads(answer.body)


def stop_in_background(server: LoopServer) -> threading.Thread:
    """server.stop() running in a thread of its own (it blocks while it drains)."""
    stopper = threading.Thread(target=server.stop, args=(T,), name="test-stopper", daemon=True)
    stopper.start()
    return stopper


def envelope(n: int = 0) -> dict:
    """A valid callback envelope."""
    return {"properties": {"n": n}, "conversation_id": "c0server0000001", "event_type": "system.replica_joined",
            "message_type": "system", "timestamp": f"2026-01-01T00:00:00.{n:06d}Z"}


def rejected(project) -> list[dict]:
    """The `rejected` records in the project's logs/webhook.jsonl."""
    path = project / "logs" / "webhook.jsonl"
    records = map(json.loads, path.read_text().splitlines()) if path.exists() else []
    return [r for r in records if r["type"] == "rejected"]


@pytest.fixture
def rx(project):
    with Receiver(make_context(project, quiet=True), token=TOKEN) as receiver:
        yield receiver


# -- framing ------------------------------------------------------------------------------------------
def test_keep_alive_answers_several_requests_in_order_on_one_connection():
    echo = Echo()
    with serving(echo) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=T)
        try:
            ends, answers = [], []
            for method, path, body in [("GET", "/one?x=1", None), ("POST", "/two", b"payload"), ("DELETE", "/three", None)]:
                conn.request(method, path, body=body)
                resp = conn.getresponse()
                answers.append((resp.status, resp.getheader("Connection"), json.loads(resp.read())))
                ends.append(conn.sock.getsockname())
        finally:
            conn.close()
    assert answers == [(200, None, {"method": "GET", "path": "/one", "query": "x=1", "body": ""}),
                       (200, None, {"method": "POST", "path": "/two", "query": "", "body": "payload"}),
                       (200, None, {"method": "DELETE", "path": "/three", "query": "", "body": ""})]
    assert len(set(ends)) == 1, f"one socket for all three, not {ends}"
    assert [r.remote for r in echo.requests] == ["127.0.0.1"] * 3


def test_two_pipelined_requests_in_one_write_get_two_answers_in_order():
    order = []

    def handler(request, respond):
        order.append(request.path)
        answer = (200, [("Content-Type", "text/plain")], request.path.encode() + b":" + request.body)
        if request.path == "/slow":  # answered later: the second request must still wait its turn
            asyncio.get_running_loop().call_later(0.05, respond, *answer)
        else:
            respond(*answer)

    with serving(handler) as server, connect(server.port) as (sock, stream):
        sock.sendall(get("/slow") + post("/fast", b"second"))
        first, second = read_answer(stream), read_answer(stream)
        sock.sendall(get("/after"))
        third = read_answer(stream)
    assert (first.status, first.body) == (200, b"/slow:")
    assert (second.status, second.body) == (200, b"/fast:second")
    assert (third.status, third.body) == (200, b"/after:"), "the connection stays open after the pipeline"
    assert order == ["/slow", "/fast", "/after"]


def test_a_long_pipeline_is_answered_in_full_and_in_order():
    count = 300

    def handler(request, respond):
        respond(200, [("Content-Type", "text/plain")], request.path.encode())

    with serving(handler) as server, connect(server.port) as (sock, stream):
        sock.sendall(b"".join(get(f"/n{i}") for i in range(count)))
        answers = []
        for _ in range(count):
            try:
                answers.append(read_answer(stream))
            except EOFError:
                break
    got = [(a.status, a.body) for a in answers]
    expected = [(200, b"/n%d" % i) for i in range(count)]
    wrong = next((i for i, (g, e) in enumerate(zip(got, expected)) if g != e), len(got))
    assert got == expected, f"{len(got)} answers of {count}; answer {wrong} is {got[wrong:wrong + 1]}"


def test_a_chunked_body_reaches_the_handler_whole():
    echo = Echo()
    with serving(echo) as server, connect(server.port) as (sock, stream):
        sock.sendall(b"POST /chunked HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"5\r\nhello\r\n", b"6;note=x\r\n world\r\n", b"a\r\n01234", b"56789\r\n", b"0\r\n\r\n"):
            sock.sendall(piece)  # one chunk split over two writes, and a chunk extension
        answer = read_answer(stream)
        sock.sendall(get("/next"))
        following = read_answer(stream)
    assert seen(answer)["body"] == "hello world0123456789"
    assert echo.requests[0].headers["transfer-encoding"] == "chunked"
    assert seen(following)["path"] == "/next", "the connection is kept after a chunked request"


def test_expect_100_continue_gets_the_interim_answer_before_the_body_is_sent():
    echo = Echo()
    with serving(echo) as server, connect(server.port) as (sock, stream):
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")
        interim = read_answer(stream)  # times out if the server waits for the body first
        assert interim.status == 100 and echo.requests == [], "100 first; the handler waits for the body"
        sock.sendall(b"hello world")
        final = read_answer(stream)
    assert seen(final)["body"] == "hello world"


# -- limits -------------------------------------------------------------------------------------------
def test_a_body_declared_over_the_limit_is_refused_unread_without_a_100_continue():
    echo = Echo()
    with serving(echo, max_body=1000) as server, connect(server.port) as (sock, stream):
        sock.sendall(b"POST /big HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 1001\r\n\r\n")
        answer = read_answer(stream)
        rest = rest_until_closed(stream)
    assert answer.status == 200 and answer.headers["connection"] == "close", "the final answer, not a 100"
    assert echo.requests[0].body is None and echo.requests[0].headers["content-length"] == "1001"
    assert rest == b"", "then the connection is closed"


def test_the_receiver_answers_413_to_a_declared_length_over_the_limit_without_the_body_and_logs_it(rx, project):
    with connect(rx.port) as (sock, stream):
        sock.sendall(b"POST /tavus/callback?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (TOKEN.encode(), MAX_BODY + 1))  # the headers only
        answer = read_answer(stream)
        rest = rest_until_closed(stream)
    assert answer.status == 413 and answer.headers["connection"] == "close"
    assert json.loads(answer.body)["status"] == 413 and rest == b""
    [record] = rejected(project)
    assert (record["status"], record["method"], record["path"]) == (413, "POST", "/tavus/callback")
    assert str(MAX_BODY + 1) in record["reason"] and record["remote"] == "127.0.0.1"
    assert stored_callbacks(project) == []
    with connect(rx.port) as (sock, stream):
        sock.sendall(get("/healthz"))
        assert read_answer(stream).status == 200, "the receiver keeps serving"


def test_a_malformed_request_line_gets_400_and_the_connection_closes():
    echo = Echo()
    with serving(echo) as server:
        with connect(server.port) as (sock, stream):
            sock.sendall(b"HELLO THERE\r\n\r\n")
            answer = read_answer(stream)
            rest = rest_until_closed(stream)
        with connect(server.port) as (sock, stream):
            sock.sendall(get("/ok"))
            after = read_answer(stream)
    assert answer.status == 400 and answer.headers["connection"] == "close" and json.loads(answer.body)["error"]
    assert rest == b"" and [r.path for r in echo.requests] == ["/ok"], "the handler never saw it"
    assert seen(after)["path"] == "/ok"


def test_headers_over_the_limit_get_431_and_the_connection_closes():
    echo = Echo()
    with serving(echo) as server, connect(server.port) as (sock, stream):
        start = b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "
        sock.sendall(start + b"a" * (MAX_HEADER_BYTES + 1 - len(start)))  # unfinished, one byte over
        answer = read_answer(stream)
        rest = rest_until_closed(stream)
    assert answer.status == 431 and answer.headers["connection"] == "close"
    assert rest == b"" and echo.requests == []


def test_a_complete_header_block_over_the_limit_gets_431_too():
    echo = Echo()
    with serving(echo) as server, connect(server.port) as (sock, stream):
        start, end = b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ", b"\r\n\r\n"
        sock.sendall(start + b"a" * (MAX_HEADER_BYTES + 1024 - len(start) - len(end)) + end)  # all in one write
        answer = read_answer(stream)
    assert answer.status == 431, f"a {MAX_HEADER_BYTES + 1024}-byte header block got {answer.status}"
    assert echo.requests == []


def held_open(port: int, count: int) -> list[http.client.HTTPConnection]:
    """`count` kept-alive connections, each served once (so the server has taken them all)."""
    clients = []
    try:
        for i in range(count):
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=T)
            clients.append(client)
            client.request("GET", f"/held{i}")
            resp = client.getresponse()
            assert resp.status == 200 and resp.getheader("Connection") is None
            resp.read()
    except BaseException:
        for client in clients:
            client.close()
        raise
    return clients


def served_when_there_is_room(port: int) -> Answer:
    """Connect until a connection is served rather than turned away with 503 (bounded by T)."""
    deadline = time.monotonic() + T
    while True:
        answer = None
        with connect(port) as (sock, stream):
            try:
                sock.sendall(get("/newcomer"))
                answer = read_answer(stream)
            except (ConnectionError, EOFError):  # turned away before the request was read
                pass
        if answer is not None and answer.status != 503:
            return answer
        assert time.monotonic() < deadline, f"still turned away after {T}s: {answer}"
        time.sleep(0.01)


def test_beyond_the_connection_limit_a_connection_gets_503_until_one_closes():
    echo = Echo()
    with serving(echo, connection_limit=3) as server:
        clients = held_open(server.port, 3)
        try:
            with connect(server.port) as (_unused, stream):  # the 4th: sends nothing, is answered at once
                refused = read_answer(stream)
                rest = rest_until_closed(stream)
            assert refused.status == 503 and refused.headers["connection"] == "close"
            assert "too many connections" in json.loads(refused.body)["error"] and rest == b""
            clients[0].close()
            assert seen(served_when_there_is_room(server.port))["path"] == "/newcomer"
            for client in clients[1:]:  # the two still open were not disturbed
                client.request("GET", "/again")
                resp = client.getresponse()
                assert resp.status == 200 and json.loads(resp.read())["path"] == "/again"
        finally:
            for client in clients:
                client.close()
    assert [r.path for r in echo.requests].count("/newcomer") == 1


def test_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout():
    echo = Echo()
    with serving(echo, idle_timeout=0.3, cleanup_interval=0.1) as server:
        with connect(server.port) as (used, used_stream), connect(server.port) as (_silent, silent_stream):
            before = time.monotonic()
            used.sendall(get("/once"))
            answer = read_answer(used_stream)
            assert seen(answer)["path"] == "/once" and "connection" not in answer.headers, "kept alive"
            assert rest_until_closed(used_stream) == b"", "closed by the server, nothing more sent"
            idle_for = time.monotonic() - before
            assert rest_until_closed(silent_stream) == b"", "a connection that never spoke is closed too"
        assert idle_for >= 0.3, f"closed after {idle_for:.3f}s, before the idle timeout"
        with connect(server.port) as (sock, stream):
            sock.sendall(get("/later"))
            assert seen(read_answer(stream))["path"] == "/later", "new connections are still served"


# -- stopping -----------------------------------------------------------------------------------------
def test_stop_answers_the_request_in_flight_closes_idle_connections_and_refuses_new_ones():
    held, arrived = [], threading.Event()

    def handler(request, respond):
        if request.path == "/slow":
            held.append(respond)
            arrived.set()
        else:
            respond(200, [("Content-Type", "text/plain")], b"quick")

    with serving(handler) as server, \
            connect(server.port) as (idle, idle_stream), connect(server.port) as (busy, busy_stream):
        idle.sendall(get("/quick"))
        assert read_answer(idle_stream).status == 200
        busy.sendall(get("/slow"))
        assert arrived.wait(T), "the slow request reached the handler"
        stopper = stop_in_background(server)
        try:
            assert rest_until_closed(idle_stream) == b"", "the idle connection is closed"
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", server.port), timeout=T).close()
            assert stopper.is_alive(), "stop waits for the request in flight"
            server.call_soon(held[0], 200, [("Content-Type", "text/plain")], b"late but answered")
            answer = read_answer(busy_stream)
            assert (answer.status, answer.body) == (200, b"late but answered")
            assert answer.headers["connection"] == "close" and rest_until_closed(busy_stream) == b""
        finally:
            if stopper.is_alive() and held:
                with contextlib.suppress(RuntimeError):  # the loop already closed
                    server.call_soon(held[0], 500, [], b"")
            stopper.join(T + 2)
        assert not stopper.is_alive(), "stop returned once the drain was done"


def test_a_request_completed_within_the_grace_of_a_stop_is_answered():
    echo = Echo()
    with serving(echo) as server, \
            connect(server.port) as (late, late_stream), connect(server.port) as (probe, probe_stream):
        late.sendall(post("/late", b"hello world")[:-6])  # the body still arriving when the stop begins
        probe.sendall(get("/probe"))
        assert read_answer(probe_stream).status == 200
        stopper = stop_in_background(server)
        try:
            assert rest_until_closed(probe_stream) == b"", "the stop has begun"
            late.sendall(b" world")
            answer = read_answer(late_stream)
            assert seen(answer) == {"method": "POST", "path": "/late", "query": "", "body": "hello world"}
            assert answer.headers["connection"] == "close" and rest_until_closed(late_stream) == b""
        finally:
            stopper.join(T + 2)
        assert not stopper.is_alive()


def test_a_request_still_arriving_after_the_grace_of_a_stop_is_dropped_unanswered(monkeypatch):
    monkeypatch.setattr(server_module, "PARTIAL_GRACE", 0.2)
    echo = Echo()
    with serving(echo) as server, \
            connect(server.port) as (late, late_stream), connect(server.port) as (probe, probe_stream):
        late.sendall(post("/late", b"never finished")[:-3])
        probe.sendall(get("/probe"))
        assert read_answer(probe_stream).status == 200
        before = time.monotonic()
        stopper = stop_in_background(server)
        try:
            assert rest_until_closed(late_stream) == b"", "dropped, nothing of it answered"
            waited = time.monotonic() - before
        finally:
            stopper.join(T + 2)
        assert not stopper.is_alive()
    assert waited >= 0.2, f"dropped after {waited:.3f}s, before the grace"
    assert [r.path for r in echo.requests] == ["/probe"]


# -- the receiver's routes ----------------------------------------------------------------------------
def test_head_on_healthz_is_answered_200_without_a_body(rx):
    with connect(rx.port) as (sock, stream):
        sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = read_answer(stream, head=True)
        sock.sendall(get("/healthz"))
        full = read_answer(stream)  # a body after the HEAD answer would show up here instead of a status line
    assert head.status == 200 and head.headers["content-type"] == "application/json"
    assert full.status == 200 and json.loads(full.body) == {"ok": True, "receiver": rx.instance}
    assert int(head.headers["content-length"]) == len(full.body), "HEAD says what GET would send"


def test_a_percent_encoded_path_reaches_the_callback_route_decoded(rx, project):
    event = envelope()
    body = json.dumps(event).encode()
    with connect(rx.port) as (sock, stream):
        sock.sendall(post("/tavus/%63allback", body))  # no token: refused by the callback route, not a 404
        refused = read_answer(stream)
        sock.sendall(post(f"/tavus/%63allback?token={TOKEN}", body))
        stored = read_answer(stream)
    assert refused.status == 403
    assert (stored.status, json.loads(stored.body)) == (200, {"ok": True})
    [record] = rejected(project)
    assert (record["status"], record["path"]) == (403, "/tavus/callback")
    assert [r["event"] for r in stored_callbacks(project)] == [event]


# -- the handler ----------------------------------------------------------------------------------------
def test_a_handler_that_raises_gets_a_500_and_the_server_keeps_serving():
    def handler(request, respond):
        if request.path == "/boom":
            raise RuntimeError("handler bug")
        if request.path == "/answered-then-boom":
            respond(201, [("Content-Type", "text/plain")], b"created")
            raise RuntimeError("bug after the answer")
        respond(200, [("Content-Type", "text/plain")], b"fine")

    with serving(handler) as server:
        with connect(server.port) as (sock, stream):
            sock.sendall(get("/boom"))
            failed = read_answer(stream)
            sock.sendall(get("/answered-then-boom"))
            created = read_answer(stream)
            sock.sendall(get("/ok"))
            fine = read_answer(stream)  # a stray second answer to the request before would be read here
        with connect(server.port) as (sock, stream):
            sock.sendall(get("/ok"))
            fresh = read_answer(stream)
    assert failed.status == 500 and json.loads(failed.body) == {"error": "internal error"}
    assert "connection" not in failed.headers, "the connection is kept"
    assert (created.status, created.body) == (201, b"created")
    assert (fine.status, fine.body) == (200, b"fine") and (fresh.status, fresh.body) == (200, b"fine")


def test_the_handler_is_always_called_on_the_loop_thread():
    echo = Echo()
    with serving(echo) as server:
        with connect(server.port) as (sock, stream):
            sock.sendall(get("/a") + get("/b"))
            assert [read_answer(stream).status for _ in range(2)] == [200, 200]
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=T)
        try:
            conn.request("POST", "/c", body=b"x")
            assert conn.getresponse().read()
        finally:
            conn.close()
        port = server.port
    assert [r.path for r in echo.requests] == ["/a", "/b", "/c"]
    assert echo.threads == [f"receiver-loop:{port}"] * 3
