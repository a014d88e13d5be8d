"""Start-up of `tune sandbox`: time from launch to the first answered request, against bare waitress.

Issue 14 grows the sandbox several times over; it must stay quick to start, because the demo, every
`tune run` and every end-to-end test start one. Both commands are launched alternately N times; each
is timed from spawn until `GET /_sandbox/health` (or `/` for the baseline) answers on 127.0.0.1.

    .venv/bin/python bench/sandbox_startup.py [--runs 9]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BARE = ("import sys, waitress\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '2')]); return [b'ok']\n"
        "server = waitress.create_server(app, host='127.0.0.1', port=0)\n"
        "print(f'listening on http://127.0.0.1:{server.effective_port}', flush=True)\n"
        "server.run()\n")


def time_to_answer(argv: list[str], path: str, deadline: float = 30.0) -> float:
    """Seconds from spawning `argv` until `path` answers 200 at the URL it prints."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python keeps bytecode caches
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    try:
        stop = time.monotonic() + deadline
        for line in proc.stdout:  # bounded: the deadline below, and the process ends when killed
            found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            if found:
                base = found.group(1)
                break
            if time.monotonic() > stop:
                raise RuntimeError(f"{argv[0]} printed no URL within {deadline} s")
        else:
            raise RuntimeError(f"{argv[0]} exited before listening")
        while time.monotonic() < stop:
            try:
                if requests.get(base + path, headers={"x-api-key": "bench"}, timeout=2).status_code == 200:
                    return time.perf_counter() - started
            except requests.ConnectionError:
                pass
        raise RuntimeError(f"{base}{path} did not answer within {deadline} s")
    finally:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    bare_argv = [sys.executable, "-c", BARE]
    tune_argv = [str(BIN / "tune"), "sandbox", "--port", "0"]
    bare, tune = [], []
    for _ in range(args.runs):  # alternate, so drift on this noisy machine hits both alike
        bare.append(time_to_answer(bare_argv, "/"))
        tune.append(time_to_answer(tune_argv, "/_sandbox/health"))
    b, t = statistics.median(bare), statistics.median(tune)
    print(f"{'bare waitress':<16}{b * 1000:8.1f} ms   median of {args.runs}, spawn to first 200")
    print(f"{'tune sandbox':<16}{t * 1000:8.1f} ms   (routes: {route_count()})")
    print(f"ratio tune/bare  {t / b:6.2f} x")
    return 0


def route_count() -> int:
    """How many routes the sandbox serves (for the record beside the time)."""
    sys.path.insert(0, str(ROOT))
    from harness_core.sandbox import Sandbox

    return len(Sandbox().app.routes)


if __name__ == "__main__":
    sys.exit(main())
