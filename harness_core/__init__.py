"""tavus-harness: Tavus personas, conversations and webhooks as code.

The public surface for plugins: `hookimpl`, the error classes and `__version__`.
"""
from importlib.metadata import PackageNotFoundError, version

import pluggy

from .errors import ApiError, CheckFailed, ConfigError, HarnessError, PluginError

hookimpl = pluggy.HookimplMarker("tavus_harness")

try:
    __version__ = version("tavus-harness")
except PackageNotFoundError:  # running from a checkout that was not pip-installed
    __version__ = "0.0.0"

__all__ = ["hookimpl", "HarnessError", "ConfigError", "ApiError", "PluginError", "CheckFailed", "__version__"]
