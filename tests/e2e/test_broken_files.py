"""Hostile config, preset and scenario files: exit 2 and one `error:` line naming the file, never a traceback or a hang."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness_core.errors import ConfigError
from tests.helpers import run_cli

PERSONA = {"persona_name": "Broken", "system_prompt": "Be brief.", "default_replica_id": "r4317e64d25a"}


def deep_json(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


def deep_toml(levels: int) -> str:
    return "a = " + "[" * levels + "]" * levels + "\n"


# name -> write(project) -> (path given to the command, path the error must name)
def _config(text: str, suffix: str = ".json"):
    def write(root: Path):
        path = root / "configs" / "persona" / f"broken{suffix}"
        path.write_text(text)
        return path, path
    return write


def _special(make):
    def write(root: Path):
        path = make(root)
        return path, path
    return write


def _fifo(root: Path) -> Path:
    path = root / "configs" / "persona" / "pipe.json"
    os.mkfifo(path)
    return path


def _loop(root: Path) -> Path:
    one, two = root / "configs" / "persona" / "one.json", root / "configs" / "persona" / "two.json"
    one.symlink_to(two)
    two.symlink_to(one)
    return one


def _preset(layer: str, text: str):
    """A persona config naming an llm/tts/... preset file that is broken."""
    def write(root: Path):
        preset = root / "presets" / "layers" / layer / "broken.json"
        preset.parent.mkdir(parents=True, exist_ok=True)  # a project preset beside the built-in ones
        preset.write_text(text)
        cfg = root / "configs" / "persona" / "uses_preset.json"
        cfg.write_text(json.dumps({**PERSONA, layer: "broken"}))
        return cfg, Path("presets/layers") / layer / "broken.json"
    return write


def _layers_preset(text: str):
    def write(root: Path):
        (root / "presets" / "layers").mkdir(parents=True, exist_ok=True)
        (root / "presets" / "layers" / "broken.json").write_text(text)
        cfg = root / "configs" / "persona" / "uses_preset.json"
        cfg.write_text(json.dumps({**PERSONA, "layers_preset": "broken"}))
        return cfg, Path("presets/layers/broken.json")
    return write


def _tool(text: str):
    def write(root: Path):
        (root / "presets" / "layers" / "llm" / "tools").mkdir(parents=True, exist_ok=True)
        (root / "presets" / "layers" / "llm" / "tools" / "broken.json").write_text(text)
        cfg = root / "configs" / "persona" / "uses_tool.json"
        cfg.write_text(json.dumps({**PERSONA, "tools": ["broken"]}))
        return cfg, Path("presets/layers/llm/tools/broken.json")
    return write


BIG_INT = "9" * 4301
CASES = {
    "json nested 100,000 deep": _config(deep_json(100_000)),
    "json nested 200 deep": _config(deep_json(200)),
    "toml nested 100,000 deep": _config(deep_toml(100_000), ".toml"),
    "toml inline tables 500 deep": _config("a = " + "{b = " * 500 + "1" + "}" * 500 + "\n", ".toml"),
    "json integer of 4,301 digits": _config('{"persona_name": ' + BIG_INT + "}"),
    "toml integer of 4,301 digits": _config(f"persona_name = {BIG_INT}\n", ".toml"),
    "a FIFO": _special(_fifo),
    "a symlink loop": _special(_loop),
    "a directory": _special(lambda root: root / "configs"),
    "/dev/zero": _special(lambda root: Path("/dev/zero")),
    "llm preset nested 100,000 deep": _preset("llm", deep_json(100_000)),
    "llm preset integer of 4,301 digits": _preset("llm", '{"model": ' + BIG_INT + "}"),
    "llm preset wrapping a string": _preset("llm", '{"llm": "selfy"}'),
    "tts preset nested 300 deep": _preset("tts", deep_json(300)),
    "layers preset nested 100,000 deep": _layers_preset(deep_json(100_000)),
    "tool file nested 100,000 deep": _tool(deep_json(100_000)),
    "tool file integer of 4,301 digits": _tool('{"type": "function", "n": ' + BIG_INT + "}"),
}


def check_one_line(result, names: Path):
    assert "Traceback" not in result.err, result.err[-2000:]
    assert result.code == ConfigError.exit_code, (result.code, result.err[-500:])
    lines = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.err[-2000:]
    assert str(names) in lines[0], lines[0]
    assert "not found" not in lines[0], lines[0]
    assert len(lines[0]) < 400, "the error quotes no file content"
    return lines[0]


@pytest.mark.parametrize("case", CASES)
def test_persona_dry_run_names_the_broken_file(project, case):
    given, names = CASES[case](project)
    line = check_one_line(run_cli("persona", "--config", str(given), "--dry-run"), names)
    if "selfy" in case:
        assert "llm: must be the llm layer object, not str" in line


@pytest.mark.parametrize("case", [c for c in CASES if "preset" not in c and "tool" not in c])
def test_run_names_the_broken_persona_config_of_a_scenario(project, case):
    given, names = CASES[case](project)
    scenario = project / "scenarios" / "broken.toml"
    scenario.write_text(f'[scenario]\nname = "b"\npersona_config = "{given}"\n')
    check_one_line(run_cli("run", str(scenario)), names)


SCENARIOS = {
    "scenario nested 100,000 deep": lambda root: (root / "s.toml", "[scenario]\n" + deep_toml(100_000)),
    "scenario integer of 4,301 digits": lambda root: (root / "s.toml", f"[scenario]\ntimeout_seconds = {BIG_INT}\n"),
}


@pytest.mark.parametrize("case", [*SCENARIOS, "a FIFO", "/dev/zero", "a symlink loop"])
def test_run_names_the_broken_scenario_file(project, case):
    if case in SCENARIOS:
        path, text = SCENARIOS[case](project)
        path.write_text(text)
    else:
        path, _ = CASES[case](project)
    check_one_line(run_cli("run", str(path)), path)


def test_a_folder_of_scenarios_skips_a_fifo_instead_of_hanging(project):
    os.mkfifo(project / "scenarios" / "pipe.toml")
    from harness_core.testing.scenario import find_scenarios
    assert "pipe.toml" not in [p.name for p in find_scenarios(project / "scenarios")]
    assert "facilitator_smoke.toml" in [p.name for p in find_scenarios(project / "scenarios")]


@pytest.mark.parametrize("case", ["llm preset nested 100,000 deep", "llm preset integer of 4,301 digits",
                                  "llm preset wrapping a string", "tool file nested 100,000 deep"])
def test_run_fails_the_scenario_whose_persona_names_a_broken_preset(project, sandbox, case):
    """Presets are read when the scenario runs: its FAIL line names the preset file; nothing is created."""
    given, names = CASES[case](project)
    scenario = project / "scenarios" / "broken.toml"
    scenario.write_text(f'[scenario]\nname = "b"\npersona_config = "{given}"\n')
    result = run_cli("run", str(scenario))
    assert result.code != 0 and "Traceback" not in result.out + result.err
    [line] = [line for line in result.out.splitlines() if line.startswith("  FAIL error")]
    assert str(names) in line and "RecursionError" not in line and "ValueError" not in line, line
    assert sandbox.store.conversations == {} and sandbox.store.personas == {}
