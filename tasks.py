"""invoke entry point: the same tasks as the `tune` command (see harness_core/cli)."""
from harness_core.cli import ns  # noqa: F401
