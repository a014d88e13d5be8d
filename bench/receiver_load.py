"""Webhook receiver under load: N callbacks from C concurrent senders, then count what was stored.

Runs `tune webhook` in its own process in a scratch project, posts Tavus-shaped callbacks to it
from C threads over 127.0.0.1, and counts the records in logs/callbacks.sqlite3 (0 lost, 0 duplicated,
0 unreadable is the requirement). The same load goes, in the same run and from the same senders, to
two bare apps that only answer 200: waitress with its default settings plus 8 threads (its best on
small machines; the issue's baseline) and the receiver's own server (callbacks/server.py: one event
loop, h11, the same limits) with no store behind it, which shows what the checks and the store cost.
Each server first gets a warm-up burst, then R rounds of N callbacks
in alternating order (drift on a shared machine hits all alike); the figures are the medians of
the rounds, and the ratios against both baselines are the figures to quote.
Then, with --idle N (default 500) sockets held open against the receiver (half silent, half trickling an
unfinished request one byte at a time), N more callbacks from 4 senders: their p99 is the figure
(target < 100 ms), and none may fail.
It also times a 4 KiB write + fdatasync on the same disk, the floor under every acknowledgement.
Usage: .venv/bin/python bench/receiver_load.py [--events 10000] [--senders 32] [--rounds 3] [--idle 500]
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
import sys
from waitress import serve
def app(environ, start_response):
    environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0))
    start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', '2')])
    return [b'{}']
if sys.argv[2] == 'receiver-settings':  # the receiver's own server (one event loop, h11), same limits, no store
    from harness_core.callbacks import receiver as r
    from harness_core.callbacks.server import LoopServer
    from harness_core.signals import wait_until_stopped
    server = LoopServer(lambda request, respond: respond(200, [('Content-Type', 'application/json')], b'{}'),
                        port=int(sys.argv[1]), connection_limit=r.CONNECTION_LIMIT, idle_timeout=r.IDLE_TIMEOUT,
                        request_timeout=r.REQUEST_TIMEOUT, max_body=r.MAX_BODY,
                        cleanup_interval=r.CLEANUP_INTERVAL).start()
    wait_until_stopped(None)
    server.stop()
else:
    serve(app, host='127.0.0.1', port=int(sys.argv[1]), threads=8, _quiet=True)
"""
BARE = {"bare waitress": "threads-8", "bare, rx server": "receiver-settings"}
RECEIVER = "tune webhook"
WARM_UP = 500  # callbacks to each server before the measured rounds (imports, first pages of the database)


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


def fsync_latency(folder: Path, count: int = 200) -> list[float]:
    """Seconds per 4 KiB overwrite + fdatasync in `folder` (the disk the receiver commits to), `count` times."""
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"\0" * 65536)
        os.fsync(fd)
        times = []
        for i in range(count):
            started = time.perf_counter()
            os.pwrite(fd, os.urandom(4096), (i % 16) * 4096)
            os.fdatasync(fd)
            times.append(time.perf_counter() - started)
        return times
    finally:
        os.close(fd)
        path.unlink()


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per server (medians are printed)")
    parser.add_argument("--idle", type=int, default=500, help="sockets held open during the last phase (0: skip it)")
    args = parser.parse_args()
    rounds: dict[str, list] = {name: [] for name in (*BARE, RECEIVER)}
    idle_result = quiet_result = None
    sent = 0
    with tempfile.TemporaryDirectory() as project:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
        env.update(WEBHOOK_TOKEN=TOKEN, TAVUS_HARNESS_DOTENV=str(Path(project) / ".env"))
        port = free_port()
        procs = [subprocess.Popen([TUNE, "webhook", "--port", str(port), "--path", "/tavus/callback", "--json"],
                                  cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        urls = {RECEIVER: f"http://127.0.0.1:{port}/tavus/callback?token={TOKEN}"}
        for name, mode in BARE.items():
            bport = free_port()
            procs.append(subprocess.Popen([PY, "-c", HELLO, str(bport), mode], cwd=project,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            urls[name] = f"http://127.0.0.1:{bport}/hook"
        try:
            wait_up(f"http://127.0.0.1:{port}/healthz")
            for name, url in urls.items():
                if name != RECEIVER:
                    wait_up(url.rsplit("/", 1)[0] + "/")
            for name, url in urls.items():
                blast(url, WARM_UP, args.senders, first=sent if name == RECEIVER else 0)
                sent += WARM_UP if name == RECEIVER else 0
            probe = fsync_latency(Path(project))
            order = list(urls)
            for r in range(args.rounds):
                for name in (order if r % 2 == 0 else order[::-1]):
                    result = blast(urls[name], args.events, args.senders, first=sent if name == RECEIVER else 0)
                    rounds[name].append(result)
                    sent += args.events if name == RECEIVER else 0
            if args.idle:  # the same 4-sender load without, then with, the idle sockets
                quiet_result = blast(urls[RECEIVER], 1000, 4, first=sent)
                sent += 1000
                idle = hold_sockets(port, args.idle)
                try:
                    idle_result = blast(urls[RECEIVER], 1000, 4, first=sent)
                    sent += 1000
                finally:
                    idle.stop()
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(20)
        ns = stored_numbers(Path(project))
    readable = [n for n in ns if n is not None]
    lost = sent - len(set(readable))
    dup = len(readable) - len(set(readable))

    def rate(result):
        secs, lat, _ = result
        return len(lat) / secs

    def median_of(name):
        """(events/s, p50 ms, p99 ms, failed): medians over the rounds (failures summed)."""
        rs = rounds[name]
        return (statistics.median(rate(x) for x in rs), statistics.median(pct(x[1], 50) for x in rs),
                statistics.median(pct(x[1], 99) for x in rs), sum(x[2] for x in rs))

    print(f"{args.events} callbacks per round, {args.rounds} rounds (alternating order) after a {WARM_UP}-callback "
          f"warm-up, {args.senders} concurrent keep-alive senders, 127.0.0.1, one process per server")
    print(f"{'server':<18} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}   per round events/s")
    medians = {name: median_of(name) for name in rounds}
    for name, (eps, p50, p99, failed) in medians.items():
        per = " ".join(f"{rate(x):.0f}" for x in rounds[name])
        print(f"{name:<18} {eps:9.0f} {p50:8.2f} {p99:8.2f} {failed:7d}   {per}")
    if idle_result is not None:
        secs, lat, failed = quiet_result
        print(f"{'4 senders':<18} {len(lat) / secs:9.0f} {pct(lat, 50):8.2f} {pct(lat, 99):8.2f} {failed:7d}   "
              f"(1000 callbacks from 4 senders to tune webhook, no idle sockets: the next row's baseline)")
        secs, lat, failed = idle_result
        print(f"{'+' + str(args.idle) + ' idle':<18} {len(lat) / secs:9.0f} {pct(lat, 50):8.2f} {pct(lat, 99):8.2f} "
              f"{failed:7d}   (1000 callbacks from 4 senders to tune webhook while {args.idle} other sockets stay "
              f"open, half of them trickling)")
    rx = medians[RECEIVER]
    for name in BARE:
        base = medians[name]
        print(f"ratio receiver / {name}: throughput {rx[0] / base[0]:.2f}x, p99 {rx[2] / base[2]:.2f}x")
    # Little's law with closed-loop senders: each waits ~1.5 commits (the one running when it arrives, then
    # its own), so fsync latency alone caps the rate at senders / (1.5 x latency), whatever the code does.
    med = statistics.median(probe)
    print(f"this disk: 4 KiB write + fdatasync median {med * 1000:.2f} ms, p99 {pct(probe, 99):.2f} ms; with "
          f"{args.senders} senders that alone caps a receiver that syncs before answering at "
          f"{args.senders / (1.5 * med):.0f} events/s at most (a commit is more than one 4 KiB sync)")
    print(f"stored: {len(ns)} records of {sent} sent, lost {lost}, duplicated {dup}, unreadable {ns.count(None)}")
    print("targets: throughput >= 0.7x bare waitress, p99 <= 2x bare's, 0 lost, 0 duplicated; with idle sockets "
          "p99 < 100 ms")
    base = medians["bare waitress"]
    verdicts = [("throughput", rx[0] / base[0] >= 0.7), ("p99", rx[2] / base[2] <= 2.0), ("lost", lost == 0),
                ("duplicated", dup == 0), ("unreadable", ns.count(None) == 0)]
    if idle_result is not None:
        verdicts.append(("idle p99", pct(idle_result[1], 99) < 100 and idle_result[2] == 0))
    print("verdict: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in verdicts))


if __name__ == "__main__":
    main()
