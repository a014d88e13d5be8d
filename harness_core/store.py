"""logs/: append-only JSON lines, secrets removed before every write.

`Store.append()` is the only writer of log records. One record per line with `ts`, `run_id`
and `type`; the file is flushed after every write (and fsynced when `durable=True`).
"""
from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

from .errors import ConfigError
from .redact import redact

RUN_ID = uuid.uuid4().hex[:12]


def utc_now() -> str:
    """Current UTC time as ISO-8601 with microseconds and a Z suffix."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


class Store:
    """Writes redacted JSON-lines records under a logs directory. Thread-safe."""

    def __init__(self, logs_dir: Path, secrets=()):
        self.logs_dir = Path(logs_dir)
        self.secrets = list(secrets)
        self._lock = threading.Lock()

    def path(self, stream: str) -> Path:
        """File of a stream name such as `api` or `callbacks/c123` (`.jsonl` added)."""
        return self.logs_dir / f"{stream}.jsonl"

    def append(self, stream: str, record: dict, *, durable: bool = False) -> dict:
        """Redact `record`, stamp it, append it as one line to `stream`, and return what was written."""
        record = {"ts": utc_now(), "run_id": RUN_ID, **record}
        record = redact(record, self.secrets)
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        path = self.path(stream)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                if durable:
                    os.fsync(fh.fileno())
        return record

    def read(self, stream: str) -> list[dict]:
        """All records of a stream, oldest first (a torn last line is skipped)."""
        path = self.path(stream)
        if not path.exists():
            return []
        out = []
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out
