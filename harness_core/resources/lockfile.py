"""The state file `tavus-harness.lock.toml`: which remote resource each config name became.

One table per resource, under the API base URL it lives on (the sandbox and the real API never
mix): kind, name, remote id, the hash of what we last sent, the hash of the managed fields as
the API returned them right after that write (so a dashboard edit shows as a remote change),
the config file and when. Hashes are over canonical JSON (sorted keys, no spaces). Written with
tomli-w in a stable order, only when something changed; it holds no secrets.
"""
from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path

import tomli_w
from jsonpointer import unescape

from ..context import EPHEMERAL, RunContext
from ..errors import ConfigError
from ..merge import leaf_pointers
from ..project import LOCK_FILE
from ..store import atomic_write, utc_now
from .remote import fetch_remote

KINDS = ("objectives", "guardrails", "persona")  # dependency order: policies before personas


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
    """The shape of what this config file last sent to this resource, or None.

    An update may remove a field the config no longer sets only when the same file sent it
    last time: fields set by flags, the dashboard or another config are never touched.
    """
    known = entry(ctx, kind, name) if name else None
    if (not known or known.get("id") != remote_id or not config or not known.get("config")
            or config_id(known["config"]) != config_id(config)):
        return None
    return shape(known.get("paths") or [])


def config_id(config) -> str:
    """A config path as one spelling: relative to the current directory when inside it, else absolute."""
    path = Path(os.path.abspath(str(config)))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def lock_path(ctx: RunContext) -> Path:
    return ctx.root / LOCK_FILE


def load(ctx: RunContext) -> dict:
    """The whole state: {api_url: {kind: {name: entry}}}."""
    path = lock_path(ctx)
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name}: unreadable state file ({exc})",
                          hint="restore it from git, or delete it to start over (resources stay on Tavus)") from None
    return data.get("api", {})


def save(ctx: RunContext, state: dict) -> bool:
    """Write the state in a stable order; returns False (and writes nothing) when unchanged."""
    ordered = {"api": {url: {kind: {name: dict(sorted(entry.items())) for name, entry in sorted(kinds[kind].items())}
                             for kind in sorted(kinds) if kinds[kind]}
                       for url, kinds in sorted(state.items()) if any(kinds.values())}}
    text = "# Written by tavus-harness: which remote resource each config became. Commit it.\n" + tomli_w.dumps(ordered)
    path = lock_path(ctx)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write(path, text)
    return True


def tracked(ctx: RunContext) -> bool:
    """False for an embedded, throw-away sandbox: nothing to remember about it."""
    return not ctx.env.flag(EPHEMERAL)


def entry(ctx: RunContext, kind: str, name: str) -> dict | None:
    """The state entry of `kind`/`name` for the current API, if any."""
    if not tracked(ctx):
        return None
    return load(ctx).get(ctx.client().target.base_url, {}).get(kind, {}).get(name)


def managed(remote: dict, fields) -> dict:
    """The remote resource cut to the top-level fields our config manages (compared whole)."""
    return {k: remote.get(k) for k in sorted(fields)}


def record(ctx: RunContext, kind: str, name: str, remote_id: str, sent: dict, remote: dict,
           config: str | None, *, from_config_only: bool = True) -> None:
    """Remember a write and the remote as read back; the timestamp only moves when something did.

    `paths` (what an update from the same config may later remove) is only taken from a write
    made from the config file alone; a write with value flags keeps the paths recorded before.
    """
    if not tracked(ctx):
        return
    state = load(ctx)
    api = ctx.client().target.base_url
    old = state.get(api, {}).get(kind, {}).get(name, {})
    owned = bool(config) and from_config_only
    new = {"id": remote_id, "sent_hash": canonical_hash(sent), "fields": sorted(sent),
           "paths": leaf_pointers(sent) if owned else old.get("paths", []),
           "remote_hash": canonical_hash(managed(remote, sent)),
           "config": config_id(config) if config else old.get("config", ""), "kind": kind, "name": name}
    if {k: old.get(k) for k in new} != new:
        new["written_at"] = utc_now()
    else:
        new["written_at"] = old.get("written_at", utc_now())
    state.setdefault(api, {}).setdefault(kind, {})[name] = new
    save(ctx, state)


def forget(ctx: RunContext, kind: str, name: str) -> None:
    state = load(ctx)
    state.get(ctx.client().target.base_url, {}).get(kind, {}).pop(name, None)
    save(ctx, state)


def guard_create(ctx: RunContext, kind: str, name: str | None, where: str) -> dict | None:
    """Before a create: the existing entry of that name on this API (the caller decides), or None.

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
