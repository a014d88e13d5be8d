"""logs/callbacks/<conversation_id>.jsonl: the durable store of accepted callbacks.

Each file is appended with group commit (one write and one fsync cover every line waiting);
a record is on disk before append() returns, so the receiver answers 2xx only for what is kept.
"""
from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from pathlib import Path

from ..redact import redact
from ..store import RUN_ID, read_jsonl, utc_now


class _DurableFile:
    """One JSONL file appended with group commit: one write + fsync covers every waiting line.

    `append()` returns once its line is on disk, or raises OSError if the write that carried
    it failed (then none of that batch counts as stored).
    """

    def __init__(self, path: Path):
        self.path = path
        self._io = threading.Lock()
        self._state = threading.Lock()
        self._pending: list[bytes] = []
        self._queued = 0
        self._done = 0
        self._failed: list[tuple[int, int]] = []  # (after, upto] ranges of lines whose write failed
        self._fd: int | None = None

    def append(self, line: bytes) -> None:
        with self._state:
            self._pending.append(line)
            self._queued += 1
            mine = self._queued
        with self._io:
            with self._state:
                if self._done >= mine:  # a thread before us wrote our line (or failed to)
                    if any(after < mine <= upto for after, upto in self._failed):
                        raise OSError(f"writing {self.path} failed")
                    return
                batch, after, upto = self._pending, self._done, self._queued
                self._pending = []
            try:
                self._write(b"".join(batch))
            except BaseException:  # none of this batch is stored, and every thread waiting on it hears so
                with self._state:
                    self._failed.append((after, upto))
                    self._done = upto
                raise
            with self._state:
                self._done = upto

    def _write(self, data: bytes) -> None:
        """Append and fdatasync through a descriptor kept open (O_APPEND); a failure closes it."""
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except FileNotFoundError:  # first line of the first conversation, or logs/ was removed
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            os.fdatasync(self._fd)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def release(self) -> None:
        """Close the descriptor between writes (it is opened again by the next one)."""
        with self._io:
            self.close()


MAX_OPEN_FILES = 256  # descriptors kept open at once (well under the usual limit of 1024); least recent closed first


class CallbackLog:
    """logs/callbacks/<conversation_id>.jsonl: one redacted record per accepted callback, durable.

    `append()` returns only after the line is flushed and fsynced. Each file has its own
    lock, so conversations never wait on each other. A callback already stored (same
    conversation, event type and timestamp: Tavus re-sent it) is not stored again; records
    already on disk count, so a restarted receiver does not store a re-sent callback twice.
    Out-of-order callbacks are kept in arrival order with their own timestamps.
    """

    def __init__(self, directory: Path, secrets=()):
        self.directory = Path(directory)
        self.secrets = list(secrets)
        self._files: dict[str, _DurableFile] = {}
        self._seen: dict[str, set] = {}
        self._open: OrderedDict[str, None] = OrderedDict()  # conversations whose file is open, oldest first
        self._lock = threading.Lock()

    def path(self, conversation_id: str) -> Path:
        return self.directory / f"{conversation_id}.jsonl"

    def append(self, event: dict, received_at: str | None = None) -> dict | None:
        """Store one accepted envelope; return the record as written, or None for a duplicate."""
        cid = event["conversation_id"]
        key = (event.get("event_type"), event.get("timestamp")) if event.get("timestamp") else None
        record = redact({"ts": received_at or utc_now(), "run_id": RUN_ID, "type": "callback", "event": event},
                        self.secrets)
        try:
            line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from the sender: keep it as a JSON escape
            line = (json.dumps(record, ensure_ascii=True, default=str) + "\n").encode("ascii")
        with self._lock:
            durable = self._files.get(cid)
            if durable is None:
                self._seen[cid] = self._keys_on_disk(cid)
                durable = self._files[cid] = _DurableFile(self.path(cid))
            if key is not None:
                if key in self._seen[cid]:
                    return None
                self._seen[cid].add(key)
            self._open[cid] = None
            self._open.move_to_end(cid)
            stale = []
            while len(self._open) > MAX_OPEN_FILES:
                stale.append(self._files[self._open.popitem(last=False)[0]])
        for old in stale:  # bounded descriptors however many conversations a long session sees
            old.release()
        try:
            durable.append(line)
        except BaseException:
            with self._lock:
                self._seen[cid].discard(key)
            raise
        return record

    def close(self) -> None:
        """Close every open file (the receiver is stopping)."""
        with self._lock:
            for durable in self._files.values():
                durable.close()

    def _keys_on_disk(self, cid: str) -> set:
        keys = set()
        for record in read_jsonl(self.path(cid)):
            event = record.get("event") if isinstance(record.get("event"), dict) else {}
            if event.get("timestamp"):
                keys.add((event.get("event_type"), event.get("timestamp")))
        return keys
