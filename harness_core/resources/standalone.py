"""Documents, pronunciation dictionaries and tools: the resources a PAL references by name.

One life cycle for the three kinds (each kind's own rules live in documents.py,
pronunciation.py and tools.py): a config file under `configs/<folder>/` names one resource;
`apply_resource()` creates it, or updates the one the state file (or, the first time, its
exact name) points at, refusing a resource changed outside the harness unless forced, and
records the write in the state file like personas and policies.

`resolve()` turns a name used in a persona/PAL config (a tool, a document, a dictionary) into
the remote id: from the state file, else the API's listing, else the config that declares it
(created on the spot when writing, shown as pending in a plan). A name found nowhere is a
ConfigError naming the file and the field.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from pathlib import Path

from ..config import load_file
from ..context import RunContext
from ..errors import ApiError, ConfigError
from . import documents, lockfile, pronunciation, tools
from .remote import diff_managed, fetch_remote, read_back


@dataclass(frozen=True)
class Kind:
    """How one kind is named, listed and written."""

    key: str        # the kind in the state file and in plans
    folder: str     # where its configs live
    path: str       # API collection
    id_key: str
    name_key: str
    page_base: int  # first page number of its listing
    patch: str      # "object" (plain JSON object) or "json-patch" (RFC 6902)


KINDS = {
    "documents": Kind("documents", "configs/documents", "/documents", "document_id", "document_name", 0, "object"),
    "pronunciation": Kind("pronunciation", "configs/pronunciation", "/pronunciation-dictionaries",
                          "pronunciation_dictionary_id", "name", 0, "json-patch"),
    "tools": Kind("tools", "configs/tools", "/tools", "tool_id", "name", 1, "object"),
}
WHAT = {"documents": "document", "pronunciation": "pronunciation dictionary", "tools": "tool"}


@dataclass
class ResourceResult:
    """What one apply did: created | updated | unchanged | would create | would update."""

    kind: str
    action: str
    name: str
    remote_id: str | None
    body: dict
    diff: list = field(default_factory=list)
    target: str = ""


def rel(ctx: RunContext, path) -> str:
    """A config path as the user writes it (relative to the project root when inside it)."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    if "_resolved_root" not in ctx.__dict__:  # resolved once per command: a plan asks for every config
        ctx._resolved_root = ctx.root.resolve()
        ctx._relative_paths = {}
    known = ctx._relative_paths.get(path)
    if known is None:
        try:  # a path under the root as written (no "..") needs no resolving, which costs a stat per part
            if ".." in path.parts:
                raise ValueError
            known = str(path.relative_to(ctx.root))
        except ValueError:
            try:
                known = str(path.resolve().relative_to(ctx._resolved_root))
            except ValueError:
                known = str(path)
        ctx._relative_paths[path] = known
    return known


def _data(ctx: RunContext, file: Path):
    """The data in a config file, read once per command and version of the file (its size and
    modification time): a plan reads every one for its name (configs) and for its body (desired).
    Shared: callers must not change it."""
    try:
        stat = file.stat()
    except OSError:
        return load_file(file)  # which says what is wrong, in its own words
    memo, key = ctx.__dict__.setdefault("_config_data", {}), (str(file), stat.st_mtime_ns, stat.st_size)
    if key not in memo:
        memo[key] = load_file(file)
    return memo[key]


def desired(ctx: RunContext, kind: str, path, *, write: bool = False) -> tuple[str, dict]:
    """(name, body) of one config. `write=False`: the body as a plan compares it (tool secrets as
    `********`, no environment read); `write=True`: the body to send.

    A plan asks for each config several times (listing the folder, resolving a PAL's references,
    planning the resource itself): the `write=False` body is built once per command and version of
    the file (its size and modification time), and each caller gets its own copy."""
    where = rel(ctx, path)
    file = ctx.root / where if not Path(where).is_absolute() else Path(where)
    memo = key = None
    if not write:
        with contextlib.suppress(OSError):  # a missing file fails in load_file, in its own words
            stat = file.stat()
            memo, key = ctx.__dict__.setdefault("_desired", {}), (kind, str(file), stat.st_mtime_ns, stat.st_size)
            if key in memo:
                name, body = memo[key]
                return name, copy.deepcopy(body)
    data = load_file(file) if write else copy.deepcopy(_data(ctx, file))  # what is sent: read afresh
    if kind == "tools":
        body = tools.build_tool(data, where, env_get=ctx.env.get if write else None,
                                local_target=ctx.client().target.is_sandbox)
    elif kind == "documents":
        body = documents.build_document(data, where)
    else:
        body = pronunciation.build_dictionary(data, where)
    if memo is not None:
        memo[key] = (body[KINDS[kind].name_key], copy.deepcopy(body))
    return body[KINDS[kind].name_key], body


def compared(kind: str, body: dict) -> dict:
    """The body as it is compared with the remote side and hashed in the state file (no secret)."""
    return tools.shown(body) if kind == "tools" else body


# --- listings and names ------------------------------------------------------------------
def rows(ctx: RunContext, kind: str, *, fresh: bool = False) -> list[dict]:
    """Every resource of `kind` on the API, listed once per command (pages of 100)."""
    cache = ctx.__dict__.setdefault("_resource_rows", {})
    if kind in cache and not fresh:
        return cache[kind]
    spec, client, found = KINDS[kind], ctx.client(), []
    for number in range(spec.page_base, spec.page_base + 100):
        body = client.request("GET", spec.path, params={"limit": 100, "page": number}, log=False).body or {}
        data = body.get("data") or [] if isinstance(body, dict) else []
        found += data
        total = body.get("total_count") if isinstance(body, dict) else None
        if len(data) < 100 or (isinstance(total, int) and len(found) >= total):
            break
    cache[kind] = found
    return found


def by_id(ctx: RunContext, kind: str) -> dict[str, dict]:
    """id -> listed row."""
    key = KINDS[kind].id_key
    return {r[key]: (documents.as_seen(r) if kind == "documents" else r) for r in rows(ctx, kind) if isinstance(r.get(key), str)}


def named(ctx: RunContext, kind: str, name: str, *, fresh: bool = False) -> list[dict]:
    """Remote rows whose name is exactly `name`."""
    return [r for r in rows(ctx, kind, fresh=fresh) if r.get(KINDS[kind].name_key) == name]


def configs(ctx: RunContext, kind: str) -> dict[str, str]:
    """name -> config file, for every config of `kind` in the project (read once per command)."""
    cache = ctx.__dict__.setdefault("_resource_configs", {})
    if kind not in cache:
        found: dict[str, str] = {}
        folder = ctx.root / KINDS[kind].folder
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            if path.suffix not in (".json", ".toml"):
                continue
            try:
                name = _data(ctx, path).get(KINDS[kind].name_key)
            except ConfigError:
                continue  # a broken file fails when it is applied, naming itself
            where = rel(ctx, path)
            found.setdefault(name if isinstance(name, str) else path.stem, where)
            found.setdefault(path.stem, where)
        cache[kind] = found
    return cache[kind]


def resolve(ctx: RunContext, kind: str, name, where: str, field_name: str, *, create: bool) -> str:
    """The remote id of the `kind` called `name`, referenced from `where` at `field_name`.

    Looked up in the state file, then the API; else created from its config when `create`
    (a plan shows a pending marker instead). Unknown everywhere: a ConfigError naming `where`.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: {field_name}: {name!r} is not a {WHAT[kind]} name", hint=f'write e.g. ["{name}"] as strings')
    config = configs(ctx, kind).get(name)
    real = name
    if config:
        with contextlib.suppress(ConfigError):
            real = desired(ctx, kind, ctx.root / config)[0]
    known = lockfile.entry(ctx, kind, real)
    if known:
        return known["id"]
    found = named(ctx, kind, real)
    if len(found) > 1:
        ids = ", ".join(r.get(KINDS[kind].id_key) or "?" for r in found)
        raise ConfigError(f"{where}: {field_name}: {len(found)} {WHAT[kind]}s are named {real!r} ({ids})",
                          hint="rename or delete the duplicates")
    if found:
        return found[0][KINDS[kind].id_key]
    if config and create:
        return apply_resource(ctx, kind, config).remote_id
    if config:
        return f"<pending: {config}>"
    raise ConfigError(f"{where}: {field_name}: no {WHAT[kind]} named {name!r} in {KINDS[kind].folder}/ or on "
                      f"{ctx.client().target.label}", hint=f"add {KINDS[kind].folder}/{name}.json, or fix the name")


# --- create / update -----------------------------------------------------------------------
def apply_resource(ctx: RunContext, kind: str, config, *, force: bool = False, dry_run: bool = False,
                   send_secret: bool = False) -> ResourceResult:
    """Create the resource in `config`, or update the one it became (by state entry, else exact name).

    A resource changed outside the harness since the last write is refused unless `force`.
    `send_secret` (tools): send the tool even when nothing else changed, to rotate its secret.
    """
    where = rel(ctx, config)
    name, shown_body = desired(ctx, kind, ctx.root / where)
    with lockfile.locked(ctx) if not dry_run else contextlib.nullcontext():
        return _apply(ctx, kind, where, name, shown_body, force, dry_run, send_secret)


def _apply(ctx, kind, where, name, shown_body, force, dry_run, send_secret) -> ResourceResult:
    spec, client = KINDS[kind], ctx.client()
    result = ResourceResult(kind, "", name, None, shown_body, target=client.target.label)
    known = lockfile.entry(ctx, kind, name)
    remote = fetch_remote(ctx, kind, known["id"]) if known else None
    if known and remote is None:
        ctx.note(f"note: {WHAT[kind]} {name!r} ({known['id']}) in {lockfile.LOCK_FILE} no longer exists on "
                 f"{client.target.label}; creating a new one")
        lockfile.forget(ctx, kind, name)
        known = None
    if remote is None:
        # The listing of this command, not a fresh one per create (that made apply quadratic): another
        # command's create of this name is in the state file, re-read under the lock we hold (lockfile).
        same = named(ctx, kind, name)
        if len(same) > 1:
            ids = ", ".join(r.get(spec.id_key) or "?" for r in same)
            raise ConfigError(f"{where}: {spec.name_key}: {len(same)} {WHAT[kind]}s are already named {name!r} ({ids})",
                              hint="delete or rename the duplicates, then run this again")
        if same:  # adopt the one of that name (made by hand, or by a run whose state was lost)
            remote = fetch_remote(ctx, kind, same[0][spec.id_key])
    if remote is None:
        result.action = "would create" if dry_run else "created"
        if not dry_run:
            body = desired(ctx, kind, ctx.root / where, write=True)[1]
            created = client.create(spec.path, body, find_existing=lambda: _only(named(ctx, kind, name, fresh=True)))
            result.remote_id = (created or {}).get(spec.id_key) or (created or {}).get("uuid")
            listed = ctx.__dict__.get("_resource_rows", {}).get(kind)
            if listed is not None:  # the listing stays this command's view: its own creates appended
                listed.append({**(created or {}), spec.id_key: result.remote_id, spec.name_key: name})
            if kind == "documents":
                documents.wait_ready(ctx, result.remote_id, name, where)
    else:
        result.remote_id = remote[spec.id_key]
        if known and known["id"] == result.remote_id:
            lockfile.refuse_remote_change(ctx, kind, name, remote, where, force)
        result.diff = diff_managed(remote, shown_body, lockfile.sent_before(ctx, kind, name, result.remote_id, where),
                                    top=lockfile.same_config(ctx, kind, name, where))
        resend = send_secret and kind == "tools" and tools.secret_path(shown_body) is not None
        if not result.diff and not resend:
            result.action = "unchanged"
        elif dry_run:
            result.action = "would update"
        else:
            _update(ctx, kind, where, result, remote)
            result.action = "updated"
    if not dry_run and result.remote_id:
        after = read_back(ctx, f"{WHAT[kind]} {result.remote_id}", lambda: _must(fetch_remote(ctx, kind, result.remote_id)), shown_body)
        lockfile.record(ctx, kind, name, result.remote_id, shown_body, after, where)
    ctx.store.append(kind, {"type": kind, "action": result.action, "id": result.remote_id, "name": name,
                            "diff": result.diff, "dry_run": dry_run})
    return result


def _only(found: list[dict]) -> dict | None:
    return found[0] if len(found) == 1 else None


def _must(remote):
    if remote is None:
        raise ApiError("the resource is gone", status=404)
    return remote


def _update(ctx, kind: str, where: str, result: ResourceResult, remote: dict) -> None:
    """Send one update in the kind's PATCH style."""
    spec, client = KINDS[kind], ctx.client()
    path = f"{spec.path}/{result.remote_id}"
    if kind == "documents":
        fixed = sorted({op["path"].split("/")[1] for op in result.diff} - set(documents.MUTABLE))
        if fixed:
            raise ConfigError(f"{where}: {fixed[0]}: cannot change on an existing document (only document_name and "
                              "tags can)", hint="give the document a new document_name to add it as a new one")
        client.request("PATCH", path, json_body={k: result.body.get(k) for k in documents.MUTABLE if k in result.body})
    elif kind == "tools":
        client.request("PATCH", path, json_body=desired(ctx, kind, ctx.root / where, write=True)[1])
    else:
        client.patch(path, result.diff)


def summary(result: ResourceResult) -> list[str]:
    """Human lines for a ResourceResult."""
    what, ident = WHAT[result.kind], f" {result.remote_id}" if result.remote_id else ""
    if result.action == "unchanged":
        return [f"{what}{ident} {result.name!r} unchanged on {result.target}: nothing sent"]
    lines = [f"{result.action} {what}{ident} {result.name!r} on {result.target}"]
    if result.diff:
        lines.append(f"  changed: {', '.join(op['path'] for op in result.diff)}")
    return lines
