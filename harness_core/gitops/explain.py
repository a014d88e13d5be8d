"""`invoke explain`: for every field of the final persona payload, which source set it.

Ids the config names by name (`tool_ids`, `document_ids`, `layers.tts.pronunciation_dictionary_id`)
say which names they came from, where each is declared, and which config named them.
"""
from __future__ import annotations

from ..config import gather
from ..context import RunContext
from ..resources.layers import DEFAULT_LAYERS_DIR, MODULAR_LAYERS
from ..merge import leaf_paths
from ..resources.persona import ENV_MAP, build_persona


def _get(data, path: str):
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


_MISSING = object()
BY_NAME = {"objectives_id": "objectives_name", "guardrails_id": "guardrails_name", "guardrail_ids": "guardrails_name"}


def explain_persona(ctx: RunContext, config_path: str, flags: dict | None = None) -> list[tuple[str, object, str]]:
    """(dotted field, value, source) for every leaf of the payload `invoke persona` would send."""
    flags = flags or {}
    resolved, _ = gather(flags=flags, config_path=config_path, env=ctx.env, env_map=ENV_MAP)
    desired = build_persona(ctx, flags, config_path)
    payload = desired.payload
    values = resolved.values
    layers_dir = values.get("layers_dir") or DEFAULT_LAYERS_DIR
    rows = []
    for path in leaf_paths(payload):
        value = _get(payload, path)
        if path in desired.origins:  # tools, documents, a dictionary named in the config
            source = desired.origins[path]
        elif _get(values, path) == value:
            source = resolved.source(path)
        elif path.startswith("layers.llm.tools"):
            source = "plugin tools (tool files in presets/layers/llm/tools)"
        elif path.startswith("layers."):
            layer = path.split(".")[1]
            if layer in MODULAR_LAYERS and isinstance(values.get(layer), str):
                source = f"preset file {layers_dir}/{layer}/{values[layer]}.json ({resolved.source(layer)})"
            elif values.get("layers_preset"):
                source = f"preset file {layers_dir}/{values['layers_preset']}.json ({resolved.source('layers_preset')})"
            else:
                source = resolved.source(path)
        elif path.split(".")[0] in BY_NAME:
            source = f"policy lookup by name ({resolved.source(BY_NAME[path.split('.')[0]])})"
        else:
            source = "plugin"
        rows.append((path, value, source))
    return rows
