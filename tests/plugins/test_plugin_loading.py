"""Plugins load through one path: entry points for built-ins and third parties alike."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness_core import plugins
from harness_core.context import make_context
from harness_core.errors import PluginError

BIN = Path(sys.executable).parent

HX_DEMO = '''
from harness_core import hookimpl

@hookimpl
def harness_config_keys(kind):
    return ["hx_label"] if kind == "persona" else None

@hookimpl
def harness_build_payload(kind, config):
    if kind == "persona":
        return {"document_tags": ["hx-demo:" + config.get("hx_label", "none")]}
'''


def install_third_party(tmp_path: Path) -> Path:
    """Write hx_demo.py and its dist-info (with a tavus_harness entry point) into a folder."""
    site = tmp_path / "site"
    dist = site / "hx_demo-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "hx_demo.py").write_text(HX_DEMO)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hx-demo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tavus_harness]\nhx_demo = hx_demo\n")
    return site


def run_tune(args, cwd, env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env.update(env_extra)
    return subprocess.run([str(BIN / "tune"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_third_party_plugin_is_listed_with_its_distribution_and_hooks(tmp_path):
    site = install_third_party(tmp_path)
    proc = run_tune(["plugins", "--third-party", "--json"], tmp_path, {"PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {"hx_demo"}, "--third-party leaves the built-ins out"
    listed = run_tune(["plugins"], tmp_path, {"PYTHONPATH": str(site)}).stdout
    assert "hx_demo" in listed and "hx-demo 0.1" in listed and "built-in" in listed
    assert rows["hx_demo"]["distribution"] == "hx-demo" and rows["hx_demo"]["version"] == "0.1"
    assert rows["hx_demo"]["hooks"] == ["harness_build_payload", "harness_config_keys"]


def test_plugins_lists_builtins_as_entry_points_of_this_distribution(tmp_path):
    proc = run_tune(["plugins", "--json"], tmp_path, {})
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(plugins.BUILTINS) <= set(rows)
    assert all(rows[n]["builtin"] and rows[n]["distribution"] == "tavus-harness" for n in plugins.BUILTINS)


def test_third_party_plugin_changes_a_real_persona_payload(tmp_path):
    site = install_third_party(tmp_path)
    proc = run_tune(["persona", "--persona-name", "P", "--system-prompt", "Be brief.", "--dry-run", "--json"],
                    tmp_path, {"PYTHONPATH": str(site), "TAVUS_API_URL": "http://127.0.0.1:9/v2"})
    assert proc.returncode == 0, proc.stderr
    assert "hx-demo:none" in proc.stdout


def test_block_list_keeps_a_builtin_out(tmp_path):
    proc = run_tune(["plugins", "--json"], tmp_path, {"TAVUS_HARNESS_DISABLE_PLUGINS": "transcript"})
    assert proc.returncode == 0, proc.stderr
    assert "transcript" not in {r["name"] for r in json.loads(proc.stdout)}


def test_missing_builtins_are_a_plugin_error_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(plugins, "BUILTINS", plugins.BUILTINS + ("ghost",))
    with pytest.raises(PluginError) as err:
        plugins.get_plugin_manager(make_context(tmp_path, {}).env)
    assert "ghost" in err.value.message and "pip install -e ." in err.value.hint


def test_a_broken_third_party_plugin_is_one_error_line_not_a_traceback(tmp_path):
    site = install_third_party(tmp_path)
    (site / "hx_demo.py").write_text("from harness_core import hookimpl\n@hookimpl\ndef harness_no_such_hook():\n    pass\n")
    proc = run_tune(["plugins"], tmp_path, {"PYTHONPATH": str(site)})
    assert proc.returncode == PluginError.exit_code
    assert proc.stderr.startswith("error: plugin") and "Traceback" not in proc.stderr
    assert "TAVUS_HARNESS_DISABLE_PLUGINS" in proc.stderr


def test_trace_prints_hook_calls_with_secrets_redacted(tmp_path):
    site = install_third_party(tmp_path)
    proc = run_tune(["persona", "--persona-name", "P", "--system-prompt", "hello", "--dry-run"], tmp_path,
                    {"PYTHONPATH": str(site), "TAVUS_HARNESS_TRACE_PLUGINS": "1",
                     "TAVUS_API_URL": "http://127.0.0.1:9/v2", "TAVUS_API_KEY": "tk-very-secret-1"})
    assert "hook harness_build_payload" in proc.stderr
    assert "tk-very-secret-1" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("body", ["raise RuntimeError('no config for hx_demo\\nsee its README')",
                                  "raise ValueError('bad value')", "import json; json.loads('{')"])
def test_a_third_party_plugin_failing_at_import_in_any_way_is_one_error_line(tmp_path, body):
    site = install_third_party(tmp_path)
    (site / "hx_demo.py").write_text(body + "\n")
    proc = run_tune(["plugins"], tmp_path, {"PYTHONPATH": str(site)})
    assert proc.returncode == PluginError.exit_code, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: a `tavus_harness` entry point failed to load: ")
    assert "TAVUS_HARNESS_DISABLE_PLUGINS" in proc.stderr


@pytest.mark.parametrize("value, traced", [("yes", True), ("on", True), ("TRUE", True), ("0", False), ("no", False)])
def test_trace_plugins_reads_the_flag_like_every_other_flag(tmp_path, value, traced):
    proc = run_tune(["persona", "--persona-name", "P", "--system-prompt", "hello", "--dry-run"], tmp_path,
                    {"TAVUS_HARNESS_TRACE_PLUGINS": value, "TAVUS_API_URL": "http://127.0.0.1:9/v2"})
    assert proc.returncode == 0, proc.stderr
    assert ("hook harness_build_payload" in proc.stderr) is traced
