"""`invoke plan / apply / status`: the configs under configs/ against the state file and Tavus.

Classes per resource: create (not in the state), update (our config changed), unchanged,
remote-changed (someone edited it elsewhere, e.g. in the dashboard), both-changed, and
missing-remote (the state names an id the API no longer has); blocked (the config cannot be built
yet, e.g. it names a policy that does not exist); duplicate-config (a second config for a
resource another config already manages: reported, never applied); missing-config (the state
names a resource whose config file is gone: reported, left alone) or, with --delete, delete (see
delete.py; deleted in reverse dependency order). Conversations are not managed
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
from .delete import attached_pals, delete_remote, gone
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
    orphan: bool = False  # a resource the state file manages whose config file is gone (not in --json)


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


def make_plan(ctx: RunContext, only: str | None = None, *, with_diff: bool = True, delete: bool = False) -> list[PlanItem]:
    """Every config's item in dependency order, then the resources whose config is gone
    (`missing-config`, or with `delete` the `delete` class) in reverse dependency order."""
    owners, listing = {}, {}
    items = [one_owner(classify(ctx, kind, path, with_diff=with_diff, listing=listing), owners)
             for kind, path in discover(ctx, only)]
    return items + orphans(ctx, items, only, delete=delete)


def orphans(ctx: RunContext, items: list[PlanItem], only: str | None, *, delete: bool) -> list[PlanItem]:
    """Items for the resources the state file manages whose config file is gone.

    With `delete`: class `delete`, or `blocked` for a tool still attached to a PAL that neither
    goes nor drops it in this plan. Without: `missing-config`, with the hint.
    """
    kinds = lockfile.KINDS if not only else (ONLY.get(only) or _bad_only(only),)
    found = gone(ctx, kinds, {(i.kind, i.name) for i in items if i.name})
    leaving = {known["id"] for kind, _, known in found if kind == "persona"}
    after = {i.remote_id: _tools_after(ctx, i) for i in items if i.kind == "persona" and i.remote_id
             and i.status not in ("blocked", "duplicate-config")}
    out = []
    for kind, name, known in found:
        item = PlanItem(kind, known["config"], name, "delete" if delete else "missing-config", known["id"], orphan=True)
        if not delete:
            item.note = (f"{known['config']} is gone; `invoke apply --delete --confirm {_quoted(name)}` deletes this "
                         f"{SINGULAR.get(kind, kind)} from Tavus, or restore the file (until then it is left alone)")
        elif kind == "tools":
            kept = [(pid, pal) for pid, pal in attached_pals(ctx, known["id"])
                    if pid not in leaving and (after.get(pid) is None or known["id"] in after[pid])]
            if kept:
                item.status = "blocked"
                item.note = _attached_note(name, known["id"], kept)
        out.append(item)
    return out


def _tools_after(ctx: RunContext, item: PlanItem) -> list | None:
    """The tool ids a PAL will have once its config is applied (None: apply leaves them as they are)."""
    if isinstance(item.body.get("tool_ids"), list):
        return item.body["tool_ids"]
    known = lockfile.entry(ctx, "persona", item.name) or {}
    if "tool_ids" in (known.get("fields") or []) and lockfile.same_config(ctx, "persona", item.name, item.config):
        return []  # the same config attached tools before and names none now: apply detaches them
    return None


SINGULAR = {"documents": "document", "pronunciation": "pronunciation dictionary", "tools": "tool",
            "objectives": "objectives set", "guardrails": "guardrail", "persona": "PAL"}


def _quoted(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else repr(name)


def _attached_note(name: str, tool_id: str, pals: list[tuple[str, str]]) -> str:
    pid, pal = pals[0]
    more = f" (and {len(pals) - 1} more)" if len(pals) > 1 else ""
    return (f"tool {name!r} ({tool_id}) is still attached to PAL {pal!r} ({pid}){more}: remove it from that PAL's "
            "config and apply, then delete it")


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
    """Changes to apply (a config that duplicates another one's resource, and a resource whose
    config is gone without --delete, are reported, not pending)."""
    return any(i.status not in ("unchanged", "duplicate-config", "missing-config") for i in items)


def apply_plan(ctx: RunContext, only: str | None = None, *, dry_run: bool = False, force: bool = False,
               on_step=None, delete: bool = False, confirmed: set | None = None, ask=None) -> list[PlanItem]:
    """Do what the plan shows, kind by kind; stop at the first failure (the state keeps what happened).

    `delete`: then delete the resources whose config is gone, in reverse dependency order; each
    must be named (or its id given) in `confirmed`, else `ask(items)` returns the names typed
    (interactive), else nothing at all is done.
    """
    doomed = [i for i in make_plan(ctx, only, with_diff=False, delete=True) if i.orphan] if delete else []
    blocked = next((i for i in doomed if i.status == "blocked"), None)
    if blocked:
        raise CheckFailed(f"cannot delete {blocked.kind} {blocked.name!r}: {blocked.note}")
    if doomed and not dry_run:
        check_confirmed(doomed, confirmed if confirmed or ask is None else ask(doomed))
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
    for item in doomed or orphans(ctx, done, only, delete=False):
        if item.status == "delete" and not dry_run:
            if item.kind == "tools":
                still = attached_pals(ctx, item.remote_id, fresh=True)
                if still:
                    raise CheckFailed(f"cannot delete tools {item.name!r}: {_attached_note(item.name, item.remote_id, still)}")
            delete_remote(ctx, item.kind, item.name, item.remote_id)
        done.append(item)
        if on_step:
            on_step(item)
    return done


def check_confirmed(doomed: list[PlanItem], confirmed) -> None:
    """Every resource to delete named (or its id given) in `confirmed`, and nothing else named."""
    confirmed = {c.strip() for c in confirmed or () if c and c.strip()}
    names = ", ".join(f"{i.kind} {i.name!r}" for i in doomed)
    wanted = ",".join(i.name for i in doomed)
    hint = f"check `invoke plan --delete`, then add --confirm {wanted!r}"
    if not confirmed:
        raise ConfigError(f"apply --delete: would delete {names}; nothing is deleted without naming them", hint=hint)
    missing = [i for i in doomed if i.name not in confirmed and i.remote_id not in confirmed]
    if missing:
        raise ConfigError(f"--confirm: {', '.join(repr(i.name) for i in missing)} not confirmed; nothing was changed", hint=hint)
    extra = sorted(confirmed - {i.name for i in doomed} - {i.remote_id for i in doomed})
    if extra:
        raise ConfigError(f"--confirm: {extra[0]!r} is not among the resources to delete ({names}); nothing was changed",
                          hint=hint)


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
