"""A third-party plugin changes what `invoke persona` sends: payload fragments, layer merging
and policy resolution, checked on what the real local sandbox stored."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness_core import hookimpl
from harness_core.context import make_context
from harness_core.resources.persona import apply_persona
from harness_core.plugins import get_plugin_manager

BIN = Path(sys.executable).parent
FACILITATOR = "configs/persona/facilitator.example.json"

TEAM_PLUGIN = '''
from harness_core import hookimpl

@hookimpl
def harness_config_keys(kind):
    return ["team"] if kind == "persona" else None

@hookimpl
def harness_build_payload(kind, config, payload):
    if kind != "persona":
        return None
    llm = (payload.get("layers") or {}).get("llm") or {}
    return {"document_tags": ["team:" + config.get("team", "none")],
            "layers": {"llm": {"extra_body": {"temperature": 0.2}}} if llm else {}}
'''


def ctx_with(*plugins):
    ctx = make_context(quiet=True)
    ctx.pm = get_plugin_manager(ctx.env, extra=plugins)
    return ctx


def test_registered_plugin_changes_the_stored_persona(project, sandbox):
    class Stamp:
        @hookimpl
        def harness_build_payload(self, kind, payload):
            if kind == "persona":
                return {"context": (payload.get("context") or "") + " [reviewed by stamp]"}

    result = apply_persona(ctx_with(Stamp()), {}, FACILITATOR)
    stored = sandbox.store.personas[result.persona_id]
    assert stored["context"].endswith("[reviewed by stamp]")
    assert stored["persona_name"] == "Meeting Facilitator"


def test_a_tryfirst_merge_plugin_overrides_the_builtin_tool_append(project, sandbox):
    class KeepFirst:
        @hookimpl(tryfirst=True)
        def harness_merge_layers(self, base, overlay):
            merged = {**overlay, **base}  # the earlier layer wins every field
            return merged

    flags = {"layers_preset": "assistant_with_tools", "llm": "tavus_llama", "persona_name": "K", "system_prompt": "p"}
    result = apply_persona(ctx_with(KeepFirst()), flags)
    assert sandbox.store.personas[result.persona_id]["layers"]["llm"]["model"] == "tavus-gpt-oss"


def test_a_resolve_plugin_picks_among_duplicate_names(project, sandbox):
    import requests

    body = json.loads((project / "configs/objectives/facilitator_core.json").read_text())
    for _ in range(2):
        requests.post(sandbox.url + "/objectives", json=body, headers={"x-api-key": "k"}, timeout=5).raise_for_status()
    newest = list(sandbox.store.objectives)[-1]

    class Newest:
        @hookimpl
        def harness_resolve_policy(self, kind, name, candidates):
            rows = [r for r in candidates if r.get("name") == name]
            return rows[-1] if rows else None

    flags = {"objectives_name": "Facilitator Core Objective"}
    result = apply_persona(ctx_with(Newest()), flags, FACILITATOR)
    assert sandbox.store.personas[result.persona_id]["objectives_id"] == newest


def test_installed_third_party_plugin_changes_the_payload_through_tune(project, sandbox, tmp_path):
    site = tmp_path / "site"
    (site / "hx_team-0.1.dist-info").mkdir(parents=True)
    (site / "hx_team.py").write_text(TEAM_PLUGIN)
    (site / "hx_team-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: hx-team\nVersion: 0.1\n")
    (site / "hx_team-0.1.dist-info" / "entry_points.txt").write_text("[tavus_harness]\nhx_team = hx_team\n")
    cfg = project / "configs" / "persona" / "team.json"
    cfg.write_text(json.dumps({**json.loads((project / FACILITATOR).read_text()), "team": "growth"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env.update(PYTHONPATH=str(site), TAVUS_API_URL=sandbox.url, TAVUS_HARNESS_DOTENV=str(project / ".env"))
    proc = subprocess.run([str(BIN / "tune"), "persona", "--config", "configs/persona/team.json", "--json"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    stored = sandbox.store.personas[json.loads(proc.stdout)["persona_id"]]
    assert stored["document_tags"] == ["team:growth"], "the plugin's fragment reached the API"
    assert stored["layers"]["llm"]["extra_body"] == {"temperature": 0.2}
    assert stored["layers"]["llm"]["model"] == "tavus-gpt-oss", "the rest of the layer is kept"
    assert "team" not in stored, "the plugin's config key is harness-only"
