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
    """The Tavus API (or the sandbox) answered with an error status.

    `retry_after`: seconds from a Retry-After header (None when absent).
    """

    exit_code = 3

    def __init__(self, message: str, *, status: int | None = None, method: str = "",
                 url: str = "", body=None, hint: str | None = None, retry_after: float | None = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.method = method
        self.url = url
        self.body = body
        self.retry_after = retry_after

    @property
    def not_found(self) -> bool:
        """The API does not know the id it was given (Tavus answers 400 or 404 for that)."""
        return self.status in (400, 404)


class ApiUnreachable(ApiError):
    """No answer came back. `maybe_sent`: the request may have reached the API (a create may exist)."""

    def __init__(self, message: str, *, method: str = "", url: str = "", hint: str | None = None,
                 maybe_sent: bool = False):
        super().__init__(message, method=method, url=url, hint=hint)
        self.maybe_sent = maybe_sent


class PluginError(HarnessError):
    """A plugin failed to load or to run."""

    exit_code = 4


class CheckFailed(HarnessError):
    """A check the user asked for did not pass (doctor, a scenario)."""

    exit_code = 5


class Interrupted(HarnessError):
    """Ctrl-C or SIGTERM stopped the command after it cleaned up (conversations ended, files closed)."""

    exit_code = 130


class ChangesPending(HarnessError):
    """`invoke plan` found work to do: not a failure, but CI wants a distinct exit code."""

    exit_code = 6
