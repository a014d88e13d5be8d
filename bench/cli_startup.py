"""CLI start-up: `tune persona --dry-run` (and `invoke persona --dry-run`) against the bare import
floor, and against the official Tavus CLI's `tavus --help`, all measured in the same run.

Prints median wall time and peak memory, the ratios, and the imports that dominate start-up (from
`python -X importtime`). No network: the dry run sends nothing. The official CLI is looked for in
a scratch venv (`.venv-tavus-cli`, which .ci/run installs: `python3 -m venv .venv-tavus-cli && .venv-tavus-cli/bin/pip install tavus-cli==0.11.0`,
or --tavus PATH); without it that line is skipped with a note.
Usage: .venv/bin/python bench/cli_startup.py [--runs 15] [--tavus .venv-tavus-cli/bin/tavus]
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
TUNE = str(Path(PY).parent / "tune")
FLOOR = [PY, "-c", "import requests, pluggy, invoke, dotenv, tomli_w"]
DRY_RUN = ["persona", "--dry-run", "--config", "configs/persona/facilitator.example.json"]
CLI = [TUNE, *DRY_RUN]
CLI_INVOKE = [INVOKE, *DRY_RUN]
# a persona with tools: their parameter schemas are checked (by the quick validator, not jsonschema)
TOOLS_CLI = [TUNE, "persona", "--dry-run", "--config", "configs/persona/assistant_modular.json"]


def measure_once(cmd, env):
    out = subprocess.run([PY, str(ROOT / "bench" / "_measure.py"), *cmd], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    row = json.loads(out.stdout)
    if row["rc"] != 0:
        sys.exit(f"command failed ({row['rc']}): {' '.join(cmd)}\n{row['stderr']}")
    return row


def measure(commands, env, runs):
    """Median wall time and max peak RSS per command; runs alternate, so drift hits both alike."""
    rows = {i: [] for i in range(len(commands))}
    for _ in range(runs):
        for i, cmd in enumerate(commands):
            rows[i].append(measure_once(cmd, env))
    return [(statistics.median(r["wall"] for r in rows[i]), max(r["peak_mib"] for r in rows[i]))
            for i in range(len(commands))]


def import_self_times(cmd, env) -> dict[str, float]:
    """Self import time (ms) per module, from `python -X importtime`."""
    proc = subprocess.run([PY, "-X", "importtime", *cmd], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    times = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            times[m.group(2)] = int(m.group(1)) / 1000
    return times


def extra_imports(env, n=8):
    """What the dry run imports beyond the floor, summed per top-level package, largest first."""
    floor = import_self_times(FLOOR[1:], env)
    cli = import_self_times(["-m", "invoke", *CLI[1:]], env)
    groups: dict[str, float] = {}
    for module, ms in cli.items():
        if module not in floor:
            groups[module.split(".")[0]] = groups.get(module.split(".")[0], 0) + ms
    return sorted(((ms, name) for name, ms in groups.items()), reverse=True)[:n]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tavus", default=str(ROOT / ".venv-tavus-cli" / "bin" / "tavus"), help="the official CLI's executable")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    # A user's Python keeps bytecode caches, and pip wrote them for the floor's libraries; with
    # PYTHONDONTWRITEBYTECODE set, our modules would be compiled on every run and we would
    # measure the compiler. The warm-up run writes them.
    bytecode_off = env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(CLI, cwd=ROOT, env=env, capture_output=True, timeout=120)  # warm the caches
    subprocess.run(CLI_INVOKE, cwd=ROOT, env=env, capture_output=True, timeout=120)
    official = [args.tavus, "--help"] if Path(args.tavus).is_file() else None
    if official:
        subprocess.run(official, cwd=ROOT, env=env, capture_output=True, timeout=120)
    commands = [FLOOR, CLI, CLI_INVOKE, TOOLS_CLI] + ([official] if official else [])
    measured = measure(commands, env, args.runs)
    (floor_wall, floor_mem), (cli_wall, cli_mem), (inv_wall, inv_mem), (tools_wall, tools_mem) = measured[:4]
    print(f"runs per command: {args.runs}, alternating (median wall time, max peak RSS)")
    if bytecode_off:
        print("note: PYTHONDONTWRITEBYTECODE was set here; unset for these runs so bytecode caches are used")
    print(f"import floor        {floor_wall * 1000:7.1f} ms  {floor_mem:6.1f} MiB   {' '.join(FLOOR[1:])}")
    print(f"tune dry-run        {cli_wall * 1000:7.1f} ms  {cli_mem:6.1f} MiB   tune persona --dry-run --config ...")
    print(f"invoke dry-run      {inv_wall * 1000:7.1f} ms  {inv_mem:6.1f} MiB   invoke persona --dry-run --config ...")
    print(f"tune / floor        {cli_wall / floor_wall:7.2f} x   {cli_mem / floor_mem:6.2f} x     (target: wall <= 1.2x)")
    print(f"invoke / floor      {inv_wall / floor_wall:7.2f} x   {inv_mem / floor_mem:6.2f} x")
    tools_imports = import_self_times(["-m", "invoke", *TOOLS_CLI[1:]], env)
    print(f"tools dry-run       {tools_wall * 1000:7.1f} ms  {tools_mem:6.1f} MiB   tune persona --dry-run --config "
          f"configs/persona/assistant_modular.json ({tools_wall / floor_wall:.2f}x floor; jsonschema imported: "
          f"{'yes' if any(m.split('.')[0] == 'jsonschema' for m in tools_imports) else 'no'})")
    if official:
        tavus_wall, tavus_mem = measured[4]
        print(f"tavus --help        {tavus_wall * 1000:7.1f} ms  {tavus_mem:6.1f} MiB   the official Tavus CLI")
        print(f"tune / tavus --help {cli_wall / tavus_wall:7.2f} x   {cli_mem / tavus_mem:6.2f} x     (target: wall <= 0.5x)")
    else:
        print(f"tavus --help        skipped: {args.tavus} not found (install tavus-cli==0.11.0 in .venv-tavus-cli, as .ci/run does)")
    print("imports beyond the floor (self time under -X importtime, which inflates it; per package):")
    for ms, name in extra_imports(env):
        print(f"  {ms:7.1f} ms  {name}")


if __name__ == "__main__":
    main()
