"""The state file `tavus-harness.lock.toml`: which remote resource each config name became.

One table per resource, under the API base URL it lives on (the sandbox and the real API never
mix): kind, name, remote id, the hash of what we last sent, the hash of the managed fields as
the API returned them right after that write (so a dashboard edit shows as a remote change),
the config file and when. Hashes are over canonical JSON (sorted keys, no spaces). Written with
tomli-w in a stable order, only when something changed; it holds no secrets.

Reading: the file is parsed once per command and kept in memory (`State`, one per RunContext);
a lookup costs one `stat`, and the file is parsed again only when another process replaced it.

Writing, with other commands running at once (two `invoke apply`, eight `invoke persona`...):
writers are serialised by an inter-process lock, the `filelock` library on
`.tavus-harness.lock.toml.lock` beside the state file (imported only when a command writes).
Under that lock a writer re-reads the file if another process changed it, merges its one entry
into the current content and replaces the file atomically (store.atomic_write, a unique temp
name), so no entry written by another command is ever lost.

Creates hold the lock around "check the state -> create the remote resource -> record it"
(`locked()` in resources/persona.py and resources/policies.py), one resource at a time: a
second command that wants the same resource waits, then finds the first one's entry and updates
(or, for `invoke persona` without --upsert, refuses) instead of making a duplicate. Holding it
per resource rather than for a whole command keeps unrelated work in parallel: building
payloads, plans, reads and updates need no lock, and two `apply` runs interleave resource by
resource. The price is that a command waits while another creates one resource (a few requests).
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import threading
from pathlib import Path

import tomli_w
from jsonpointer import unescape

from ..context import EPHEMERAL, RunContext
from ..errors import ConfigError, HarnessError
from ..merge import leaf_pointers
from ..project import LOCK_FILE
from ..store import atomic_write, utc_now
from .remote import fetch_remote

MUTEX_FILE = ".tavus-harness.lock.toml.lock"  # the inter-process lock beside it (never committed)
MUTEX_WAIT = 300.0  # seconds a writer waits for another command's create (a create with retries is < 1 min)
# Dependency order: what a PAL references first (documents, dictionaries, tools, policies), PALs last.
KINDS = ("documents", "pronunciation", "tools", "objectives", "guardrails", "persona")
HEADER = "# Written by tavus-harness: which remote resource each config became. Commit it.\n"


class State:
    """The state file of one project as this command knows it: parsed once, indexed in memory."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict = {}  # {api_url: {kind: {name: entry}}}
        self.text: str | None = None  # the file's text as last read or written (None: no file)
        self._raw: bytes | None = None  # the same, as bytes
        self.stamp: tuple | None | bool = False  # (device, inode, mtime, size) of that file; None: none; False: unread
        self.guard = threading.RLock()  # threads of this process; the file lock is for processes
        self._chunks: dict = {}  # (api, kind, name) -> (entry, its TOML text): render() reuses unchanged ones
        self._mutex = None

    def current(self, *, exact: bool = False) -> dict:
        """The state, parsed again only when the file changed since this command last saw it.

        Changed means another (device, inode, mtime, size), one `stat`; `exact=True` (writers,
        under the lock) compares the bytes instead, which no coarse clock or reused inode fools.
        """
        with self.guard:
            if exact or _stamp(self.path) != self.stamp:
                self._read()
            return self.data

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                stamp, raw = _fstamp(os.fstat(fh.fileno())), fh.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            self.data, self.text, self._raw, self.stamp = {}, None, None, None
            return
        if raw == self._raw:  # the same bytes: keep what was parsed
            self.stamp = stamp
            return
        import tomli  # here, not at start-up: a command that never reads the state file never pays for it
        try:
            text = raw.decode("utf-8")
            data = tomli.loads(text)
        except (tomli.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{self.path.name}: unreadable state file ({exc})",
                              hint="restore it from git, or delete it to start over (resources stay on Tavus)") from None
        self.data, self.text, self._raw, self.stamp = data.get("api", {}), text, raw, stamp

    def write(self) -> bool:
        """Write the state in a stable order, atomically; False (nothing written) when unchanged.

        Call it only under `locked()`, after changing `data` as read under that lock.
        """
        text = render(self.data, self._chunks)
        if text == self.text:
            return False
        try:
            atomic_write(self.path, text)
        except BaseException:
            self._raw, self.stamp = None, False  # `data` holds what is not on disk: read the file again
            raise
        self.text, self._raw, self.stamp = text, text.encode("utf-8"), _stamp(self.path)
        return True

    @contextlib.contextmanager
    def mutex(self):
        """Hold the inter-process lock (and this process's thread lock) for a read-modify-write."""
        import filelock  # lazily: only commands that write pay for the import

        if self._mutex is None:
            self._mutex = filelock.FileLock(str(self.path.parent / MUTEX_FILE))
        with self.guard:
            try:
                self._mutex.acquire(timeout=MUTEX_WAIT)
            except filelock.Timeout:
                raise HarnessError(f"{LOCK_FILE}: another tavus-harness command has held {MUTEX_FILE} "
                                   f"for {MUTEX_WAIT:.0f} s", hint="wait for it to finish, then run this again") from None
            except OSError as exc:
                raise ConfigError(f"{MUTEX_FILE}: cannot create the lock beside {LOCK_FILE} ({exc.strerror})",
                                  hint="run the command where the project folder is writable") from None
            try:
                yield
            finally:
                self._mutex.release()


def _fstamp(st: os.stat_result) -> tuple:
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def _stamp(path: Path) -> tuple | None:
    try:
        return _fstamp(os.stat(path))
    except OSError:
        return None


def render(state: dict, chunks: dict | None = None) -> str:
    """The file's text for a state: sorted by API, kind, name and key, empty tables left out.

    The same text as tomli_w gives for the whole state, built entry by entry so that `chunks`
    ((api, kind, name) -> (entry, text), kept between calls) saves re-formatting the entries that
    did not change: writing after each of 500 creates stays linear.
    """
    chunks = {} if chunks is None else chunks
    parts, seen = [], set()
    for url, kinds in sorted(state.items()):
        for kind in sorted(kinds):
            for name, entry in sorted(kinds[kind].items()):
                key = (url, kind, name)
                seen.add(key)
                known = chunks.get(key)
                if known is None or known[0] != entry:
                    ordered = dict(sorted(entry.items()))
                    known = chunks[key] = (copy.deepcopy(entry), tomli_w.dumps({"api": {url: {kind: {name: ordered}}}}))
                parts.append(known[1])
    for key in [k for k in chunks if k not in seen]:
        del chunks[key]
    return HEADER + "\n".join(parts)


def state(ctx: RunContext) -> State:
    """This command's State of the project's state file (made on first use, kept on the context)."""
    known = getattr(ctx, "_lock_state", None)
    if known is None or known.path != lock_path(ctx):
        known = State(lock_path(ctx))
        ctx._lock_state = known
    return known


@contextlib.contextmanager
def locked(ctx: RunContext):
    """Serialise with other commands of this project: hold the inter-process lock, with the state
    re-read if another process changed it. Re-entrant. Nothing to lock for an untracked sandbox."""
    if not tracked(ctx):
        yield
        return
    current = state(ctx)
    with current.mutex():
        current.current(exact=True)
        yield


def canonical_hash(data) -> str:
    """sha256 of canonical JSON: key order and whitespace never change it."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def shape(paths) -> dict:
    """The tree of keys those pointers walk through (list indices as "0", "1", ...)."""
    tree: dict = {}
    for path in paths:
        node = tree
        for token in path.split("/")[1:]:
            node = node.setdefault(unescape(token), {})
    return tree


def sent_before(ctx: RunContext, kind: str, name: str | None, remote_id: str, config) -> dict | None:
    """The shape of everything the harness sent to this resource (from configs and flags alike), or None.

    An update may remove what the harness sent before and no longer sends (see remote.project);
    fields set by the dashboard or by hand were never sent, and are never touched.
    """
    known = entry(ctx, kind, name) if name else None
    if not known or known.get("id") != remote_id:
        return None
    return shape(known.get("paths") or [])


def same_config(ctx: RunContext, kind: str, name: str | None, config) -> bool:
    """True when `config` is the file that last wrote `kind`/`name` (it may then drop top-level fields)."""
    known = entry(ctx, kind, name) if name else None
    return bool(known and config and known.get("config") and config_id(known["config"]) == config_id(config))


def refuse_remote_change(ctx: RunContext, kind: str, name: str, remote: dict, where: str, force: bool) -> None:
    """Every write path's guard: a resource changed outside the harness since our last write is
    not overwritten unless `force` (the same test as plan's remote-changed)."""
    known = entry(ctx, kind, name)
    if force or not known or canonical_hash(managed(remote, known.get("fields") or [])) == known["remote_hash"]:
        return
    from ..errors import CheckFailed
    raise CheckFailed(f"{where}: {kind} {name!r} ({known['id']}) was changed outside the harness since it was last written",
                      hint="review it with `invoke plan`, then add --force to overwrite it, or `invoke pull` to take the remote version")


def config_id(config) -> str:
    """A config path as one spelling: relative to the current directory when inside it, else absolute."""
    path = Path(os.path.abspath(str(config)))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def lock_path(ctx: RunContext) -> Path:
    """Where the state file of this project lives."""
    return ctx.root / LOCK_FILE


def load(ctx: RunContext) -> dict:
    """The whole state: {api_url: {kind: {name: entry}}} (this command's copy: do not change it)."""
    return state(ctx).current()


def tracked(ctx: RunContext) -> bool:
    """False for an embedded, throw-away sandbox: nothing to remember about it."""
    return not ctx.env.flag(EPHEMERAL)


def entry(ctx: RunContext, kind: str, name: str) -> dict | None:
    """The state entry of `kind`/`name` for the current API, if any."""
    if not tracked(ctx):
        return None
    return state(ctx).current().get(ctx.client().target.base_url, {}).get(kind, {}).get(name)


def managed(remote: dict, fields) -> dict:
    """The remote resource cut to the top-level fields our config manages (compared whole)."""
    return {k: remote.get(k) for k in sorted(fields)}


def record(ctx: RunContext, kind: str, name: str, remote_id: str, sent: dict, remote: dict,
           config: str | None, *, from_config_only: bool = True) -> None:
    """Remember a write and the remote as read back; the timestamp only moves when something did.

    `paths` (what a later update may remove) is everything the harness sent and the API still
    holds: this write's fields, from config and flags alike, and earlier ones still there.
    `from_config_only=False` (value flags were given) keeps the config recorded before.
    """
    if not tracked(ctx):
        return
    api = ctx.client().target.base_url
    with locked(ctx):  # merged into the file as it is now, whoever wrote it last
        current = state(ctx)
        kinds = current.data.setdefault(api, {}).setdefault(kind, {})
        kinds[name] = _entry(kinds.get(name, {}), kind, name, remote_id, sent, remote, config, from_config_only)
        current.write()


def _entry(old: dict, kind: str, name: str, remote_id: str, sent: dict, remote: dict, config: str | None,
           from_config_only: bool) -> dict:
    """The new entry for a write, given the one recorded before (or {})."""
    earlier = [p for p in old.get("paths", []) if old.get("id") == remote_id and _holds(remote, p)]
    new = {"id": remote_id, "sent_hash": canonical_hash(sent), "fields": sorted(sent),
           "paths": sorted(set(leaf_pointers(sent)) | set(earlier)),
           "remote_hash": canonical_hash(managed(remote, sent)),
           "config": config_id(config) if config and (from_config_only or not old.get("config")) else old.get("config", ""),
           "kind": kind, "name": name}
    if {k: old.get(k) for k in new} != new:
        new["written_at"] = utc_now()
    else:
        new["written_at"] = old.get("written_at", utc_now())
    return new


def _holds(document, pointer: str) -> bool:
    """True when `pointer` names a value in `document`."""
    from jsonpointer import resolve_pointer
    marker = object()
    try:
        return resolve_pointer(document, pointer, marker) is not marker
    except Exception:  # a malformed pointer in an old state file: not held
        return False


def forget(ctx: RunContext, kind: str, name: str) -> None:
    """Drop the entry of `kind`/`name` on the current API (under the inter-process lock)."""
    if not tracked(ctx):
        return
    with locked(ctx):
        current = state(ctx)
        current.data.get(ctx.client().target.base_url, {}).get(kind, {}).pop(name, None)
        current.write()


def guard_create(ctx: RunContext, kind: str, name: str | None, where: str) -> dict | None:
    """Before a create: the existing entry of that name on this API (the caller decides), or None.

    Call it under `locked()` and keep the lock until the create is recorded: then no other
    command can create the same resource in between.

    An entry whose resource is gone (deleted in the dashboard, or a sandbox restarted without
    --state) is forgotten with a note, so the create goes ahead instead of pointing at nothing.
    """
    if not name:
        return None
    known = entry(ctx, kind, name)
    if known and fetch_remote(ctx, kind, known["id"]) is None:
        ctx.note(f"note: {kind} {name!r} ({known['id']}) in {LOCK_FILE} no longer exists on "
                 f"{ctx.client().target.label}; forgetting it and creating a new one")
        forget(ctx, kind, name)
        return None
    return known
