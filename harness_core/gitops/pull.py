"""`invoke pull`: a remote PAL/persona and everything it references, written as configs.

The PAL's attached tools (`tool_ids`), its documents (`document_ids`, and those its
`document_tags` reach), its objectives and guardrails and its pronunciation dictionary each
become a config under `configs/<kind>/` (or keep the one the project already has for that
name), and the PAL config names them by name; every file is recorded in the state file as the
remote it came from, so the next `plan` says `unchanged` for all of them.

Tool auth secrets never come back from the API (it answers `********`): the tool config gets an
`{"$env": "NAME"}` placeholder and the command says which variable to set before a write.
A persona that another config already manages (see the state file) is not pulled unless forced.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..context import RunContext
from ..errors import ApiError, ConfigError
from ..resources import documents, lockfile, pronunciation, standalone, tools
from ..resources.persona import API_KEYS as PERSONA_KEYS
from ..resources.policies import (FLAT_GUARDRAIL_KEYS, GUARDRAIL_ITEM_KEYS, GUARDRAIL_SET_KEYS, OBJECTIVE_ITEM_KEYS,
                                  OBJECTIVE_SET_KEYS, is_guardrail_set)
from ..resources.remote import diff_managed, fetch_remote
from ..store import atomic_write
from .plan import FOLDERS, desired

FOLDER = {"documents": "configs/documents", "pronunciation": "configs/pronunciation", "tools": "configs/tools",
          "objectives": "configs/objectives", "guardrails": "configs/guardrails"}


@dataclass
class Pulled:
    """What a pull wrote (paths relative to the project root) and what the user must do next."""

    path: str
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # configs the project already had for a referenced resource
    env: list[str] = field(default_factory=list)  # variables to set (tool auth secrets)


def pull_persona(ctx: RunContext, persona_id: str | None, to: str | None, *, force: bool = False) -> Pulled:
    """Write a remote persona and what it references as configs that plan as unchanged."""
    if not persona_id:
        raise ConfigError("pull: --persona-id is required", hint="e.g. invoke pull --persona-id p123 --to configs/persona/p123.json")
    to = to or f"configs/persona/{persona_id}.json"
    path = ctx.root / to if not Path(to).is_absolute() else Path(to)
    if path.is_dir():
        raise ConfigError(f"--to {to}: is a directory", hint=f"name a file, e.g. --to {Path(to) / (persona_id + '.json')}")
    if path.exists() and not force:
        raise ConfigError(f"--to {to}: already exists", hint="choose another file, or add --force to overwrite it")
    owner = managed_by(ctx, persona_id, path)
    if owner and not force:
        raise ConfigError(f"--persona-id {persona_id}: already managed by {owner} (see {lockfile.LOCK_FILE}); nothing written",
                          hint=f"edit {owner} instead, or add --force to write a second config for it")
    remote = fetch_remote(ctx, "persona", persona_id)
    if remote is None:
        raise ConfigError(f"--persona-id {persona_id}: no such persona on {ctx.client().target.label}")
    result = Pulled(standalone.rel(ctx, path))
    config = {k: copy.deepcopy(remote[k]) for k in PERSONA_KEYS if remote.get(k) not in (None, "", [], {})}
    _tools(ctx, persona_id, remote, config, result)
    _documents(ctx, remote, config, result)
    _policies(ctx, remote, config, result)
    _dictionary(ctx, config, result)
    checked = {}

    def check(draft: Path) -> None:  # the file must plan as this persona before it takes the file's place
        checked["name"], checked["body"] = desired(ctx, "persona", draft)

    atomic_write(path, json.dumps(config, indent=2, ensure_ascii=False) + "\n", check=check)
    lockfile.record(ctx, "persona", checked["name"], persona_id, checked["body"], remote, result.path)
    return result


def managed_by(ctx: RunContext, persona_id: str, path: Path) -> str | None:
    """The config file (other than `path`) the state file says manages this persona, if it still exists."""
    api = lockfile.load(ctx).get(ctx.client().target.base_url, {})
    for known in api.get("persona", {}).values():
        config = known.get("config")
        if known.get("id") != persona_id or not config:
            continue
        where = Path(config) if Path(config).is_absolute() else Path.cwd() / config
        if where.is_file() and where.resolve() != path.resolve():
            return standalone.rel(ctx, where)
    return None


# --- each kind a PAL references ------------------------------------------------------------
def _tools(ctx, persona_id: str, remote: dict, config: dict, result: Pulled) -> None:
    ids = remote.get("tool_ids")
    if ids is None:  # an API that keeps attachments only behind their own route
        try:
            listed = ctx.client().get(f"/pals/{persona_id}/tools") or {}
        except ApiError:
            listed = {}
        ids = [t.get("tool_id") for t in (listed.get("data") or []) if isinstance(t, dict)]
    names = []
    for tool_id in ids or []:
        tool = fetch_remote(ctx, "tools", tool_id)
        if tool is None:
            raise ConfigError(f"--persona-id {persona_id}: tool_ids: tool {tool_id} is attached but not readable")
        data = tools.as_config(tool)
        names.append(_adopt(ctx, "tools", data["name"], tool_id, tool, data, result))
        found = tools.secret_path(data)
        if found and isinstance(found[0].get(found[1]), dict):
            result.env.append(found[0][found[1]]["$env"])
    if names:
        config["tools"], config["tools_as"] = names, "attached"


def _documents(ctx, remote: dict, config: dict, result: Pulled) -> None:
    ids, names = list(remote.get("document_ids") or []), []
    for doc_id in ids:
        doc = fetch_remote(ctx, "documents", doc_id)
        if doc is None:
            return  # one unreadable: keep them all as ids (order preserved)
        names.append((doc_id, doc))
    picked = [_adopt(ctx, "documents", doc["document_name"], doc_id, doc, documents.as_config(doc), result)
              for doc_id, doc in names]
    if picked:
        config.pop("document_ids", None)
        config["documents"] = picked
    tags = set(remote.get("document_tags") or [])
    for doc_id, row in standalone.by_id(ctx, "documents").items() if tags else ():
        if doc_id not in ids and tags & set(row.get("tags") or []) and isinstance(row.get("document_name"), str):
            doc = fetch_remote(ctx, "documents", doc_id) or row
            _adopt(ctx, "documents", doc["document_name"], doc_id, doc, documents.as_config(doc), result)


POLICY_SETS = (("objectives", OBJECTIVE_SET_KEYS, OBJECTIVE_ITEM_KEYS), ("guardrails", GUARDRAIL_SET_KEYS, GUARDRAIL_ITEM_KEYS))


def _policies(ctx, remote: dict, config: dict, result: Pulled) -> None:
    for kind, set_keys, item_keys in POLICY_SETS:  # the persona's objectives_id / guardrails_id, by set name
        set_id = remote.get(f"{kind}_id")
        found = fetch_remote(ctx, kind, set_id) if set_id else None
        if found and isinstance(found.get("name"), str):
            config.pop(f"{kind}_id")
            config[f"{kind}_name"] = _adopt(ctx, kind, found["name"], set_id, found,
                                            _policy_config(found, set_keys, item_keys), result)
    flat = list(remote.get("guardrail_ids") or [])
    for i, gid in enumerate(flat):
        found = fetch_remote(ctx, "guardrails", gid)
        if not found or is_guardrail_set(found) or not isinstance(found.get("guardrail_name"), str):
            continue
        data = {k: found[k] for k in FLAT_GUARDRAIL_KEYS if found.get(k) not in (None, "", [], {})}
        name = _adopt(ctx, "guardrails", found["guardrail_name"], gid, found, data, result)
        if i == len(flat) - 1 and "guardrails_name" not in config and "guardrails_id" not in config:
            config["guardrails_name"] = name  # attached last by name, after the others by id: the same list
            config["guardrail_ids"] = flat[:-1]
            if not config["guardrail_ids"]:
                config.pop("guardrail_ids")


def _policy_config(remote: dict, set_keys, item_keys) -> dict:
    out = {k: remote[k] for k in set_keys if k != "data" and remote.get(k) is not None}
    out["data"] = [{k: v for k, v in item.items() if k in item_keys} for item in remote.get("data") or []]
    return out


def _dictionary(ctx, config: dict, result: Pulled) -> None:
    tts = (config.get("layers") or {}).get("tts")
    if not isinstance(tts, dict) or not tts.get("pronunciation_dictionary_id"):
        return
    found = fetch_remote(ctx, "pronunciation", tts["pronunciation_dictionary_id"])
    if found is None or not isinstance(found.get("name"), str):
        return
    name = _adopt(ctx, "pronunciation", found["name"], tts["pronunciation_dictionary_id"], found,
                  pronunciation.as_config(found), result)
    del tts["pronunciation_dictionary_id"]
    tts["pronunciation_dictionary"] = name


def _adopt(ctx, kind: str, name: str, remote_id: str, remote: dict, data: dict, result: Pulled) -> str:
    """Keep the project's config of `name` if it has one, else write `data` as a new one; record it.

    Returns the name the PAL config uses. A kept config is recorded only when the state file has
    no entry yet and the config matches the remote exactly (else `plan` shows the difference).
    """
    have = declared(ctx, kind).get(name)
    if have:
        result.kept.append(have)
        body = desired(ctx, kind, ctx.root / have)[1]
        if not lockfile.entry(ctx, kind, name) and not diff_managed(_comparable(kind, remote), body):
            lockfile.record(ctx, kind, name, remote_id, body, remote, have)
        return name
    path = _free_path(ctx, kind, name, remote_id)
    checked = {}

    def check(draft: Path) -> None:
        checked["name"], checked["body"] = desired(ctx, kind, draft)

    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", check=check)
    where = standalone.rel(ctx, path)
    lockfile.record(ctx, kind, checked["name"], remote_id, checked["body"], remote, where)
    declared(ctx, kind)[name] = where
    result.written.append(where)
    return name


def _comparable(kind: str, remote: dict) -> dict:
    return tools.shown(remote) if kind == "tools" else remote


def declared(ctx, kind: str) -> dict[str, str]:
    """name -> config file of every config of `kind` in the project (unreadable files skipped)."""
    cache = ctx.__dict__.setdefault("_pull_declared", {})
    if kind not in cache:
        found = {}
        for folder in FOLDERS[kind]:
            for path in sorted((ctx.root / folder).glob("*")):
                if path.suffix in (".json", ".toml"):
                    try:
                        found.setdefault(desired(ctx, kind, path)[0], standalone.rel(ctx, path))
                    except ConfigError:
                        continue
        cache[kind] = found
    return cache[kind]


def _free_path(ctx, kind: str, name: str, remote_id: str) -> Path:
    """configs/<kind>/<slug>.json, or <slug>_<id>.json when that file exists."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or remote_id
    folder = ctx.root / FOLDER[kind]
    path = folder / f"{slug}.json"
    return path if not path.exists() else folder / f"{slug}_{re.sub(r'[^A-Za-z0-9]+', '_', remote_id)}.json"
