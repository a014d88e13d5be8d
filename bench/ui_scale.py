"""The inspector (`tune ui`) over a large callback store, and while callbacks arrive at full rate.

Builds two scratch projects holding 1,000 and 100,000 Tavus-shaped callbacks, 50 per conversation
(written as the logs/callbacks/*.jsonl of earlier versions, which the first open imports into
logs/callbacks.sqlite3), serves each with `tune ui` in its own process, and times each page from a
client on 127.0.0.1 (median of --repeat rounds, each a warm-up request and a timed one, the two
inspectors' rounds alternating): the newest events page, a page
deep in the history (keyset cursor), the events of one conversation, one event type, the
conversations list and one conversation's timeline. The 1,000-event project is the baseline measured
in the same run; the target is that no page costs more than 2x its 1k figure over 100k events (a
page must not scan the store).
Then `tune webhook --ui` on the 100k project: 10,000 callbacks from 32 senders at full rate while
the same pages are fetched again; it prints the page latencies under that load beside the quiet
ones, the receiver's throughput with and without the page reads, and checks that the newest events
page shows the last callback posted.
Usage: .venv/bin/python bench/ui_scale.py [--large 100000] [--small 1000] [--repeat 21]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from receiver_load import TOKEN, blast, free_port, wait_up  # noqa: E402

TUNE = str(Path(sys.executable).parent / "tune")
PER_CONVERSATION = 50
TYPES = ("system.replica_joined", "conversation.utterance", "application.transcription_ready", "system.shutdown")


def cid_of(i: int) -> str:
    return f"cui{i // PER_CONVERSATION:013x}"


def populate(project: Path, count: int) -> None:
    """`count` callbacks, PER_CONVERSATION per conversation, as the JSONL files of earlier versions."""
    folder = project / "logs" / "callbacks"
    folder.mkdir(parents=True)
    handle, current = None, None
    try:
        for i in range(count):
            cid, kind = cid_of(i), TYPES[min(i % PER_CONVERSATION, len(TYPES) - 1)] if i % PER_CONVERSATION < 3 \
                else ("system.shutdown" if i % PER_CONVERSATION == PER_CONVERSATION - 1 else "conversation.utterance")
            props = {"role": "user", "speech": f"Utterance {i}: let us talk about the agenda."}
            if kind == "application.transcription_ready":
                props = {"transcript": [{"role": "user", "content": f"Hello {i}"},
                                        {"role": "assistant", "content": "Hi! <script>alert(1)</script>"}]}
            elif kind == "system.shutdown":
                props = {"shutdown_reason": "participant_left_timeout"}
            stamp = f"2026-11-24T{i // 3600000 % 24:02d}:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}000Z"
            record = {"ts": stamp, "run_id": "bench", "type": "callback",
                      "event": {"properties": props, "conversation_id": cid, "event_type": kind,
                                "message_type": kind.split(".")[0], "timestamp": stamp}}
            if cid != current:
                if handle:
                    handle.close()
                handle, current = open(folder / f"{cid}.jsonl", "w", encoding="utf-8"), cid
            handle.write(json.dumps(record) + "\n")
    finally:
        if handle:
            handle.close()


def environment(project: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env.update(TAVUS_HARNESS_DOTENV=str(project / ".env"), WEBHOOK_TOKEN=TOKEN)
    return env


def pages(count: int) -> dict[str, str]:
    """The pages to time, for a store of `count` events (ids are 1..count after the import)."""
    middle_cid = cid_of(count // 2)
    return {"events (newest)": "/events",
            "events deep page": f"/events?before={count // 2}",
            "events of 1 conv": f"/events?conversation_id={middle_cid}",
            "events of 1 type": "/events?type=conversation.utterance",  # a full page in both stores
            "events of a group": f"/events?type=conversation&before={count // 2}",
            "conversations": "/conversations",
            "1 conversation": f"/conversations/{middle_cid}"}


def time_pages(base: str, paths: dict[str, str], repeat: int) -> dict[str, list[float]]:
    """Milliseconds per request for each page (one warm-up request first, each must answer 200)."""
    out = {}
    with requests.Session() as http:
        for name, path in paths.items():
            answer = http.get(base + path, timeout=60)
            if answer.status_code != 200:
                sys.exit(f"GET {path}: {answer.status_code} {answer.text[:300]}")
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                http.get(base + path, timeout=60).raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
            out[name] = times
    return out


def start(argv: list[str], project: Path) -> subprocess.Popen:
    return subprocess.Popen([TUNE, *argv], cwd=project, env=environment(project),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(30)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        projects, quiet = {}, {}
        for n in (args.small, args.large):
            projects[n] = project = Path(tmp) / f"p{n}"
            project.mkdir()
            populate(project, n)
            started = time.perf_counter()
            subprocess.run([TUNE, "events", "--type", "none.such"], cwd=project, env=environment(project),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=600)
            print(f"store of {n:>7} events imported in {time.perf_counter() - started:5.1f} s")
        servers, bases = [], {}
        try:  # both inspectors at once, their requests alternating: drift on a shared machine hits both alike
            for n, project in projects.items():
                port = free_port()
                servers.append(start(["ui", "--port", str(port)], project))
                bases[n] = f"http://127.0.0.1:{port}"
                wait_up(f"{bases[n]}/events")
            for n in projects:
                quiet[n] = {}
            for _ in range(args.repeat):
                for n in projects:
                    for name, times in time_pages(bases[n], pages(n), 1).items():
                        quiet[n].setdefault(name, []).extend(times)
        finally:
            for server in servers:
                stop(server)
        print(f"\n{'page (median ms)':<20} {args.small:>9} {args.large:>9} {'ratio':>7}")
        worst = 0.0
        for name in pages(args.small):
            small, large = statistics.median(quiet[args.small][name]), statistics.median(quiet[args.large][name])
            worst = max(worst, large / small)
            print(f"{name:<20} {small:9.1f} {large:9.1f} {large / small:6.2f}x")
        print(f"worst ratio {worst:.2f}x (target: <= 2x, no page scans the store)")

        # -- while a sender posts at full rate ---------------------------------------------------
        project = projects[args.large]
        port, ui_port = free_port(), free_port()
        rx = start(["webhook", "--port", str(port), "--ui", "--ui-port", str(ui_port), "--json"], project)
        busy = {}
        try:
            wait_up(f"http://127.0.0.1:{port}/healthz")
            wait_up(f"http://127.0.0.1:{ui_port}/events")
            url = f"http://127.0.0.1:{port}/tavus/callback?token={TOKEN}"
            alone = blast(url, 10_000, 32, first=10**7)
            done = threading.Event()
            result = {}

            def sender():
                result["with pages"] = blast(url, 10_000, 32, first=2 * 10**7)
                done.set()

            threading.Thread(target=sender, daemon=True).start()
            rounds = 0
            while not done.is_set():
                for name, times in time_pages(f"http://127.0.0.1:{ui_port}", pages(args.large), 1).items():
                    busy.setdefault(name, []).extend(times)
                rounds += 1
            newest = requests.get(f"http://127.0.0.1:{ui_port}/events", timeout=30).text
            shows_last = any(f"&#34;n&#34;: {2 * 10**7 + k}" in newest or f'"n": {2 * 10**7 + k}' in newest
                             for k in range(10_000 - 32, 10_000))  # one of the last 32 posted (32 senders)
        finally:
            stop(rx)
        print(f"\nwhile `tune webhook --ui` takes 10,000 callbacks from 32 senders ({rounds} rounds of page reads):")
        print(f"{'page (ms)':<20} {'quiet med':>9} {'busy med':>9} {'busy p90':>9} {'busy max':>9}")
        for name, times in busy.items():
            q = statistics.median(quiet[args.large][name])
            p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 1 else times[0]
            print(f"{name:<20} {q:9.1f} {statistics.median(times):9.1f} {p90:9.1f} {max(times):9.1f}")
        for name, (secs, lat, failed) in (("callbacks alone", alone), ("with page reads", result["with pages"])):
            print(f"receiver, {name:<16} {len(lat) / secs:7.0f} events/s, {failed} failed")
        print(f"the newest events page shows a callback of the last burst: {'yes' if shows_last else 'NO'}")


if __name__ == "__main__":
    main()
