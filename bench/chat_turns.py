"""A 10-turn chat scenario on the embedded sandbox (rule engine, a tool call answered from the example
backend every other turn) against today's smoke scenario, both at the embedded sandbox's time scale.

Each is one `tune run FILE --json` in a fresh scratch project with no TAVUS_* variables (so the
embedded sandbox is used and nothing leaves 127.0.0.1). Prints both walls (the whole process) and
the scenario's own seconds (from the report), their ratios, and the failures. Target: <= 3x.
Usage: .venv/bin/python bench/chat_turns.py [--rounds 5] [--turns 10]
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


def chat_scenario(turns: int) -> str:
    """`turns` user turns; odd ones book a meeting (a tool call the run answers), even ones look up an order."""
    lines = ['[scenario]', 'name = "Chat turns"', 'persona_config = "configs/persona/assistant_modular.json"',
             'mode = "chat"', 'tool_backend = "examples/tool_backend.py"', 'timeout_seconds = 120', '',
             '[tools.schedule_meeting]', 'url = "{tool_backend}/tools/schedule_meeting"', '',
             '[[sandbox.rules]]', 'when = "book"',
             'tool_call = { name = "schedule_meeting", arguments = { title = "Sync", start_time = "2026-12-02T10:00:00Z", '
             'attendees = ["ana@example.com"] } }', 'reply = "Booked: {result}"', '',
             '[[sandbox.rules]]', 'when = "order"', 'reply = "Your order has shipped."', '']
    for i in range(1, turns + 1):
        if i % 2:
            lines += ['[[turns]]', f'user = "Please book meeting number {i}"',
                      'expect.tool_called = { name = "schedule_meeting" }', 'expect.reply_contains = "booked"', '']
        else:
            lines += ['[[turns]]', f'user = "Where is order {i}?"', 'expect.no_tool_called = true',
                      'expect.reply_contains = "shipped"', '']
    lines += ['[expect]', 'tool_result_status = "success"']
    return "\n".join(lines) + "\n"


def run_once(base: Path, name: str, text: str) -> dict:
    """One `tune run scenarios/NAME.toml --json` in a scratch project; its wall and the report's figures."""
    root = Path(tempfile.mkdtemp(dir=base))
    for folder in ("configs", "presets", "examples"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, root / folder)
    (root / "scenarios").mkdir()
    (root / "scenarios" / f"{name}.toml").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env["TAVUS_HARNESS_DOTENV"] = str(root / ".env")
    started = time.perf_counter()
    proc = subprocess.run([TUNE, "run", f"scenarios/{name}.toml", "--json"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    try:
        [scenario] = json.loads(proc.stdout)["scenarios"]
    except (ValueError, KeyError):
        sys.exit(f"tune run printed no report (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    shutil.rmtree(root, ignore_errors=True)
    return {"wall": wall, "seconds": scenario["seconds"], "passed": scenario["passed"],
            "turns": len(scenario.get("dialogue") or [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs of each; medians are printed")
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    chat = chat_scenario(args.turns)
    with tempfile.TemporaryDirectory(prefix="chat-turns-") as tmp:
        smoke, turns = [], []
        for _ in range(args.rounds):  # alternate, so machine drift hits both alike
            smoke.append(run_once(Path(tmp), "smoke", SMOKE.read_text()))
            turns.append(run_once(Path(tmp), "chat", chat))
    print(f"{'run':<34} {'wall s (median)':>15} {'min':>6} {'max':>6} {'scenario s':>11}  failures")
    for label, rows in (("smoke scenario (today)", smoke), (f"{args.turns}-turn chat, rule engine", turns)):
        walls = [r["wall"] for r in rows]
        print(f"{label:<34} {statistics.median(walls):>15.2f} {min(walls):>6.2f} {max(walls):>6.2f} "
              f"{statistics.median(r['seconds'] for r in rows):>11.2f}  {sum(not r['passed'] for r in rows):>8}")
    wall_ratio = statistics.median(r["wall"] for r in turns) / statistics.median(r["wall"] for r in smoke)
    own_ratio = statistics.median(r["seconds"] for r in turns) / statistics.median(r["seconds"] for r in smoke)
    print(f"ratio {args.turns}-turn chat / smoke: {wall_ratio:.2f}x wall, {own_ratio:.2f}x scenario seconds "
          f"(target <= 3x); turns driven: {turns[0]['turns']}; failures: {sum(not r['passed'] for r in smoke + turns)}")


if __name__ == "__main__":
    main()
