"""plan/apply at scale: N persona configs applied to an empty local sandbox, then a no-op plan.

For each size (default 10, 50, 100, 500) and round, a fresh sandbox (in this process, on
127.0.0.1), a project with N persona configs and no state file; times `tune apply` (N creates), then `tune plan` with
nothing to do (N reads), each in its own process as a user runs them. Prints the times and the
ratios against the 50-config run measured here: apply 500/50 (target <= 12x, linear is 10x) and
no-op plan 500/50 (target <= 3x). Also the size of logs/api.jsonl.

Usage: .venv/bin/python bench/plan_scale.py [--sizes 10,50,100,500] [--rounds 3] [--code DIR]
  --code DIR  run the harness_core found in DIR (e.g. a worktree of main) instead of this one's,
              to measure a baseline; the sandbox is always this tree's.
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
sys.path.insert(0, str(ROOT))

from harness_core.sandbox import Sandbox, SandboxSettings  # noqa: E402

LOCK = "tavus-harness.lock.toml"

RUN = "import sys; from harness_core.cli import program; program.run(['tune', *sys.argv[1:]])"


def make_project(where: Path, n: int) -> Path:
    """A project with N persona configs (the facilitator example, renamed), and presets/ if this repo has one."""
    project = where / f"p{n}"
    project.mkdir(parents=True)
    if (ROOT / "presets").is_dir():  # project presets are optional: the built-in ones are in the package
        shutil.copytree(ROOT / "presets", project / "presets")
    if (ROOT / "tavus-harness.toml").is_file():  # the project marker
        shutil.copy(ROOT / "tavus-harness.toml", project / "tavus-harness.toml")
    (project / "logs").mkdir(parents=True)
    folder = project / "configs" / "persona"
    folder.mkdir(parents=True)
    base = json.loads((ROOT / "configs" / "persona" / "facilitator.example.json").read_text())
    tools = project / "configs" / "tools"
    tools.mkdir(parents=True)
    for i in range(n):  # each PAL attaches a tool of its own: tools are planned and resolved too
        (tools / f"bench_tool_{i:04d}.json").write_text(json.dumps(
            {"name": f"bench_tool_{i:04d}", "description": "Bench tool.", "delivery": {"app_message": True}}))
        config = {**base, "persona_name": f"Bench persona {i:04d}", "context": f"Team {i}.",
                  "tools": [f"bench_tool_{i:04d}"], "tools_as": "attached"}
        (folder / f"bench_{i:04d}.json").write_text(json.dumps(config, indent=2))
    return project


def tune(args: list[str], project: Path, env: dict, code: str | None, ok=(0,)) -> float:
    """Run one command; its wall time in seconds (a failure stops the bench)."""
    cmd = [sys.executable, "-c", RUN, *args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env={**env, **({"PYTHONPATH": code} if code else {})},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=3600)
    wall = time.perf_counter() - started
    if proc.returncode not in ok:
        sys.exit(f"tune {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall


def measure(project: Path, code: str | None) -> dict:
    """One round on an empty sandbox: apply everything, then a no-op plan (its exit code must be 0)."""
    (project / LOCK).unlink(missing_ok=True)
    log = project / "logs" / "api.jsonl"
    log.unlink(missing_ok=True)
    sandbox = Sandbox(SandboxSettings(time_scale=0.01)).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
        env.update(TAVUS_API_URL=sandbox.url, TAVUS_HARNESS_DOTENV=str(project / "none.env"))
        apply = tune(["apply"], project, env, code)
        created = len(sandbox.store.personas)
        plan = tune(["plan"], project, env, code)
        return {"apply": apply, "plan": plan, "created": created, "log_mib": log.stat().st_size / 2 ** 20}
    finally:
        sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,100,500")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per size (medians are shown); sizes alternate")
    parser.add_argument("--code", default=None, help="directory whose harness_core to run (a baseline)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    runs: dict[int, list[dict]] = {n: [] for n in sizes}
    with tempfile.TemporaryDirectory(prefix="plan-scale-") as tmp:
        projects = {n: make_project(Path(tmp), n) for n in sizes}
        for _ in range(args.rounds):  # alternating, so a busy moment on the machine hits every size alike
            for n in sizes:
                run = measure(projects[n], args.code)
                if run["created"] != n:
                    sys.exit(f"expected {n} personas, the sandbox has {run['created']}")
                runs[n].append(run)
    rows = {n: {k: statistics.median(r[k] for r in runs[n]) for k in ("apply", "plan", "log_mib")} for n in sizes}
    print(f"median of {args.rounds} round(s); harness_core from {args.code or ROOT}")
    print(f"{'configs':>7} {'apply s':>9} {'no-op plan s':>13} {'api.jsonl MiB':>14}")
    for n in sizes:
        print(f"{n:>7} {rows[n]['apply']:>9.2f} {rows[n]['plan']:>13.2f} {rows[n]['log_mib']:>14.2f}")
    if 50 in rows:
        for n in sizes:
            if n > 50:
                print(f"ratio {n}/50: apply {rows[n]['apply'] / rows[50]['apply']:.1f}x (linear {n / 50:.0f}x), "
                      f"no-op plan {rows[n]['plan'] / rows[50]['plan']:.1f}x")
        if 500 in rows:
            a, p = rows[500]["apply"] / rows[50]["apply"], rows[500]["plan"] / rows[50]["plan"]
            print(f"targets: apply 500/50 <= 12x: {'met' if a <= 12 else 'NOT met'} ({a:.1f}x); "
                  f"no-op plan 500/50 <= 3x: {'met' if p <= 3 else 'NOT met'} ({p:.1f}x)")


if __name__ == "__main__":
    main()
