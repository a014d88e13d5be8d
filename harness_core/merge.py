"""Deep merge of config layers. Pure functions, no I/O.

Rules: dicts merge key by key, recursively; lists and scalars from the higher layer replace
the lower one; a dict meeting a non-dict is an error naming both sources.
"""
from __future__ import annotations

import copy

from .errors import ConfigError


def deep_merge(base: dict, overlay: dict, *, base_source: str = "lower layer",
               overlay_source: str = "higher layer", _path: str = "") -> dict:
    """Return a new dict: `overlay` merged onto `base` by the rules above."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        path = f"{_path}.{key}" if _path else str(key)
        if key in out and isinstance(out[key], dict) != isinstance(value, dict) and out[key] is not None and value is not None:
            raise ConfigError(f"{overlay_source}: {path}: is a {_kind(value)} here but a {_kind(out[key])} in {base_source}",
                              hint="make both the same type")
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value, base_source=base_source,
                                  overlay_source=overlay_source, _path=path)
        else:
            out[key] = copy.deepcopy(value)
    return out


def leaf_paths(data: dict, _prefix: str = "") -> list[str]:
    """Dotted paths of every leaf (non-dict value, or empty dict) in `data`."""
    paths = []
    for key, value in data.items():
        path = f"{_prefix}.{key}" if _prefix else str(key)
        if isinstance(value, dict) and value:
            paths.extend(leaf_paths(value, path))
        else:
            paths.append(path)
    return paths


def _kind(value) -> str:
    return "object" if isinstance(value, dict) else "list" if isinstance(value, list) else "value"
