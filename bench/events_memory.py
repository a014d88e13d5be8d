"""`invoke events` over a large store: peak memory must not grow with the number of stored events.

Builds two scratch projects holding 1,000 and 100,000 Tavus-shaped callbacks over 100 conversations
(written as the logs/callbacks/*.jsonl of earlier versions, which the first read imports into
logs/callbacks.sqlite3; that import is timed separately), then runs `tune events` (text), `--json`
and `--jsonl` over each, with stdout to /dev/null, and prints wall time and peak RSS. The 1,000-event
project is the baseline measured in the same run; the target is peak(100k) <= 1.5x peak(1k).
Usage: .venv/bin/python bench/events_memory.py [--large 100000] [--small 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TUNE = str(Path(sys.executable).parent / "tune")


def populate(project: Path, count: int) -> None:
    folder = project / "logs" / "callbacks"
    folder.mkdir(parents=True)
    files = {}
    try:
        for i in range(count):
            cid = f"cmem{i % 100:012x}"
            event = {"properties": {"replica_id": "r4317e64d25a", "transcript": [
                {"role": "user", "content": f"Message number {i} with some text in it."}]},
                "conversation_id": cid, "webhook_url": "https://example.test/tavus/callback?token=[redacted]",
                "event_type": "application.transcription_ready" if i % 2 else "system.replica_joined",
                "message_type": "application" if i % 2 else "system",
                "timestamp": f"2026-11-24T00:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}000Z"}
            record = {"ts": f"2026-11-24T01:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}000Z",
                      "run_id": "bench", "type": "callback", "event": event}
            fh = files.get(cid) or files.setdefault(cid, open(folder / f"{cid}.jsonl", "w", encoding="utf-8"))
            fh.write(json.dumps(record) + "\n")
    finally:
        for fh in files.values():
            fh.close()


def measure(project: Path, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env["TAVUS_HARNESS_DOTENV"] = str(project / ".env")
    out = subprocess.run([sys.executable, str(HERE / "_measure.py"), TUNE, "events", *args], cwd=project, env=env,
                         capture_output=True, text=True, timeout=600)
    result = json.loads(out.stdout)
    if result["rc"] != 0:
        sys.exit(f"tune events {' '.join(args)} failed: {result['stderr']}")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        projects = {}
        for n in (args.small, args.large):
            projects[n] = Path(tmp) / f"p{n}"
            projects[n].mkdir()
            populate(projects[n], n)
            imported = measure(projects[n], "--jsonl")  # the first read imports the JSONL files
            print(f"import of {n:>7} events from logs/callbacks/*.jsonl: {imported['wall']:6.2f} s, "
                  f"peak {imported['peak_mib']:6.1f} MiB")
        print(f"{'command':<22} {'events':>8} {'wall s':>8} {'peak MiB':>9}")
        ratios = []
        for flags in ([], ["--json"], ["--jsonl"], ["--type", "system"], ["--conversation-id", "cmem000000000007"]):
            peaks = {}
            for n in (args.small, args.large):
                r = measure(projects[n], *flags)
                peaks[n] = r["peak_mib"]
                print(f"{'events ' + ' '.join(flags):<22} {n:>8} {r['wall']:8.2f} {r['peak_mib']:9.1f}")
            ratios.append((" ".join(flags) or "(text)", peaks[args.large] / peaks[args.small]))
        print("peak memory ratio large/small: " + ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios))
        print("target: <= 1.5x for every form")


if __name__ == "__main__":
    main()
