"""Conversation callback events: the documented envelopes, the stored log, replay and trigger.

`build_event()` makes a synthetic callback in the exact envelope Tavus documents for each event
type (CONTRACT §6), `iter_events()` reads what the receiver stored in logs/callbacks.sqlite3,
`replay_events()` re-posts stored events in order and `trigger_event()` posts one synthetic
event, so a handler can be tested offline.
"""
from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
import secrets as _secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from .. import __version__
from ..context import RunContext
from ..env import is_loopback
from ..errors import ApiError, CheckFailed, ConfigError
from ..redact import printable, redact, redact_text
from ..store import utc_now
from .eventstore import DB_NAME, LEGACY_DIR, iter_records

# Exact strings from the docs (note the spaces). A bare form without " reached" also occurs.
SHUTDOWN_REASONS = (
    "max_call_duration reached",
    "participant_left_timeout reached",
    "participant_absent_timeout reached",
    "bot_could_not_join_meeting_it_was_probably_ended",
    "daily_room_has_been_deleted",
    "exception_encountered_during_conversation_startup",
    "end_conversation_endpoint_hit",
    "internal error occurred at step x",
)
DEFAULT_REASON = "end_conversation_endpoint_hit"
STOCK_REPLICA = "r90bbd427f71"
CONVERSATION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # always used with fullmatch
POST_TIMEOUT = (3.0, 10.0)


def _transcript() -> list[dict]:
    return [
        {"role": "system", "content": "You are in a live video conference call with a user. (synthetic event)"},
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello! This transcript was made by `invoke trigger`."},
    ]


# event_type -> (message_type, properties builder). Shapes from CONTRACT §6.1-6.2.
EVENT_SHAPES = {
    "system.replica_joined": ("system", lambda replica: {"replica_id": replica}),
    "system.pal_joined": ("system", lambda replica: {"replica_id": replica}),
    "system.shutdown": ("system", lambda replica: {"replica_id": replica, "shutdown_reason": DEFAULT_REASON}),
    "application.transcription_ready": ("application",
                                        lambda replica: {"replica_id": replica, "transcript": _transcript()}),
    "application.recording_ready": ("application", lambda replica: {
        "bucket_name": "conversation-recordings", "s3_key": "recordings/synthetic.mp4", "duration": 14}),
    "application.recording_copy_failed": ("application", lambda replica: {
        "error_message": "synthetic failure from invoke trigger"}),
    "application.perception_analysis": ("application", lambda replica: {
        "analysis": "Synthetic summary of the visual observations taken during the video call."}),
}
UNDOCUMENTED_SHAPES = {"application.recording_copy_failed"}


def resolve_shutdown_reason(reason: str | None) -> tuple[str, str | None]:
    """Check a shutdown reason against the documented strings; return (value to send, note or None).

    A documented value is sent as is. The bare form of a "... reached" value (as in the docs'
    own example) and any "internal error occurred at step ..." are sent as typed, with a note
    naming the documented string. Anything else is a ConfigError listing the documented values.
    """
    if reason is None:
        return DEFAULT_REASON, None
    text = reason.strip()
    if text in SHUTDOWN_REASONS:
        return text, None
    if text.startswith("internal error occurred at step "):
        return text, "documented as `internal error occurred at step x`; sent as typed"
    for documented in SHUTDOWN_REASONS:
        if documented.endswith(" reached") and text == documented[: -len(" reached")]:
            return text, (f"`{text}` is the bare form of the documented `{documented}` "
                          "(the docs' own example uses it); sent as typed")
    raise ConfigError(f"--reason: {reason!r} is not a documented shutdown_reason",
                      hint="use one of: " + ", ".join(f"`{r}`" for r in SHUTDOWN_REASONS)
                           + " (the bare form without ` reached` is accepted too)")


def new_conversation_id() -> str:
    """A conversation id shaped like Tavus's (`c` + 16 hex digits)."""
    return "c" + _secrets.token_hex(8)


def build_event(event_type: str, *, conversation_id: str | None = None, reason: str | None = None,
                webhook_url: str = "", timestamp: str | None = None) -> tuple[dict, list[str]]:
    """A synthetic callback for `event_type` in the documented envelope; returns (event, notes)."""
    if event_type not in EVENT_SHAPES:
        raise ConfigError(f"unknown event type {event_type!r}",
                          hint="use one of: " + ", ".join(sorted(EVENT_SHAPES)))
    if reason is not None and event_type != "system.shutdown":
        raise ConfigError(f"--reason only applies to system.shutdown, not {event_type}",
                          hint="drop --reason, or trigger system.shutdown")
    notes = []
    if conversation_id is None:
        conversation_id = new_conversation_id()
        notes.append(f"no --conversation-id given; using {conversation_id}")
    elif not CONVERSATION_ID.fullmatch(conversation_id):
        raise ConfigError(f"--conversation-id: {conversation_id!r} is not a conversation id",
                          hint="use letters, digits, - and _ only, e.g. c0eaa60a267274af")
    message_type, build = EVENT_SHAPES[event_type]
    properties = build(STOCK_REPLICA)
    if event_type == "system.shutdown":
        properties["shutdown_reason"], note = resolve_shutdown_reason(reason)
        if note:
            notes.append(f"shutdown_reason {note}")
    if event_type in UNDOCUMENTED_SHAPES:
        notes.append(f"the docs show no payload for {event_type}; properties follow public handler code")
    event = {"properties": properties, "conversation_id": conversation_id, "webhook_url": webhook_url,
             "event_type": event_type, "message_type": message_type, "timestamp": timestamp or utc_now()}
    return event, notes


def describe_event(event: dict) -> str:
    """The key detail of a callback in a few words (reason, transcript length, recording key...)."""
    props = event.get("properties") if isinstance(event.get("properties"), dict) else {}
    kind = event.get("event_type", "")
    if kind == "system.shutdown":
        return f"reason: {props.get('shutdown_reason')}"
    if kind == "application.transcription_ready":
        transcript = props.get("transcript") if isinstance(props.get("transcript"), list) else []
        return f"transcript: {len(transcript)} entries"
    if kind == "application.recording_ready":
        where = props.get("storage_uri") or props.get("s3_key")
        return f"recording: {where}" + (f" ({props['duration']} s)" if props.get("duration") is not None else "")
    if kind == "application.recording_copy_failed":
        return f"recording copy failed: {props.get('error_message')}"
    if kind == "application.perception_analysis":
        analysis = " ".join(str(props.get("analysis") or "").split())
        return f"perception: {analysis[:80]}" + ("..." if len(analysis) > 80 else "")
    if kind in ("system.replica_joined", "system.pal_joined"):
        return f"replica: {props.get('replica_id') or props.get('face_id')}"
    return ""


def format_event_line(record: dict, *, with_date: bool = False) -> str:
    """One console line for a stored record: received time, conversation id, event type, detail."""
    event = record.get("event") or {}
    ts = str(record.get("ts") or event.get("timestamp") or "")
    clock = ts[11:23] if len(ts) >= 23 and ts[10] == "T" else ts
    if with_date and len(ts) >= 23:
        clock = f"{ts[:10]} {clock}"
    line = (f"{clock:<12}  {event.get('conversation_id', '?'):<18}  {event.get('event_type', '?'):<34}  "
            f"{describe_event(event)}").rstrip()
    return printable(line)


def callbacks_dir(ctx: RunContext) -> Path:
    """Where earlier versions stored callbacks (logs/callbacks/*.jsonl), imported once into the database."""
    return ctx.store.logs_dir / LEGACY_DIR


def events_db(ctx: RunContext) -> Path:
    """Where the receiver stores callbacks: logs/callbacks.sqlite3 under the project."""
    return ctx.store.logs_dir / DB_NAME


def iter_events(ctx: RunContext, *, conversation_id: str | None = None,
                event_type: str | None = None) -> Iterator[dict]:
    """Stored callback records, in arrival order, filtered by conversation and event type; read lazily.

    `event_type` matches exactly, or as a prefix group (`system`, `application`).
    """
    if conversation_id is not None and not CONVERSATION_ID.fullmatch(conversation_id):
        raise ConfigError(f"--conversation-id: {conversation_id!r} is not a conversation id",
                          hint="copy the id from `invoke events`")
    return iter_records(events_db(ctx), legacy_dir=callbacks_dir(ctx), conversation_id=conversation_id,
                        event_type=event_type)


def read_events(ctx: RunContext, *, conversation_id: str | None = None,
                event_type: str | None = None) -> list[dict]:
    """The records iter_events() yields, as a list (for one conversation, or a small store)."""
    return list(iter_events(ctx, conversation_id=conversation_id, event_type=event_type))


def event_lines(records, fmt: str, secrets) -> Iterator[str]:
    """Output lines for stored `records`, streamed: `text` (one readable line each), `jsonl` (one
    record per line, for jq) or `json` (the indented JSON array `--json` has always printed).

    Secrets are removed from every line; `secrets` is computed once by the caller.
    """
    secrets = list(secrets)
    if fmt == "text":
        for record in records:
            yield redact_text(format_event_line(record, with_date=True), secrets)
    elif fmt == "jsonl":
        for record in records:
            yield json.dumps(redact(record, secrets), ensure_ascii=False, default=str)
    else:
        held = None  # the previous element: its comma depends on whether another follows
        for record in records:
            text = json.dumps(redact(record, secrets), indent=2, ensure_ascii=False, default=str)
            if held is None:
                yield "["
            else:
                yield held + ","
            held = "\n".join("  " + line for line in text.splitlines())
        yield "[]" if held is None else held + "\n]"


def resolve_target_url(ctx: RunContext, to: str | None) -> str:
    """The URL to post to: `to` (or WEBHOOK_URL), with `?token=` added for this machine's receiver.

    WEBHOOK_TOKEN is only ever added to a loopback URL, or to the WEBHOOK_URL it came with, so
    the secret never goes to a third party.
    """
    url = to or ctx.env.get("WEBHOOK_URL")
    if not url:
        raise ConfigError("no --to URL given and WEBHOOK_URL is not set",
                          hint="pass --to http://127.0.0.1:8000/tavus/callback (your receiver or your app)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--to: {url!r} is not an absolute http(s) URL",
                          hint="e.g. --to http://127.0.0.1:8000/tavus/callback")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    token = ctx.env.get("WEBHOOK_TOKEN")
    if "token" not in query and token:
        saved = ctx.env.get("WEBHOOK_URL") or ""
        saved_token = dict(parse_qsl(urlsplit(saved).query)).get("token")
        if saved and _same_endpoint(saved, url) and saved_token:
            query["token"] = saved_token
        elif is_loopback(url):
            query["token"] = token
    return urlunsplit(parts._replace(query=urlencode(query)))


def _same_endpoint(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc, pa.path.rstrip("/")) == (pb.scheme, pb.netloc, pb.path.rstrip("/"))


def post_event(url: str, event: dict, *, session: requests.Session | None = None) -> tuple[int, str]:
    """POST one callback envelope as JSON; return (status, first 200 chars of the body).

    Raises ApiError when nothing answers at `url`.
    """
    sender = session or requests
    try:
        resp = sender.post(url, json=event, timeout=POST_TIMEOUT,
                           headers={"User-Agent": f"tavus-harness/{__version__} (replay)"})
    except requests.RequestException as exc:
        raise ApiError(f"could not post to {redact_text(_strip_query(url))}: {type(exc).__name__}",
                       method="POST", url=_strip_query(url),
                       hint="is anything listening there? your app, or the receiver: `invoke webhook --port 8000`") from None
    return resp.status_code, resp.text[:200]


def _strip_query(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(query="", fragment=""))


@dataclass
class Delivery:
    """One posted event and how the target answered."""

    event: dict
    status: int
    body: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def duplicate(self) -> bool:
        """A harness receiver that already had this event acknowledged it without storing it again."""
        try:
            answer = json.loads(self.body) if self.ok and self.body else {}
        except ValueError:
            return False
        return isinstance(answer, dict) and answer.get("duplicate") is True


def delivery_line(d: Delivery) -> str:
    """One console line for a posted event."""
    e = d.event
    mark = ("dup" if d.duplicate else "ok ") if d.ok else "BAD"
    return f"{mark} {d.status}  {e.get('conversation_id', '?'):<18}  {e.get('event_type', '?'):<34}  {describe_event(e)}".rstrip()


def delivery_json(d: Delivery) -> dict:
    """A posted event's stable keys for --json (docs/output.md)."""
    return {"conversation_id": d.event.get("conversation_id"), "event_type": d.event.get("event_type"),
            "status": d.status, "ok": d.ok, "duplicate": d.duplicate}


def _rejected_hint(status: int) -> str:
    if status == 403:
        return "the receiver wants its token: put WEBHOOK_TOKEN in .env or add ?token=... to --to"
    if status == 404:
        return "check the path in --to (the receiver's default is /tavus/callback)"
    return "look at the target's own log for why"


@dataclass
class TriggerResult:
    delivery: Delivery
    url: str
    notes: list[str] = field(default_factory=list)


def trigger_event(ctx: RunContext, event_type: str, *, to: str | None = None, reason: str | None = None,
                  conversation_id: str | None = None) -> TriggerResult:
    """Post one synthetic `event_type` callback to `to`; notes go to the user through ctx.note."""
    url = resolve_target_url(ctx, to)
    event, notes = build_event(event_type, conversation_id=conversation_id, reason=reason,
                               webhook_url=_strip_query(url))
    for note in notes:
        ctx.note(f"note: {note}")
    status, body = post_event(url, event)
    delivery = Delivery(event, status, body)
    if not delivery.ok:
        raise ApiError(f"{_strip_query(url)} answered {status} to {event_type}: {body.strip()[:120]}",
                       status=status, method="POST", url=_strip_query(url), hint=_rejected_hint(status))
    return TriggerResult(delivery, _strip_query(url), notes)


REDACTED = "[redacted]"


def with_own_token(ctx: RunContext, event: dict) -> dict:
    """`event` with the token of its `webhook_url` put back, when that URL is the user's own.

    The store redacts the token (logs hold no secret), so a replayed body would otherwise carry
    `token=[redacted]`. It is put back from WEBHOOK_TOKEN only when the URL then equals WEBHOOK_URL
    or is a loopback URL (this machine's receiver); any other URL keeps the redacted value. Only
    the posted body holds it: console lines and --json output are redacted as always.
    """
    token, url = ctx.env.get("WEBHOOK_TOKEN"), event.get("webhook_url")
    if not token or not isinstance(url, str) or REDACTED not in url:
        return event
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if ("token", REDACTED) not in query:
        return event
    original = urlunsplit(parts._replace(query=urlencode([(k, token if (k, v) == ("token", REDACTED) else v)
                                                          for k, v in query])))
    if original == ctx.env.get("WEBHOOK_URL") or is_loopback(original):
        return {**event, "webhook_url": original}
    return event


def replay_events(ctx: RunContext, *, to: str | None = None, conversation_id: str | None = None,
                  event_type: str | None = None, report=None) -> list[Delivery]:
    """Re-post stored events, oldest first, to `to`; `report(delivery)` is called after each post.

    Every event is posted even if some are refused; then a CheckFailed says how many were.
    """
    url = resolve_target_url(ctx, to)
    records = iter_events(ctx, conversation_id=conversation_id, event_type=event_type)
    first = next(records, None)
    if first is None:
        raise ConfigError("no stored events match" + (f" conversation {conversation_id}" if conversation_id else ""),
                          hint="`invoke events` lists what logs/callbacks.sqlite3 holds")
    deliveries = []
    with requests.Session() as session:
        for record in itertools.chain([first], records):
            status, body = post_event(url, with_own_token(ctx, record["event"]), session=session)
            delivery = Delivery(record["event"], status, body)
            deliveries.append(delivery)
            if report:
                report(delivery)
    refused = [d for d in deliveries if not d.ok]
    if refused:
        raise CheckFailed(f"{len(refused)} of {len(deliveries)} replayed events were refused by {_strip_query(url)}",
                          hint=_rejected_hint(refused[0].status))
    known = sum(d.duplicate for d in deliveries)
    if known:
        ctx.note(f"note: {known} of {len(deliveries)} events were already stored by that receiver, which keeps each "
                 "callback once, so its plugins did not see them again; replay to your own app with --to URL")
    return deliveries
