"""Webhook receiver killed mid-burst: nothing acknowledged is lost, nothing is stored twice, every record reads.

Each round starts `tune webhook` in one scratch project, posts a burst of distinct callbacks (a new
conversation for each) from 16 senders, and stops the receiver mid-burst: `kill -9` in half of the
rounds, SIGTERM in the other half. Then, like a sender that retries, it re-sends to a fresh receiver
every callback that was not acknowledged with a 200. At the end of all rounds the store must hold
every callback sent exactly once, with every row readable (and `PRAGMA integrity_check` ok); a
SIGTERM round must also end with exit code 0 and no traceback.
Usage: .venv/bin/python bench/receiver_durability.py [--rounds 5] [--burst 1500]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

TUNE = str(Path(sys.executable).parent / "tune")
TOKEN = "bench-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(project: str) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env.update(WEBHOOK_TOKEN=TOKEN, TAVUS_HARNESS_DOTENV=str(Path(project) / ".env"))
    port = free_port()
    proc = subprocess.Popen([TUNE, "webhook", "--port", str(port), "--json"], cwd=project, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc, f"http://127.0.0.1:{port}/tavus/callback?token={TOKEN}"
        except requests.RequestException:
            time.sleep(0.05)
    sys.exit("the receiver did not start")


def event(n: int) -> dict:
    return {"properties": {"replica_id": "r4317e64d25a", "n": n}, "conversation_id": f"cdur{n:08d}",
            "webhook_url": "http://127.0.0.1/bench", "event_type": "system.replica_joined",
            "message_type": "system", "timestamp": f"2026-11-24T00:00:00.{n % 1000000:06d}Z"}


def send_all(url: str, numbers: list[int], acked: set, lock: threading.Lock, stop_after: int | None = None,
             on_threshold=None) -> None:
    """Post `numbers` from 16 threads; add each acknowledged one to `acked`; call on_threshold once at stop_after."""
    todo = iter(numbers)
    fired = threading.Event()

    def sender():
        session = requests.Session()
        while True:
            with lock:
                n = next(todo, None)
            if n is None:
                return
            try:
                resp = session.post(url, json=event(n), timeout=5)
                ok = resp.status_code == 200
            except requests.RequestException:
                session = requests.Session()
                ok = False
            with lock:
                if ok:
                    acked.add(n)
                if stop_after is not None and len(acked) >= stop_after and not fired.is_set():
                    fired.set()
                    threading.Thread(target=on_threshold).start()

    threads = [threading.Thread(target=sender) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each kind (kill -9, SIGTERM)")
    parser.add_argument("--burst", type=int, default=1500, help="callbacks per round")
    args = parser.parse_args()
    project = tempfile.mkdtemp(prefix="durability-")
    sent: list[int] = []
    acked: set = set()
    lock = threading.Lock()
    problems, rows_acked_first = [], 0
    kinds = ["kill -9", "SIGTERM"] * args.rounds
    print(f"{len(kinds)} rounds of {args.burst} callbacks from 16 senders, stopped after ~{args.burst // 3} acknowledgements")
    for r, kind in enumerate(kinds):
        numbers = list(range(r * args.burst, (r + 1) * args.burst))
        sent += numbers
        proc, url = start(project)
        sig = signal.SIGKILL if kind == "kill -9" else signal.SIGTERM
        before = len(acked)
        send_all(url, numbers, acked, lock, stop_after=before + args.burst // 3, on_threshold=lambda: proc.send_signal(sig))
        try:
            err = proc.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            proc.kill()
            err = proc.communicate()[1]
            problems.append(f"round {r + 1} ({kind}): did not stop within 30 s")
        if kind == "SIGTERM" and (proc.returncode != 0 or "Traceback" in err):
            problems.append(f"round {r + 1} (SIGTERM): exit {proc.returncode}, {err.strip()[-300:]}")
        acked_in_round = len(acked) - before
        missing = [n for n in numbers if n not in acked]
        proc, url = start(project)  # the retry: everything not acknowledged is sent again
        send_all(url, missing, acked, lock)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        rows_acked_first += acked_in_round
        print(f"round {r + 1:2d} {kind:<8} acknowledged before the stop: {acked_in_round:5d}, re-sent: {len(missing):5d}")
    db = sqlite3.connect(Path(project) / "logs" / "callbacks.sqlite3")
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    stored, unreadable = [], 0
    for (text,) in db.execute("SELECT record FROM events"):
        try:
            stored.append(json.loads(text)["event"]["properties"]["n"])
        except (ValueError, KeyError, TypeError):
            unreadable += 1
    lost = len(set(sent) - set(stored))
    dup = len(stored) - len(set(stored))
    never_acked = len(set(sent) - acked)
    print(f"sent {len(sent)}, stored {len(stored)}: lost {lost}, duplicated {dup}, unreadable {unreadable}, "
          f"integrity_check {integrity}, never acknowledged {never_acked}")
    for p in problems:
        print("PROBLEM:", p)
    print("target: 0 lost, 0 duplicated, 0 unreadable; SIGTERM rounds exit 0 without a traceback")


if __name__ == "__main__":
    main()
