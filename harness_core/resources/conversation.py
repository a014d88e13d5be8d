"""`invoke conversation` and `invoke end`: build, create and end conversations.

`build_conversation()` resolves flags, config file and environment (WEBHOOK_URL) through
config.gather(), lets plugins add their fragments (meeting context, recording), applies the
contract's rules (language inside properties, no null callback_url, a replica that exists),
and checks the body offline. `create_conversation()` sends it without ever duplicating it and
records it in the ledger; `end_conversation()` / `end_all_mine()` clean up.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import ledger
from ..api import unwrap_one
from ..config import Resolved, check_keys, gather
from ..context import RunContext
from ..errors import ApiError, ConfigError
from .lookup import persona_id_for
from .payload import assemble, check_config_keys, validate_offline
from ..schemas import schema

# Top-level fields of POST /v2/conversations the harness sends (CONTRACT §2.3, legacy names).
API_KEYS = ("persona_id", "replica_id", "callback_url", "conversation_name", "conversational_context",
            "custom_greeting", "audio_only", "document_ids", "document_tags", "document_retrieval_strategy",
            "memory_stores", "test_mode", "require_auth", "max_participants", "properties")
# Harness-only keys: resolved here, never sent.
HARNESS_KEYS = ("persona_name", "language")
ENV_MAP = {"callback_url": "WEBHOOK_URL"}
# Two-letter codes we translate to the full names properties.language takes (CONTRACT §5).
LANGUAGE_CODES = {"en": "english", "fr": "french", "de": "german", "es": "spanish", "it": "italian",
                  "pt": "portuguese", "nl": "dutch", "pl": "polish", "ru": "russian", "ja": "japanese",
                  "ko": "korean", "zh": "chinese", "hi": "hindi", "ar": "arabic", "tr": "turkish",
                  "sv": "swedish", "da": "danish", "fi": "finnish", "no": "norwegian", "cs": "czech",
                  "el": "greek", "he": "hebrew", "id": "indonesian", "uk": "ukrainian", "vi": "vietnamese",
                  "ro": "romanian", "hu": "hungarian", "th": "thai", "ms": "malay", "bg": "bulgarian"}
LANGUAGES = sorted(set(LANGUAGE_CODES.values()) | {"multilingual"})


@dataclass
class ConversationPlan:
    """The body to send, where it came from, and the lines worth telling the user."""

    payload: dict
    resolved: Resolved
    where: str
    notes: list[str] = field(default_factory=list)


def derive_name(config_path: str | None) -> str | None:
    """`configs/conversation/facilitator_kickoff.json` -> "Facilitator kickoff"."""
    if not config_path:
        return None
    words = re.sub(r"[_\-.]+", " ", Path(config_path).stem).strip()
    return words[:1].upper() + words[1:] if words else None


def normalise_language(value, where: str) -> tuple[str, str | None]:
    """The full language name properties.language takes, and a note when a code was translated."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: language: must be a language name such as 'english'",
                          hint=f"accepted: {', '.join(LANGUAGES)}")
    text = value.strip().lower()
    if text in LANGUAGES:
        return text, None
    if text in LANGUAGE_CODES:
        return LANGUAGE_CODES[text], f"language {value!r} sent as properties.language {LANGUAGE_CODES[text]!r} (the API takes full names)"
    raise ConfigError(f"{where}: language: {value!r} is not a language the API accepts",
                      hint=f"use one of: {', '.join(LANGUAGES)}")


SCENARIO_PERSONA = "the scenario's persona"  # the label `invoke run` gives the persona_id it resolved itself


def build_conversation(ctx: RunContext, flags: dict, config_path: str | None = None) -> ConversationPlan:
    """Resolve layers and plugins into the exact POST /v2/conversations body (sends nothing but look-ups)."""
    where = str(config_path) if config_path else "flags"
    resolved, file_data = gather(flags=flags, config_path=config_path, env=ctx.env, env_map=ENV_MAP)
    if config_path:
        check_config_keys("conversation", file_data, where, API_KEYS, HARNESS_KEYS, ctx)
    values = resolved.values
    notes: list[str] = []
    properties = copy.deepcopy(values.get("properties") or {})
    if not isinstance(properties, dict):
        raise ConfigError(f"{resolved.source('properties')}: properties: must be an object", hint='write e.g. {"max_call_duration": 1800}')
    check_keys(properties, schema("conversation")["properties"]["properties"]["properties"], resolved.source("properties"),
               prefix="properties.")
    chosen = {}
    for key, raw in (("language", values.get("language")), ("properties.language", properties.get("language"))):
        if raw is not None:
            chosen[key], note = normalise_language(raw, resolved.source(key))
            if note:
                notes.append(note)
    if len(set(chosen.values())) > 1 and resolved.source("language").startswith("flag"):
        notes.append(f"--language {chosen['language']!r} replaces properties.language {chosen['properties.language']!r} "
                     f"from {resolved.source('properties.language')}")
        chosen.pop("properties.language")
    if len(set(chosen.values())) > 1:
        raise ConfigError(f"{resolved.source('properties.language')}: properties.language: {chosen['properties.language']!r} "
                          f"disagrees with language {chosen['language']!r} from {resolved.source('language')}",
                          hint="set the language once")
    if chosen:
        properties["language"] = chosen.get("language") or chosen["properties.language"]
    if properties:
        values["properties"] = properties
    if not values.get("callback_url"):
        values.pop("callback_url", None)  # never sent as null or "": the API rejects it
    if not values.get("conversation_name") and derive_name(config_path):
        values["conversation_name"] = derive_name(config_path)
    payload = assemble("conversation", resolved, API_KEYS, ctx)
    if "callback_url" in payload and not payload["callback_url"]:
        del payload["callback_url"]
    if payload.get("persona_id") and values.get("persona_name") and resolved.source("persona_id") != SCENARIO_PERSONA:
        notes.append(f"persona_name {values['persona_name']!r} ({resolved.source('persona_name')}) not looked up: "
                     f"persona_id {payload['persona_id']} ({resolved.source('persona_id')}) is used")
    if not payload.get("persona_id") and values.get("persona_name"):
        payload["persona_id"] = persona_id_for(ctx.client(), values["persona_name"], resolved.source("persona_name"))
    if not payload.get("persona_id") and not payload.get("replica_id"):
        replica, why = pick_stock_replica(ctx)
        payload["replica_id"] = replica
        notes.append(why)
    validate_offline("conversation", payload, where, ctx)
    if payload.get("test_mode"):
        notes.append("test_mode: the conversation is created ended; no replica will join and no callbacks will arrive")
    for note in notes:
        ctx.note(note)
    return ConversationPlan(payload, resolved, where, notes)


def pick_stock_replica(ctx: RunContext) -> tuple[str, str]:
    """The first completed stock replica by id: deterministic, and said out loud."""
    rows = ctx.client().list_all("/replicas", replica_type="system", verbose="true")
    ready = sorted(r["replica_id"] for r in rows if r.get("status") == "completed" and r.get("replica_id"))
    if not ready:
        raise ConfigError("conversation: neither persona nor replica given, and the API lists no completed stock replica",
                          hint="set persona_id / --persona-name, or replica_id")
    return ready[0], (f"no persona or replica given: using stock replica {ready[0]} "
                      f"(the first completed replica_type=system replica by id, of {len(ready)})")


def create_conversation(ctx: RunContext, payload: dict) -> dict:
    """POST the conversation (no duplicate after an ambiguous failure) and record it in the ledger."""
    client = ctx.client()
    response = client.create("/conversations", payload, find_existing=_finder(client, payload))
    ctx.store.append("conversation", {"type": "conversation", "payload": payload, "response": response})
    if isinstance(response, dict) and response.get("conversation_id"):
        ledger.record_created(ctx, response, client.target.base_url)
    return response


def _finder(client, payload: dict):
    """After an ambiguous create failure: a conversation with our name that did not exist before."""
    name = payload.get("conversation_name")
    if not name:
        return None
    # what existed before: this command's listing (one per command, not one per create; the rows this
    # client created since are in it too), so a run of many scenarios does not list the account each time
    before = {r.get("conversation_id") for r in client.list_all("/conversations", cached=True)
              if r.get("conversation_name") == name}

    def find():
        new = [r for r in client.list_all("/conversations")
               if r.get("conversation_name") == name and r.get("conversation_id") not in before]
        return new[0] if len(new) == 1 else None

    return find


def end_conversation(ctx: RunContext, conversation_id: str, *, look_first: bool = True) -> dict:
    """End one conversation and note it in the ledger.

    POST /end is idempotent, so a rate limit, a 5xx or a dropped connection is retried (bounded:
    TavusClient.post_repeatable); a conversation left active would keep billing. With `look_first`
    its status is read first, so one already ended is reported so and not posted to; without it
    (a caller that checks the status afterwards anyway) the end is posted at once.
    """
    client = ctx.client()
    try:
        try:
            live = unwrap_one(client.get(f"/conversations/{conversation_id}")) if look_first else {}
        except ApiError as exc:
            if exc.not_found:
                raise
            live = {}  # the look-up failed even after its retries: end it anyway, that is harmless
        if live.get("status") != "ended":
            client.post_repeatable(f"/conversations/{conversation_id}/end")  # 429/5xx/reset: tried again
    except ApiError as exc:
        if exc.not_found:
            raise ConfigError(f"--conversation-id {conversation_id}: {exc.message.split(': ', 1)[-1]}",
                              hint="list yours with `invoke conversations`") from None
        raise
    ledger.record_ended(ctx, conversation_id, client.target.base_url)
    return {"conversation_id": conversation_id, "status": "already ended" if live.get("status") == "ended" else "ended"}


def list_mine(ctx: RunContext) -> list[dict]:
    """The conversations this harness created on the current API, with their status.

    Only those the ledger does not already know to be over are asked of the API (one GET each);
    a final answer (ended, not found) is written to the ledger so the next listing skips it.
    """
    client = ctx.client()
    api_url = client.target.base_url
    rows = []
    for row in ledger.mine(ctx, api_url):
        status = row.get("final")
        if status is None:
            try:
                live = unwrap_one(client.get(f"/conversations/{row['conversation_id']}"))
                status = live.get("status") or "?"  # the API may answer null
            except ApiError as exc:
                status = "gone" if exc.not_found else f"unknown ({exc.status})"
            if status in ledger.FINAL:
                ledger.record_final(ctx, row["conversation_id"], api_url, status)
        rows.append({"conversation_id": row["conversation_id"], "conversation_name": row.get("conversation_name"),
                     "created_at": row.get("created_at"), "status": status})
    return rows


def end_all_mine(ctx: RunContext) -> list[dict]:
    """End every still-active conversation this harness created on this API; never anyone else's."""
    ended = []
    for row in list_mine(ctx):
        if row["status"] == "active":
            end_conversation(ctx, row["conversation_id"])
            ended.append({**row, "status": "ended"})
    return ended


def summary_lines(response: dict, plan: ConversationPlan) -> list[str]:
    """The short human summary of a created conversation (the URL alone on its own line)."""
    lines = [f"conversation {response.get('conversation_id')}  status: {response.get('status')}  "
             f"name: {response.get('conversation_name')!r}"]
    if plan.payload.get("persona_id"):
        lines.append(f"persona      {plan.payload['persona_id']}")
    if plan.payload.get("replica_id"):
        lines.append(f"replica      {plan.payload['replica_id']}")
    lines.append(f"callbacks    {'-> ' + plan.payload['callback_url'] if plan.payload.get('callback_url') else 'none (no callback_url / WEBHOOK_URL)'}")
    if response.get("conversation_url") and plan.payload.get("test_mode"):
        lines.append("test mode: created ended; nothing to join")
    elif response.get("conversation_url"):
        lines.append("join at:")
        lines.append(response["conversation_url"])
    return lines
