"""Files the harness writes: logs/ as append-only JSON lines (secrets removed before every write),
and whole files replaced atomically (the lock file, the sandbox state, pulled configs).

`Store.append()` is the only writer of log records. One record per line with `ts`, `run_id`
and `type`, written with one `write()` to a file opened with O_APPEND: threads and processes
appending to the same file never interleave within a line, so no lock is needed (one held across
the open and the write made a busy run's threads queue behind each other to log, issue 13). A lone
surrogate (valid in JSON, not in UTF-8) is kept as its JSON escape. Fsynced when `durable=True`.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from .errors import ConfigError
from .redact import redact

RUN_ID = os.urandom(6).hex()  # this process's run, on every log record (uuid would import platform)


def utc_now() -> str:
    """Current UTC time as ISO-8601 with microseconds and a Z suffix."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")[:-6] + "Z"  # isoformat: C, not strftime


def atomic_write(path: Path, text: str, *, check=None) -> None:
    """Replace `path` with `text` in one step: readers see the old file or the new one, never half.

    The text goes to a temp file of a unique name beside `path` (so concurrent writers never share
    one), is fsynced, then `check(temp_path)` may refuse it by raising, and it takes `path`'s place.
    The temp file is removed whatever fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def read_jsonl(path: Path) -> Iterator[dict]:
    """The JSON objects of a JSON-lines file, in order; a line that does not parse (a torn last
    line after a crash) or is not an object is skipped. A missing file has none."""
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return
    with fh:
        for line in fh:
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict):
                yield record


def writable(path, flag: str, example: str) -> None:
    """Refuse, before any work, an output file that cannot be written (a directory, no permission, ...).

    `flag` and `example` name the option and a good value for the one-line error.
    """
    target = os.path.abspath(path)
    if os.path.isdir(target):
        raise ConfigError(f"--{flag} {path}: is a directory", hint=f"name a file, e.g. --{flag} {example}")
    existed = os.path.exists(target)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a", encoding="utf-8"):
            pass
        if not existed:
            os.remove(target)
    except OSError as exc:
        raise ConfigError(f"--{flag} {path}: cannot write there ({exc.strerror})",
                          hint=f"pick a writable path, e.g. --{flag} {example}") from None


APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


class Store:
    """Writes redacted JSON-lines records under a logs directory. Thread-safe, and safe to share
    a file with other processes."""

    def __init__(self, logs_dir: Path, secrets=()):
        self.logs_dir = Path(logs_dir)
        self.secrets = list(secrets)

    def path(self, stream: str) -> Path:
        """File of a stream name such as `api` or `callbacks/c123` (`.jsonl` added)."""
        return self.logs_dir / f"{stream}.jsonl"

    def append(self, stream: str, record: dict, *, durable: bool = False) -> dict:
        """Redact `record`, stamp it, append it as one line to `stream`, and return what was written."""
        record = {"ts": utc_now(), "run_id": RUN_ID, **record}
        record = redact(record, self.secrets)
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8", "backslashreplace")
        path = self.path(stream)
        try:
            fd = os.open(path, APPEND_FLAGS, 0o644)
        except FileNotFoundError:  # the first record of its folder
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, APPEND_FLAGS, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):  # only a full disk writes less: an error, never a silent half line
                raise OSError(f"{path}: short write ({written} of {len(line)} bytes)")
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        return record

    def read(self, stream: str) -> list[dict]:
        """All records of a stream, oldest first (a torn last line is skipped)."""
        return list(read_jsonl(self.path(stream)))
