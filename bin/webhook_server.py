#!/usr/bin/env python3
"""Kept for the seed's users: `python bin/webhook_server.py --port N --path P` is `tune webhook --port N --path P`."""
import sys
from pathlib import Path

try:
    from harness_core.cli import ns, program
except ImportError:
    venv_python = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
    if venv_python.is_file():
        sys.exit(f"error: tavus-harness is installed in {venv_python.parent.parent}, not for this Python. "
                 f"Run: {venv_python} {' '.join([sys.argv[0], *sys.argv[1:]])} (or `source .venv/bin/activate` first)")
    sys.exit("error: tavus-harness is not installed. Run: python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'")

if __name__ == "__main__":
    if "webhook" not in ns.task_names:
        sys.exit("error: the webhook task is not available yet in this version of tavus-harness")
    program.run(["tune", "webhook", *sys.argv[1:]])
