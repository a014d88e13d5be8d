"""The embedded sandbox of a run: in a forked process of its own where that is safe, else in this one.

A run's CPU goes to two parties: the scenarios (API client, callback receiver, checks) and the
sandbox answering them. In one process they share one interpreter lock, so a run of many
scenarios uses one core however many the machine has (issue 13). Forked, the sandbox answers on
another core, as Tavus itself would.

Forking is safe only where the platform supports it well (Linux: on macOS a fork without exec can
crash once system frameworks are loaded; Windows has no fork) and only from a process with no other thread
(a fork copies memory, not threads: a lock another thread held would stay held in the child).
Elsewhere the same Sandbox runs in this process: the same code gives the same answers.

The child is its own session (a Ctrl-C at the terminal reaches the run, which still needs the
sandbox to end its conversations), reads nothing and prints nothing to stdout (a `--json` report
stays pure; its warnings go to stderr, as in-process), and stops when the parent closes its end of
a pipe, or dies, whatever killed it. The parent waits for it to exit.
"""
from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import ConfigError, HarnessError
from . import Sandbox, SandboxSettings

START_TIMEOUT = 30.0  # seconds for the child to say where it listens
STOP_TIMEOUT = 15.0  # seconds for it to stop (its own stop is bounded well below this) before SIGKILL


@dataclass(frozen=True)
class Embedded:
    """Where the embedded sandbox listens, and the process it runs in (None: this one)."""

    url: str
    pid: int | None = None


def can_fork() -> bool:
    """True where the sandbox may run in a forked child: Linux, and no thread but this one."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and threading.active_count() == 1


@contextlib.contextmanager
def embedded_sandbox(settings: SandboxSettings) -> Iterator[Embedded]:
    """A sandbox with `settings` for the length of the block: forked when can_fork() (and the fork
    succeeds), else in-process."""
    pid = None
    if can_fork():
        ready_r, ready_w = os.pipe()
        life_r, life_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):  # nothing buffered is copied into the child
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            pid = os.fork()
        except OSError:  # no room for another process: this one serves it
            for fd in (ready_r, ready_w, life_r, life_w):
                os.close(fd)
    if pid is None:
        with Sandbox(settings) as sandbox:
            yield Embedded(sandbox.url)
        return
    if pid == 0:  # the child: never returns
        os.close(ready_r)
        os.close(life_w)
        _serve_in_child(settings, ready_w, life_r)
    os.close(ready_w)
    os.close(life_r)
    try:
        try:
            said = _read_line(ready_r, START_TIMEOUT)
        finally:
            os.close(ready_r)
        if not said.startswith("http"):
            raise ConfigError(f"the embedded sandbox did not start: {said or 'it exited without a word'}",
                              hint=None if said else "run `invoke sandbox` and point TAVUS_API_URL at it to see why")
        yield Embedded(said, pid)
    finally:  # however the block ends (an error, Ctrl-C while it starts): stop the child and wait for it
        os.close(life_w)
        _reap(pid)


def _serve_in_child(settings: SandboxSettings, ready_w: int, life_r: int) -> None:
    """Start the sandbox, tell the parent its URL, serve until the parent's end of `life_r` closes."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)  # stdin and stdout: nothing read, nothing printed
        os.dup2(null, 0)
        os.dup2(null, 1)
        try:
            sandbox = Sandbox(settings).start()
        except BaseException as exc:  # noqa: BLE001 - said to the parent, which raises it as one line
            said = exc.render() if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
            os.write(ready_w, said.replace("\n", " ").encode("utf-8", "replace") + b"\n")
            return
        os.write(ready_w, f"{sandbox.url}\n".encode())
        os.close(ready_w)
        while os.read(life_r, 1):  # empty at end of file: the parent closed it, or died
            pass
        sandbox.stop()
        code = 0
    finally:
        os._exit(code)  # never the parent's cleanup: its atexit hooks, its buffered output


def _read_line(fd: int, timeout: float) -> str:
    """One line from `fd` within `timeout` seconds ("" when it closed or stayed silent)."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace").strip()


def _reap(pid: int) -> None:
    """Wait for the child to exit; after STOP_TIMEOUT seconds kill it."""
    killer = threading.Timer(STOP_TIMEOUT, _kill, (pid,))
    killer.daemon = True
    killer.start()
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    finally:
        killer.cancel()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
