"""Objectives and guardrails: attach to a persona by id or by name, and keep them as code.

Guardrails come in two shapes (contract 2.5). A current "flat" guardrail is one resource with
`guardrail_name` and id `uuid`, attached to a persona through `guardrail_ids`; a legacy "set"
is `{name, data: [...]}` with id `guardrails_id`, attached through `guardrails_id`. An id given
with `--guardrails-id` is looked up once (GET /guardrails/{id}): an answer holding `data` is a
set, anything else is a flat guardrail. A name resolves through both list endpoints and the
`harness_resolve_policy` hook to exactly one row, whose shape decides the same way.
"""
from __future__ import annotations

import contextlib
import copy
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from dataclasses import dataclass, field

from ..api import unwrap_policy
from ..config import check_keys, expand_env_refs, load_file
from ..context import RunContext
from ..errors import ApiError, ConfigError
from ..schemas.objective_graph import duplicate_name, link_problem
from . import lockfile
from .payload import validate_offline
from .remote import diff_managed, read_back

KINDS = ("objectives", "guardrails")
MAX_ENRICH = 100  # rows without a name fetched one by one, at most
NAME_RULE = re.compile(r"^[A-Za-z0-9_]{1,100}$")

OBJECTIVE_SET_KEYS = ("name", "data", "allow_loops")
OBJECTIVE_ITEM_KEYS = ("objective_name", "objective_prompt", "confirmation_mode", "output_variables", "modality",
                       "next_conditional_objectives", "next_required_objective", "callback_url", "tool_call")
GUARDRAIL_SET_KEYS = ("name", "data")
GUARDRAIL_ITEM_KEYS = ("guardrail_name", "guardrail_prompt", "modality", "callback_url")
FLAT_GUARDRAIL_KEYS = ("guardrail_name", "guardrail_prompt", "modality", "callback_url", "tags", "app_message", "tool_call")


# --- rows of the list endpoints ----------------------------------------------------------
def is_guardrail_set(row: dict) -> bool:
    """A legacy guardrails set (attached via `guardrails_id`) rather than a flat guardrail."""
    return "guardrails_id" in row or isinstance(row.get("data"), (list, dict))


def policy_id(kind: str, row: dict) -> str | None:
    """The id to attach for a row: `objectives_id`; a set's `guardrails_id` or a flat guardrail's `uuid`."""
    keys = ("objectives_id", "uuid", "id") if kind == "objectives" else (
        ("guardrails_id", "uuid", "id") if is_guardrail_set(row) else ("uuid", "guardrail_id", "id"))
    for key in keys:
        if isinstance(row.get(key), str) and row[key]:
            return row[key]
    return None


def policy_name(kind: str, row: dict) -> str | None:
    """The display name of a row, whichever key the API used."""
    if kind == "objectives":
        keys = ("name", "objectives_name", "objective_name")
    elif is_guardrail_set(row):
        keys = ("name", "guardrails_name")
    else:
        keys = ("guardrail_name", "name")
    for key in keys:
        if isinstance(row.get(key), str):
            return row[key]
    return None


def list_policies(client, kind: str, *, fresh: bool = False) -> list[dict]:
    """Every objectives set, or every guardrail (legacy sets and flat ones), with names filled in.

    Listed once per command (the client caches it, this command's creates appended); `fresh=True`
    asks the API again.
    """
    if kind == "objectives":
        rows = client.list_all("/objectives", cached=not fresh)
    else:
        rows, seen = [], set()
        for params in ({}, {"legacy": "false"}):
            for row in client.list_all("/guardrails", cached=not fresh, **params):
                key = (is_guardrail_set(row), policy_id(kind, row))
                if key not in seen:
                    seen.add(key)
                    rows.append(row)
    return [_with_name(client, kind, row, i) for i, row in enumerate(rows)]


def _with_name(client, kind: str, row: dict, i: int) -> dict:
    """List rows of sets may carry only the id (OAS); fetch the set to learn its name.

    The name found is also kept in the (cached) row itself, so a later lookup in the same
    command does not fetch it again.
    """
    if policy_name(kind, row) is not None or i >= MAX_ENRICH or not policy_id(kind, row):
        return row
    try:
        full = unwrap_policy(client.get(f"/{kind}/{policy_id(kind, row)}"))
    except ApiError:
        return row
    if isinstance(full.get("name"), str):
        row["name"] = full["name"]
    return {**full, **row}


def resolve_by_name(ctx: RunContext, kind: str, name: str, where: str, rows: list[dict] | None = None) -> dict:
    """The one row called `name`, chosen by the harness_resolve_policy hook (none/several: ConfigError)."""
    if rows is None:
        rows = list_policies(ctx.client(), kind)
    try:
        row = ctx.hook.harness_resolve_policy(kind=kind, name=name, candidates=copy.deepcopy(rows), context=ctx)
    except ConfigError as exc:
        flag = f"--{kind}-name "
        if where.startswith("flag"):
            raise
        message = exc.message[len(flag):] if exc.message.startswith(flag) else exc.message
        raise ConfigError(f"{where}: {kind}_name {message}", hint=exc.hint) from None
    if not isinstance(row, dict) or not policy_id(kind, row):
        raise ConfigError(f"{where}: {kind}_name {name!r}: no {kind} with that exact name",
                          hint=f"create it with `invoke {kind} --config configs/{kind}/...`")
    return row


def fetch_policy(ctx: RunContext, kind: str, policy: str, where: str) -> dict:
    """GET one objectives set / guardrail; an unknown id is a ConfigError naming `where`."""
    client = ctx.client()
    try:
        return unwrap_policy(client.get(f"/{kind}/{policy}"))
    except ApiError as exc:
        if exc.not_found:
            raise ConfigError(f"{where}: {kind}_id: no {kind} with id {policy!r} in {client.target.label}",
                              hint=f"check the id, attach by name with --{kind}-name, or create it with "
                                   f"`invoke {kind} --config configs/{kind}/...`") from None
        raise


# --- attaching to a persona --------------------------------------------------------------
@dataclass
class Attachment:
    """Persona fields to set for the requested objectives/guardrails, and what to tell the user."""

    fields: dict = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def pick_reference(values: dict, source, kind: str) -> tuple[str, str, str] | None:
    """("id"|"name", value, where) for `kind`, or None. A flag beats a config file; both in the
    same place is an error."""
    id_key, name_key = f"{kind}_id", f"{kind}_name"
    by_id, by_name = values.get(id_key), values.get(name_key)
    if by_id and by_name:
        id_src, name_src = source(id_key), source(name_key)
        id_flag, name_flag = id_src.startswith("flag"), name_src.startswith("flag")
        if id_flag == name_flag:
            raise ConfigError(f"{id_src}: {id_key} and {name_key}: both are set",
                              hint=f"attach {kind} by id or by name, not both")
        return ("id", by_id, id_src) if id_flag else ("name", by_name, name_src)
    if by_id:
        return "id", by_id, source(id_key)
    if by_name:
        return "name", by_name, source(name_key)
    return None


def attach_policies(ctx: RunContext, values: dict, source) -> Attachment:
    """Resolve objectives and guardrails (by id or by name) into persona fields.

    `source(key)` labels where a value came from (for messages). Reads the API; never writes.
    """
    out = Attachment()
    ref = pick_reference(values, source, "objectives")
    if ref:
        how, value, where = ref
        _check_str(value, where, f"objectives_{how}")
        if how == "id":
            fetch_policy(ctx, "objectives", value, where)
            out.fields["objectives_id"] = value
            out.lines.append(f"objectives {value}")
        else:
            row = resolve_by_name(ctx, "objectives", value, where)
            out.fields["objectives_id"] = policy_id("objectives", row)
            out.lines.append(f"objectives {out.fields['objectives_id']} ({value!r})")
    ref = pick_reference(values, source, "guardrails")
    if ref:
        how, value, where = ref
        _check_str(value, where, f"guardrails_{how}")
        if how == "id":
            row = fetch_policy(ctx, "guardrails", value, where)
            gid, label = value, repr(policy_name("guardrails", row)) if policy_name("guardrails", row) else ""
        else:
            row = resolve_by_name(ctx, "guardrails", value, where)
            gid, label = policy_id("guardrails", row), repr(value)
        if is_guardrail_set(row):
            out.fields["guardrails_id"] = gid
            out.lines.append(f"guardrails set {gid} {label}".rstrip())
        else:
            ids = [i for i in (values.get("guardrail_ids") or []) if i != gid]
            out.fields["guardrail_ids"] = ids + [gid]
            out.fields["guardrails_id"] = None
            out.lines.append(f"guardrail {gid} {label}".rstrip())
    return out


def _check_str(value, where: str, key: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key}: must be a non-empty string", hint=f'write "{key}": "..."')


# --- objectives and guardrails as code -------------------------------------------------
@dataclass
class PolicyResult:
    """What `invoke objectives` / `invoke guardrails` did (or would do with --dry-run)."""

    kind: str
    action: str  # created | updated | unchanged | would create | would update
    name: str
    policy_id: str | None
    shape: str  # "set" or "flat"
    payload: dict
    patch: list | None = None
    response: object = None
    target: str = ""
    dry_run: bool = False

    @property
    def sent(self):
        """The body that was (or would be) sent: the create payload or the JSON Patch."""
        return self.patch if self.patch is not None else self.payload


def build_policy(kind: str, data: dict, where: str) -> tuple[dict, str]:
    """Check an objectives/guardrails config and return (API body, "set" | "flat")."""
    if kind not in KINDS:
        raise ConfigError(f"{kind}: unknown policy kind", hint=f"use one of {', '.join(KINDS)}")
    if kind == "guardrails" and "guardrail_name" in data:
        check_keys(data, FLAT_GUARDRAIL_KEYS, where)
        _check_item(data, where, "", "guardrail")
        return copy.deepcopy(data), "flat"
    check_keys(data, OBJECTIVE_SET_KEYS if kind == "objectives" else GUARDRAIL_SET_KEYS, where)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise ConfigError(f"{where}: name: required, a string of at most 100 characters",
                          hint=f'add "name": "..." (the {kind} are found by this name for updates)')
    items = data.get("data")
    if not isinstance(items, list) or not 1 <= len(items) <= 50:
        raise ConfigError(f"{where}: data: must be a list of 1 to 50 items",
                          hint=f'write "data": [{{"{"objective" if kind == "objectives" else "guardrail"}_name": ..., ...}}]')
    single = "objective" if kind == "objectives" else "guardrail"
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: data[{i}]: must be an object", hint=f"write {{\"{single}_name\": ...}}")
        check_keys(item, OBJECTIVE_ITEM_KEYS if kind == "objectives" else GUARDRAIL_ITEM_KEYS, where, prefix=f"data[{i}].")
        _check_item(item, where, f"data[{i}].", single)
    if kind == "objectives":
        for i, item in enumerate(items):
            conditional, required = item.get("next_conditional_objectives"), item.get("next_required_objective")
            if conditional is not None and not (isinstance(conditional, dict)
                                                and all(isinstance(v, str) for v in conditional.values())):
                raise ConfigError(f"{where}: data[{i}].next_conditional_objectives: must map objective names to conditions",
                                  hint='write e.g. {"wrap_up": "when every item is covered"}')
            if required is not None and not isinstance(required, str):
                raise ConfigError(f"{where}: data[{i}].next_required_objective: must be one objective name",
                                  hint='write e.g. "wrap_up"')
    problem = link_problem(items) if kind == "objectives" else duplicate_name(items, "guardrail_name")
    if problem:
        known = ", ".join(sorted({str(item.get(f"{single}_name")) for item in items}))
        raise ConfigError(f"{where}: data[{problem[0]}]: {problem[1]}",
                          hint=f"names are unique within a set, and links name another objective of it ({known})")
    return copy.deepcopy(data), "set"


def _check_item(item: dict, where: str, at: str, single: str) -> None:
    name = item.get(f"{single}_name")
    if not isinstance(name, str) or not NAME_RULE.match(name):
        raise ConfigError(f"{where}: {at}{single}_name: {name!r} must be letters, digits and _ only (at most 100)",
                          hint="e.g. agenda_coverage")
    prompt = item.get(f"{single}_prompt")
    limit = 10_000 if single == "objective" else 1_000
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError(f"{where}: {at}{single}_prompt: required", hint=f"describe the {single} in a sentence or two")
    if len(prompt) > limit:
        raise ConfigError(f"{where}: {at}{single}_prompt: {len(prompt)} characters, over the {limit} limit",
                          hint="shorten it")


def tagged_callback_url(url: str, single: str, name: str) -> str:
    """`url` with `objective=NAME` / `guardrail=NAME` added to its query: the receiver records which
    resource a callback was posted for (its `?token=` and anything else in the URL are kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != single] + [(single, name)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def with_receiver(kind: str, body: dict, shape: str, callback_url: str) -> dict:
    """The body with every objective/guardrail that names no `callback_url` of its own pointed at
    `callback_url` (the run's or WEBHOOK_URL's receiver), tagged per resource; one that names its own keeps it."""
    single = "objective" if kind == "objectives" else "guardrail"
    body = copy.deepcopy(body)
    for item in [body] if shape == "flat" else body.get("data") or []:
        if isinstance(item, dict) and not item.get("callback_url"):
            item["callback_url"] = tagged_callback_url(callback_url, single, str(item.get(f"{single}_name")))
    return body


def apply_policy(ctx: RunContext, kind: str, config_path: str | None, *, dry_run: bool = False,
                 force: bool = False, callback_url: str | None = None) -> PolicyResult:
    """Create the objectives/guardrails in `config_path`, or update the one with the same name.

    One changed outside the harness since our last write is refused unless `force`. With
    `callback_url` (a receiver's URL), items without their own callback_url post to it, tagged
    per resource (with_receiver).
    """

    if not config_path:
        raise ConfigError("--config: required", hint=f"e.g. invoke {kind} --config configs/{kind}/...")
    where = str(config_path)
    data = expand_env_refs(load_file(config_path), ctx.env.get, where)
    body, shape = build_policy(kind, data, where)
    if callback_url:
        body = with_receiver(kind, body, shape, callback_url)
    schema = "objectives" if kind == "objectives" else ("guardrail" if shape == "flat" else "guardrails_set")
    validate_offline(schema, body, where, ctx)
    name = body.get("name") if shape == "set" else body["guardrail_name"]
    # From the check to the record under the state file's inter-process lock: two commands never
    # both create this name (see lockfile).
    with lockfile.locked(ctx) if not dry_run else contextlib.nullcontext():
        return _apply_policy(ctx, kind, config_path, body, shape, name, dry_run, force)


def _apply_policy(ctx: RunContext, kind: str, config_path: str, body: dict, shape: str, name: str,
                  dry_run: bool, force: bool = False) -> PolicyResult:
    """apply_policy() once the body is checked: find the one of that name, create or patch, record."""
    where = str(config_path)
    client = ctx.client()

    def named(rows):
        return [r for r in rows if policy_name(kind, r) == name
                and (kind == "objectives" or is_guardrail_set(r) == (shape == "set"))]

    same = named(list_policies(client, kind))
    known = lockfile.entry(ctx, kind, name)
    if known and known.get("id") not in {policy_id(kind, r) for r in same}:
        same = named(list_policies(client, kind, fresh=True))  # created by another command since we listed
    if len(same) > 1:
        ids = ", ".join(policy_id(kind, r) or "?" for r in same)
        raise ConfigError(f"{where}: name: {len(same)} {kind} are already named {name!r} ({ids})",
                          hint="delete or rename the duplicates, then run this again")
    result = PolicyResult(kind, "", name, None, shape, body, target=client.target.label, dry_run=dry_run)
    if not same:
        result.action = "would create" if dry_run else "created"
        if not dry_run:
            def find_existing():
                found = named(list_policies(client, kind, fresh=True))
                return found[0] if len(found) == 1 else None
            result.response = client.create(f"/{kind}", body, find_existing=find_existing)
            result.policy_id = policy_id(kind, result.response if isinstance(result.response, dict) else {})
            if result.policy_id is None and shape == "set" and isinstance(result.response, dict):
                result.policy_id = result.response.get("guardrails_id") or result.response.get("objectives_id")
    else:
        result.policy_id = policy_id(kind, same[0])
        remote = fetch_policy(ctx, kind, result.policy_id, where)
        if known and known.get("id") == result.policy_id:
            lockfile.refuse_remote_change(ctx, kind, name, remote, where, force)
        result.patch = diff_managed(remote, body, lockfile.sent_before(ctx, kind, name, result.policy_id, config_path),
                                    top=lockfile.same_config(ctx, kind, name, config_path))
        if not result.patch:
            result.action = "unchanged"
        elif dry_run:
            result.action = "would update"
        else:
            reply = client.patch(f"/{kind}/{result.policy_id}", result.patch)
            result.response = reply.body
            result.action = "unchanged" if reply.status == 304 else "updated"
    if not dry_run and result.policy_id:
        remote = read_back(ctx, f"{kind} {result.policy_id}", lambda: fetch_policy(ctx, kind, result.policy_id, where), body)
        lockfile.record(ctx, kind, name, result.policy_id, body, remote, config_path)
    ctx.store.append(kind, {"type": kind, "action": result.action, "id": result.policy_id, "name": name,
                            "payload": body, "patch": result.patch, "response": result.response, "dry_run": dry_run})
    return result


def policy_summary(result: PolicyResult) -> list[str]:
    """Human lines for a PolicyResult."""
    what = {"objectives": "objectives set", "guardrails": "guardrails set" if result.shape == "set" else "guardrail"}[result.kind]
    ident = f" {result.policy_id}" if result.policy_id else ""
    if result.action == "unchanged":
        return [f"{what}{ident} {result.name!r} unchanged on {result.target}: nothing sent"]
    lines = [f"{result.action} {what}{ident} {result.name!r} on {result.target}"]
    if result.patch:
        lines.append(f"  changed: {', '.join(op['path'] for op in result.patch)}")
    elif result.shape == "set":
        items = [i.get("objective_name") or i.get("guardrail_name") for i in result.payload.get("data", [])]
        lines.append(f"  items: {', '.join(items)}")
    if result.kind == "objectives" and result.policy_id and not result.dry_run:
        lines.append(f"  attach: invoke persona --config ... --objectives-id {result.policy_id}")
    elif result.policy_id and not result.dry_run:
        lines.append(f"  attach: invoke persona --config ... --guardrails-id {result.policy_id}")
    return lines
