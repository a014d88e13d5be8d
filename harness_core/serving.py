"""Run a WSGI app on waitress in a background thread (sandbox, receiver, tests)."""
from __future__ import annotations

import threading

from waitress.server import create_server


class BackgroundServer:
    """A waitress server on host:port (0 = a free port), served from a daemon thread."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, threads: int = 8, **options):
        self.server = create_server(app, host=host, port=port, threads=threads,
                                    clear_untrusted_proxy_headers=True, **options)
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
