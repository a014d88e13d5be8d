#!/usr/bin/env python3
"""Kept for the seed's users: `python bin/webhook_server.py --port N --path P` is `tune webhook --port N --path P`."""
import sys

try:
    from harness_core.cli import ns, program
except ImportError:
    sys.exit("error: tavus-harness is not installed. Run: python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'")

if __name__ == "__main__":
    if "webhook" not in ns.task_names:
        sys.exit("error: the webhook task is not available yet in this version of tavus-harness")
    program.run(["tune", "webhook", *sys.argv[1:]])
