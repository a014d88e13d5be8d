"""Built-in: LLM tools for personas.

- `harness_config_keys`: persona configs may say `tools` (names of tool files or functions)
  and `tools_dir` (default `<layers_dir>/llm/tools`, i.e. `presets/layers/llm/tools`).
- `harness_merge_layers` (trylast): layer objects merge field by field; `llm.tools` are
  appended, and a tool with a function name already present replaces it, with a warning.
- `harness_build_payload`: the selected tools are appended to the payload's `layers.llm.tools`.
"""
from __future__ import annotations

from harness_core import hookimpl
from harness_core.layers import DEFAULT_LAYERS_DIR, append_tools, merge_layer_objects, project_path, select_tools


def _warn(context):
    return context.note if context is not None else None


@hookimpl
def harness_config_keys(kind):
    """`tools` and `tools_dir` are harness-only persona keys."""
    return ["tools", "tools_dir"] if kind == "persona" else None


@hookimpl(trylast=True)
def harness_merge_layers(base, overlay, source, context):
    """Field-by-field merge; LLM tools appended by function name (same name replaces, with a warning)."""
    return merge_layer_objects(base, overlay, source, _warn(context))


@hookimpl
def harness_build_payload(kind, config, payload, context):
    """Append the tools named in `tools` to `layers.llm.tools` of the persona body."""
    if kind != "persona" or not config.get("tools"):
        return None
    root = context.root
    tools_dir = config.get("tools_dir") or f"{config.get('layers_dir') or DEFAULT_LAYERS_DIR}/llm/tools"
    selected = select_tools(config["tools"], project_path(root, tools_dir), "tools", root)
    existing = ((payload.get("layers") or {}).get("llm") or {}).get("tools") or []
    names = ", ".join(config["tools"]) if isinstance(config["tools"], list) else str(config["tools"])
    combined = append_tools(existing, selected, f"tools {names}", _warn(context))
    return {"layers": {"llm": {"tools": combined}}}
