"""Run a WSGI app on waitress in a background thread (sandbox, receiver, tests)."""
from __future__ import annotations

import threading
from http import HTTPStatus

from waitress.server import create_server

from .errors import ConfigError


def status_line(status: int) -> str:
    """A WSGI status line for a code: `422 Unprocessable Entity` (the code alone if it has no phrase)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


class BackgroundServer:
    """A waitress server on host:port (0 = a free port), served from a daemon thread."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, threads: int = 8, **options):
        # "localhost" can resolve to both ::1 and 127.0.0.1, and waitress would then listen on two
        # sockets with no single port: serve the IPv4 loopback, which every client here uses.
        host = "127.0.0.1" if (host or "").strip().lower() == "localhost" else host
        try:
            self.server = create_server(app, host=host, port=port, threads=threads,
                                        clear_untrusted_proxy_headers=True, **options)
        except ValueError as exc:  # waitress: a host name that does not resolve, a port out of range
            raise ConfigError(f"--host {host} --port {port}: cannot listen there ({str(exc).rstrip('.')})",
                              hint="use an address of this machine, e.g. --host 127.0.0.1") from None
        if not hasattr(self.server, "effective_port"):  # a name with several addresses
            self.server.close()
            raise ConfigError(f"--host {host}: resolves to several addresses; one server listens on one",
                              hint="give one address, e.g. --host 127.0.0.1")
        self.host = host
        self.port = int(self.server.effective_port)  # waitress may report a string
        self._thread = threading.Thread(target=self._run, name=f"waitress:{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def _run(self):
        try:
            self.server.run()
        except (OSError, ValueError):  # closed under our feet during stop()
            pass

    def start(self) -> "BackgroundServer":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and every open channel, and finish the worker threads (bounded).

        The loop thread sees an empty socket map within waitress's 1 s poll and ends by itself
        (it is a daemon); we do not wait for it, and we do not shorten the poll: waitress reads
        that timeout as a whole number, so a fraction makes the loop spin.
        """
        self.server.close()
        for channel in list(self.server._map.values()):
            try:
                channel.close()
            except OSError:
                pass
        self.server.task_dispatcher.shutdown(timeout=timeout)
        self._thread.join(0.05)
