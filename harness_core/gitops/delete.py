"""Deleting what the harness manages: remote resources whose config file is gone.

The state file remembers which config wrote each resource. When that file is gone and no other
config names the resource, `plan` reports it (`missing-config`), and `apply --delete` with a
named confirmation deletes it, in reverse dependency order (PALs, policies, tools, dictionaries,
documents), so nothing is deleted while something else still points at it. A tool still
attached to a PAL that stays is never deleted: Tavus would silently detach it from that PAL.
"""
from __future__ import annotations

from pathlib import Path

from ..context import RunContext
from ..errors import ApiError
from ..resources import lockfile
from ..resources.remote import COLLECTIONS


def gone(ctx: RunContext, kinds, claimed: set) -> list[tuple[str, str, dict]]:
    """(kind, name, state entry) of every resource whose recorded config file no longer exists
    and that no current config names (`claimed`: {(kind, name)}), in reverse dependency order.

    An entry written from flags only (no config recorded) is never a candidate.
    """
    api = lockfile.load(ctx).get(ctx.client().target.base_url, {}) if lockfile.tracked(ctx) else {}
    found = []
    for kind in reversed([k for k in lockfile.KINDS if k in kinds]):
        for name, known in sorted(api.get(kind, {}).items()):
            config = known.get("config")
            if config and known.get("id") and (kind, name) not in claimed and not _exists(ctx, config):
                found.append((kind, name, known))
    return found


def _exists(ctx: RunContext, config: str) -> bool:
    path = Path(config)
    return path.exists() or (not path.is_absolute() and (ctx.root / path).exists())


def attached_pals(ctx: RunContext, tool_id: str, *, fresh: bool = False) -> list[tuple[str, str]]:
    """(PAL id, name) of every PAL the tool is attached to.

    From the persona listing's `tool_ids`; a row without that field is asked through
    `GET /pals/{id}/tools`.
    """
    client = ctx.client()
    found = []
    for row in client.list_all("/personas", persona_type="user", cached=not fresh):
        pid = row.get("persona_id")
        if not isinstance(pid, str):
            continue
        ids = row.get("tool_ids")
        if ids is None:
            try:
                ids = [t.get("tool_id") for t in (client.get(f"/pals/{pid}/tools") or {}).get("data") or []
                       if isinstance(t, dict)]
            except ApiError:
                ids = []
        if tool_id in (ids or []):
            found.append((pid, row.get("persona_name") or row.get("pal_name") or ""))
    return found


def delete_remote(ctx: RunContext, kind: str, name: str, remote_id: str) -> bool:
    """DELETE the resource and forget its state entry; False when it was already gone."""
    try:
        ctx.client().request("DELETE", f"{COLLECTIONS[kind]}/{remote_id}")
        there = True
    except ApiError as exc:
        if not exc.not_found:
            raise
        there = False
    lockfile.forget(ctx, kind, name)
    ctx.store.append(kind, {"type": kind, "action": "deleted" if there else "forgotten", "id": remote_id, "name": name})
    return there
