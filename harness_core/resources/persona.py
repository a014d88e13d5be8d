"""`invoke persona`: build the desired persona from config, flags, presets, modular layers, tools
and policies; create it, or update it with a JSON Patch limited to the fields the config manages.

`apply_persona()` is the one entry point; it returns a PersonaResult (id, name, the payload or
patch sent, the response) that the task renders and that a state file can record.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

from ..api import unwrap_one
from ..config import Resolved, gather
from ..context import RunContext
from ..env import api_configured
from ..errors import ApiError, ConfigError
from ..project import preset_folders
from .layers import DEFAULT_LAYERS_DIR, MODULAR_LAYERS, check_layer_names, load_layers_preset, load_modular_layer
from .lookup import persona_id_for, personas_named
from .payload import allowed_keys, assemble, check_config_keys, merge_layers, validate_offline
from . import lockfile
from .policies import attach_policies
from . import pal, references
from .references import PAL_NAMES
from .remote import diff_managed, read_back

# Fields of POST /v2/personas (contract 2.1) that a config may set.
API_KEYS = ("persona_name", "system_prompt", "pipeline_mode", "context", "default_replica_id", "document_ids",
            "document_tags", "objectives_id", "guardrails_id", "guardrail_ids", "guardrail_tags", "layers")
# Keys only the harness reads; they never reach the API. (`tools`, `tools_dir`: the tools plugin.)
HARNESS_KEYS = ("persona_id", "layers_preset", "layers_dir", "objectives_name", "guardrails_name", "documents",
                "tools_as") + MODULAR_LAYERS + tuple(PAL_NAMES)
# Config keys an environment variable (or .env) may set.
ENV_MAP = {"default_replica_id": "TAVUS_DEFAULT_REPLICA_ID"}
STRING_KEYS = ("tools_as", "persona_name", "system_prompt", "pipeline_mode", "context", "default_replica_id", "persona_id",
               "layers_preset", "layers_dir", "tools_dir", "objectives_id", "guardrails_id", "objectives_name",
               "guardrails_name")
LIST_KEYS = ("document_ids", "document_tags", "guardrail_ids", "guardrail_tags")


@dataclass
class DesiredPersona:
    """The request body the config asks for, where it came from, and what was attached."""

    payload: dict
    where: str
    persona_id: str | None = None
    attached: list[str] = field(default_factory=list)
    added_guardrail_ids: list[str] = field(default_factory=list)  # attached by id/name, not listed in the config
    id_where: str = ""  # where persona_id came from (for messages)
    force: bool = False  # overwrite changes made outside the harness
    origins: dict = field(default_factory=dict)  # payload path -> where a by-name reference came from (explain)


@dataclass
class PersonaResult:
    """What `invoke persona` did (or, with --dry-run, would do)."""

    action: str  # created | updated | unchanged | would create | would update
    persona_id: str | None
    persona_name: str | None
    payload: dict
    patch: list | None = None
    response: object = None
    status: int | None = None
    attached: list[str] = field(default_factory=list)
    replica: str | None = None
    layers: dict = field(default_factory=dict)
    target: str = ""
    dry_run: bool = False

    @property
    def sent(self):
        """The body that was (or would be) sent: the create payload, or the JSON Patch."""
        return self.patch if self.patch is not None else self.payload


def _source(resolved: Resolved, key: str, fallback: str) -> str:
    """Where `key` (a leaf or an object) came from, for messages."""
    label = resolved.source(key)
    if label != "unset":
        return label
    for path, src in resolved.sources.items():
        if path.startswith(key + "."):
            return src
    return fallback


def _check_types(values: dict, source) -> None:
    for key in STRING_KEYS:
        if values.get(key) is not None and not isinstance(values[key], str):
            raise ConfigError(f"{source(key)}: {key}: must be a string, not {type(values[key]).__name__}",
                              hint=f'write "{key}": "..."')
    for key in LIST_KEYS:
        value = values.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ConfigError(f"{source(key)}: {key}: must be a list of strings", hint=f'write "{key}": ["..."]')
    for key in MODULAR_LAYERS:
        if values.get(key) is not None and not isinstance(values[key], (str, dict)):
            raise ConfigError(f"{source(key)}: {key}: must be a preset name or a layer object",
                              hint=f'write "{key}": "NAME" to load presets/layers/{key}/NAME.json')


def build_layers(ctx: RunContext, values: dict, source) -> dict:
    """Merge, lowest first: the layers preset, the config's `layers`, then llm/tts/stt/perception.

    Each source goes through the harness_merge_layers hook (the tools plugin checks and appends
    LLM tools there).
    """
    root = ctx.root
    folders = preset_folders(root, values.get("layers_dir") or DEFAULT_LAYERS_DIR)
    sources: list[tuple[str, dict]] = []
    if values.get("layers_preset"):
        label, data = load_layers_preset(values["layers_preset"], folders, source("layers_preset"), root)
        sources.append((label, data))
    if values.get("layers") is not None:
        check_layer_names(values["layers"], source("layers"))
        sources.append((source("layers"), values["layers"]))
    read = ctx.__dict__.setdefault("_layer_presets", {})  # a preset file is read once per command
    for layer in MODULAR_LAYERS:
        value = values.get(layer)
        if isinstance(value, str) and (layer, value, tuple(folders)) in read:
            label, data = read[layer, value, tuple(folders)]
            sources.append((label, copy.deepcopy(data)))
        elif value is not None:
            label, data = load_modular_layer(layer, value, folders, source(layer), root)
            if isinstance(value, str):
                read[layer, value, tuple(folders)] = (label, copy.deepcopy(data))
            sources.append((label, data))
    return merge_layers(sources, ctx)


def check_system_prompt(body: dict, where: str) -> None:
    """`system_prompt` is required unless `pipeline_mode` is `echo` (the API default is `full`)."""
    mode = body.get("pipeline_mode") or "full"
    if mode == "full" and not (isinstance(body.get("system_prompt"), str) and body["system_prompt"].strip()):
        raise ConfigError(f"{where}: system_prompt: required when pipeline_mode is full",
                          hint="add system_prompt (or --system-prompt), or set pipeline_mode to echo")


def build_persona(ctx: RunContext, flags: dict, config_path: str | None, *, check_prompt: bool = True,
                  create_refs: bool = False) -> DesiredPersona:
    """Resolve config + flags + env (one precedence rule), layers, tools and policies into a body.

    Offline checks come first (keys, layers, tools, system_prompt); policy names and ids are then
    looked up through the API (reads only). Tools, documents and a pronunciation dictionary named
    in the config are resolved to ids (see references); `create_refs=True` creates the ones that
    only exist as configs yet, else a plan shows them pending. Nothing else is written.
    """
    resolved, file_data = gather(flags=flags, config_path=config_path, env=ctx.env, env_map=ENV_MAP)
    resolved = references.persona_vocabulary(resolved)
    where = str(config_path) if config_path else "flags"
    if file_data:
        check_config_keys("persona", file_data, where, API_KEYS, HARNESS_KEYS, ctx)
    given = {k: v for k, v in flags.items() if v is not None}
    known = allowed_keys("persona", API_KEYS, HARNESS_KEYS, ctx)
    for key in given:
        if key not in known:
            raise ConfigError(f"flag --{key.replace('_', '-')}: not available",
                              hint="the plugin that provides it is disabled (see TAVUS_HARNESS_DISABLE_PLUGINS)")
    values = copy.deepcopy(resolved.values)

    def source(key):
        return _source(resolved, key, where)

    _check_types(values, source)
    origins: dict = {}
    tool_ids = references.split_tools(ctx, values, source("tools"), create=create_refs, origins=origins)
    document_ids = references.document_ids(ctx, values, source("documents"), create=create_refs, origins=origins)
    layers = build_layers(ctx, values, source)
    references.dictionary(ctx, layers, source("tts") if values.get("tts") is not None else source("layers"),
                          create=create_refs, origins=origins)
    if layers:
        values["layers"] = layers
    else:
        values.pop("layers", None)
    if check_prompt:
        check_system_prompt(values, source("system_prompt") if values.get("system_prompt") is not None else where)
    # Offline first: plugins (tools, ...) build their part of the body before any policy lookup.
    payload = assemble("persona", Resolved(values, resolved.sources), API_KEYS, ctx)
    listed = list(values.get("guardrail_ids") or [])
    attachment = attach_policies(ctx, values, source)
    added = [i for i in attachment.fields.get("guardrail_ids") or [] if i not in listed]
    for key, value in attachment.fields.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    if document_ids is not None:
        payload["document_ids"] = document_ids
    validate_offline("persona", payload, where, ctx)
    if tool_ids is not None:
        payload["tool_ids"] = tool_ids  # attached through /v2/pals/{id}/tools, compared like a field
    return DesiredPersona(payload, where, values.get("persona_id"), attachment.lines,
                          added if not listed else [], source("persona_id"), origins=origins)


# --- create / update ---------------------------------------------------------------------
def find_persona(ctx: RunContext, desired: DesiredPersona) -> tuple[str, dict]:
    """The remote persona to update: by persona_id, else by exact persona_name (exactly one)."""
    client = ctx.client()
    if desired.persona_id:
        pid = desired.persona_id
    else:
        name = desired.payload.get("persona_name")
        if not name:
            raise ConfigError(f"{desired.where}: persona_name: --update needs persona_id or persona_name",
                              hint="add persona_name (or --persona-id) so the persona can be found")
        pid = persona_id_for(client, name, f"{desired.where}: persona_name",
                             none_hint="run without --update to create it, or give --persona-id",
                             many_hint="give --persona-id (or persona_id in the config) to pick one")
    try:
        remote = unwrap_one(client.get(f"/personas/{pid}"))
    except ApiError as exc:
        if exc.not_found:
            raise ConfigError(f"{desired.id_where or desired.where}: persona_id: no persona {pid!r} in {client.target.label}",
                              hint="check the id (persona_id in the config, or --persona-id)") from None
        raise
    return pid, remote


def apply_persona(ctx: RunContext, flags: dict, config_path: str | None = None, *, update: bool = False,
                  dry_run: bool = False, upsert: bool = False, force: bool = False) -> PersonaResult:
    """Create the persona described by config + flags, or (update=True) patch the existing one.

    A create whose name the state file already maps to a persona on this API is refused (Tavus
    names are not unique: it would make a duplicate), or becomes an update with upsert=True.
    An update of a persona changed outside the harness since our last write (the dashboard, a
    Builder draft, a 409 maker_changes) is refused unless `force`, as `invoke apply` does.
    """
    desired = build_persona(ctx, flags, config_path, check_prompt=not update, create_refs=not dry_run)
    desired.force = force
    # A create holds the state file's inter-process lock from the check to the record, so two
    # commands never both create this name (see lockfile); an update needs it only to record.
    guard = lockfile.locked(ctx) if not update and not dry_run else contextlib.nullcontext()
    with guard:
        return _apply(ctx, desired, flags, config_path, update=update, dry_run=dry_run, upsert=upsert)


def _apply(ctx: RunContext, desired: DesiredPersona, flags: dict, config_path: str | None, *, update: bool,
           dry_run: bool, upsert: bool) -> PersonaResult:
    """apply_persona() once the body is built: check the state, create or patch, record."""
    body = desired.payload
    if not update:
        if dry_run and not api_configured(ctx.env):
            known = None
            ctx.note("note: no API configured; dry run offline, without checking for a persona of that name")
        else:
            known = lockfile.guard_create(ctx, "persona", body.get("persona_name"), desired.where)
        if known and not upsert:
            raise ConfigError(f"{desired.where}: persona_name: {body['persona_name']!r} was already created on "
                              f"{ctx.client().target.label} as {known['id']} (see {lockfile.LOCK_FILE})",
                              hint="use --update to change it, or --upsert to create-or-update")
        if known:
            update = True
            desired.persona_id = desired.persona_id or known["id"]
    result = PersonaResult("", None, body.get("persona_name"), body, attached=desired.attached,
                           replica=body.get("default_replica_id"), layers=body.get("layers") or {}, dry_run=dry_run)
    if update:
        pid, remote = find_persona(ctx, desired)
        check_system_prompt({**remote, **body}, desired.where)
        if desired.added_guardrail_ids:  # attaching one guardrail keeps the others attached
            remote_ids = list(remote.get("guardrail_ids") or [])
            body["guardrail_ids"] = remote_ids + [i for i in desired.added_guardrail_ids if i not in remote_ids]
        result.persona_id = pid
        result.persona_name = body.get("persona_name") or remote.get("persona_name")
        result.replica = body.get("default_replica_id") or remote.get("default_replica_id")
        result.target = ctx.client().target.label
        if (lockfile.entry(ctx, "persona", result.persona_name) or {}).get("id") == pid:
            lockfile.refuse_remote_change(ctx, "persona", result.persona_name, remote, desired.where, desired.force)
        result.patch = diff_managed(remote, body, lockfile.sent_before(ctx, "persona", result.persona_name, pid, config_path),
                                    top=lockfile.same_config(ctx, "persona", result.persona_name, config_path))
        if not result.patch:
            result.action = "unchanged"
        elif dry_run:
            result.action = "would update"
        else:
            ops = [op for op in result.patch if not op["path"].startswith("/tool_ids")]
            reply = pal.patch_pal(ctx, pid, ops, desired.where, force=desired.force) if ops else None
            if reply is not None:
                result.status, result.response = reply.status, reply.body
            if len(ops) != len(result.patch):
                result.attached += pal.sync_tools(ctx, pid, body.get("tool_ids") or [])
            result.action = "unchanged" if reply is not None and reply.status == 304 and len(ops) == len(result.patch) else "updated"
    elif dry_run:
        result.action = "would create"
    else:
        client = ctx.client()
        result.target = client.target.label
        sent, tool_ids = pal.without_tools(body)
        result.response = client.create("/personas", sent, find_existing=_finder(client, body.get("persona_name")))
        response = result.response if isinstance(result.response, dict) else {}
        result.persona_id = response.get("persona_id") or response.get("pal_id")
        result.persona_name = response.get("persona_name") or result.persona_name
        result.action = "created"
        if tool_ids and result.persona_id:
            result.attached += pal.sync_tools(ctx, result.persona_id, tool_ids)
    if not dry_run and result.persona_id and result.action in ("created", "updated", "unchanged"):
        remote = read_back(ctx, f"persona {result.persona_id}",
                           lambda: unwrap_one(ctx.client().get(f"/personas/{result.persona_id}")), body)
        lockfile.record(ctx, "persona", result.persona_name or body.get("persona_name") or result.persona_id,
                     result.persona_id, body, remote, config_path, from_config_only=not value_flags(flags))
    ctx.store.append("persona", {"type": "persona", "action": result.action, "persona_id": result.persona_id,
                                 "payload": body, "patch": result.patch, "response": result.response,
                                 "dry_run": dry_run})
    return result


NEUTRAL_FLAGS = ("persona_id", "layers_dir", "tools_dir")  # pick a persona or a folder, set no field


def value_flags(flags: dict) -> list[str]:
    """The flags that set a field of the persona (not the ones that only pick what to update)."""
    return [k for k, v in flags.items() if k not in NEUTRAL_FLAGS and v not in (None, False, [], "")]


def _finder(client, name: str | None):
    """After an ambiguous create failure: the one persona of that name that did not exist before."""
    if not name:
        return None
    before = {r.get("persona_id") for r in personas_named(client, name)}

    def find():
        new = [r for r in personas_named(client, name, fresh=True) if r.get("persona_id") not in before]
        return new[0] if len(new) == 1 else None
    return find


# --- output ------------------------------------------------------------------------------
def summary_lines(result: PersonaResult) -> list[str]:
    """A short human summary: id, name, replica, layers, tools, what was attached."""
    name = f" {result.persona_name!r}" if result.persona_name else ""
    ident = f" {result.persona_id}" if result.persona_id else ""
    target = f" on {result.target}" if result.target else ""
    if result.action == "unchanged":
        return [f"persona{ident}{name} unchanged{target}: nothing sent"]
    lines = [f"{result.action} persona{ident}{name}{target}"]
    if result.patch:
        lines.append(f"  changed     {', '.join(op['path'] for op in result.patch)}")
    lines.append(f"  replica     {result.replica or '(none: give one per conversation)'}")
    described = []
    for layer, keys in (("llm", ("model",)), ("tts", ("tts_engine",)), ("stt", ("stt_engine",)),
                        ("perception", ("perception_model",))):
        value = next((result.layers.get(layer, {}).get(k) for k in keys if result.layers.get(layer, {}).get(k)), None)
        if value:
            described.append(f"{layer} {value}")
    if described:
        lines.append(f"  layers      {', '.join(described)}")
    tools = [t.get("function", {}).get("name") for t in (result.layers.get("llm") or {}).get("tools") or []]
    if tools:
        lines.append(f"  tools       {', '.join(str(t) for t in tools)}")
    for line in result.attached:
        lines.append(f"  attached    {line}")
    return lines
