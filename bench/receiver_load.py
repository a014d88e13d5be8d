"""Webhook receiver under load: N callbacks from C concurrent senders, then count what was stored.

Runs `tune webhook` in its own process in a scratch project, posts Tavus-shaped callbacks to it
from C threads over 127.0.0.1, and counts the lines in logs/callbacks/ (0 lost, 0 duplicated is
the requirement). The same load goes to a bare waitress hello-world app in the same run; the
ratio between the two is the figure to quote.
Then, with --idle N (default 500) sockets held open against the receiver (half silent, half trickling an
unfinished request one byte at a time), N more callbacks from 4 senders: their p99 is the figure
(target < 100 ms), and none may fail.
Usage: .venv/bin/python bench/receiver_load.py [--events 10000] [--senders 32] [--idle 500]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

PY = sys.executable
TUNE = str(Path(PY).parent / "tune")
TOKEN = "bench-token-0123456789"
HELLO = """
from waitress import serve
def app(environ, start_response):
    environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0))
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [b'{}']
serve(app, host='127.0.0.1', port=int(__import__('sys').argv[1]), threads=8, _quiet=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    sys.exit(f"server at {url} did not start within {deadline}s")


def event(i: int) -> dict:
    cid = f"cbench{i % 100:011x}"
    return {"properties": {"replica_id": "r4317e64d25a", "n": i}, "conversation_id": cid,
            "webhook_url": "http://127.0.0.1/bench", "event_type": "system.replica_joined",
            "message_type": "system", "timestamp": f"2026-11-24T00:00:{i // 1000000:02d}.{i % 1000000:06d}Z"}


def blast(url: str, total: int, senders: int, first: int = 0) -> tuple[float, list[float], int]:
    """Post events first..first+total-1 from `senders` threads; return (seconds, latencies, failures)."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    counter = iter(range(first, first + total))

    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")

    def sender():
        # http.client with keep-alive: the cheapest honest client, so the server is what is measured.
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        mine, bad = [], 0
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            body = json.dumps(event(i)).encode()
            t0 = time.perf_counter()
            try:
                conn.request("POST", target, body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status < 300
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
                ok = False
            mine.append(time.perf_counter() - t0)
            bad += not ok
        conn.close()
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return time.perf_counter() - started, latencies, failures[0]


class hold_sockets:
    """`count` connections held open: half silent, half trickling an unfinished request (one byte each 0.5 s)."""

    def __init__(self, port: int, count: int):
        self.socks, self.done = [], threading.Event()
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:
                s.sendall(b"POST /tavus/callback HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            self.socks.append(s)
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self):
        while not self.done.wait(0.5):
            for s in self.socks[1::2]:
                try:
                    s.send(b"a")
                except OSError:  # the server dropped it (its request deadline): that is allowed
                    pass

    def stop(self):
        self.done.set()
        self.thread.join(5)
        for s in self.socks:
            s.close()


def stored_numbers(project: Path) -> list:
    """The `n` of every stored callback, read straight from logs/callbacks.sqlite3 (a row that does not parse counts as None)."""
    with sqlite3.connect(project / "logs" / "callbacks.sqlite3") as db:
        out = []
        for (text,) in db.execute("SELECT record FROM events"):
            try:
                out.append(json.loads(text)["event"]["properties"]["n"])
            except (ValueError, KeyError, TypeError):
                out.append(None)
        return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--idle", type=int, default=500, help="sockets held open during the last phase (0: skip it)")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as project:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
        env.update(WEBHOOK_TOKEN=TOKEN, TAVUS_HARNESS_DOTENV=str(Path(project) / ".env"))
        port = free_port()
        rx = subprocess.Popen([TUNE, "webhook", "--port", str(port), "--path", "/tavus/callback", "--json"],
                              cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hport = free_port()
        hello = subprocess.Popen([PY, "-c", HELLO, str(hport)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_up(f"http://127.0.0.1:{port}/healthz")
            wait_up(f"http://127.0.0.1:{hport}/")
            results["bare waitress"] = blast(f"http://127.0.0.1:{hport}/hook", args.events, args.senders)
            results["tune webhook"] = blast(f"http://127.0.0.1:{port}/tavus/callback?token={TOKEN}",
                                            args.events, args.senders)
            if args.idle:
                idle = hold_sockets(port, args.idle)
                try:
                    results[f"+{args.idle} idle"] = blast(f"http://127.0.0.1:{port}/tavus/callback?token={TOKEN}",
                                                         1000, 4, first=args.events)
                finally:
                    idle.stop()
        finally:
            for proc in (rx, hello):
                proc.terminate()
                proc.wait(10)
        ns = stored_numbers(Path(project))
    sent = args.events + (1000 if args.idle else 0)
    readable = [n for n in ns if n is not None]
    lost = sent - len(set(readable))
    dup = len(readable) - len(set(readable))
    print(f"{args.events} callbacks, {args.senders} concurrent senders, 127.0.0.1, one process per server")
    print(f"{'server':<14} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
    for name, (secs, lat, failed) in results.items():
        print(f"{name:<14} {len(lat) / secs:9.0f} {pct(lat, 50):8.2f} {pct(lat, 99):8.2f} {failed:7d}")
    if args.idle:
        print(f"(the last row: 1000 callbacks from 4 senders to tune webhook while {args.idle} other sockets stay open)")
    (rs, rl, _), (bs, bl, _) = results["tune webhook"], results["bare waitress"]
    print(f"ratio receiver/bare: throughput {(len(rl) / rs) / (len(bl) / bs):.2f}x, p99 {pct(rl, 99) / pct(bl, 99):.2f}x")
    print(f"stored: {len(ns)} records, lost {lost}, duplicated {dup}, unreadable {ns.count(None)}")
    print("targets: throughput >= 0.7x bare, p99 <= 2x bare's, 0 lost, 0 duplicated; with idle sockets p99 < 100 ms")


if __name__ == "__main__":
    main()
