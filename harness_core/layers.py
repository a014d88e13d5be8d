"""Persona layers from files: layer presets, modular layers and LLM tools.

`presets/layers/NAME.json` is a full `layers` object; `presets/layers/<layer>/NAME.json` is one
layer (llm, tts, stt, perception); `presets/layers/llm/tools/*.json` holds tools in any of three
formats (one tool, an array of tools, or `{"tools": [...]}`). Loading raises ConfigError naming
the file or flag and the field; merging is pure.
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from .config import load_file, suggest
from .errors import ConfigError

DEFAULT_LAYERS_DIR = "presets/layers"
MODULAR_LAYERS = ("llm", "tts", "stt", "perception")
# Layer names a persona's `layers` object may hold (contract section 4).
LAYER_NAMES = ("llm", "tts", "stt", "sts", "perception", "conversational_flow", "transport",
               "conferencing", "capabilities", "knowledge_base")
TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def project_path(root: Path, value: str | Path) -> Path:
    """`value` as a path: absolute as given, otherwise relative to the project root."""
    path = Path(value)
    return path if path.is_absolute() else Path(root) / path


def listing(folder: Path, root: Path, names) -> str:
    """`available in presets/...: a, b`, or why there is nothing to list (run from elsewhere)."""
    if not Path(folder).is_dir():
        return (f"there is no {show(folder, root)} folder in {Path(root).resolve()}; "
                "run from your project root (the folder with presets/)")
    return f"available in {show(folder, root)}: {', '.join(names) or 'none'}"


def show(path: Path, root: Path) -> str:
    """A path as the user would type it (relative to the project root when inside it)."""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def available(folder: Path) -> list[str]:
    """Names (file stems) of the `*.json` presets directly in `folder`."""
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def check_layer_names(layers: dict, where: str, *, prefix: str = "layers.") -> None:
    """Every key of a layers object must be a known layer, each an object."""
    if not isinstance(layers, dict):
        raise ConfigError(f"{where}: {prefix.rstrip('.')}: must be an object", hint='write e.g. {"llm": {"model": "..."}}')
    for name, value in layers.items():
        if name not in LAYER_NAMES:
            close = suggest(name, LAYER_NAMES)
            raise ConfigError(f"{where}: {prefix}{name}: unknown layer",
                              hint=f"did you mean {close!r}?" if close else f"known layers: {', '.join(LAYER_NAMES)}")
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {prefix}{name}: must be an object, not {type(value).__name__}",
                              hint=f'write e.g. "{name}": {{...}}')


def _check_preset_name(name, where: str, field: str) -> str:
    if not isinstance(name, str) or not name.strip() or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"{where}: {field}: {name!r} is not a preset name",
                          hint="give the file name without .json, e.g. tavus_gpt_oss")
    return name.strip()


def load_layers_preset(name: str, layers_dir: Path, where: str, root: Path) -> tuple[str, dict]:
    """The full layers object in `layers_dir/NAME.json`; returns (label, layers)."""
    name = _check_preset_name(name, where, "layers_preset")
    path = Path(layers_dir) / f"{name}.json"
    if not path.is_file():
        names = available(Path(layers_dir))
        close = suggest(name, names)
        hint = (f"did you mean {close!r}? " if close else "") + listing(layers_dir, root, names)
        raise ConfigError(f"{where}: layers_preset: unknown layers preset {name!r}", hint=hint)
    label = show(path, root)
    data = load_file(path, what="layers preset")
    check_layer_names(data, label, prefix="")
    return label, data


def load_modular_layer(layer: str, value, layers_dir: Path, where: str, root: Path) -> tuple[str, dict]:
    """One layer: `value` names `layers_dir/<layer>/<value>.json`, or is an inline object.

    Returns (label, {layer: object}), ready to merge into a layers object.
    """
    if isinstance(value, dict):
        return f"{where} ({layer})", {layer: copy.deepcopy(value)}
    name = _check_preset_name(value, where, layer)
    folder = Path(layers_dir) / layer
    path = folder / f"{name}.json"
    if not path.is_file():
        names = available(folder)
        close = suggest(name, names)
        hint = (f"did you mean {close!r}? " if close else "") + listing(folder, root, names)
        raise ConfigError(f"{where}: {layer}: unknown {layer} preset {name!r}", hint=hint)
    label = show(path, root)
    data = load_file(path, what=f"{layer} preset")
    if layer in data and len(data) == 1 and isinstance(data[layer], dict):
        data = data[layer]  # tolerate {"llm": {...}} as well as the bare layer object
    return label, {layer: data}


# --- tools -------------------------------------------------------------------------------
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

    `parameters` must be a JSON Schema object schema (checked against the JSON Schema meta-schema).
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    fix = 'see presets/layers/llm/tools/schedule_meeting.json for the shape'
    if not isinstance(tool, dict):
        raise ConfigError(f"{where}: {at or 'tool'}: must be an object", hint=fix)
    if tool.get("type") != "function":
        raise ConfigError(f"{where}: {at}type: must be \"function\", not {tool.get('type')!r}", hint=fix)
    function = tool.get("function")
    if not isinstance(function, dict):
        raise ConfigError(f"{where}: {at}function: missing or not an object", hint=fix)
    name = function.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise ConfigError(f"{where}: {at}function.name: {name!r} is not a valid function name",
                          hint="use letters, digits, _ or -, starting with a letter or _, at most 64 characters")
    if "description" in function and not isinstance(function["description"], str):
        raise ConfigError(f"{where}: {at}function.description: must be a string", hint=fix)
    params = function.get("parameters")
    if not isinstance(params, dict) or params.get("type") != "object":
        raise ConfigError(f"{where}: {at}function.parameters: must be a JSON Schema object "
                          '({"type": "object", "properties": {...}})', hint=fix)
    try:
        Draft202012Validator.check_schema(params)
    except SchemaError as exc:
        path = ".".join(str(p) for p in exc.path)
        raise ConfigError(f"{where}: {at}function.parameters{'.' + path if path else ''}: not a valid JSON Schema: {exc.message}",
                          hint="fix the schema") from None


def check_tools(tools, where: str, field: str = "layers.llm.tools") -> None:
    """Check every tool of an inline list (e.g. `layers.llm.tools` in a config or preset)."""
    if not isinstance(tools, list):
        raise ConfigError(f"{where}: {field}: must be a list of tools", hint='write [{"type": "function", ...}]')
    for i, tool in enumerate(tools):
        check_tool(tool, where, f"{field}[{i}].")


def load_tool_file(path: Path, root: Path) -> list:
    """The checked tools of one tool file."""
    label = show(path, root)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{label}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                          hint="fix the syntax there") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot read the tool file ({exc})", hint="check the file") from None
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


def select_tools(names, tools_dir: Path, where: str, root: Path) -> list:
    """The tools named in `names` (file names without .json, or function names), checked, in order.

    An unknown name fails with the list of available tools.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}: tools: must be a list of tool names", hint='write "tools": ["schedule_meeting"]')
    tools_dir = Path(tools_dir)
    files = sorted(tools_dir.glob("*.json")) if tools_dir.is_dir() else []
    chosen: list = []
    index: dict[str, list] | None = None
    for name in names:
        by_file = tools_dir / f"{name}.json"
        if by_file.is_file():
            found = load_tool_file(by_file, root)
        else:
            if index is None:
                index = _index_functions(files, root)
            found = index.get(name)
            if found is None:
                known = sorted({p.stem for p in files} | set(index))
                close = suggest(name, known)
                hint = (f"did you mean {close!r}? " if close else "") + listing(tools_dir, root, known)
                raise ConfigError(f"{where}: tools: unknown tool {name!r}", hint=hint)
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


# --- merging -----------------------------------------------------------------------------
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
    out = _merge(base or {}, {k: v for k, v in (overlay or {}).items()})
    base_tools = ((base or {}).get("llm") or {}).get("tools")
    new_tools = ((overlay or {}).get("llm") or {}).get("tools") if isinstance((overlay or {}).get("llm"), dict) else None
    if isinstance(new_tools, list) and isinstance(base_tools, list):
        out["llm"]["tools"] = append_tools(base_tools, new_tools, source, warn)
    return out


def _merge(base: dict, overlay: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
