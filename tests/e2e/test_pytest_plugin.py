"""`pytest scenarios/` collects scenario files as test items (pytest11 entry point)."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET


def test_pytest_collects_selects_and_reports_scenarios(project, sandbox):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env["TAVUS_API_URL"] = sandbox.url
    proc = subprocess.run([sys.executable, "-m", "pytest", "scenarios/", "-k", "smoke or fails", "-p", "no:cacheprovider",
                           "--junitxml", "logs/pytest-junit.xml", "-q"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 1 xfailed" in proc.stdout
    suite = ET.parse(project / "logs" / "pytest-junit.xml").getroot().find("testsuite")
    names = sorted(c.get("name") for c in suite.findall("testcase"))
    assert names == ["facilitator_fails", "facilitator_smoke"]
    assert [c for c, v in sandbox.store.conversations.items() if v["status"] == "active"] == []


def test_scenarios_run_in_parallel_with_xdist(project, sandbox):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env["TAVUS_API_URL"] = sandbox.url
    proc = subprocess.run([sys.executable, "-m", "pytest", "scenarios/", "-n", "2", "-p", "no:cacheprovider", "-q"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 1 xfailed" in proc.stdout and "bringing up nodes" in proc.stdout
