"""Test helpers: run the real CLI in-process, and a loopback JSON collector for callbacks."""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from harness_core.serving import BackgroundServer


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*argv: str) -> CliResult:
    """Run `tune ARGV...` in-process (the same Program the console script runs)."""
    from harness_core.cli import program

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            program.run(["tune", *argv], exit=True)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


class Collector:
    """A real HTTP server on 127.0.0.1 that stores every JSON body POSTed to it."""

    def __init__(self):
        self.events: list[dict] = []
        self._cond = threading.Condition()
        self.server = BackgroundServer(self._app, threads=4)
        self.url = f"{self.server.base_url}/hook"

    def _app(self, environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size) if size else b""
        try:
            data = json.loads(body)
        except ValueError:
            data = {"_raw": body.decode("utf-8", "replace")}
        with self._cond:
            self.events.append({"path": environ.get("PATH_INFO"), "query": environ.get("QUERY_STRING"), "body": data})
            self._cond.notify_all()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    def wait_for(self, predicate, timeout: float = 10.0) -> list[dict]:
        """Wait (bounded) until predicate(list of bodies) is true; return the bodies."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate([e["body"] for e in self.events]):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s; got {[e['body'].get('event_type') for e in self.events]}")
                self._cond.wait(left)
            return [e["body"] for e in self.events]

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop()


def spawn(argv, **kwargs) -> subprocess.Popen:
    """Start a CLI process that reacts to Ctrl-C even if this test run ignores SIGINT (a background job).

    Its faulthandler is on, so a process that hangs can be made to print every thread's stack (interrupt())."""
    kwargs["env"] = {**(kwargs.get("env") or os.environ), "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen(argv, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


def interrupt(proc: subprocess.Popen, sig=signal.SIGINT, timeout: float = 15, *, group: bool = False):
    """Send `sig` (to the process group `proc` leads, as a terminal's Ctrl-C does, when `group`) and collect
    (out, err). A process that does not stop in time gets SIGABRT, which makes the faulthandler spawn()
    turned on print where each thread was; the test fails with that."""
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=5)
        raise AssertionError(f"{' '.join(map(str, proc.args))} did not stop within {timeout:g}s of signal {sig}; "
                             f"where its threads were:\n{(err or '')[-6000:]}") from None


def stored_callbacks(project, conversation_id: str | None = None) -> list[dict]:
    """The callback records stored under `project`'s logs/, in arrival order, read by the store's own reader."""
    from pathlib import Path

    from harness_core.callbacks.eventstore import DB_NAME, iter_records
    return list(iter_records(Path(project) / "logs" / DB_NAME, conversation_id=conversation_id))


def logs_bytes(project) -> bytes:
    """Every byte under `project`'s logs/ (the callback database and its WAL included), for secret checks."""
    from pathlib import Path
    return b"".join(p.read_bytes() for p in sorted((Path(project) / "logs").rglob("*")) if p.is_file())
