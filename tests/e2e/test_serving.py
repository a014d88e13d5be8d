"""BackgroundServer.stop drains: the request in flight is answered, nothing is written to a closed pipe."""
from __future__ import annotations

import logging
import socket
import threading
import time

import requests

from harness_core.serving import BackgroundServer


def test_stop_answers_the_request_in_flight_and_refuses_new_connections(caplog):
    entered, release = threading.Event(), threading.Event()

    def app(environ, start_response):
        entered.set()
        release.wait(5)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"done"]

    server = BackgroundServer(app, threads=2).start()
    answer = {}
    client = threading.Thread(target=lambda: answer.update(resp=requests.get(server.base_url, timeout=5)))
    caplog.set_level(logging.WARNING, logger="waitress")
    client.start()
    assert entered.wait(5)
    stopper = threading.Thread(target=server.stop, kwargs={"timeout": 5})
    stopper.start()
    deadline, refused = time.monotonic() + 3, False
    while not refused and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=0.5).close()
            time.sleep(0.02)
        except OSError:
            refused = True
    assert refused, "a stopping server accepts no new connection"
    release.set()
    client.join(5)
    stopper.join(7)
    assert answer["resp"].status_code == 200 and answer["resp"].text == "done"
    assert answer["resp"].headers.get("Connection") == "close"
    assert not stopper.is_alive()
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
