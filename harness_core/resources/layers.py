"""Persona layers from files: layer presets and modular layers.

`presets/layers/NAME.json` is a full `layers` object; `presets/layers/<layer>/NAME.json` is one
layer (llm, tts, stt, perception). Loading raises ConfigError naming the file or flag and the
field. LLM tools (`presets/layers/llm/tools/`) belong to the built-in `tools` plugin.
"""
from __future__ import annotations

import copy
from pathlib import Path

from ..config import load_file, suggest
from ..errors import ConfigError

DEFAULT_LAYERS_DIR = "presets/layers"
MODULAR_LAYERS = ("llm", "tts", "stt", "perception")
# Layer names a persona's `layers` object may hold (contract section 4).
LAYER_NAMES = ("llm", "tts", "stt", "sts", "perception", "conversational_flow", "transport",
               "conferencing", "capabilities", "knowledge_base")


def project_path(root: Path, value: str | Path) -> Path:
    """`value` as a path: absolute as given, otherwise relative to the project root."""
    path = Path(value)
    return path if path.is_absolute() else Path(root) / path


def listing_hint(folder: Path, root: Path, names) -> str:
    """`available in presets/...: a, b`, or why there is nothing to list (run from elsewhere)."""
    if not Path(folder).is_dir():
        return (f"there is no {display_path(folder, root)} folder in {Path(root).resolve()}; "
                "run from your project root (the folder with presets/)")
    return f"available in {display_path(folder, root)}: {', '.join(names) or 'none'}"


def display_path(path: Path, root: Path) -> str:
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
        hint = (f"did you mean {close!r}? " if close else "") + listing_hint(layers_dir, root, names)
        raise ConfigError(f"{where}: layers_preset: unknown layers preset {name!r}", hint=hint)
    label = display_path(path, root)
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
        hint = (f"did you mean {close!r}? " if close else "") + listing_hint(folder, root, names)
        raise ConfigError(f"{where}: {layer}: unknown {layer} preset {name!r}", hint=hint)
    label = display_path(path, root)
    data = load_file(path, what=f"{layer} preset")
    if layer in data and len(data) == 1:  # tolerate {"llm": {...}} as well as the bare layer object
        if not isinstance(data[layer], dict):
            raise ConfigError(f"{label}: {layer}: must be the {layer} layer object, not {type(data[layer]).__name__}",
                              hint=f'write the layer\'s fields at the top of the file, or {{"{layer}": {{"model": ...}}}}')
        data = data[layer]
    return label, {layer: data}
