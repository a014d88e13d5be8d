"""Hook behaviour, each with a throwaway plugin registered on a fresh plugin manager."""
from __future__ import annotations

import pytest

from harness_core import ConfigError, hookimpl
from harness_core.config import Layer, resolve
from harness_core.context import make_context
from harness_core.resources.payload import allowed_keys, assemble, merge_layers
from harness_core.plugins import get_plugin_manager


@pytest.fixture
def ctx(tmp_path):
    c = make_context(tmp_path, {}, quiet=True)
    c.pm = get_plugin_manager(c.env)
    return c


def test_hook_harness_config_keys(ctx):
    class Extra:
        @hookimpl
        def harness_config_keys(self, kind):
            return ["team"] if kind == "persona" else None

    assert "team" not in allowed_keys("persona", {"persona_name"}, set(), ctx)
    ctx.pm.register(Extra())
    assert {"team", "persona_name"} <= allowed_keys("persona", {"persona_name"}, set(), ctx)
    assert "team" not in allowed_keys("conversation", set(), set(), ctx)


def test_hook_harness_build_payload(ctx):
    seen = {}

    class Late:
        @hookimpl(trylast=True)
        def harness_build_payload(self, kind, config, payload):
            seen.update(kind=kind, config=config, payload=payload)
            return {"persona_name": "late", "document_tags": ["late"]}

    class Early:
        @hookimpl(tryfirst=True)
        def harness_build_payload(self, kind):
            return {"persona_name": "early"}

    ctx.pm.register(Late())
    ctx.pm.register(Early())
    resolved = resolve([Layer("config", "c.json", {"persona_name": "cfg", "team": "x"})])
    body = assemble("persona", resolved, {"persona_name", "document_tags"}, ctx)
    assert body == {"persona_name": "early", "document_tags": ["late"]}, "tryfirst wins, harness-only keys dropped"
    assert seen["config"]["team"] == "x" and seen["payload"] == {"persona_name": "cfg"}


def test_hook_harness_merge_layers(ctx):
    calls = []

    class Merger:
        @hookimpl(tryfirst=True)
        def harness_merge_layers(self, base, overlay, source):
            calls.append(source)
            return {**base, **overlay, "merged_by": "test"}

    ctx.pm.register(Merger())
    out = merge_layers([("preset a", {"llm": {"model": "m"}}), ("config", {"tts": {"tts_engine": "cartesia"}})], ctx)
    assert calls == ["preset a", "config"]
    assert out == {"llm": {"model": "m"}, "tts": {"tts_engine": "cartesia"}, "merged_by": "test"}


def test_hook_harness_resolve_policy(ctx):
    rows = [{"objectives_id": "o1", "name": "Core"}, {"objectives_id": "o2", "name": "Other"},
            {"objectives_id": "o3", "name": "Other"}]
    pick = ctx.hook.harness_resolve_policy
    assert pick(kind="objectives", name="Core", candidates=rows, context=ctx)["objectives_id"] == "o1"
    with pytest.raises(ConfigError, match="2 objectives share that name"):
        pick(kind="objectives", name="Other", candidates=rows, context=ctx)
    with pytest.raises(ConfigError, match="no objectives with that exact name"):
        pick(kind="objectives", name="Nope", candidates=rows, context=ctx)

    class PreferNewest:
        @hookimpl
        def harness_resolve_policy(self, name, candidates):
            return [r for r in candidates if r["name"] == name][-1]

    ctx.pm.register(PreferNewest())
    assert pick(kind="objectives", name="Other", candidates=rows, context=ctx)["objectives_id"] == "o3"
