"""`invoke run` at scale: N copies of the smoke scenario with --max-concurrent 16 on the embedded sandbox.

Baseline in the same run: the same command with one copy. Prints both walls (the whole `tune run`
process, start-up included), the ratio, and the failures. Each run gets a fresh scratch project
(copies of configs/, presets/ and N scenario files) and an environment without TAVUS_* variables,
so the embedded sandbox is used and nothing leaves 127.0.0.1.
Usage: .venv/bin/python bench/run_scale.py [--scenarios 50] [--max-concurrent 16] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TUNE = str(Path(sys.executable).parent / "tune")
SMOKE = ROOT / "scenarios" / "facilitator_smoke.toml"


def copy_project_files(root: Path) -> None:
    """Copy this repo's project files into `root`: only those that exist (built-in presets need no copy)."""
    for name in ("configs", "presets"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, root / name)
    if (ROOT / "tavus-harness.toml").is_file():  # the project marker, so `root` is the project's root
        shutil.copy(ROOT / "tavus-harness.toml", root / "tavus-harness.toml")


def scratch_project(base: Path, copies: int) -> Path:
    """A project folder (the repo's configs/, presets/ and tavus-harness.toml, those that exist) and
    `copies` scenario files (distinct names)."""
    root = Path(tempfile.mkdtemp(dir=base))
    copy_project_files(root)
    folder = root / "scenarios"
    folder.mkdir()
    text = SMOKE.read_text()
    for i in range(copies):
        (folder / f"smoke_{i:03d}.toml").write_text(text.replace('name = "Facilitator smoke"', f'name = "Smoke {i:03d}"'))
    return root


def run_once(base: Path, copies: int, max_concurrent: int) -> dict:
    """One `tune run scenarios/ --json`; its wall time and what the report says."""
    root = scratch_project(base, copies)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env["TAVUS_HARNESS_DOTENV"] = str(root / ".env")
    started = time.perf_counter()
    proc = subprocess.run([TUNE, "run", "scenarios/", "--json", "--max-concurrent", str(max_concurrent)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        sys.exit(f"tune run printed no report (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    failed = [r for r in report["scenarios"] if not r["passed"]]
    api_log = (root / "logs" / "api.jsonl").read_text(errors="replace") if (root / "logs" / "api.jsonl").exists() else ""
    shutil.rmtree(root, ignore_errors=True)
    return {"wall": wall, "summary": report["summary"], "failed": len(failed), "rc": proc.returncode,
            "scenario_s": statistics.median(r["seconds"] for r in report["scenarios"]),
            "limit_400s": api_log.count("maximum concurrent conversations")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=50)
    parser.add_argument("--max-concurrent", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each; medians are printed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="run-scale-") as tmp:
        one, many = [], []
        for _ in range(args.rounds):  # alternate, so machine drift hits both alike
            one.append(run_once(Path(tmp), 1, args.max_concurrent))
            many.append(run_once(Path(tmp), args.scenarios, args.max_concurrent))
    print(f"{'run':<40} {'wall s (median)':>16} {'min':>7} {'max':>7}  {'one scenario s':>14}  failures  limit 400s")
    for label, rows in (("1 scenario", one), (f"{args.scenarios} scenarios, --max-concurrent {args.max_concurrent}", many)):
        walls = [r["wall"] for r in rows]
        print(f"{label:<40} {statistics.median(walls):>16.2f} {min(walls):>7.2f} {max(walls):>7.2f}  "
              f"{statistics.median(r['scenario_s'] for r in rows):>14.2f}  {sum(r['failed'] for r in rows):>8}  "
              f"{sum(r['limit_400s'] for r in rows):>10}")
    ratio = statistics.median(r["wall"] for r in many) / statistics.median(r["wall"] for r in one)
    print(f"ratio {args.scenarios} scenarios / 1 scenario: {ratio:.2f}x (target <= 2x); "
          f"failures: {sum(r['failed'] for r in many + one)} (target 0)")


if __name__ == "__main__":
    main()
