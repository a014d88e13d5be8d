"""The project root is found from any sub-folder, and presets come from the project first, then the package."""
from __future__ import annotations

import json

import pytest

from harness_core.errors import ConfigError
from harness_core.project import BUILTIN, LOCK_FILE, PROJECT_FILE, display_path, find_root, preset_folders
from harness_core.resources.layers import load_modular_layer


def test_the_project_file_wins_then_the_lock_file_then_configs_and_presets(tmp_path):
    top, mid, low = tmp_path / "top", tmp_path / "top/mid", tmp_path / "top/mid/low"
    low.mkdir(parents=True)
    assert find_root(low) == low, "no marker anywhere: the folder itself"
    (mid / "configs").mkdir()
    (mid / "presets").mkdir()
    assert find_root(low) == mid
    (top / LOCK_FILE).write_text("")
    assert find_root(low) == top, "a lock file further up beats configs/ + presets/"
    (mid / PROJECT_FILE).write_text("")
    assert find_root(low) == mid and find_root(top) == top


def test_a_project_preset_overrides_the_built_in_one_file_by_file(tmp_path):
    folders = preset_folders(tmp_path, "presets/layers")
    assert folders == [tmp_path / "presets/layers", BUILTIN / "presets/layers"]
    label, data = load_modular_layer("llm", "tavus_llama", folders, "c.json", tmp_path)
    assert label == "presets/layers/llm/tavus_llama.json (built-in)" and data["llm"]["model"]
    own = tmp_path / "presets/layers/llm"
    own.mkdir(parents=True)
    (own / "tavus_llama.json").write_text(json.dumps({"model": "my-llama"}))
    label, data = load_modular_layer("llm", "tavus_llama", folders, "c.json", tmp_path)
    assert label == "presets/layers/llm/tavus_llama.json" and data == {"llm": {"model": "my-llama"}}
    assert load_modular_layer("tts", "cartesia", folders, "c.json", tmp_path)[0].endswith("(built-in)")
    with pytest.raises(ConfigError) as caught:
        load_modular_layer("llm", "nope", folders, "c.json", tmp_path)
    assert "available in presets/layers/llm and presets/layers/llm (built-in): tavus_gpt_oss, tavus_llama" in caught.value.hint


def test_other_folders_have_no_built_in_fallback(tmp_path):
    assert preset_folders(tmp_path, "my_layers") == [tmp_path / "my_layers"]
    assert display_path(BUILTIN / "presets/x.json", tmp_path) == "presets/x.json (built-in)"
