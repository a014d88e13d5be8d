"""Turns a resolved config plus plugin fragments into an API request body.

Harness-only keys never reach the API: `assemble()` keeps only the keys the API knows and
lets plugins (harness_build_payload) turn harness-only keys into API fields.
"""
from __future__ import annotations

import copy

from ..config import Resolved, check_keys
from ..context import RunContext
from ..errors import ConfigError
from ..merge import deep_merge


def allowed_keys(kind: str, api_keys, harness_keys, ctx: RunContext) -> set[str]:
    """API fields + the command's own harness keys + keys plugins declare for `kind`."""
    keys = set(api_keys) | set(harness_keys)
    for declared in ctx.hook.harness_config_keys(kind=kind):
        keys.update(declared or ())
    return keys


def check_config_keys(kind: str, data: dict, where: str, api_keys, harness_keys, ctx: RunContext) -> None:
    """Unknown top-level keys in a config file fail before anything is sent, with a suggestion."""
    check_keys(data, allowed_keys(kind, api_keys, harness_keys, ctx), where)


def assemble(kind: str, resolved: Resolved, api_keys, ctx: RunContext) -> dict:
    """The request body: API keys from the resolved config, then each plugin's fragment merged in."""
    payload = {k: copy.deepcopy(v) for k, v in resolved.values.items() if k in set(api_keys)}
    try:
        fragments = ctx.hook.harness_build_payload(kind=kind, config=copy.deepcopy(resolved.values),
                                                   payload=copy.deepcopy(payload), context=ctx)
    except ConfigError as exc:  # a plugin names the field; we add the file (or flag) that set it
        source = resolved.source(exc.message.split(":", 1)[0].strip())
        if source != "unset" and not exc.message.startswith(source):
            exc.message = f"{source}: {exc.message}"
        raise
    # A plugin called earlier (tryfirst) wins: its fragment is merged last.
    for fragment in reversed(fragments):
        if fragment:
            payload = deep_merge(payload, fragment, base_source="config", overlay_source="a plugin")
    return payload


def merge_layers(sources: list[tuple[str, dict]], ctx: RunContext) -> dict:
    """Merge persona layer objects in order (lowest first) through the harness_merge_layers hook."""
    merged: dict = {}
    for label, layers in sources:
        if not layers:
            continue
        if not isinstance(layers, dict):
            raise ConfigError(f"{label}: layers must be an object", hint='write e.g. {"llm": {"model": "..."}}')
        result = ctx.hook.harness_merge_layers(base=copy.deepcopy(merged), overlay=copy.deepcopy(layers),
                                               source=label, context=ctx)
        merged = result if result is not None else deep_merge(merged, layers, overlay_source=label)
    return merged


def validate_offline(kind: str, payload: dict, where: str, ctx: RunContext) -> None:
    """Check a payload against the shared JSON Schemas before sending it.

    Unknown enum values (a new model or engine name) are only a warning: the real service's
    catalogue moves faster than ours. Everything else is a ConfigError naming the field.
    """
    from ..schemas import check

    for problem in check(kind, payload, strict=False, engine="quick"):
        if problem.is_enum:
            ctx.note(f"warning: {where}: {problem.path}: {problem.message} (sending it anyway; the API decides)")
        else:
            raise ConfigError(f"{where}: {problem.path}: {problem.message}",
                              hint="fix the value in the config file or flag")
