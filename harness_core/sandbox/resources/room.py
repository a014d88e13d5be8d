"""The call's room: `POST /v2/conversations/{id}/send-app-message` (CONTRACT §10.2) and the sandbox's
stand-in for the Daily room, which an HTTP client cannot join:

- `GET /_sandbox/conversations/{id}/room?after=SEQ&wait=SECONDS`: the in-call events after SEQ, a
  long poll answering as soon as there is one, the call ended, or `wait` (≤ 30 s) passed;
- `PUT /_sandbox/conversations/{id}/rules`: the conversation's rule engine (rules.py).

send-app-message follows the docs: the body is the in-call envelope, at most 65,536 bytes (413),
120 requests per 60 s (429; counted per conversation: our reading), only active conversations
(400), an unknown one 404 (the docs' "room is no longer available"). PAL-directed events go to the
dialogue engine in order; any other event_type is relayed into the room (an in-call event).
"""
from __future__ import annotations

import collections
import copy
import threading
import time

from ..http import Family, Reply, error

MAX_MESSAGE = 65_536
RATE_LIMIT, RATE_WINDOW = 120, 60.0  # requests per real seconds
MAX_WAIT = 30.0
PAL_EVENTS = ("respond", "echo", "interrupt", "append_llm_context", "overwrite_llm_context", "sensitivity",
              "set_emotion", "tool_result")
SENSITIVITY = ("participant_pause_sensitivity", "participant_interrupt_sensitivity")


class Room(Family):
    """send-app-message, the room's events and its rules."""

    def __init__(self, sandbox):
        super().__init__(sandbox)
        self._sent: dict[str, collections.deque] = {}
        self._rate_lock = threading.Lock()

    def routes(self):
        yield "POST", r"/v2/conversations/(?P<cid>[^/]+)/send-app-message", self.send_app_message
        yield "GET", r"/_sandbox/conversations/(?P<cid>[^/]+)/room", self.room
        yield "PUT", r"/_sandbox/conversations/(?P<cid>[^/]+)/rules", self.put_rules

    # -- send-app-message ---------------------------------------------------------------------------
    def send_app_message(self, req, cid):
        if len(req.raw) > MAX_MESSAGE:
            raise error(413, f"Request body exceeds {MAX_MESSAGE} bytes")
        with self.sb.state.lock:
            conv = self.sb.state.conversations.get(cid)
            if conv is None:
                raise error(404, "The conversation's room is no longer available.")
            if conv["status"] != "active":
                raise error(400, "App messages can only be sent to active conversations.")
        self.count_request(cid)
        message = req.json_object()
        check_message(message, cid)
        kind = message["event_type"].split(".", 1)[1] if message["event_type"].startswith("conversation.") else None
        if kind in PAL_EVENTS:
            self.sb.dialogue(cid).deliver(copy.deepcopy(message))
        else:  # relayed into the room for the participants' app-message listeners
            self.sb.emit_in_call(cid, message["event_type"], copy.deepcopy(message.get("properties") or {}))
        return Reply(200, {"conversation_id": cid, "status": "accepted"})  # body undocumented: our choice

    def count_request(self, cid: str) -> None:
        """120 requests per 60 s per conversation; 429 with Retry-After beyond."""
        now = time.monotonic()
        with self._rate_lock:
            sent = self._sent.setdefault(cid, collections.deque())
            while sent and now - sent[0] >= RATE_WINDOW:
                sent.popleft()
            if len(sent) >= RATE_LIMIT:
                wait = max(1, int(RATE_WINDOW - (now - sent[0])) + 1)
                raise Reply(429, {"error": "Too many requests"}, headers=[("Retry-After", str(wait))])
            sent.append(now)

    # -- the room -----------------------------------------------------------------------------------
    def room(self, req, cid):
        try:
            after = int(req.arg("after") or 0)
            wait = float(req.arg("wait") or 0)
        except ValueError:
            raise error(400, "after must be an integer (a seq) and wait a number of seconds") from None
        if not 0 <= wait <= MAX_WAIT:
            raise error(400, f"wait must be between 0 and {MAX_WAIT:g} seconds")
        deadline = time.monotonic() + wait
        with self.sb.room_changed:
            while True:
                conv = self.sb.state.conversations.get(cid)
                if conv is None:
                    raise error(400, "Invalid conversation_id")
                events = [e for e in conv.get("events") or [] if e.get("seq", 0) > after]
                left = deadline - time.monotonic()
                if events or conv["status"] != "active" or left <= 0:
                    return Reply(200, {"events": copy.deepcopy(events), "last_seq": conv.get("seq", 0),
                                       "status": conv["status"]})
                self.sb.room_changed.wait(left)

    def put_rules(self, req, cid):
        from ..rules import RuleError, parse_rules
        from ..toolcalls import persona_tools
        from ..triggers import guardrails_of, objectives_of
        body = req.json_object()
        unknown = sorted(set(body) - {"rules"})
        if unknown or "rules" not in body:
            raise error(400, 'the body is {"rules": [RULE, ...]}' + (f"; unknown key '{unknown[0]}'" if unknown else ""))
        with self.sb.state.lock:
            conv = self.sb.state.conversations.get(cid)
            if conv is None:
                raise error(400, "Invalid conversation_id")
            if conv["status"] != "active":
                raise error(400, "rules apply to an active conversation; this one has ended")
            persona = self.sb.state.persona(conv.get("persona_id") or "")
            tools = {t["name"] for t in persona_tools(self.sb.state, persona)}
            objectives, guardrails = set(objectives_of(self.sb.state, persona)), set(guardrails_of(self.sb.state, persona))
        try:
            rules = parse_rules(body["rules"], tools, objectives, guardrails)
        except RuleError as exc:
            raise error(400, str(exc)) from None
        self.sb.dialogue(cid).rules = rules
        return Reply(200, {"rules": body["rules"]})


def check_message(message: dict, cid: str) -> None:
    """400 naming what is wrong with an app message's envelope or its PAL-directed properties."""
    if message.get("message_type") != "conversation":
        raise error(400, 'message_type: must be "conversation"')
    event_type = message.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise error(400, "event_type: required, e.g. conversation.respond")
    if "conversation_id" in message and message["conversation_id"] != cid:
        raise error(400, "conversation_id: does not match the conversation in the URL")
    props = message.get("properties", {})
    if not isinstance(props, dict):
        raise error(400, "properties: must be an object")
    kind = event_type.split(".", 1)[1] if event_type.startswith("conversation.") else None
    if kind == "respond" and not (isinstance(props.get("text"), str) and props["text"].strip()):
        raise error(400, "properties.text: required for conversation.respond (the user's words)")
    if kind == "echo":
        modality = props.get("modality", "text")
        if modality not in ("text", "audio"):
            raise error(400, "properties.modality: must be text or audio")
        if not isinstance(props.get(modality), str):
            raise error(400, f"properties.{modality}: required for a {modality} echo")
    if kind in ("append_llm_context", "overwrite_llm_context") and not isinstance(props.get("context"), str):
        raise error(400, f"properties.context: required for {event_type} (a string)")
    if kind == "sensitivity" and sum(k in props for k in SENSITIVITY) != 1:
        raise error(400, f"properties: exactly one of {' / '.join(SENSITIVITY)}")
    if kind == "tool_result":
        if not isinstance(props.get("tool_call_id"), str) or not props["tool_call_id"]:
            raise error(400, "properties.tool_call_id: required for conversation.tool_result")
        if not isinstance(props.get("output"), (str, dict)):
            raise error(400, "properties.output: required, a string or an object")
        if props.get("status", "success") not in ("success", "error"):
            raise error(400, "properties.status: must be success or error")
