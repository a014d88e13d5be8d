"""Stop long-running commands cleanly however they are stopped: Ctrl-C or SIGTERM (CI cancel, kill)."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


@contextmanager
def stop_on_signals():
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread, like Ctrl-C does.

    So `except KeyboardInterrupt` cleanup (sandbox state saved, receiver closed, conversations
    ended) runs on `kill` and on a cancelled CI job too. An ignored SIGINT (a background job of
    a non-interactive shell) stays ignored. The previous handlers come back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
