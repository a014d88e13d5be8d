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
    assert "1 passed, 3 deselected, 1 xfailed" in proc.stdout
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
    # the smoke, the two dialogue scenarios, the simulated user skipped (no model), the failure demo
    assert "3 passed, 1 skipped, 1 xfailed" in proc.stdout and "bringing up nodes" in proc.stdout


def collected(folder, *args) -> str:
    """What `pytest --collect-only` lists in `folder` (a project of its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def test_an_unrelated_projects_toml_is_never_collected(tmp_path):
    (tmp_path / "data.toml").write_text('[scenario]\nname = "not ours"\n')
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    pass\n")
    out = collected(tmp_path)
    assert "test_ok.py::test_ok" in out and "data.toml" not in out


def test_scenario_files_are_found_by_their_toml_not_their_text(tmp_path):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "real.toml").write_text('[scenario]\nname = "Real"\npersona_config = "p.json"\n')
    (tmp_path / "scenarios" / "mentions.toml").write_text('note = "the [scenario] table is elsewhere"\n')
    (tmp_path / "agent_tests").mkdir()
    (tmp_path / "agent_tests" / "other.toml").write_text('[scenario]\nname = "Other"\n')
    out = collected(tmp_path)
    assert "scenarios/real.toml::real" in out and "mentions" not in out and "other.toml" not in out
    (tmp_path / "pytest.ini").write_text("[pytest]\ntavus_scenarios = agent_tests\n")
    assert "agent_tests/other.toml::other" in collected(tmp_path)
