"""The CLI edge: HarnessTask renders expected errors once, and output helpers redact secrets."""
from __future__ import annotations

import json
import os
import sys

from invoke import Exit, Task

from ..context import RunContext, make_context
from ..errors import ConfigError, HarnessError
from ..redact import redact, redact_text


HELP = {}  # "program": the Program that shows a task's help; set by harness_core.cli (no import back up)


class HarnessTask(Task):
    """An invoke Task whose HarnessError becomes one `error: ...` line and its exit code.

    This is the only place that catches HarnessError. Any other exception is a bug and keeps
    its traceback.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_shortflags", False)
        super().__init__(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        config = getattr(args[0], "config", None) if args else None
        RUNNING["program"] = getattr(type(config), "prefix", "invoke") or "invoke"  # TuneConfig: "tune"
        try:
            return super().__call__(*args, **kwargs)
        except HarnessError as exc:
            try:
                ctx = context(quiet=True)
            except HarnessError:
                ctx = None
            text = redact_text(exc.render(), ctx.secrets) if ctx else exc.render()
            raise Exit(f"error: {ctx.spoken(text) if ctx else text}", code=exc.exit_code) from None


RUNNING = {"program": "invoke"}  # which program runs this task: `tune` or `invoke` (set by HarnessTask)


def context(quiet: bool = False) -> RunContext:
    """The RunContext for this command (project root, environment, `.env`), naming the running program."""
    ctx = make_context(quiet=quiet)
    ctx.program = RUNNING["program"]
    if "program" in HELP:
        ctx.commands = frozenset(HELP["program"].namespace.task_names)
    return ctx


CLOSED_PIPE = 141  # the exit code of a command whose reader went away, as git and grep end


def silence(stream) -> None:
    """The reader went away (`| head`): point `stream` at /dev/null so nothing more fails on exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def _emit(text: str, stream) -> None:
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        silence(stream)
        raise Exit(code=CLOSED_PIPE) from None


def say(ctx: RunContext, text: str = "") -> None:
    """Print one line of normal output, with secrets removed."""
    _emit(ctx.spoken(redact_text(text, ctx.secrets)), sys.stdout)


def say_json(ctx: RunContext, data) -> None:
    """Print data as indented JSON, with secrets removed."""
    _emit(json.dumps(redact(data, ctx.secrets), indent=2, ensure_ascii=False, default=str), sys.stdout)


def say_json_line(ctx: RunContext, data) -> None:
    """Print data as one compact JSON line (a stream's element, see docs/output.md), secrets removed."""
    _emit(json.dumps(redact(data, ctx.secrets), ensure_ascii=False, default=str), sys.stdout)


def show_request(ctx: RunContext, as_json: bool, *, action: str, method: str, path: str, body) -> None:
    """What a --dry-run would send: a readable header and the body as text, or one JSON document with --json.

    The document is {"dry_run": true, "action", "method", "path", "body"} (docs/output.md).
    """
    if as_json:
        say_json(ctx, {"dry_run": True, "action": action, "method": method, "path": path, "body": body})
        return
    say(ctx, f"{action}: {method} {path}")
    for line in json.dumps(redact(body, ctx.secrets), indent=2, ensure_ascii=False, default=str).splitlines():
        say(ctx, "  " + line)


def warn(ctx: RunContext, text: str) -> None:
    """Print one line to stderr, with secrets removed."""
    _emit(ctx.spoken(redact_text(text, ctx.secrets)), sys.stderr)


def split_list(value: str | None) -> list[str] | None:
    """`a,b, c` -> ["a", "b", "c"]; None stays None (flag not given)."""
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def number(value, flag: str, default, *, whole: bool = True, low: float = 0, high: float | None = None,
           example=None):
    """A numeric flag (`default` when not given); anything else is a one-line ConfigError.

    Values must be >= low (> 0 when low is 0 and whole is False) and <= high when given.
    """
    if value is None:
        return default
    try:
        result = int(value) if whole else float(value)
    except (TypeError, ValueError):
        result = None
    positive_only = not whole and low == 0
    if (result is None or result != result or result < low or (positive_only and result <= 0)
            or (high is not None and result > high) or result == float("inf")):
        what = "a whole number" if whole else "a number"
        limits = "above 0" if positive_only else f">= {low}" + (f" and <= {high}" if high is not None else "")
        raise ConfigError(f"--{flag}: {value!r} is not {what} {limits}", hint=f"e.g. --{flag} {default if example is None else example}")
    return result


def json_object(value: str | None, flag: str) -> dict | None:
    """A flag holding a JSON object (None when not given); anything else is a one-line ConfigError."""
    if value is None:
        return None
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise ConfigError(f"--{flag}: not valid JSON ({exc.msg} at column {exc.colno})",
                          hint=f"quote it for the shell, e.g. --{flag} '{{\"max_call_duration\": 600}}'") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--{flag}: must be a JSON object, not {type(data).__name__}",
                          hint=f"e.g. --{flag} '{{\"max_call_duration\": 600}}'")
    return data


def not_help(value: str, name: str) -> str:
    """invoke hands a task's `--help` to its positional argument: show that task's help instead."""
    if value in ("--help", "-h"):
        HELP["program"].run([os.path.basename(sys.argv[0]) or "tune", "--help", name], exit=False)
        raise Exit(code=0)
    return value
