"""Webhook receiver under load: N callbacks from C concurrent senders, then count what was stored.

Runs `tune webhook` in its own process in a scratch project, posts Tavus-shaped callbacks to it
from C threads over 127.0.0.1, and counts the lines in logs/callbacks/ (0 lost, 0 duplicated is
the requirement). The same load goes to a bare waitress hello-world app in the same run; the
ratio between the two is the figure to quote.
Usage: .venv/bin/python bench/receiver_load.py [--events 10000] [--senders 32]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
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


def blast(url: str, total: int, senders: int) -> tuple[float, list[float], int]:
    """Post `total` events from `senders` threads; return (seconds, latencies, failures)."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    counter = iter(range(total))

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


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--senders", type=int, default=32)
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
        finally:
            for proc in (rx, hello):
                proc.terminate()
                proc.wait(10)
        lines = []
        for path in (Path(project) / "logs" / "callbacks").glob("*.jsonl"):
            lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    stored = [(e.get("conversation_id"), (e.get("event") or e).get("properties", {}).get("n")) for e in lines]
    ns = [n for _, n in stored]
    lost = args.events - len(set(ns))
    dup = len(ns) - len(set(ns))
    print(f"{args.events} callbacks, {args.senders} concurrent senders, 127.0.0.1, one process per server")
    print(f"{'server':<14} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
    for name, (secs, lat, failed) in results.items():
        print(f"{name:<14} {len(lat) / secs:9.0f} {pct(lat, 50):8.2f} {pct(lat, 99):8.2f} {failed:7d}")
    (rs, rl, _), (bs, bl, _) = results["tune webhook"], results["bare waitress"]
    print(f"ratio receiver/bare: throughput {(len(rl) / rs) / (len(bl) / bs):.2f}x, p99 {pct(rl, 99) / pct(bl, 99):.2f}x")
    print(f"stored: {len(ns)} lines, lost {lost}, duplicated {dup}  (targets: >= 2000 events/s, p99 < 50 ms, >= 0.5x bare, 0 lost, 0 dup)")


if __name__ == "__main__":
    main()
