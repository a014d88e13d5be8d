"""Persona layers from files: layer presets and modular layers.

`presets/layers/NAME.json` is a full `layers` object; `presets/layers/<layer>/NAME.json` is one
layer (llm, tts, stt, perception). Each is looked up in the project's presets, then in the
built-in ones (see harness_core.project). Loading raises ConfigError naming the file or flag and
the field. LLM tools (`presets/layers/llm/tools/`) belong to the built-in `tools` plugin.
"""
from __future__ import annotations

import copy
from pathlib import Path

from ..config import load_file, suggest
from ..errors import ConfigError
from ..project import available, display_path, find_file, listing_hint

DEFAULT_LAYERS_DIR = "presets/layers"
MODULAR_LAYERS = ("llm", "tts", "stt", "perception")
# Layer names a persona's `layers` object may hold (contract section 4).
LAYER_NAMES = ("llm", "tts", "stt", "sts", "perception", "conversational_flow", "transport",
               "conferencing", "capabilities", "knowledge_base")


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


def load_layers_preset(name: str, folders: list[Path], where: str, root: Path) -> tuple[str, dict]:
    """The full layers object `NAME.json` from the first of `folders` that has it; returns (label, layers)."""
    name = _check_preset_name(name, where, "layers_preset")
    path = find_file(folders, f"{name}.json")
    if path is None:
        names = available(folders)
        close = suggest(name, names)
        hint = (f"did you mean {close!r}? " if close else "") + listing_hint(folders, root, names)
        raise ConfigError(f"{where}: layers_preset: unknown layers preset {name!r}", hint=hint)
    label = display_path(path, root)
    data = load_file(path, what="layers preset")
    check_layer_names(data, label, prefix="")
    return label, data


def load_modular_layer(layer: str, value, folders: list[Path], where: str, root: Path) -> tuple[str, dict]:
    """One layer: `value` names `<layer>/<value>.json` in the first of `folders` that has it, or is an
    inline object. Returns (label, {layer: object}), ready to merge into a layers object.
    """
    if isinstance(value, dict):
        return f"{where} ({layer})", {layer: copy.deepcopy(value)}
    name = _check_preset_name(value, where, layer)
    layer_folders = [Path(f) / layer for f in folders]
    path = find_file(layer_folders, f"{name}.json")
    if path is None:
        names = available(layer_folders)
        close = suggest(name, names)
        hint = (f"did you mean {close!r}? " if close else "") + listing_hint(layer_folders, root, names)
        raise ConfigError(f"{where}: {layer}: unknown {layer} preset {name!r}", hint=hint)
    label = display_path(path, root)
    data = load_file(path, what=f"{layer} preset")
    if layer in data and len(data) == 1:  # tolerate {"llm": {...}} as well as the bare layer object
        if not isinstance(data[layer], dict):
            raise ConfigError(f"{label}: {layer}: must be the {layer} layer object, not {type(data[layer]).__name__}",
                              hint=f'write the layer\'s fields at the top of the file, or {{"{layer}": {{"model": ...}}}}')
        data = data[layer]
    return label, {layer: data}
