"""Serve the inspector on 127.0.0.1 (never another address, never through the tunnel)."""
from __future__ import annotations

import threading
import warnings

from ..context import RunContext
from ..errors import ConfigError
from ..serving import BackgroundServer
from ..signals import ignoring_signals, wait_until_stopped
from .app import InspectorApp

DEFAULT_PORT = 8040
HOST = "127.0.0.1"


class Inspector:
    """The inspector app on waitress in a background thread: `start()`, `url`, `stop()`."""

    def __init__(self, ctx: RunContext, port: int | None = None):
        self.app = InspectorApp(ctx)
        port = DEFAULT_PORT if port is None else int(port)
        try:
            # send_bytes=1: a worker writes each server-sent event to the socket at once. Without it a small
            # chunk waits in waitress's buffer until more output or the next request comes (seconds, measured).
            # waitress marks the option deprecated; the browser test of live rows fails if it ever stops working.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "send_bytes", DeprecationWarning)
                self.server = BackgroundServer(self.app, HOST, port, threads=8, send_bytes=1, channel_timeout=60,
                                               connection_limit=200)
        except OSError as exc:
            raise ConfigError(f"--port {port}: cannot listen on {HOST}:{port} ({exc.strerror or exc})",
                              hint="pick another port with --port N (0 takes a free one)") from None
        self.app.port = self.server.port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.port}/"

    def start(self) -> "Inspector":
        self.server.start()
        return self

    def stop(self) -> None:
        """End the live streams, then drain and stop the server."""
        self.app.closing.set()
        self.server.stop()

    def __enter__(self) -> "Inspector":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_inspector(ctx: RunContext, *, say, port: int | None = None, stop: threading.Event | None = None) -> None:
    """Run the inspector until Ctrl-C (or `stop` is set), saying where it is through `say`."""
    inspector = Inspector(ctx, port).start()
    try:
        say(f"Inspector at {inspector.url} (this machine only; Ctrl-C to quit)")
        wait_until_stopped(stop)
    finally:
        with ignoring_signals():
            inspector.stop()
