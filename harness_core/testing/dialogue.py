"""Driving a conversation turn by turn, as the developer's front end would.

Each user turn is sent with `POST /v2/conversations/{id}/send-app-message` (`conversation.respond`,
CONTRACT §10.2: 120 requests per 60 s, 65,536 bytes, retry on 502, never resend after a 504).
Against a sandbox the harness watches the room stand-in (`GET /_sandbox/conversations/{id}/room`,
a long poll; docs/conversation-tests.md) and for each `conversation.tool_call` calls the
scenario's tool backend (a `harness_tool_call` plugin first, else `[tools.NAME] url`) and answers
with `conversation.tool_result`; a turn ends with `conversation.replica.stopped_speaking` of its
`turn_idx`. Against the real API an HTTP client cannot see the room: the replies are read from the
final transcript afterwards (align_transcript) and the report says so.
"""
from __future__ import annotations

import collections
import json
import re
import threading
import time
from dataclasses import asdict, dataclass, field

import requests

from ..callbacks.toolforward import credentials
from ..errors import ApiError, HarnessError

MAX_APP_MESSAGE_BYTES = 65_536
RATE_LIMIT, RATE_WINDOW = 120, 60.0  # send-app-message requests per window (seconds)
ROOM_WAIT = 5.0  # seconds one long poll may hang (the route caps it at 30)


@dataclass
class Turn:
    """One user turn and everything the agent did in answer."""

    index: int  # 1-based, as the report counts
    user: str
    reply: str = ""
    tool_calls: list[dict] = field(default_factory=list)  # {name, arguments (dict), tool_call_id}
    tool_results: list[dict] = field(default_factory=list)  # {tool_call_id, name, output, status, source}
    objectives: list[dict] = field(default_factory=list)  # {name, output_variables}
    guardrails: list[dict] = field(default_factory=list)  # {name, utterance?}
    errors: list[str] = field(default_factory=list)  # what went wrong in this turn (fails the scenario)
    turn_idx: int | None = None  # the API's turn_idx, when seen
    seconds: float = 0.0
    simulated: bool = False  # the words came from the simulated user

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        """`turn 2 ("Thanks, that's all.")`, for messages."""
        words = self.user if len(self.user) <= 60 else self.user[:57] + "..."
        return f"turn {self.index} ({words!r})"


class SendRefused(HarnessError):
    """Tavus (or the sandbox) refused a send-app-message."""


class ToolBackendFailed(HarnessError):
    """The tool backend could not be reached, or there is none for a tool the agent called."""


class RateLimiter:
    """At most RATE_LIMIT sends in any RATE_WINDOW seconds (the documented send-app-message limit)."""

    def __init__(self, limit: int = RATE_LIMIT, window: float = RATE_WINDOW):
        self.limit, self.window = limit, window
        self.sent: collections.deque = collections.deque()
        self.lock = threading.Lock()

    def acquire(self, cancel: threading.Event) -> None:
        """Wait (bounded by the window) until one more send fits."""
        while True:
            with self.lock:
                now = time.monotonic()
                while self.sent and now - self.sent[0] >= self.window:
                    self.sent.popleft()
                if len(self.sent) < self.limit:
                    self.sent.append(now)
                    return
                wait = self.window - (now - self.sent[0])
            if cancel.wait(wait):
                return


def app_message(cid: str, event_type: str, properties: dict) -> dict:
    """The send-app-message body (the in-call envelope, CONTRACT §10.2)."""
    return {"message_type": "conversation", "event_type": event_type, "conversation_id": cid, "properties": properties}


def send_app_message(ctx, cid: str, event_type: str, properties: dict, *, limiter: RateLimiter,
                     cancel: threading.Event, attempts: int = 4) -> str:
    """Send one app message: "sent", or "maybe" after a 504 (it may have been delivered: never resent).

    A 502 or a 429 is tried again (after Retry-After when given); anything else is SendRefused.
    """
    body = app_message(cid, event_type, properties)
    size = len(json.dumps(body).encode())
    if size > MAX_APP_MESSAGE_BYTES:
        raise SendRefused(f"{event_type} is {size} bytes; send-app-message takes at most {MAX_APP_MESSAGE_BYTES}")
    for attempt in range(1, attempts + 1):
        limiter.acquire(cancel)
        try:
            ctx.client().request("POST", f"/conversations/{cid}/send-app-message", json_body=body)
            return "sent"
        except ApiError as exc:
            if exc.status == 504:
                return "maybe"
            if exc.status in (429, 502) and attempt < attempts:
                if cancel.wait(min(exc.retry_after or 0.2 * 2 ** attempt, 5.0)):
                    break
                continue
            said = exc.message.split(": ", 1)[-1]  # "METHOD path: STATUS what it said"
            raise SendRefused(f"send-app-message {event_type} was refused: {said}") from None
    raise SendRefused(f"send-app-message {event_type}: gave up after {attempts} tries")


class ToolBackends:
    """Where the harness, playing the app, sends the tool calls it must answer."""

    def __init__(self, ctx, tools: dict, cid: str = ""):
        self.ctx, self.tools, self.cid = ctx, tools, cid

    def backend_auth(self, spec: dict) -> dict | None:
        """How the harness, playing the app, authenticates to a tool backend: the tool's `auth`, else
        HMAC with TOOL_HMAC_SECRET when it is set (the convention `invoke webhook` forwards with)."""
        if spec.get("auth"):
            return spec["auth"]
        secret = self.ctx.env.get("TOOL_HMAC_SECRET")
        return {"type": "hmac", "secret": secret} if secret else None

    def call(self, name: str, arguments, call_id: str) -> dict:
        """{name, tool_call_id, output, status, source, backend}: a plugin's answer, else the URL's.

        An HTTP error answer is a result with status "error" (and `failed` set); a backend that
        cannot be reached, or none at all, is ToolBackendFailed.
        """
        answered = self.ctx.hook.harness_tool_call(name=name, arguments=arguments, tool_call_id=call_id,
                                                   conversation_id=self.cid, context=self.ctx)
        base = {"name": name, "tool_call_id": call_id, "source": "app"}
        if answered is not None:
            return {**base, "output": answered.get("output"), "status": answered.get("status", "success"),
                    "backend": "plugin (harness_tool_call)"}
        spec = self.tools.get(name)
        if not spec or not spec.get("url"):
            raise ToolBackendFailed(f"the agent called {name} but the scenario names no backend for it",
                                    hint=f'add [tools.{name}] url = "http://127.0.0.1:9000/tools/{name}"')
        url = spec["url"]
        raw = json.dumps(arguments).encode()
        signed, params = credentials(self.backend_auth(spec), raw)
        try:
            resp = requests.post(url, data=raw, params=params, timeout=float(spec.get("timeout_seconds", 10)),
                                 headers={"Content-Type": "application/json", **(spec.get("headers") or {}), **signed})
        except requests.RequestException as exc:
            raise ToolBackendFailed(f"tool backend for {name} at {url} did not answer ({type(exc).__name__})") from None
        try:
            output = resp.json()
        except ValueError:
            output = resp.text
        ok = 200 <= resp.status_code < 300
        result = {**base, "output": output, "status": "success" if ok else "error", "backend": url}
        if not ok:
            result["failed"] = f"tool backend for {name} at {url} answered {resp.status_code}: {str(output)[:120]}"
        return result


class RoomMissing(HarnessError):
    """The target has no room stand-in (the real API, or a sandbox without the dialogue engine)."""


class Room:
    """The sandbox's room stand-in for one conversation: events in seq order, by long poll."""

    def __init__(self, ctx, cid: str):
        target = ctx.client().target
        self.url = target.base_url.rsplit("/v2", 1)[0] + f"/_sandbox/conversations/{cid}/room"
        self.headers = {"x-api-key": target.api_key}
        self.after: int | None = None
        self.session = requests.Session()
        self.session.trust_env = False

    def poll(self, wait: float) -> tuple[list[dict], str]:
        """New events (after the last seen seq) and the conversation's status; waits up to `wait` s."""
        params = {"wait": f"{max(0.0, min(wait, 30.0)):.2f}"}
        if self.after is not None:
            params["after"] = str(self.after)
        try:
            resp = self.session.get(self.url, params=params, headers=self.headers, timeout=wait + 10)
        except requests.RequestException as exc:
            raise HarnessError(f"the sandbox's room did not answer ({type(exc).__name__})") from None
        if resp.status_code == 404 and self.after is None:
            raise RoomMissing(f"the target has no room route ({self.url.split('/_sandbox')[0]}/_sandbox/conversations/ID/room)")
        if resp.status_code != 200:
            raise HarnessError(f"the sandbox's room answered {resp.status_code}: {resp.text[:120]}")
        data = resp.json()
        events = [e for e in data.get("events") or [] if isinstance(e, dict)]
        seqs = [e["seq"] for e in events if isinstance(e.get("seq"), int)]
        if isinstance(data.get("last_seq"), int):
            seqs.append(data["last_seq"])
        if seqs:
            self.after = max([*seqs, self.after if self.after is not None else -1])
        return events, str(data.get("status") or "active")


REPLICA_ROLES = ("replica", "pal", "assistant")


def _arguments(raw) -> dict | str:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return raw
    return value if isinstance(value, dict) else raw


class Driver:
    """Sends the turns of one conversation and records what the agent did in each."""

    def __init__(self, ctx, cid: str, backends: ToolBackends, limiter: RateLimiter, cancel: threading.Event,
                 room: Room | None = None):
        self.ctx, self.cid, self.backends, self.limiter, self.cancel = ctx, cid, backends, limiter, cancel
        self.room = room
        self.events: list[dict] = []  # every room event seen, in seq order
        self.before_first_turn: list[dict] = []  # e.g. a greeting

    def send(self, event_type: str, properties: dict) -> str:
        return send_app_message(self.ctx, self.cid, event_type, properties, limiter=self.limiter, cancel=self.cancel)

    def run_turn(self, turn: Turn, within: float, deadline: float) -> Turn:
        """Send the turn's words; with a room, watch until its stopped_speaking (or `within` s)."""
        started = time.monotonic()
        try:
            sent = self.send("conversation.respond", {"text": turn.user})
        except SendRefused as exc:
            turn.errors.append(exc.message)
            return turn
        if self.room is not None:
            self._watch(turn, min(started + within, deadline), sent)
        turn.seconds = round(time.monotonic() - started, 3)
        return turn

    def _watch(self, turn: Turn, stop: float, sent: str) -> None:
        pending: dict[str, str] = {}  # tool_call_id -> name, called but not answered
        while True:
            left = stop - time.monotonic()
            if left <= 0 or self.cancel.is_set():
                break
            events, status = self.room.poll(min(left, ROOM_WAIT))
            for event in events:
                self.events.append(event)
                if self._take(turn, event, pending):
                    return
            if status != "active":
                turn.errors.append(f"the conversation ended (status {status}) before the agent finished the turn")
                return
        if self.cancel.is_set():
            turn.errors.append("interrupted")
            return
        why = " (the send answered 504: it may not have been delivered)" if sent == "maybe" else ""
        waiting = f"; tool calls never answered: {sorted(pending.values())}" if pending else ""
        turn.errors.append(f"no end of turn (conversation.replica.stopped_speaking) within the turn's time{why}{waiting}")

    def _take(self, turn: Turn, event: dict, pending: dict) -> bool:
        """Record one room event in `turn`; True when it ends the turn."""
        kind = event.get("event_type")
        props = event.get("properties") or {}
        idx = event.get("turn_idx")
        if turn.turn_idx is None:
            if kind == "conversation.utterance" and props.get("role") == "user":
                turn.turn_idx = idx
            else:
                self.before_first_turn.append(event)
            return False
        if idx is not None and idx != turn.turn_idx:
            return False  # a late event of another turn
        if kind == "conversation.utterance" and props.get("role") in REPLICA_ROLES:
            turn.reply = f"{turn.reply} {props.get('speech') or ''}".strip()
        elif kind == "conversation.tool_call":
            call = {"name": props.get("name"), "arguments": _arguments(props.get("arguments")),
                    "tool_call_id": props.get("tool_call_id")}
            turn.tool_calls.append(call)
            self._answer(turn, call, pending)
        elif kind == "conversation.tool_result":  # only the sandbox's api-delivered tools are echoed
            turn.tool_results.append({"tool_call_id": props.get("tool_call_id"), "name": props.get("name"),
                                      "output": props.get("output"), "status": props.get("status"),
                                      "source": props.get("source") or "api"})
            pending.pop(props.get("tool_call_id"), None)
        elif kind == "conversation.objective.completed":
            turn.objectives.append({"name": props.get("objective_name"),
                                    "output_variables": props.get("output_variables") or {}})
        elif kind == "conversation.guardrail.triggered":
            turn.guardrails.append({"name": props.get("guardrail_name"), "utterance": props.get("utterance")})
        elif kind == "conversation.error":
            turn.errors.append(f"the agent's reply failed: {props.get('message') or event.get('message') or props}")
        elif kind == "conversation.replica.stopped_speaking":
            return True
        return False

    def _answer(self, turn: Turn, call: dict, pending: dict) -> None:
        if not call["name"] or (call["name"] not in self.backends.tools and not self._plugin_answers()):
            pending[call["tool_call_id"]] = call["name"]  # an api-delivered tool: the sandbox calls it
            return
        try:
            result = self.backends.call(call["name"], call["arguments"], call["tool_call_id"])
        except ToolBackendFailed as exc:
            turn.errors.append(exc.render())
            result = {"name": call["name"], "tool_call_id": call["tool_call_id"], "source": "app",
                      "output": exc.message, "status": "error"}
        turn.tool_results.append(result)
        try:
            self.send("conversation.tool_result", {"tool_call_id": call["tool_call_id"], "output": result["output"],
                                                   "status": result["status"]})
        except SendRefused as exc:
            turn.errors.append(exc.message)

    def _plugin_answers(self) -> bool:
        return bool(self.ctx.hook.harness_tool_call.get_hookimpls())


def _words(text: str) -> str:
    return re.sub(r"\W+", " ", str(text or "")).strip().lower()


def align_transcript(turns: list[Turn], transcript: list[dict]) -> list[str]:
    """Fill each turn's reply from a final transcript; returns notes on turns it could not place.

    A turn starts at the next user entry saying its words (compared without case and punctuation);
    its reply is every assistant entry up to the next user entry. Used against the real API, where
    replies are seen only inside the room.
    """
    entries = [e for e in transcript if isinstance(e, dict) and e.get("role") in ("user", *REPLICA_ROLES)]
    notes, pos = [], 0
    for turn in turns:
        want = _words(turn.user)
        at = next((i for i in range(pos, len(entries))
                   if entries[i].get("role") == "user" and want and want in _words(entries[i].get("content"))), None)
        if at is None:
            notes.append(f"{turn.label}: its words are not in the final transcript")
            continue
        reply, pos = [], at + 1
        while pos < len(entries) and entries[pos].get("role") != "user":
            reply.append(str(entries[pos].get("content") or ""))
            pos += 1
        turn.reply = " ".join(r for r in reply if r).strip()
    return notes
