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


@contextmanager
def ignoring_signals():
    """Within the block, Ctrl-C and SIGTERM are ignored (main thread only): for a cleanup that must finish."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, signal.SIG_IGN)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: a handler not set from Python, which cannot be put back
                signal.signal(sig, handler)


def wait_until_stopped(stop: threading.Event | None = None) -> None:
    """Block until Ctrl-C, SIGTERM or (when given) `stop` is set; the long-running commands' main loop."""
    try:
        with stop_on_signals():
            while not (stop.wait(0.5) if stop else threading.Event().wait(0.5)):
                pass
    except KeyboardInterrupt:
        pass
