"""logs/callbacks.sqlite3: the durable store of accepted callbacks, and its indexed readers.

Stdlib `sqlite3` in WAL mode with `synchronous=FULL`: a committed transaction is on disk.
Callbacks are committed in batches, one transaction (one fsync) for whatever is waiting, however
many conversations it spans (GroupCommit, driven by the receiver's event loop); a callback is
answered 2xx only once its batch is committed, so the receiver acknowledges only what is kept.

A callback is stored once: a UNIQUE index over (conversation, event type, timestamp, body hash)
is checked inside the same transaction, so "duplicate" is only ever said of a copy that is
already committed. An envelope without a timestamp is never called a duplicate (as before).
Records are redacted before they are stored. The per-conversation `logs/callbacks/*.jsonl`
files of earlier versions are imported once, in one transaction, the first time the database
is opened (writer or reader); the files are left in place.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import sqlite3
import threading
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..redact import redact
from ..store import RUN_ID, read_jsonl, utc_now

DB_NAME = "callbacks.sqlite3"  # under logs/
LEGACY_DIR = "callbacks"  # logs/callbacks/<conversation_id>.jsonl, imported once
MAX_BATCH = 512  # callbacks committed together at most
BUSY_TIMEOUT = 10.0  # seconds a connection waits for another one's write lock

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY,
        ts TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        timestamp TEXT,
        body_hash TEXT NOT NULL,
        record TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX IF NOT EXISTS events_once ON events (conversation_id, event_type, timestamp, body_hash)",
    "CREATE INDEX IF NOT EXISTS events_by_conversation ON events (conversation_id)",
    "CREATE INDEX IF NOT EXISTS events_by_type ON events (event_type)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_INSERT = ("INSERT OR IGNORE INTO events (ts, conversation_id, event_type, timestamp, body_hash, record) "
           "VALUES (?, ?, ?, ?, ?, ?)")
_INSERT_MANY = ("INSERT OR IGNORE INTO events (ts, conversation_id, event_type, timestamp, body_hash, record) "
                "VALUES {values}")


class StoreError(Exception):
    """A callback could not be committed to the store (nothing of its batch was kept)."""


def connect(path: Path, legacy_dir: Path | None = None) -> sqlite3.Connection:
    """Open (creating if needed) the store at `path`: WAL, synchronous=FULL, schema, one-time import.

    The connection is in autocommit mode; writers issue BEGIN IMMEDIATE / COMMIT themselves.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False,
                           cached_statements=MAX_BATCH + 16)  # one INSERT per batch size
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        if conn.execute("SELECT count(*) FROM sqlite_master WHERE name IN ('events', 'meta')").fetchone()[0] < 2 \
                or not _imported(conn):
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA:
                    conn.execute(statement)
                if not _imported(conn):
                    count = _import_jsonl(conn, legacy_dir) if legacy_dir is not None else 0
                    conn.execute("INSERT INTO meta (key, value) VALUES ('imported_jsonl', ?)",
                                 (f"{utc_now()} ({count} records)",))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    except BaseException:
        conn.close()
        raise
    return conn


def _imported(conn: sqlite3.Connection) -> bool:
    try:
        return conn.execute("SELECT 1 FROM meta WHERE key = 'imported_jsonl'").fetchone() is not None
    except sqlite3.OperationalError:  # no meta table yet
        return False


def _import_jsonl(conn: sqlite3.Connection, folder: Path) -> int:
    """Insert every readable record of folder/*.jsonl, oldest first (merged by received time)."""
    if not folder.is_dir():
        return 0
    streams = [(r for r in read_jsonl(path) if isinstance(r.get("event"), dict))
               for path in sorted(folder.glob("*.jsonl"))]
    count = 0
    for record in heapq.merge(*streams, key=lambda r: str(r.get("ts", ""))):
        event = record["event"]
        if not isinstance(event.get("conversation_id"), str) or not isinstance(event.get("event_type"), str):
            continue
        conn.execute(_INSERT, _row(record, _encode(record)))
        count += 1
    return count


def _encode(record: dict) -> str:
    text = json.dumps(record, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from the sender: keep it as a JSON escape
        text = json.dumps(record, ensure_ascii=True, default=str)
    return text


def body_hash(event: dict) -> str:
    """SHA-256 of the (redacted) envelope in canonical JSON: what tells two callbacks apart."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _row(record: dict, text: str) -> tuple:
    event = record["event"]
    stamp = event.get("timestamp")
    return (str(record.get("ts") or ""), event["conversation_id"], event["event_type"],
            stamp if isinstance(stamp, str) and stamp else None, body_hash(event), text)


class Pending:
    """One callback prepared for a commit: its row, and after the commit `stored` (False: a copy was
    already committed) or `error` (why its batch could not be committed; `detail`: the traceback)."""

    __slots__ = ("row", "event", "record", "stored", "error", "detail")

    def __init__(self, row: tuple, event=None, record=None):
        self.row, self.event, self.record, self.stored, self.error, self.detail = row, event, record, False, None, None


class EventStore:
    """The writer side: `start()`, `prepare(event)` + `commit(batch)`, or `append(event)`; `close()`.

    `commit()` writes a whole batch in one transaction (one fsync). The receiver batches from its
    event loop (GroupCommit below): whatever arrives while a batch commits forms the next one.
    `append()` is the one-at-a-time form for callers on threads. Commits are serialised here.

    `problem` holds why the database could not be opened at start (None when it could); a
    later batch tries again, so the receiver keeps running and answers 500 meanwhile.
    `on_stored([(event, record, text), ...])`, when given, is called after each commit with what that
    batch newly stored (`text`: the record's JSON as stored), in commit order, by the committing
    thread: it must be quick (a queue put).
    """

    def __init__(self, path: Path, secrets=(), *, legacy_dir: Path | None = None, on_stored=None):
        self.path = Path(path)
        self.legacy_dir = legacy_dir
        self.secrets = list(secrets)
        self.problem: str | None = None
        self.on_stored = on_stored
        self._conn: sqlite3.Connection | None = None
        self._write = threading.Lock()  # one commit at a time
        self._state = threading.Condition()  # guards _closed and _inflight
        self._inflight = 0  # commits begun and not finished
        self._closed = False

    def start(self) -> "EventStore":
        """Open the database (a failure is kept in `problem`; the first batch tries again)."""
        try:
            self._conn = connect(self.path, self.legacy_dir)
            self.problem = None
        except Exception as exc:  # noqa: BLE001 - reported, and retried by the first batch
            self.problem = f"{self.path}: {type(exc).__name__}: {exc}"
        return self

    def prepare(self, event: dict, received_at: str | None = None) -> Pending:
        """The redacted record of one accepted envelope and its row, ready for `commit()` (no I/O)."""
        record = redact({"ts": received_at or utc_now(), "run_id": RUN_ID, "type": "callback", "event": event},
                        self.secrets)
        return Pending(_row(record, _encode(record)), event, record)

    def append(self, event: dict, received_at: str | None = None) -> dict | None:
        """Store one accepted envelope now; return the record as stored, or None when that exact callback
        is already committed. Raises StoreError when it could not be committed."""
        pending = self.prepare(event, received_at)
        self.commit([pending])
        if pending.error is not None:
            raise StoreError(f"{self.path}: {pending.error}")
        return pending.record if pending.stored else None

    def commit(self, items: list[Pending]) -> None:
        """Commit `items` in one transaction; every item gets `stored` or `error` set (never raises for I/O).

        Once close() has begun, new commits are refused; commits already begun still finish."""
        with self._state:
            if self._closed:
                for p in items:
                    p.stored, p.error = False, "the store is closed"
                return
            self._inflight += 1
        try:
            with self._write:
                self._commit(items)
        finally:
            with self._state:
                self._inflight -= 1
                self._state.notify_all()

    def close(self, timeout: float = 10.0) -> None:
        """Refuse further commits, let those begun finish (bounded by `timeout`), then close the database."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            finished = self._state.wait_for(lambda: self._inflight == 0, timeout)
        if finished:
            with self._write:
                self._disconnect()

    def _commit(self, items: list[Pending]) -> None:
        """One statement for the whole batch: it inserts, checks uniqueness and commits (one fsync) at once.

        When it inserted every row (the usual case) each callback is stored; otherwise the rows it kept
        are told apart by reading the batch's keys back (`_kept`).
        """
        try:
            if self._conn is None:
                self._conn = connect(self.path, self.legacy_dir)
            before = self._conn.total_changes
            self._conn.execute(_INSERT_MANY.format(values=", ".join(["(?, ?, ?, ?, ?, ?)"] * len(items))),
                               [v for p in items for v in p.row])
            if self._conn.total_changes - before == len(items):
                for p in items:
                    p.stored = True
            else:
                self._kept(items)
        except BaseException as exc:  # every waiter hears of it; nothing of the batch counts
            detail = traceback.format_exc(limit=8)
            for p in items:
                p.stored = False
                p.error, p.detail = f"{type(exc).__name__}: {exc}", detail
            self._disconnect()  # rolls back; the next batch opens afresh
            if not isinstance(exc, Exception):
                raise
            return
        if self.on_stored is not None:
            stored = [(p.event, p.record, p.row[5]) for p in items if p.stored]
            if stored:
                self.on_stored(stored)

    def _kept(self, items: list[Pending]) -> None:
        """Mark which callbacks of a committed batch it stored, by reading their keys back: a row holds
        exactly the text of the callback that made it (received time and run id included), so a copy
        stored earlier, or earlier in the same batch, does not match. A callback without a timestamp
        is never a duplicate (NULLs are distinct in the UNIQUE index), so it was always stored."""
        keyed = [p for p in items if p.row[3] is not None]
        for p in items:
            p.stored = p.row[3] is None
        if not keyed:
            return
        rows = self._conn.execute(
            "SELECT conversation_id, event_type, timestamp, body_hash, record FROM events "
            "WHERE (conversation_id, event_type, timestamp, body_hash) IN (VALUES "
            + ", ".join(["(?, ?, ?, ?)"] * len(keyed)) + ")", [v for p in keyed for v in p.row[1:5]]).fetchall()
        stored = {row[:4]: row[4] for row in rows}
        for p in keyed:
            key = p.row[1:5]
            if stored.get(key) == p.row[5]:
                p.stored = True
                del stored[key]  # an identical copy later in the batch was ignored

    def _disconnect(self) -> None:
        if self._conn is not None:
            try:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None


class GroupCommit:
    """Group commit for callers on one asyncio event loop: `add(pending, done)` from the loop thread.

    One thread commits; callbacks that arrive while a batch is being committed wait and form the next
    batch (at most MAX_BATCH), so a busy receiver pays one fsync for many callbacks whatever their
    conversations. `done(pending)` is called on the loop thread once its batch is committed (or failed).
    """

    def __init__(self, store: EventStore, loop):
        self.store, self.loop = store, loop
        self._waiting: list[tuple[Pending, object]] = []
        self._busy = False
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="callback-commit")

    def add(self, pending: Pending, done) -> None:
        """Queue one prepared callback; `done(pending)` follows its commit (loop thread only)."""
        self._waiting.append((pending, done))
        if not self._busy:
            self._next()

    def _next(self) -> None:
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        self._busy = True
        committed = self.loop.run_in_executor(self._pool, self.store.commit, [p for p, _ in batch])
        committed.add_done_callback(lambda future: self._finished(batch, future))

    def _finished(self, batch, future) -> None:
        self._busy = False
        if self._waiting:
            self._next()  # the next batch commits while this one is answered
        failed = future.cancelled() or future.exception() is not None
        for pending, done in batch:
            if failed and pending.error is None:  # never let an uncommitted callback pass for a duplicate
                pending.stored, pending.error = False, "the commit did not run"
            done(pending)

    def close(self) -> None:
        """Wait for the commit in progress (call once nothing is added any more)."""
        self._pool.shutdown(wait=True)


def group_bounds(event_type: str) -> tuple[str, str, str]:
    """(exact, low, high): `event_type` matches itself, or the types of its group (`system` -> `system.*`)."""
    prefix = event_type.rstrip(".")
    return event_type, prefix + ".", prefix + "/"  # "/" is the character after "."


def iter_records(path: Path, *, legacy_dir: Path | None = None, conversation_id: str | None = None,
                 event_type: str | None = None) -> Iterator[dict]:
    """Stored records (received time + envelope), in arrival order, filtered; read lazily.

    Nothing is created when neither the database nor `legacy_dir` exists.
    """
    path = Path(path)
    if not path.exists() and not (legacy_dir is not None and legacy_dir.is_dir()):
        return
    where, args = [], []
    if conversation_id is not None:
        where.append("conversation_id = ?")
        args.append(conversation_id)
    if event_type:
        where.append("(event_type = ? OR (event_type >= ? AND event_type < ?))")
        args.extend(group_bounds(event_type))
    sql = "SELECT record FROM events" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
    conn = connect(path, legacy_dir)
    try:
        for (text,) in conn.execute(sql, args):
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("event"), dict):
                yield record
    finally:
        conn.close()


def _types(conn: sqlite3.Connection) -> list[str]:
    """The distinct event types stored, by a skip scan of the type index: one probe per type, not per row."""
    return [t for (t,) in conn.execute(
        "WITH RECURSIVE kinds(t) AS (SELECT min(event_type) FROM events UNION ALL "
        "SELECT (SELECT min(event_type) FROM events WHERE event_type > t) FROM kinds WHERE t IS NOT NULL) "
        "SELECT t FROM kinds WHERE t IS NOT NULL")]


def _in_group(stored: str, wanted: str) -> bool:
    exact, low, high = group_bounds(wanted)
    return stored == exact or low <= stored < high


def query_page(path: Path, *, legacy_dir: Path | None = None, conversation_id: str | None = None,
               event_type: str | None = None, since: str | None = None, until: str | None = None,
               before_id: int | None = None, after_id: int | None = None, limit: int = 50) -> list[tuple[int, dict]]:
    """One page of (row id, record), by row id: newest first, or oldest first when `after_id` is given.

    Keyset pagination (`before_id` / `after_id`) over the primary key and the conversation and type
    indexes, so a page costs the same at row 100 and at row 100,000. A type filter (or a group such
    as `system`) becomes one `event_type = ?` read per matching type, each walking the type index in
    row order, merged here: an OR of ranges would make SQLite sort every match of the type first.
    `since`/`until` bound the received time (ISO-8601 prefixes compare as text). Nothing is created
    when there is no store.
    """
    path = Path(path)
    if not path.exists() and not (legacy_dir is not None and legacy_dir.is_dir()):
        return []
    where, args = [], []
    if conversation_id:
        where.append("conversation_id = ?")
        args.append(conversation_id)
    if since:
        where.append("ts >= ?")
        args.append(since)
    if until:
        where.append("ts < ?")
        args.append(until)
    if before_id is not None:
        where.append("id < ?")
        args.append(int(before_id))
    if after_id is not None:
        where.append("id > ?")
        args.append(int(after_id))
    newest_first = after_id is None
    limit = max(1, int(limit))

    def select(conditions):
        return (f"SELECT id, record FROM events{' WHERE ' + ' AND '.join(conditions) if conditions else ''} "
                f"ORDER BY id {'DESC' if newest_first else 'ASC'} LIMIT ?")

    conn = connect(path, legacy_dir)
    try:
        if event_type:
            rows = []
            for kind in (t for t in _types(conn) if _in_group(t, event_type)):
                rows += conn.execute(select([*where, "event_type = ?"]), [*args, kind, limit]).fetchall()
            rows = sorted(rows, key=lambda row: row[0], reverse=newest_first)[:limit]
        else:
            rows = conn.execute(select(where), [*args, limit]).fetchall()
    finally:
        conn.close()
    page = []
    for row_id, text in rows:
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("event"), dict):
            page.append((row_id, record))
    return page


def recent_conversations(conn: sqlite3.Connection, before_id: int | None = None,
                         limit: int = 50) -> list[tuple[str, int, str, str, int]]:
    """(conversation id, events, received time of its first and of its last row, last row id), most
    recently active first.

    Keyset pagination by the last row id: the next page is `before_id=` the last one's. Rows are
    walked newest first until `limit` conversations are found (a conversation's first row met is
    its newest), then each is counted through the conversation index: the cost follows the page,
    not the store (a GROUP BY over every row grew 64x from 1k to 100k events). The walk is longer
    when conversations listed on earlier pages keep interleaving rows below the cursor (many long
    conversations at once): then it also passes their rows, which the next page skips.
    """
    found: list[tuple[str, int, str, str, int]] = []
    seen: set[str] = set()
    walk = "SELECT id, conversation_id FROM events" + (" WHERE id < ?" if before_id is not None else "") + \
        " ORDER BY id DESC"
    for row_id, cid in conn.execute(walk, () if before_id is None else (int(before_id),)):
        if cid in seen:
            continue
        seen.add(cid)
        if before_id is not None and conn.execute(  # active after the cursor: it was on an earlier page
                "SELECT 1 FROM events WHERE conversation_id = ? AND id >= ? LIMIT 1", (cid, int(before_id))).fetchone():
            continue
        # count and first row from the conversation index alone; received times of its first and last rows
        count, first_id = conn.execute("SELECT count(*), min(id) FROM events WHERE conversation_id = ?",
                                       (cid,)).fetchone()
        first, last = (conn.execute("SELECT ts FROM events WHERE id = ?", (i,)).fetchone()[0] for i in (first_id, row_id))
        found.append((cid, count, first, last, row_id))
        if len(found) >= limit:
            break
    return found


def summarize(path: Path, *, legacy_dir: Path | None = None, limit: int = 200, before_id: int | None = None) -> dict:
    """What the store holds at a glance: newest row id, event types, and the `limit` most recently active
    conversations (before row `before_id`, when given) as (conversation id, events, first received,
    last received, last row id), newest first. Indexed reads only: the cost does not grow with the store."""
    path = Path(path)
    if not path.exists() and not (legacy_dir is not None and legacy_dir.is_dir()):
        return {"last_id": 0, "types": [], "conversations": []}
    conn = connect(path, legacy_dir)
    try:
        last_id = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        types = _types(conn)
        conversations = recent_conversations(conn, before_id, limit) if limit > 0 else []
    finally:
        conn.close()
    return {"last_id": last_id, "types": types, "conversations": conversations}
