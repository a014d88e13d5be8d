"""tavus-harness: Tavus agents as code, a local Tavus sandbox, and tests of what the agent does.

This module is the public surface for plugins, built-in and third-party alike: a plugin imports
from `harness_core` and nothing deeper. The names are:

- `hookimpl`: the marker for hook implementations (the hooks are in `harness_core.hookspecs`);
- the errors: `HarnessError`, `ConfigError`, `ApiError`, `ApiUnreachable`, `PluginError`,
  `CheckFailed`, `ChangesPending`, `Interrupted`;
- `RunContext`: what every hook gets as `context`;
- helpers: `suggest` (a "did you mean"), `load_data` (a JSON/TOML file, with one-line errors), `deep_merge`, `printable` (text safe for a terminal);
  for preset files (project first, then built-in): `preset_folders`, `find_file`, `available`,
  `display_path`, `listing_hint`, `DEFAULT_LAYERS_DIR`; `policy_name`, `policy_id` (rows of the
  objectives and guardrails lists); `schema_problems` (what makes a value an invalid JSON Schema, for
  tool parameters, without importing jsonschema);
- `__version__`.

The helpers are imported on first use, so `import harness_core` stays cheap for every command.
"""
from importlib import import_module

import pluggy

from .errors import (ApiError, ApiUnreachable, ChangesPending, CheckFailed, ConfigError, HarnessError, Interrupted,
                     PluginError)

__version__ = "0.1.0"  # the package version (pyproject.toml reads it from here)

hookimpl = pluggy.HookimplMarker("tavus_harness")

_LAZY = {
    "RunContext": "context",
    "suggest": "config",
    "load_data": "config",
    "deep_merge": "merge",
    "printable": "redact",
    "preset_folders": "project",
    "available": "project",
    "find_file": "project",
    "display_path": "project",
    "listing_hint": "project",
    "DEFAULT_LAYERS_DIR": "resources.layers",
    "policy_name": "resources.policies",
    "policy_id": "resources.policies",
    "schema_problems": "schemas",
}

__all__ = ["hookimpl", "HarnessError", "ConfigError", "ApiError", "ApiUnreachable", "PluginError", "CheckFailed",
           "ChangesPending", "Interrupted", "__version__", *_LAZY]


def __getattr__(name: str):
    """Import a public helper on first use (PEP 562)."""
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'harness_core' has no attribute {name!r}")
