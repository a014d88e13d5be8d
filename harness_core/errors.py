"""The exception hierarchy. Expected failures only; each class carries its exit code.

Code in harness_core raises these; only the CLI edge (`harness_core.cli.base.HarnessTask`)
turns them into one `error: ...` line and an exit code. Anything else is a bug and keeps
its traceback.
"""
from __future__ import annotations


class HarnessError(Exception):
    """An expected failure the user can fix. Rendered as `error: <message>. <hint>`."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The message and its fix on one line (a newline from user data shows as \\n)."""
        text = self.message.rstrip(".")
        if self.hint:
            hint = self.hint.rstrip(".")
            text += ". " + hint + ("" if hint.endswith(("?", "!")) else ".")
        return text.replace("\r", "\\r").replace("\n", "\\n")


class ConfigError(HarnessError):
    """A bad file, flag or environment value: names the file, the field and the fix."""

    exit_code = 2


class ApiError(HarnessError):
    """The Tavus API (or the sandbox) said no, or could not be reached."""

    exit_code = 3

    def __init__(self, message: str, *, status: int | None = None, method: str = "",
                 url: str = "", body=None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.method = method
        self.url = url
        self.body = body


class PluginError(HarnessError):
    """A plugin failed to load or to run."""

    exit_code = 4


class CheckFailed(HarnessError):
    """A check the user asked for did not pass (doctor, a scenario, pending plan changes)."""

    exit_code = 5
