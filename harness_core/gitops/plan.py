"""`invoke plan / apply / status / pull`: the configs under configs/ against the state file and Tavus.

Classes per resource: create (not in the state), update (our config changed), unchanged,
remote-changed (someone edited it elsewhere, e.g. in the dashboard), both-changed, and
missing-remote (the state names an id the API no longer has); blocked (the config cannot be built
yet, e.g. it names a policy that does not exist); duplicate-config (a second config for a
resource another config already manages: reported, never applied). Conversations are not managed
resources (they are short-lived): plan and apply cover objectives, guardrails and personas,
in that order, so personas that name a policy find it.

Cost: the state file is read once and each kind listed once per command (see listed()); a
resource is read on its own only when its config or its listed row differs from the state.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from jsonpointer import resolve_pointer

from ..resources import lockfile
from ..config import load_file
from ..context import RunContext
from ..errors import CheckFailed, ConfigError, HarnessError
from ..resources.persona import apply_persona, build_persona
from ..resources import standalone
from ..resources.remote import diff_managed, fetch_remote
from ..resources.policies import apply_policy, build_policy, list_policies, policy_id
from ..redact import REDACTED, redact_field

FOLDERS = {"documents": ("configs/documents",), "pronunciation": ("configs/pronunciation",), "tools": ("configs/tools",),
           "objectives": ("configs/objectives",), "guardrails": ("configs/guardrails",),
           "persona": ("configs/persona", "configs/pals")}
ONLY = {"objectives": "objectives", "guardrails": "guardrails", "personas": "persona", "persona": "persona",
        "pals": "persona", "pal": "persona", "tools": "tools", "documents": "documents",
        "pronunciation": "pronunciation", "dictionaries": "pronunciation"}


@dataclass
class PlanItem:
    kind: str
    config: str
    name: str = ""
    status: str = ""
    remote_id: str | None = None
    body: dict = field(default_factory=dict)
    diff: list = field(default_factory=list)
    was: dict = field(default_factory=dict)  # JSON pointer -> the remote value a diff op replaces/removes
    note: str = ""


def discover(ctx: RunContext, only: str | None = None) -> list[tuple[str, Path]]:
    """Config files per kind, in dependency order (documents, dictionaries, tools, policies, PALs)."""
    kinds = lockfile.KINDS if not only else (ONLY.get(only) or _bad_only(only),)
    found = []
    for kind in kinds:
        for folder in FOLDERS[kind]:
            found += [(kind, p) for p in sorted((ctx.root / folder).glob("*")) if p.suffix in (".json", ".toml")]
    return found


def _bad_only(value):
    raise ConfigError(f"--only {value!r}: unknown resource kind",
                      hint="use documents, pronunciation, tools, objectives, guardrails or pals (personas)")


def desired(ctx: RunContext, kind: str, path: Path) -> tuple[str, dict]:
    """(name, request body) a config file asks for; policies and personas alike."""
    rel = str(path.relative_to(ctx.root)) if path.is_absolute() else str(path)
    if kind == "persona":
        body = build_persona(ctx, {}, rel).payload
        return body.get("persona_name") or path.stem, body
    if kind in standalone.KINDS:
        return standalone.desired(ctx, kind, path)
    body, shape = build_policy(kind, load_file(path), rel)
    return (body.get("name") if shape == "set" else body.get("guardrail_name")) or path.stem, body


def classify(ctx: RunContext, kind: str, path: Path, *, with_diff: bool = True, listing: dict | None = None) -> PlanItem:
    """One config file's class (and field-level diff) against the state and the remote.

    `listing`: {kind: {id: row}} shared by the calls of one plan (see listed()).
    """
    item = PlanItem(kind, str(path.relative_to(ctx.root)) if path.is_absolute() else str(path))
    try:
        item.name, item.body = desired(ctx, kind, path)
    except HarnessError as exc:
        item.status, item.note = "blocked", exc.render()
        return item
    known = lockfile.entry(ctx, kind, item.name)
    if not known:
        item.status = "create"
        return item
    item.remote_id = known["id"]
    local = lockfile.canonical_hash(item.body) != known["sent_hash"]
    fields = known.get("fields") or item.body
    row = None
    if not local:  # only an unchanged config can be confirmed from its listed row
        listing = {} if listing is None else listing
        if kind not in listing:
            listing[kind] = listed(ctx, kind)
        row = listing[kind].get(known["id"])
    if row is not None and lockfile.canonical_hash(lockfile.managed(row, fields)) == known["remote_hash"]:
        item.status = "unchanged"  # its row in the listing matches the state exactly: no GET needed
        return item
    remote = fetch_remote(ctx, kind, known["id"])
    if remote is None:
        item.status = "missing-remote"
        return item
    drift = lockfile.canonical_hash(lockfile.managed(remote, fields)) != known["remote_hash"]
    item.status = {(False, False): "unchanged", (True, False): "update", (False, True): "remote-changed",
                   (True, True): "both-changed"}[(local, drift)]
    if with_diff and item.status != "unchanged":
        item.diff = diff_managed(remote, item.body, lockfile.sent_before(ctx, kind, item.name, known["id"], item.config),
                                  top=lockfile.same_config(ctx, kind, item.name, item.config))
        item.was = {op["path"]: _was(remote, op) for op in item.diff if op["op"] in ("replace", "remove")}
    return item


def listed(ctx: RunContext, kind: str) -> dict[str, dict]:
    """id -> row of the kind's listing, fetched once per command (pages of 100).

    A row only ever confirms "unchanged": when its managed fields hash to what the state recorded
    after the last write. A list row that lacks fields (the real API's may be summaries) or differs
    in any way sends classify() to GET the resource itself, so a no-op plan of N resources costs
    N/100 listing pages instead of N reads, and a change is never missed.
    """
    client = ctx.client()
    if kind == "persona":
        rows = client.list_all("/personas", persona_type="user", cached=True)
        return {r["persona_id"]: r for r in rows if isinstance(r.get("persona_id"), str)}
    if kind in standalone.KINDS:
        return standalone.by_id(ctx, kind)
    return {pid: r for r in list_policies(client, kind) if (pid := policy_id(kind, r))}


def _was(remote: dict, op: dict):
    """The remote value an op replaces; redacted whole when its replacement is a secret (an old key, say)."""
    if op["op"] == "replace" and redact_field(op["path"].rpartition("/")[2], op.get("value")) != op.get("value"):
        return REDACTED
    return _at(remote, op["path"])


def _at(document, pointer: str):
    """The value at a JSON pointer, or None."""
    return resolve_pointer(document, pointer, None)


def make_plan(ctx: RunContext, only: str | None = None, *, with_diff: bool = True) -> list[PlanItem]:
    owners, listing = {}, {}
    return [one_owner(classify(ctx, kind, path, with_diff=with_diff, listing=listing), owners)
            for kind, path in discover(ctx, only)]


def one_owner(item: PlanItem, owners: dict) -> PlanItem:
    """Two configs naming the same resource would undo each other: the second one is blocked."""
    key = (item.kind, item.name)
    if item.name and key in owners:
        item.status, item.diff = "duplicate-config", []
        item.note = (f"{item.config}: {item.kind} {item.name!r} is already managed by {owners[key]}; plan/apply "
                     f"keeps one config per resource (apply overlays with `invoke {item.kind} --update`)")
    elif item.name:
        owners[key] = item.config
    return item


def pending(items: list[PlanItem]) -> bool:
    """Changes to apply (a config that duplicates another one's resource is reported, not pending)."""
    return any(i.status not in ("unchanged", "duplicate-config") for i in items)


def apply_plan(ctx: RunContext, only: str | None = None, *, dry_run: bool = False, force: bool = False,
               on_step=None) -> list[PlanItem]:
    """Do what the plan shows, kind by kind; stop at the first failure (the state keeps what happened)."""
    done, owners, listing = [], {}, {}
    for kind, path in discover(ctx, only):
        item = one_owner(classify(ctx, kind, path, listing=listing), owners)  # after the policies it names exist
        rel = item.config
        if item.status == "duplicate-config" or (item.status == "blocked" and dry_run):
            if item.status == "blocked":
                item.note += " (it may resolve once the objectives/guardrails above are created)"
        elif item.status == "blocked":
            raise CheckFailed(f"{rel}: cannot apply: {item.note}")
        elif item.status in ("remote-changed", "both-changed") and not force:
            take = ("`invoke pull` to take the remote version" if item.kind == "persona"
                    else "edit the config to match the remote version")
            raise CheckFailed(f"{rel}: {item.kind} {item.name!r} ({item.remote_id}) was changed outside the harness",
                              hint=f"review `invoke plan`, then `invoke apply --force` to overwrite it, or {take}")
        elif item.status not in ("unchanged", "duplicate-config") and not dry_run:
            write(ctx, item, rel, force=force)  # a missing-remote entry is forgotten by the create's own check
        done.append(item)
        if on_step:
            on_step(item)
    return done


def write(ctx: RunContext, item: PlanItem, rel: str, *, force: bool = False) -> None:
    """Create or update one resource through the same code as `invoke persona/objectives/guardrails`.

    A create is an upsert: it checks the state again under the inter-process lock, and when
    another command created the resource since this plan was made, it updates that one instead.
    """
    if item.kind == "persona":
        update = item.status in ("update", "remote-changed", "both-changed")
        apply_persona(ctx, {"persona_id": item.remote_id} if update else {}, rel, update=update, upsert=True, force=force)
    elif item.kind in standalone.KINDS:
        standalone.apply_resource(ctx, item.kind, rel, force=force)
    else:
        apply_policy(ctx, item.kind, rel, force=force)


def render(item: PlanItem, *, with_diff: bool = True, width: int | None = 100) -> list[str]:
    """Plan lines: `<status> <kind> <name> (<config>)` and the field-level diff under it.

    Values are cut to `width` characters (None: in full); a replaced or removed value shows what
    the remote side holds now.
    """
    def shown(value, pointer: str):
        text = json.dumps(redact_field(pointer.rpartition("/")[2], value), ensure_ascii=False)
        return text if width is None or len(text) <= width else text[:width] + "..."

    name = repr(item.name) if item.name else "-"
    lines = [f"{item.status:<16} {item.kind:<10} {name:<32} {item.config}" + (f"  [{item.remote_id}]" if item.remote_id else "")]
    if item.note:
        lines.append(f"    {item.note}")
    for op in item.diff if with_diff else []:
        value = "" if op["op"] == "remove" else " = " + shown(op.get("value"), op["path"])
        was = f"  (was {shown(item.was[op['path']], op['path'])})" if op["path"] in item.was else ""
        lines.append(f"    {op['op']:<8} {op['path']}{value}{was}")
    return lines
