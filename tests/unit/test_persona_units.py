"""Persona pure functions: precedence, managed-field JSON Patch, system_prompt rule, policy helpers."""
from __future__ import annotations

import json
from pathlib import Path

import jsonpatch
import pytest

from harness_core.config import gather
from harness_core.context import make_context
from harness_core.env import Environment
from harness_core.errors import ConfigError
from harness_core.resources.payload import merge_layers
from harness_core.resources.persona import ENV_MAP, check_system_prompt
from harness_core.resources.remote import diff_managed, project
from harness_core.plugins import get_plugin_manager
from harness_core.api import unwrap_policy
from harness_core.resources.policies import build_policy, is_guardrail_set, pick_reference, policy_id, policy_name

REPO = Path(__file__).resolve().parents[2]


def env_of(values: dict, sources: dict) -> Environment:
    return Environment(values=values, sources=sources, root=Path("."), dotenv_path=Path(".env"))


# --- precedence --------------------------------------------------------------------------
def test_flag_beats_config_beats_env_beats_dotenv(tmp_path):
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps({"persona_name": "from config", "default_replica_id": "r_config"}))
    env = env_of({"TAVUS_DEFAULT_REPLICA_ID": "r_env"}, {"TAVUS_DEFAULT_REPLICA_ID": "env"})
    resolved, _ = gather(flags={"persona_name": "from flag", "default_replica_id": None}, config_path=str(cfg),
                         env=env, env_map=ENV_MAP)
    assert resolved.values["persona_name"] == "from flag" and resolved.source("persona_name") == "flag --persona-name"
    assert resolved.values["default_replica_id"] == "r_config" and resolved.source("default_replica_id") == str(cfg)
    resolved, _ = gather(flags={}, config_path=None, env=env, env_map=ENV_MAP)
    assert resolved.values["default_replica_id"] == "r_env"
    assert resolved.source("default_replica_id") == "env TAVUS_DEFAULT_REPLICA_ID"
    dotenv = env_of({"TAVUS_DEFAULT_REPLICA_ID": "r_dotenv"}, {"TAVUS_DEFAULT_REPLICA_ID": ".env"})
    resolved, _ = gather(flags={}, config_path=None, env=dotenv, env_map=ENV_MAP,
                         preset={"default_replica_id": "r_preset"})
    assert resolved.values["default_replica_id"] == "r_dotenv", ".env beats a preset"
    resolved, _ = gather(flags={}, config_path=None, env=env_of({}, {}), env_map=ENV_MAP,
                         preset={"default_replica_id": "r_preset"}, defaults={"default_replica_id": "r_default"})
    assert resolved.values["default_replica_id"] == "r_preset", "a preset beats the built-in default"


# --- the layer merge through the real hook (tools plugin, trylast) -----------------------
@pytest.fixture
def ctx(tmp_path):
    c = make_context(tmp_path, {}, quiet=True)
    c.pm = get_plugin_manager(c.env)
    return c


def _tool(name, desc="d"):
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": {"type": "object"}}}


def test_merge_layers_hook_appends_tools_and_warns_on_replacement(ctx):
    preset = {"llm": {"model": "tavus-gpt-oss", "tools": [_tool("schedule_meeting"), _tool("x")]}, "tts": {"tts_engine": "cartesia"}}
    config = {"llm": {"tools": [_tool("schedule_meeting", "v2")]}, "stt": {"stt_engine": "tavus-auto"}}
    modular = {"llm": {"model": "tavus-llama"}}
    out = merge_layers([("preset", preset), ("c.json", config), ("llm preset", modular)], ctx)
    assert out["llm"]["model"] == "tavus-llama"
    assert [t["function"]["name"] for t in out["llm"]["tools"]] == ["schedule_meeting", "x"]
    assert out["llm"]["tools"][0]["function"]["description"] == "v2"
    assert out["tts"] == {"tts_engine": "cartesia"} and out["stt"] == {"stt_engine": "tavus-auto"}
    assert list(ctx.notes) == ["warning: c.json: layers.llm.tools: tool 'schedule_meeting' replaces the one from an earlier layer"]


# --- JSON Patch limited to managed fields ------------------------------------------------
REMOTE = {"persona_id": "p1", "persona_name": "A", "system_prompt": "old", "objectives_id": None,
          "document_tags": ["x"], "created_at": "t", "layers": {"llm": {"model": "m", "speculative_inference": True},
                                                               "tts": {"tts_engine": "cartesia"}}}


def test_no_difference_gives_an_empty_patch_even_with_unmanaged_remote_fields():
    desired = {"persona_name": "A", "system_prompt": "old", "layers": {"llm": {"model": "m"}}}
    assert diff_managed(REMOTE, desired) == []


def test_patch_touches_only_changed_managed_paths_and_never_removes_unmanaged_ones():
    desired = {"persona_name": "A", "system_prompt": "new", "objectives_id": "o9", "guardrail_ids": ["g1"],
               "layers": {"llm": {"model": "m2"}, "stt": {"stt_engine": "tavus-auto"}}}
    ops = diff_managed(REMOTE, desired)
    assert sorted((o["op"], o["path"]) for o in ops) == [
        ("add", "/guardrail_ids"), ("add", "/layers/stt"), ("replace", "/layers/llm/model"),
        ("replace", "/objectives_id"), ("replace", "/system_prompt")]
    after = jsonpatch.apply_patch(REMOTE, ops)
    assert after["layers"]["llm"]["speculative_inference"] is True and after["document_tags"] == ["x"]
    assert after["layers"]["tts"] == {"tts_engine": "cartesia"} and after["created_at"] == "t"


def test_reordered_lists_are_replaced_whole_never_moved():
    remote = {"layers": {"llm": {"tools": [_tool("a"), _tool("b")]}}, "document_ids": ["d1", "d2", "d3"]}
    desired = {"layers": {"llm": {"tools": [_tool("b"), _tool("a")]}}, "document_ids": ["d3", "d1", "d2"]}
    ops = diff_managed(remote, desired)
    assert {o["op"] for o in ops} == {"replace"}
    assert jsonpatch.apply_patch(remote, ops) == desired


def test_list_items_keep_server_defaults_when_the_config_does_not_set_them():
    remote = {"name": "S", "data": [{"objective_name": "a", "objective_prompt": "p", "confirmation_mode": "auto"}]}
    desired = {"name": "S", "data": [{"objective_name": "a", "objective_prompt": "p2"}]}
    assert project(remote, desired) == {"name": "S", "data": [{"objective_name": "a", "objective_prompt": "p"}]}
    assert diff_managed(remote, desired) == [{"op": "replace", "path": "/data/0/objective_prompt", "value": "p2"}]
    longer = {"name": "S", "data": desired["data"] + [{"objective_name": "b", "objective_prompt": "q"}]}
    ops = diff_managed(remote, longer)
    assert {"op": "add", "path": "/data/1", "value": {"objective_name": "b", "objective_prompt": "q"}} in ops


# --- rules -------------------------------------------------------------------------------
def test_system_prompt_is_required_unless_echo():
    with pytest.raises(ConfigError) as info:
        check_system_prompt({"persona_name": "x"}, "configs/persona/p.json")
    assert info.value.message == "configs/persona/p.json: system_prompt: required when pipeline_mode is full"
    with pytest.raises(ConfigError):
        check_system_prompt({"pipeline_mode": "full", "system_prompt": "  "}, "f")
    check_system_prompt({"pipeline_mode": "echo"}, "f")
    check_system_prompt({"system_prompt": "hi"}, "f")


def test_policy_reference_flag_beats_config_and_same_layer_conflict_fails():
    labels = {"objectives_id": "flag --objectives-id", "objectives_name": "c.json"}
    assert pick_reference({"objectives_id": "o1", "objectives_name": "N"}, labels.get, "objectives") == ("id", "o1", "flag --objectives-id")
    labels = {"guardrails_id": "c.json", "guardrails_name": "flag --guardrails-name"}
    assert pick_reference({"guardrails_id": "g1", "guardrails_name": "N"}, labels.get, "guardrails")[0] == "name"
    with pytest.raises(ConfigError, match="c.json: objectives_id and objectives_name: both are set"):
        pick_reference({"objectives_id": "o1", "objectives_name": "N"}, lambda k: "c.json", "objectives")
    assert pick_reference({}, lambda k: "x", "objectives") is None


def test_guardrail_shapes_ids_and_names():
    flat = {"uuid": "g1234567890ab", "guardrail_name": "no_pii", "guardrail_prompt": "p"}
    legacy = {"guardrails_id": "g12345", "name": "Facilitator Safety Policy", "data": [{"guardrail_name": "a"}]}
    oas_row = {"guardrails_id": "g55", "created_at": "t"}
    assert not is_guardrail_set(flat) and is_guardrail_set(legacy) and is_guardrail_set(oas_row)
    assert policy_id("guardrails", flat) == "g1234567890ab" and policy_id("guardrails", legacy) == "g12345"
    assert policy_name("guardrails", flat) == "no_pii" and policy_name("guardrails", legacy) == "Facilitator Safety Policy"
    assert policy_name("guardrails", oas_row) is None
    assert policy_id("objectives", {"objectives_id": "o1", "name": "N"}) == "o1"
    assert unwrap_policy({"data": [legacy]}) == legacy
    assert unwrap_policy(legacy) == legacy, "a set's own items under data are not a wrapper"


def test_shipped_policy_configs_are_valid_sets_with_the_expected_names():
    body, shape = build_policy("objectives", json.loads((REPO / "configs/objectives/facilitator_core.json").read_text()), "f")
    assert shape == "set" and body["name"] == "Facilitator Core Objective" and 1 <= len(body["data"]) <= 50
    body, shape = build_policy("guardrails", json.loads((REPO / "configs/guardrails/facilitator_safety.json").read_text()), "f")
    assert shape == "set" and body["name"] == "Facilitator Safety Policy"
    prompts = " ".join(i["guardrail_prompt"] for i in body["data"]).lower()
    for topic in ("medical", "legal", "financial", "social security", "passport", "payment", "human", "inclusive"):
        assert topic in prompts


@pytest.mark.parametrize("data, message", [
    ({"name": "S", "data": [{"objective_name": "has space", "objective_prompt": "p"}]}, r"data\[0\].objective_name"),
    ({"name": "S", "data": [{"objective_name": "a", "objective_promt": "p"}]}, r"data\[0\].objective_promt: unknown key"),
    ({"name": "S", "data": []}, "data: must be a list of 1 to 50 items"),
    ({"data": [{"objective_name": "a", "objective_prompt": "p"}]}, "name: required"),
    ({"name": "S", "data": [{"objective_name": "a", "objective_prompt": "p", "next_required_objective": "zz"}]},
     "next objective 'zz' does not exist in this set"),
    ({"nmae": "S"}, "nmae: unknown key"),
])
def test_bad_objectives_configs_name_the_field(data, message):
    with pytest.raises(ConfigError, match=message):
        build_policy("objectives", data, "configs/objectives/x.json")


def test_flat_guardrail_config_is_recognised_and_checked():
    body, shape = build_policy("guardrails", {"guardrail_name": "no_pii", "guardrail_prompt": "p", "tags": ["facilitator"]}, "f")
    assert shape == "flat" and body["tags"] == ["facilitator"]
    with pytest.raises(ConfigError, match="guardrail_prompt: 1001 characters"):
        build_policy("guardrails", {"guardrail_name": "x", "guardrail_prompt": "p" * 1001}, "f")


def test_read_back_warns_about_every_sent_field_the_api_dropped_or_changed(tmp_path):
    from harness_core.context import make_context
    from harness_core.resources.remote import warn_not_kept

    ctx = make_context(root=tmp_path, environ={}, quiet=True)
    sent = {"persona_name": "P", "layers": {"tts": {"tts_engine": "cartesia", "voice_settings": {"speed": 1.0}}},
            "document_tags": ["a"]}
    kept = {"persona_name": "P", "layers": {"tts": {"tts_engine": "cartesia", "voice_settings": {"speed": 1.0},
                                                    "added_by_server": 1}}, "document_tags": ["a"], "extra": True}
    warn_not_kept(ctx, "persona p1", kept, sent)
    assert list(ctx.notes) == [], "server-side additions are not a loss"
    warn_not_kept(ctx, "persona p1", {"persona_name": "P", "layers": {"tts": {"tts_engine": "elevenlabs"}}}, sent)
    assert list(ctx.notes) == ["warning: persona p1: the API did not keep what was sent at "
                         "/document_tags, /layers/tts/tts_engine, /layers/tts/voice_settings"]


def test_a_value_that_changes_key_is_removed_and_added_never_moved_over_fields_set_elsewhere():
    remote = {"layers": {"tts": {"tts_engine": "cartesia", "external_voice_id": "v1", "tts_model_name": "sonic"}},
              "document_tags": ["t"]}
    desired = {"layers": {"tts": {"tts_engine": "cartesia", "voice_id": "v1"}}, "guardrail_tags": ["t"]}
    sent = {"layers": {"tts": {"external_voice_id": {}}}, "document_tags": {}}
    ops = diff_managed(remote, desired, sent)
    assert {o["op"] for o in ops} <= {"add", "remove", "replace"}
    after = jsonpatch.apply_patch(remote, ops)
    assert after == {"layers": {"tts": {"tts_engine": "cartesia", "voice_id": "v1", "tts_model_name": "sonic"}},
                     "guardrail_tags": ["t"]}


def test_a_write_that_cannot_be_read_back_is_still_remembered_with_what_was_sent(tmp_path):
    from harness_core.context import make_context
    from harness_core.errors import ApiError
    from harness_core.resources.remote import read_back

    ctx = make_context(root=tmp_path, environ={}, quiet=True)
    sent = {"persona_name": "P", "system_prompt": "s"}

    def unreachable():
        raise ApiError("GET /personas/p1: cannot reach the API")

    assert read_back(ctx, "persona p1", unreachable, sent) == sent
    assert list(ctx.notes) and "could not be read back" in list(ctx.notes)[-1]
