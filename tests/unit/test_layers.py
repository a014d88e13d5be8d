"""Layer presets, modular layers, tool files in three formats, tool checks and the layer merge."""
from __future__ import annotations

import json
import shutil

import pytest

from harness_core.errors import ConfigError
from harness_core.project import BUILTIN
from harness_core.resources.layers import check_layer_names, load_layers_preset, load_modular_layer
from harness_plugins.tools import (append_tools, check_tool, load_tool_file, merge_layer_objects, select_tools, tool_name,
                                   tools_in)


def tool(name, desc="d", params=None):
    return {"type": "function", "function": {"name": name, "description": desc,
                                             "parameters": params or {"type": "object", "properties": {}}}}


@pytest.fixture
def layers_dir(tmp_path):
    dest = tmp_path / "presets" / "layers"
    shutil.copytree(BUILTIN / "presets" / "layers", dest)
    return dest


# --- the three tool file formats ---------------------------------------------------------
def test_tools_in_accepts_one_tool_a_list_and_a_tools_object():
    one = tool("a")
    assert tools_in(one, "f") == [one]
    assert tools_in([one, tool("b")], "f") == [one, tool("b")]
    assert tools_in({"tools": [one]}, "f") == [one]
    with pytest.raises(ConfigError, match="f: tools: must be a list"):
        tools_in({"tools": one}, "f")
    with pytest.raises(ConfigError, match="a tool file holds"):
        tools_in("schedule", "f")


def test_shipped_tool_files_use_all_three_formats_and_load(layers_dir):
    raw = {p.stem: json.loads(p.read_text()) for p in (layers_dir / "llm" / "tools").glob("*.json")}
    shapes = {("one" if isinstance(d, dict) and "function" in d else "tools" if isinstance(d, dict) else "list")
              for d in raw.values()}
    assert shapes == {"one", "list", "tools"}
    for path in (layers_dir / "llm" / "tools").glob("*.json"):
        assert load_tool_file(path, layers_dir.parent.parent), path


def test_select_tools_by_file_name_or_function_name_in_order(layers_dir):
    tools_dir = layers_dir / "llm" / "tools"
    picked = select_tools(["lookup_order_status", "escalate_to_human", "schedule_meeting"], [tools_dir], "flag --tools", layers_dir)
    assert [tool_name(t) for t in picked] == ["lookup_order_status", "escalate_to_human", "schedule_meeting"]
    whole_file = select_tools("support_desk", [tools_dir], "x", layers_dir)
    assert [tool_name(t) for t in whole_file] == ["get_business_hours", "escalate_to_human"]


def test_unknown_tool_names_the_source_and_lists_the_available_ones(layers_dir):
    with pytest.raises(ConfigError) as info:
        select_tools(["schedule_meting"], [layers_dir / "llm" / "tools"], "configs/persona/a.json", layers_dir)
    assert info.value.message == "configs/persona/a.json: tools: unknown tool 'schedule_meting'"
    assert "did you mean 'schedule_meeting'" in info.value.hint
    assert "lookup_order_status" in info.value.hint and "escalate_to_human" in info.value.hint


def test_a_broken_tool_file_only_fails_when_selected(layers_dir):
    tools_dir = layers_dir / "llm" / "tools"
    (tools_dir / "broken.json").write_text("{not json")
    assert tool_name(select_tools(["get_business_hours"], [tools_dir], "x", layers_dir.parent.parent)[0]) == "get_business_hours"
    with pytest.raises(ConfigError, match=r"broken.json: invalid JSON at line 1"):
        select_tools(["broken"], [tools_dir], "x", layers_dir.parent.parent)


@pytest.mark.parametrize("bad, message", [
    ({"type": "tool", "function": {"name": "a", "parameters": {"type": "object"}}}, 'type: must be "function"'),
    ({"type": "function"}, "function: missing or not an object"),
    ({"type": "function", "function": {"name": "has space", "parameters": {"type": "object"}}}, "function.name"),
    ({"type": "function", "function": {"name": "a", "parameters": {"type": "string"}}}, "function.parameters: must be a JSON Schema object"),
    ({"type": "function", "function": {"name": "a"}}, "function.parameters: must be a JSON Schema object"),
    ({"type": "function", "function": {"name": "a", "parameters": {"type": "object", "required": "x"}}},
     "not a valid JSON Schema"),
])
def test_check_tool_rejects_each_malformed_shape(bad, message):
    with pytest.raises(ConfigError, match=message):
        check_tool(bad, "t.json")


def test_bad_tool_file_error_names_the_file_and_index(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"tools": [tool("ok"), {"type": "function", "function": {"name": "x"}}]}))
    with pytest.raises(ConfigError) as info:
        load_tool_file(path, tmp_path)
    assert info.value.message.startswith("t.json: tools[1].function.parameters:")


# --- presets -----------------------------------------------------------------------------
def test_layers_preset_loads_a_full_layers_object(layers_dir):
    label, data = load_layers_preset("assistant_with_tools", [layers_dir], "flag --layers-preset", layers_dir.parent.parent)
    assert label == "presets/layers/assistant_with_tools.json"
    assert [tool_name(t) for t in data["llm"]["tools"]] == ["schedule_meeting", "lookup_order_status"]


def test_unknown_layers_preset_lists_what_exists(layers_dir):
    with pytest.raises(ConfigError) as info:
        load_layers_preset("assistant_with_tool", [layers_dir], "flag --layers-preset", layers_dir)
    assert info.value.message == "flag --layers-preset: layers_preset: unknown layers preset 'assistant_with_tool'"
    assert "did you mean 'assistant_with_tools'" in info.value.hint


def test_modular_layer_from_file_inline_object_and_unknown_name(layers_dir):
    label, data = load_modular_layer("llm", "tavus_llama", [layers_dir], "c.json", layers_dir.parent.parent)
    assert label == "presets/layers/llm/tavus_llama.json" and data == {"llm": json.loads((layers_dir / "llm/tavus_llama.json").read_text())}
    assert load_modular_layer("tts", {"tts_engine": "elevenlabs"}, [layers_dir], "c.json", layers_dir)[1] == {"tts": {"tts_engine": "elevenlabs"}}
    with pytest.raises(ConfigError, match=r"c.json: stt: unknown stt preset 'deepgram'"):
        load_modular_layer("stt", "deepgram", [layers_dir], "c.json", layers_dir)
    with pytest.raises(ConfigError, match=r"c.json: llm: '../x' is not a preset name"):
        load_modular_layer("llm", "../x", [layers_dir], "c.json", layers_dir)


def test_shipped_presets_use_contract_field_names_and_values(layers_dir):
    models = {"tavus-gpt-oss", "tavus-llama", "tavus-gemini-2.5-flash", "tavus-claude-haiku-4.5", "tavus-gpt-5.2",
              "tavus-gemini-3-flash", "tavus-gemma-4"}
    for path in (layers_dir / "llm").glob("*.json"):
        assert json.loads(path.read_text())["model"] in models, path
    for path in (layers_dir / "tts").glob("*.json"):
        assert json.loads(path.read_text())["tts_engine"] in {"cartesia", "elevenlabs"}, path
    for path in (layers_dir / "stt").glob("*.json"):
        data = json.loads(path.read_text())
        assert data["stt_engine"] in {"tavus-auto", "tavus-parakeet", "tavus-advanced"}, path
        assert isinstance(data.get("hotwords", ""), str), "hotwords is a string in the contract"
    for path in (layers_dir / "perception").glob("*.json"):
        assert json.loads(path.read_text())["perception_model"] in {"raven-1", "raven-0", "off"}, path
    for path in layers_dir.glob("*.json"):
        check_layer_names(json.loads(path.read_text()), str(path))


def test_check_layer_names_suggests_the_closest_layer():
    with pytest.raises(ConfigError) as info:
        check_layer_names({"lmm": {}}, "c.json")
    assert info.value.message == "c.json: layers.lmm: unknown layer" and "'llm'" in info.value.hint
    with pytest.raises(ConfigError, match="layers.tts: must be an object"):
        check_layer_names({"tts": "cartesia"}, "c.json")


# --- merging -----------------------------------------------------------------------------
def test_merge_is_field_by_field_and_does_not_mutate():
    base = {"llm": {"model": "a", "speculative_inference": True}, "tts": {"tts_engine": "cartesia"}}
    overlay = {"llm": {"model": "b"}, "stt": {"stt_engine": "tavus-auto"}}
    out = merge_layer_objects(base, overlay, "o")
    assert out == {"llm": {"model": "b", "speculative_inference": True}, "tts": {"tts_engine": "cartesia"},
                   "stt": {"stt_engine": "tavus-auto"}}
    assert base["llm"]["model"] == "a" and "stt" not in base


def test_llm_tools_are_appended_and_a_same_name_tool_replaces_in_place_with_a_warning():
    warnings = []
    base = {"llm": {"model": "a", "tools": [tool("a"), tool("b")]}}
    out = merge_layer_objects(base, {"llm": {"tools": [tool("c"), tool("a", desc="new")]}}, "configs/p.json", warnings.append)
    assert [tool_name(t) for t in out["llm"]["tools"]] == ["a", "b", "c"]
    assert out["llm"]["tools"][0]["function"]["description"] == "new"
    assert out["llm"]["model"] == "a"
    assert warnings == ["warning: configs/p.json: layers.llm.tools: tool 'a' replaces the one from an earlier layer"]


def test_append_tools_without_conflicts_says_nothing():
    warnings = []
    assert [tool_name(t) for t in append_tools([], [tool("x"), tool("y")], "s", warnings.append)] == ["x", "y"]
    assert warnings == []
