"""The receiver's HTTP/1.1 server: one asyncio event loop in a background thread, h11 for the protocol.

Why not waitress, as for the sandbox and the inspector: a callback is answered only after its batch
is on disk, and with a thread per request every answer cost two thread hand-offs and a wait for the
GIL, which on a small machine cost more than the fsync (issue 13). Here one loop thread reads,
parses and answers every connection; the handler hands each callback to the store's committer
and answers when its batch is committed, so nothing but the commit leaves the loop.

h11 does the HTTP/1.1 framing (keep-alive, chunked bodies, `Expect: 100-continue`, malformed
requests). This module adds what the receiver needs around it: a connection limit (beyond it a
connection gets `503` and is closed), an idle timeout, a whole-request deadline (a socket that
trickles one byte a second never finishes a request and is dropped), a body limit checked against
`Content-Length` before anything is read, and a graceful stop that drains: stop accepting, close
idle connections, answer every request already received (with `Connection: close`), and drop a
request still arriving after PARTIAL_GRACE seconds (nothing of it was acknowledged).

The handler runs on the loop thread and is called as `handler(request, respond)`; it must call
`respond(status, headers, body)` exactly once, on the loop thread, now or later (blocking work
goes to an executor). `request.body` is None when the body was over `max_body` and was not read.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import unquote

import h11

from ..errors import ConfigError
from ..serving import PARTIAL_GRACE, room_for_descriptors, status_line

log = logging.getLogger(__name__)
MAX_HEADER_BYTES = 64 * 1024  # a request line and headers larger than this get 431
PAUSE_AT = 256 * 1024  # bytes buffered behind a request being answered before reading pauses
BACKLOG = 1024
_OVERLOADED_BODY = json.dumps({"error": "too many connections; retry shortly"}).encode()
_OVERLOADED = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(_OVERLOADED_BODY)) + _OVERLOADED_BODY


@dataclass(slots=True)
class Request:
    """One request as the handler sees it (header names lower-case; `body` None when over the limit)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes | None
    remote: str = ""
    environ: dict = field(default_factory=dict, repr=False)

    def wsgi_environ(self) -> dict:
        """The request as the few WSGI environ keys callers that speak WSGI read (method, query, headers)."""
        if not self.environ:
            env = {"REQUEST_METHOD": self.method, "PATH_INFO": self.path, "QUERY_STRING": self.query,
                   "REMOTE_ADDR": self.remote, "CONTENT_TYPE": self.headers.get("content-type", ""),
                   "CONTENT_LENGTH": self.headers.get("content-length", "")}
            for name, value in self.headers.items():
                env["HTTP_" + name.upper().replace("-", "_")] = value
            self.environ.update(env)
        return self.environ


class _Connection(asyncio.Protocol):
    """One client connection: feeds h11, hands each complete request to the handler, writes its answer."""

    def __init__(self, server: "LoopServer"):
        self.server = server
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.transport: asyncio.Transport | None = None
        self.remote = ""
        self.head: h11.Request | None = None  # the request whose body is arriving
        self.body: list[bytes] = []
        self.size = 0
        self.busy = False  # a request was handed to the handler and is not answered yet
        self.paused = False
        self.started = 0.0  # loop time the request now arriving began (0: none arriving)
        self.last = 0.0  # loop time of the last activity

    # -- asyncio callbacks ------------------------------------------------------------------------
    def connection_made(self, transport):
        self.transport = transport
        server = self.server
        server.connections.add(self)
        self.last = server.loop.time()
        if len(server.connections) > server.connection_limit or server.draining:
            transport.write(_OVERLOADED)
            transport.close()
            return
        peer = transport.get_extra_info("peername")
        self.remote = peer[0] if isinstance(peer, tuple) else ""

    def connection_lost(self, exc):
        self.server.connections.discard(self)
        self.server.changed.set()

    def data_received(self, data):
        self.last = self.server.loop.time()
        if not self.busy and not self.started:
            self.started = self.last
        try:
            self.conn.receive_data(data)
        except RuntimeError:  # data after the connection was shut down: nothing to do with it
            return
        if self.busy:
            if len(self.conn.trailing_data[0]) > PAUSE_AT and not self.paused:
                self.paused = True
                self.transport.pause_reading()
            return
        self._next()

    def eof_received(self):
        try:
            self.conn.receive_data(b"")
        except RuntimeError:
            pass
        if not self.busy:
            self._next()
        return True  # keep the write side open for an answer in progress; closed after it

    # -- requests -------------------------------------------------------------------------------------
    def _next(self) -> None:
        """Turn buffered bytes into h11 events until a request is complete, more bytes are needed, or it ends."""
        conn = self.conn
        while not self.busy and not self.transport.is_closing():
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(exc.error_status_hint, str(exc) or "malformed request")
                return
            kind = type(event)
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if kind is h11.Request:
                self._begin(event)
            elif kind is h11.Data:
                self.size += len(event.data)
                if self.size > self.server.max_body:
                    self._dispatch(None)
                    return
                self.body.append(event.data)
            elif kind is h11.EndOfMessage:
                self._dispatch(b"".join(self.body))
            elif kind is h11.ConnectionClosed:
                self.transport.close()
                return

    def _begin(self, head: h11.Request) -> None:
        self.head, self.body, self.size = head, [], 0
        if not self.started:
            self.started = self.server.loop.time()
        # h11 bounds a head only while it is incomplete: one that arrived whole is measured here
        if len(head.target) + sum(len(name) + len(value) + 4 for name, value in head.headers) > MAX_HEADER_BYTES:
            self._refuse(431, "request line and headers are over the limit")
            return
        length = None
        for name, value in head.headers:
            if name == b"content-length":
                length = int(value)  # h11 has checked it is a number
                break
        if length is not None and length > self.server.max_body:
            self._dispatch(None)  # refused by its declared length: nothing more is read
        elif self.conn.they_are_waiting_for_100_continue:
            self.transport.write(self.conn.send(h11.InformationalResponse(status_code=100, headers=[],
                                                                          reason=b"Continue")))

    def _dispatch(self, body: bytes | None) -> None:
        head = self.head
        self.busy, self.started = True, 0.0
        target = head.target.decode("latin-1")
        path, _, query = target.partition("?")
        if "%" in path:  # as WSGI's PATH_INFO: percent-escapes decoded
            path = unquote(path, encoding="latin-1")
        headers = {}
        for name, value in head.headers:
            key = name.decode("latin-1")
            headers[key] = f"{headers[key]}, {value.decode('latin-1')}" if key in headers else value.decode("latin-1")
        request = Request(head.method.decode("ascii", "replace"), path or "/", query, headers, body, self.remote)
        answered = False

        def respond(status: int, response_headers=(), content: bytes = b"") -> None:
            nonlocal answered
            if answered:
                return
            answered = True
            self._answer(request, status, response_headers, content)

        try:
            self.server.handler(request, respond)
        except Exception:  # noqa: BLE001 - a handler bug is a 500, never a dead connection
            log.debug("receiver handler failed", exc_info=True)
            respond(500, [("Content-Type", "application/json")], b'{"error": "internal error"}')

    def _answer(self, request: Request, status: int, headers, content: bytes) -> None:
        """Write the answer; then keep the connection for the next request, or close it."""
        transport = self.transport
        if transport.is_closing():
            return  # the client went away (or the stop dropped it) while the answer was being made
        keep = request.body is not None and not self.server.draining
        headers = [*headers, ("Content-Length", str(len(content)))]
        if not keep:
            headers.append(("Connection", "close"))
        conn = self.conn
        try:
            out = conn.send(h11.Response(status_code=status, headers=headers,
                                         reason=status_line(status).partition(" ")[2].encode()))
            if content and request.method != "HEAD":
                out += conn.send(h11.Data(data=content))
            out += conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            transport.close()
            return
        transport.write(out)
        self.last = self.server.loop.time()
        if not keep or conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
            transport.close()
            return
        conn.start_next_cycle()
        self.head, self.body, self.busy = None, [], False
        if self.paused:
            self.paused = False
            transport.resume_reading()
        if conn.trailing_data[0] or conn.trailing_data[1]:  # pipelined: the next request is already here
            self.started = self.last
            self.server.loop.call_soon(self._next)  # not a call: a long pipeline must not grow the stack

    def _refuse(self, status: int, reason: str) -> None:
        """Answer a request h11 could not read (400, or 431 for oversized headers) and close."""
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            body = json.dumps({"error": reason[:200]}).encode()
            try:
                self.transport.write(self.conn.send(h11.Response(
                    status_code=status, headers=[("Content-Type", "application/json"),
                                                 ("Content-Length", str(len(body))), ("Connection", "close")],
                    reason=status_line(status).partition(" ")[2].encode())) + body)
            except h11.LocalProtocolError:
                pass
        self.transport.close()


class LoopServer:
    """An HTTP/1.1 server for `handler` on host:port (0 = a free port), run by one event loop in a thread.

    `start()`, `port`, `base_url`, `stop(timeout)` (drains; see the module docstring). The port is
    bound in the constructor, so an address in use is an OSError there.
    """

    def __init__(self, handler, host: str = "127.0.0.1", port: int = 0, *, connection_limit: int = 1000,
                 idle_timeout: float = 30.0, request_timeout: float = 15.0, max_body: int = 1024 * 1024,
                 cleanup_interval: float = 2.0):
        host = "127.0.0.1" if (host or "").strip().lower() == "localhost" else (host or "0.0.0.0")
        self.handler = handler
        self.host = host
        self.connection_limit = connection_limit
        self.idle_timeout, self.request_timeout, self.cleanup_interval = idle_timeout, request_timeout, cleanup_interval
        self.max_body = max_body
        self.connections: set[_Connection] = set()
        self.draining = False
        room_for_descriptors(connection_limit + 64)
        self._socket = _listen(host, port)
        self.port = self._socket.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(_quiet)
        self.changed = asyncio.Event()  # a connection closed (the drain waits on it)
        self._listener: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._run, name=f"receiver-loop:{self.port}", daemon=True)
        self._started = threading.Event()
        self._stopped = False

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def start(self) -> "LoopServer":
        self._thread.start()
        self._started.wait(10)
        return self

    def call_soon(self, callback, *args) -> None:
        """Run `callback(*args)` on the loop thread (from any thread)."""
        self.loop.call_soon_threadsafe(callback, *args)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self._listener = self.loop.run_until_complete(self.loop.create_server(
                lambda: _Connection(self), sock=self._socket, backlog=BACKLOG))
            self.loop.call_later(self.cleanup_interval, self._sweep)
            self._started.set()
            self.loop.run_forever()
        finally:
            self._started.set()
            for conn in list(self.connections):
                conn.transport.abort()
            try:
                self.loop.run_until_complete(asyncio.sleep(0))  # let the aborts run their callbacks
            finally:
                self.loop.close()

    def _sweep(self) -> None:
        """Close connections idle too long, and those whose request has taken too long to arrive."""
        now = self.loop.time()
        for conn in list(self.connections):
            if conn.busy:
                continue
            if conn.started and self.request_timeout and now - conn.started > self.request_timeout:
                conn.transport.close()
            elif not conn.started and self.idle_timeout and now - conn.last > self.idle_timeout:
                conn.transport.close()
        self.loop.call_later(self.cleanup_interval, self._sweep)

    # -- stopping ---------------------------------------------------------------------------------
    def stop(self, timeout: float = 5.0) -> None:
        """Drain, then stop the loop (bounded by `timeout`); see the module docstring for the order."""
        if self._stopped:
            return
        self._stopped = True
        if not self._thread.is_alive():
            self._socket.close()
            self.loop.close()
            return
        done = asyncio.run_coroutine_threadsafe(self._drain(timeout), self.loop)
        try:
            done.result(timeout + 1.0)
        except Exception:  # noqa: BLE001 - a drain cut short still stops the loop below
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout + 1.0)

    async def _drain(self, timeout: float) -> None:
        self.draining = True
        self._listener.close()  # the listening socket only: connections stay open to be answered
        started = self.loop.time()
        deadline = started + timeout
        while True:
            partial_too = self.loop.time() - started >= PARTIAL_GRACE
            for conn in list(self.connections):
                if not conn.busy and (not conn.started or partial_too):
                    conn.transport.close()  # idle, or a request that has not finished arriving in time
            left = deadline - self.loop.time()
            if not self.connections or left <= 0:
                break
            self.changed.clear()
            try:  # wake when a connection closes, or to re-check the partial ones
                await asyncio.wait_for(self.changed.wait(), min(left, 0.1))
            except asyncio.TimeoutError:
                pass


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; a host that does not resolve, or to several addresses, is a ConfigError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, OverflowError) as exc:
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc})",
                          hint="use an address of this machine, e.g. --host 127.0.0.1") from None
    addresses = {info[4][:2] for info in infos}
    if len(addresses) != 1:
        raise ConfigError(f"--host {host}: resolves to several addresses; one server listens on one",
                          hint="give one address, e.g. --host 127.0.0.1")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _quiet(loop, context) -> None:
    """The loop's exception handler: a failure inside asyncio is logged at debug level, never printed."""
    log.debug("receiver loop: %s", context.get("message"), exc_info=context.get("exception"))

