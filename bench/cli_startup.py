"""CLI start-up: `invoke persona --dry-run` against the bare import floor, measured in the same run.

Prints median wall time and peak memory of both, their ratios, and the imports that dominate
start-up (from `python -X importtime`). No network: the dry run sends nothing.
Usage: .venv/bin/python bench/cli_startup.py [--runs 15]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
INVOKE = str(Path(PY).parent / "invoke")
FLOOR = [PY, "-c", "import requests, pluggy, invoke, dotenv, tomli_w"]
CLI = [INVOKE, "persona", "--dry-run", "--config", "configs/persona/facilitator.example.json"]


def measure(cmd, env, runs):
    rows = []
    for _ in range(runs):
        out = subprocess.run([PY, str(ROOT / "bench" / "_measure.py"), *cmd], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
        row = json.loads(out.stdout)
        if row["rc"] != 0:
            sys.exit(f"command failed ({row['rc']}): {' '.join(cmd)}\n{row['stderr']}")
        rows.append(row)
    return statistics.median(r["wall"] for r in rows), max(r["peak_mib"] for r in rows)


def top_imports(env, n=8):
    proc = subprocess.run([PY, "-X", "importtime", "-c", "from harness_core.cli import program"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m and len(m.group(3)) <= 3:  # top-level packages only
            rows.append((int(m.group(2)) / 1000, m.group(4)))
    return sorted(rows, reverse=True)[:n]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env["TAVUS_API_URL"] = "http://127.0.0.1:9/v2"  # never contacted by a dry run
    subprocess.run(CLI, cwd=ROOT, env=env, capture_output=True, timeout=120)  # warm the caches
    floor_wall, floor_mem = measure(FLOOR, env, args.runs)
    cli_wall, cli_mem = measure(CLI, env, args.runs)
    print(f"runs per command: {args.runs} (median wall time, max peak RSS)")
    print(f"import floor   {floor_wall * 1000:7.1f} ms  {floor_mem:6.1f} MiB   {' '.join(FLOOR[1:])}")
    print(f"persona dry-run{cli_wall * 1000:7.1f} ms  {cli_mem:6.1f} MiB   invoke persona --dry-run --config ...")
    print(f"ratio          {cli_wall / floor_wall:7.2f} x   {cli_mem / floor_mem:6.2f} x     (target: wall <= 1.5x)")
    print("what dominates start-up (cumulative import time of `from harness_core.cli import program`):")
    for ms, name in top_imports(env):
        print(f"  {ms:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
