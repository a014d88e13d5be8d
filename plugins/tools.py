"""Built-in: LLM tools for personas, from `presets/layers/llm/tools/`.

A tool file holds one OpenAI-format tool, a list of tools, or `{"tools": [...]}`. This plugin
owns everything about tools: choosing them by file or function name, checking their shape, and
putting them into `layers.llm.tools`.

- `harness_config_keys`: persona configs may say `tools` (names of tool files or functions)
  and `tools_dir` (default `<layers_dir>/llm/tools`, i.e. `presets/layers/llm/tools`).
- `harness_merge_layers` (trylast): layer objects merge field by field; inline `llm.tools` are
  checked, then appended, and a tool with a function name already present replaces it, with a warning.
- `harness_build_payload`: the tools named in `tools` are appended to the payload's `layers.llm.tools`.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

from harness_core import (DEFAULT_LAYERS_DIR, ConfigError, available, deep_merge, display_path, find_file, hookimpl,
                          listing_hint, load_data, preset_folders, schema_problems, suggest)

TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
SHAPE_HINT = "see presets/layers/llm/tools/schedule_meeting.json for the shape"


# --- reading and checking tools ------------------------------------------------------------
def tool_name(tool) -> str | None:
    """The function name of an OpenAI-format tool, or None."""
    if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
        name = tool["function"].get("name")
        return name if isinstance(name, str) else None
    return None


def tools_in(data, where: str) -> list:
    """The tools of one tool file in any of the three formats (one tool, a list, `{"tools": [...]}`)."""
    if isinstance(data, dict) and "tools" in data and "function" not in data:
        data = data["tools"]
        if not isinstance(data, list):
            raise ConfigError(f"{where}: tools: must be a list of tools", hint='write {"tools": [{"type": "function", ...}]}')
    elif isinstance(data, dict):
        data = [data]
    elif not isinstance(data, list):
        raise ConfigError(f"{where}: a tool file holds a tool, a list of tools or {{\"tools\": [...]}}",
                          hint='start from presets/layers/llm/tools/schedule_meeting.json')
    return data


def check_tool(tool, where: str, at: str = "") -> None:
    """A tool must be `{"type": "function", "function": {name, description?, parameters}}`.

    `parameters` must be a JSON Schema object schema (checked by the quick validator, see schema_problems).
    """
    if not isinstance(tool, dict):
        raise ConfigError(f"{where}: {at or 'tool'}: must be an object", hint=SHAPE_HINT)
    if tool.get("type") != "function":
        raise ConfigError(f"{where}: {at}type: must be \"function\", not {tool.get('type')!r}", hint=SHAPE_HINT)
    function = tool.get("function")
    if not isinstance(function, dict):
        raise ConfigError(f"{where}: {at}function: missing or not an object", hint=SHAPE_HINT)
    name = function.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise ConfigError(f"{where}: {at}function.name: {name!r} is not a valid function name",
                          hint="use letters, digits, _ or -, starting with a letter or _, at most 64 characters")
    if "description" in function and not isinstance(function["description"], str):
        raise ConfigError(f"{where}: {at}function.description: must be a string", hint=SHAPE_HINT)
    params = function.get("parameters")
    if not isinstance(params, dict) or params.get("type") != "object":
        raise ConfigError(f"{where}: {at}function.parameters: must be a JSON Schema object "
                          '({"type": "object", "properties": {...}})', hint=SHAPE_HINT)
    problems = schema_problems(params)  # the quick validator: importing jsonschema costs ~100 ms
    if problems:
        first = problems[0]
        path = "" if first.path == "(body)" else first.path
        raise ConfigError(f"{where}: {at}function.parameters{'.' + path if path else ''}: not a valid JSON Schema: "
                          f"{first.message}", hint="fix the schema")


def check_tools(tools, where: str, field: str = "layers.llm.tools") -> None:
    """Check every tool of an inline list (e.g. `layers.llm.tools` in a config or preset)."""
    if not isinstance(tools, list):
        raise ConfigError(f"{where}: {field}: must be a list of tools", hint='write [{"type": "function", ...}]')
    for i, tool in enumerate(tools):
        check_tool(tool, where, f"{field}[{i}].")


def load_tool_file(path: Path, root: Path) -> list:
    """The checked tools of one tool file."""
    label = display_path(path, root)
    try:
        data = load_data(path, what="tool")
    except ConfigError as exc:  # the same error, naming the file as the user would type it
        raise ConfigError(exc.message.replace(str(path), label, 1), hint=exc.hint) from None
    tools = tools_in(data, label)
    if isinstance(data, list):
        prefix = "[{}]."
    elif isinstance(data, dict) and "function" not in data:
        prefix = "tools[{}]."
    else:
        prefix = ""
    for i, tool in enumerate(tools):
        check_tool(tool, label, prefix.format(i))
    return tools


def select_tools(names, folders: list[Path], where: str, root: Path) -> list:
    """The tools named in `names` (file names without .json, or function names), checked, in order,
    from the first of `folders` (project tools, then built-in ones) that has each.

    An unknown name fails with the list of available tools. Errors start with `where: tools:`
    (just `tools:` when `where` is empty: the core then adds the file or flag that set `tools`).
    """
    at = f"{where}: tools" if where else "tools"
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{at}: must be a list of tool names", hint='write "tools": ["schedule_meeting"]')
    folders = [Path(f) for f in folders]
    files = [find_file(folders, f"{stem}.json") for stem in available(folders)]  # a project file shadows a built-in one
    chosen: list = []
    index: dict[str, list] | None = None
    for name in names:
        by_file = find_file(folders, f"{name}.json")
        if by_file is not None:
            found = load_tool_file(by_file, root)
        else:
            if index is None:
                index = _index_functions(files, root)
            found = index.get(name)
            if found is None:
                known = sorted({p.stem for p in files} | set(index))
                close = suggest(name, known)
                hint = (f"did you mean {close!r}? " if close else "") + listing_hint(folders, root, known)
                raise ConfigError(f"{at}: unknown tool {name!r}", hint=hint)
        chosen.extend(copy.deepcopy(found))
    return chosen


def _index_functions(files, root) -> dict[str, list]:
    index: dict[str, list] = {}
    for path in files:
        try:
            tools = load_tool_file(path, root)
        except ConfigError:
            continue  # a broken file only fails when it is selected by its file name
        for tool in tools:
            index.setdefault(tool_name(tool), [tool])
    return index


# --- merging -------------------------------------------------------------------------------
def append_tools(base: list, overlay: list, source: str, warn=None) -> list:
    """`base` tools followed by `overlay` tools; a tool whose function name is already there
    replaces it in place (and `warn` is told)."""
    out = copy.deepcopy(list(base or []))
    for tool in overlay or []:
        name = tool_name(tool)
        at = next((i for i, t in enumerate(out) if name is not None and tool_name(t) == name), None)
        if at is None:
            out.append(copy.deepcopy(tool))
        else:
            if warn:
                warn(f"warning: {source}: layers.llm.tools: tool {name!r} replaces the one from an earlier layer")
            out[at] = copy.deepcopy(tool)
    return out


def merge_layer_objects(base: dict, overlay: dict, source: str, warn=None) -> dict:
    """Merge `overlay` into `base` field by field (dicts recursively, other values replaced),
    except `llm.tools`, which is appended by function name. Returns a new dict."""
    out = deep_merge(base or {}, overlay or {}, replace_mismatched=True)
    base_tools = ((base or {}).get("llm") or {}).get("tools")
    new_tools = ((overlay or {}).get("llm") or {}).get("tools") if isinstance((overlay or {}).get("llm"), dict) else None
    if isinstance(new_tools, list) and isinstance(base_tools, list):
        out["llm"]["tools"] = append_tools(base_tools, new_tools, source, warn)
    return out


def inline_tools(layers) -> list | None:
    """`llm.tools` of a layers object, or None when it has none."""
    llm = layers.get("llm") if isinstance(layers, dict) else None
    return llm.get("tools") if isinstance(llm, dict) else None


# --- hooks ---------------------------------------------------------------------------------
def _warn(context):
    return context.note if context is not None else None


@hookimpl
def harness_config_keys(kind):
    """`tools` and `tools_dir` are harness-only persona keys."""
    return ["tools", "tools_dir"] if kind == "persona" else None


@hookimpl(trylast=True)
def harness_merge_layers(base, overlay, source, context):
    """Check the overlay's inline tools, then merge field by field; LLM tools are appended by
    function name (same name replaces, with a warning)."""
    tools = inline_tools(overlay)
    if tools is not None:
        check_tools(tools, source)
    return merge_layer_objects(base, overlay, source, _warn(context))


@hookimpl
def harness_build_payload(kind, config, payload, context):
    """Append the tools named in `tools` to `layers.llm.tools` of the persona body."""
    if kind != "persona" or not config.get("tools"):
        return None
    root = context.root
    tools_dir = config.get("tools_dir") or f"{config.get('layers_dir') or DEFAULT_LAYERS_DIR}/llm/tools"
    selected = select_tools(config["tools"], preset_folders(root, tools_dir), "", root)
    existing = inline_tools(payload.get("layers")) or []
    names = ", ".join(config["tools"]) if isinstance(config["tools"], list) else str(config["tools"])
    combined = append_tools(existing, selected, f"tools {names}", _warn(context))
    return {"layers": {"llm": {"tools": combined}}}
