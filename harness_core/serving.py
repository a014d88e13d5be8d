"""Run a WSGI app on waitress in a background thread (sandbox, receiver, tests), and stop it by draining.

Two things waitress leaves to its embedder are done here:

- Limits that keep a server answering while many sockets sit idle or trickle bytes: a connection
  limit, an idle timeout (`channel_timeout`) and a whole-request deadline (`request_timeout`: a
  request whose headers and body have not all arrived within it is dropped; waitress's idle timeout
  never fires for a socket that sends one byte a second). `poll()` is used, so more than 1,024
  descriptors work.
- A graceful stop: stop accepting, answer every request already received (each answer closes its
  connection), close idle connections, wait for the worker threads to end, and only then close the
  trigger pipe, so no worker ever writes to a descriptor number that a new file may reuse.
"""
from __future__ import annotations

import logging
import threading
import time
from http import HTTPStatus

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher, WSGITask

from .errors import ConfigError

PARTIAL_GRACE = 1.0  # seconds a stopping server waits for requests still arriving before it drops them


def status_line(status: int) -> str:
    """A WSGI status line for a code: `422 Unprocessable Entity` (the code alone if it has no phrase)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def room_for_descriptors(descriptors: int) -> None:
    """Raise this process's soft limit on open files (up to the hard one) so `descriptors` fit."""
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < descriptors:
        wanted = descriptors if hard == resource.RLIM_INFINITY else min(descriptors, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass


class _Task(WSGITask):
    """A request's task: while the server drains, its answer says `Connection: close` and closes it.

    A whole answer of known length goes out with its header in one write (one send), not two:
    under load each send is a wait for the GIL, and most answers here are one small JSON body.
    """

    def build_response_header(self):
        if self.channel.server.draining:
            self.set_close_on_finish()
        return super().build_response_header()

    def write(self, data):
        if (not self.wrote_header and data and self.complete and self.has_body and not self.chunked_response
                and self.content_length is not None and len(data) == self.content_length):
            self.channel.write_soon(self.build_response_header() + data)
            self.wrote_header = True
            self.content_bytes_written += len(data)
            return
        super().write(data)


class _Channel(HTTPChannel):
    """A connection that remembers when the request it is still receiving began."""

    task_class = _Task
    request_started = 0.0

    def received(self, data):
        if self.request is None and data:
            self.request_started = time.time()
        return super().received(data)


class _Server(TcpWSGIServer):
    """waitress's TCP server with a whole-request deadline and a drain flag."""

    channel_class = _Channel
    draining = False
    request_timeout = 0.0  # 0: no deadline

    def __init__(self, *args, **kwargs):
        try:
            super().__init__(*args, **kwargs)
        except BaseException:  # the port is taken: release the trigger pipe and the socket made so far
            if getattr(self, "trigger", None) is not None:
                self.trigger.close()
            if getattr(self, "socket", None) is not None:
                self.socket.close()
            raise

    def maintenance(self, now):
        """Close idle connections (waitress) and those whose request has taken too long to arrive."""
        super().maintenance(now)
        if self.request_timeout:
            cutoff = now - self.request_timeout
            for channel in list(self.active_channels.values()):
                if channel.request is not None and not channel.requests and channel.request_started < cutoff:
                    channel.will_close = True


class BackgroundServer:
    """A waitress server on host:port (0 = a free port), served from a daemon thread.

    `request_timeout` (seconds, 0 = none) bounds how long one request may take to arrive; other
    keyword options go to waitress (connection_limit, channel_timeout, cleanup_interval, ...).
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, threads: int = 8, *,
                 request_timeout: float = 0.0, **options):
        # "localhost" can resolve to both ::1 and 127.0.0.1, and waitress would then listen on two
        # sockets with no single port: serve the IPv4 loopback, which every client here uses.
        host = "127.0.0.1" if (host or "").strip().lower() == "localhost" else host
        options.setdefault("asyncore_use_poll", True)  # select() fails past descriptor 1023
        room_for_descriptors(int(options.get("connection_limit", 100)) + 64)
        try:
            adj = Adjustments(host=host, port=port, threads=threads, clear_untrusted_proxy_headers=True, **options)
        except ValueError as exc:  # waitress: a host name that does not resolve, a port out of range
            raise ConfigError(f"--host {host} --port {port}: cannot listen there ({str(exc).rstrip('.')})",
                              hint="use an address of this machine, e.g. --host 127.0.0.1") from None
        if len(adj.listen) != 1:  # a name with several addresses
            raise ConfigError(f"--host {host}: resolves to several addresses; one server listens on one",
                              hint="give one address, e.g. --host 127.0.0.1")
        self.dispatcher = ThreadedTaskDispatcher()
        self.server = _Server(app, {}, dispatcher=self.dispatcher, adj=adj, sockinfo=adj.listen[0])
        self.server.request_timeout = float(request_timeout)
        self.dispatcher.set_thread_count(adj.threads)  # only once the port is ours: a failed bind leaks none
        self.host = host
        self.port = int(self.server.effective_port)  # waitress may report a string
        self._thread = threading.Thread(target=self._run, name=f"waitress:{self.port}", daemon=True)
        self._stopped = False

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def _run(self):
        try:
            self.server.run()
        except (OSError, ValueError):  # a descriptor closed under the loop at the very end of stop()
            pass

    def start(self) -> "BackgroundServer":
        self._thread.start()
        return self

    # -- stopping ---------------------------------------------------------------------------------
    def _in_loop(self, action, timeout: float = 2.0) -> bool:
        """Run `action` in the server's loop thread (where channels may be closed safely); wait for it."""
        if not self._thread.is_alive():
            action()
            return True
        done = threading.Event()

        def thunk():
            try:
                action()
            finally:
                done.set()

        self.server.trigger.pull_trigger(thunk)
        return done.wait(timeout)

    def _channels(self) -> list:
        return [c for c in list(self.server._map.values()) if isinstance(c, HTTPChannel)]

    def _close_idle(self, partial_too: bool) -> None:
        for channel in self._channels():
            busy = channel.requests or channel.total_outbufs_len or (channel.request is not None and not partial_too)
            if not busy:
                channel.handle_close()

    def _workers_idle(self) -> bool:
        d = self.dispatcher
        with d.lock:
            return not d.queue and d.active_count <= 0

    def stop(self, timeout: float = 5.0) -> None:
        """Drain, then stop (bounded by `timeout`): see the module docstring for the order.

        A request still arriving after PARTIAL_GRACE seconds is dropped unanswered (nothing of it
        was acknowledged). If a worker is still busy at the deadline the trigger pipe is left open
        rather than risk a write to a reused descriptor.
        """
        if self._stopped:
            return
        self._stopped = True
        started = time.monotonic()
        deadline = started + timeout
        server = self.server
        server.draining = True

        def stop_accepting():
            server.accepting = False
            wasyncore.dispatcher.close(server)  # the listening socket only; waitress's close() also shuts the trigger

        self._in_loop(stop_accepting)
        while time.monotonic() < deadline:
            partial_too = time.monotonic() - started >= PARTIAL_GRACE
            self._in_loop(lambda: self._close_idle(partial_too), max(0.05, deadline - time.monotonic()))
            if not self._channels() and self._workers_idle():
                break
            time.sleep(0.01)
        finished = self.dispatcher.shutdown(cancel_pending=True, timeout=max(0.1, deadline - time.monotonic()))
        workers_gone = not self.dispatcher.threads
        if not (finished and workers_gone):
            logging.getLogger("waitress").warning("stopping %s: a worker thread is still busy", self.base_url)

        def close_rest():
            for channel in self._channels():
                channel.handle_close()
            if workers_gone:
                server.trigger.close()  # nothing can pull it any more

        self._in_loop(close_rest)
        if workers_gone:
            self._thread.join(max(0.1, deadline - time.monotonic()) + 1.5)  # the loop ends within its 1 s poll
