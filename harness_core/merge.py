"""Deep merge of config layers, and the leaves of a nested value. Pure functions, no I/O.

Rules: dicts merge key by key, recursively; lists and scalars from the higher layer replace
the lower one; a dict meeting a non-dict is an error naming both sources (or, with
`replace_mismatched`, the higher layer's value simply wins).
"""
from __future__ import annotations

import copy

from jsonpointer import escape

from .errors import ConfigError


def deep_merge(base: dict, overlay: dict, *, base_source: str = "lower layer",
               overlay_source: str = "higher layer", replace_mismatched: bool = False, _path: str = "") -> dict:
    """Return a new dict: `overlay` merged onto `base` by the rules above."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        path = f"{_path}.{key}" if _path else str(key)
        if (not replace_mismatched and key in out and isinstance(out[key], dict) != isinstance(value, dict)
                and out[key] is not None and value is not None):
            raise ConfigError(f"{overlay_source}: {path}: is a {_kind(value)} here but a {_kind(out[key])} in {base_source}",
                              hint="make both the same type")
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value, base_source=base_source, overlay_source=overlay_source,
                                  replace_mismatched=replace_mismatched, _path=path)
        else:
            out[key] = copy.deepcopy(value)
    return out


def leaf_keys(data, *, into_lists: bool = False) -> list[tuple[str, ...]]:
    """The key path of every leaf of `data`: a non-container, or an empty object (or list).

    Lists are leaves unless `into_lists`, then their items are walked with "0", "1", ... as keys.
    Iterative, so a deeply nested value cannot overflow the stack.
    """
    leaves: list[tuple[str, ...]] = []
    stack = [((), data)]
    while stack:
        keys, value = stack.pop()
        if isinstance(value, dict) and value:
            children = [(str(k), v) for k, v in value.items()]
        elif into_lists and isinstance(value, list) and value:
            children = [(str(i), v) for i, v in enumerate(value)]
        else:
            if keys:
                leaves.append(keys)
            continue
        stack.extend(((*keys, k), v) for k, v in reversed(children))
    return leaves


def leaf_paths(data: dict) -> list[str]:
    """Dotted paths of every leaf (non-dict value, or empty dict) in `data`: `layers.llm.model`."""
    return [".".join(keys) for keys in leaf_keys(data)]


def leaf_pointers(data) -> list[str]:
    """JSON pointers of every leaf of `data`, list items included: `/layers/llm/tools/0/type`."""
    return ["/" + "/".join(escape(k) for k in keys) for keys in leaf_keys(data, into_lists=True)]


def _kind(value) -> str:
    return "object" if isinstance(value, dict) else "list" if isinstance(value, list) else "value"
