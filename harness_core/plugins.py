"""Builds the pluggy PluginManager. One loading path for built-ins and third parties alike.

Order: add hookspecs, block names from TAVUS_HARNESS_DISABLE_PLUGINS, load the
`tavus_harness` entry points, check_pending (misspelled hooks fail loudly), then make sure
the built-ins that were not blocked are present.
"""
from __future__ import annotations

import sys

import pluggy

from . import hookspecs
from .env import Environment
from .errors import PluginError
from .redact import redact

GROUP = "tavus_harness"
BUILTINS = ("tools", "recording", "meeting_context", "policies", "tunnel", "transcript")


def get_plugin_manager(env: Environment | None = None, extra: list | tuple = ()) -> pluggy.PluginManager:
    """A fresh PluginManager with every installed plugin registered (never built at import time)."""
    values = env.values if env else {}
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    blocked = {n.strip() for n in (values.get("TAVUS_HARNESS_DISABLE_PLUGINS") or "").split(",") if n.strip()}
    for name in blocked:
        pm.set_blocked(name)
    try:
        pm.load_setuptools_entrypoints(GROUP)
        for plugin in extra:
            pm.register(plugin)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} is invalid: {exc}",
                          hint="fix or uninstall it, or block it with TAVUS_HARNESS_DISABLE_PLUGINS") from None
    except Exception as exc:  # noqa: BLE001 - whatever a third-party plugin raises while loading, it is its bug
        said = " ".join(str(exc).split())  # one line, whatever the plugin's message looks like
        raise PluginError(f"a `{GROUP}` entry point failed to load: {type(exc).__name__}: {said}",
                          hint="fix or uninstall that plugin, or block it with TAVUS_HARNESS_DISABLE_PLUGINS") from None
    missing = [n for n in BUILTINS if n not in blocked and pm.get_plugin(n) is None]
    if missing:
        raise PluginError(f"built-in plugins not found ({', '.join(missing)})",
                          hint="run `pip install -e .` in the project so its entry points are registered")
    if env is not None and env.flag("TAVUS_HARNESS_TRACE_PLUGINS"):
        secrets = env.secrets()

        def before(hook_name, hook_impls, kwargs):
            shown = redact({k: v for k, v in kwargs.items() if k != "context"}, secrets)
            print(f"hook {hook_name}({shown}) -> {[i.plugin_name for i in hook_impls]}", file=sys.stderr)

        pm.add_hookcall_monitoring(before, lambda *a: None)
    return pm


def describe_plugins(pm: pluggy.PluginManager) -> list[dict]:
    """One row per registered plugin: name, distribution, version, hooks, built-in or not."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda np: np[0]):
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        dist_name = dist.metadata["name"] if dist is not None else None
        rows.append({
            "name": name,
            "module": getattr(plugin, "__name__", type(plugin).__name__),
            "distribution": dist_name,
            "version": dist.version if dist is not None else None,
            "builtin": name in BUILTINS and dist_name == "tavus-harness",
            "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
        })
    return rows
