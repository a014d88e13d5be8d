"""Conversation lifecycle: timers (replica join, time limits), ordered callback delivery, and the
`Lifecycle` half of the Sandbox (join, presence, end, the end-of-call events and their delays).

One scheduler thread fires due actions; delivery lanes POST callbacks in the order they were
queued, so per conversation they arrive in the documented order (CONTRACT §6.4): replica_joined
(+ pal_joined), then on end shutdown and transcription_ready at once, recording_ready seconds
later and perception_analysis minutes later (both delays scaled by the time scale).
"""
from __future__ import annotations

import heapq
import http.client
import itertools
import json
import queue
import select
import threading
import time
import zlib
from urllib.parse import urlsplit

from ..store import utc_now
from .records import build_transcript, envelope, perception_analysis, recording_event

USER_AGENT = "tavus-harness-sandbox"  # what the sandbox's callbacks say they come from

JOIN_DELAY = 2.0            # seconds after create until the replica joins (simulated, scaled)
DEFAULT_MAX_CALL = 3600     # properties.max_call_duration default
DEFAULT_ABSENT = 300        # properties.participant_absent_timeout default, from creation (CONTRACT §5)
# After the end (DOCS timestamps, CONTRACT §6.4): the transcript ~1 ms after the shutdown, the
# perception analysis minutes later (the docs' example: 3 min), the recording "seconds to minutes"
# later (our choice within that range: 30 s). Both scaled by the time scale.
PERCEPTION_DELAY = 180.0
RECORDING_DELAY = 30.0


class Scheduler:
    """Runs `action()` at monotonic time `due`; cancellable by key."""

    def __init__(self):
        self._heap: list = []
        self._seq = itertools.count()
        self._cancelled: set = set()
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="sandbox-timers", daemon=True)

    def start(self):
        self._thread.start()

    def at(self, delay: float, key: str, action) -> None:
        with self._cond:
            self._cancelled.discard(key)
            heapq.heappush(self._heap, (time.monotonic() + max(delay, 0.0), next(self._seq), key, action))
            self._cond.notify()

    def cancel_prefix(self, prefix: str) -> None:
        with self._cond:
            self._cancelled.update(k for _, _, k, _ in self._heap if k.startswith(prefix))

    def _run(self):
        while True:
            with self._cond:
                while not self._stop and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(None if not self._heap else max(self._heap[0][0] - time.monotonic(), 0.0))
                if self._stop:
                    return
                _, _, key, action = heapq.heappop(self._heap)
                if key in self._cancelled:
                    self._cancelled.discard(key)
                    continue
            try:
                action()
            except Exception:  # noqa: BLE001 - a timer must never kill the scheduler
                pass

    def stop(self, timeout: float = 2.0):
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)


class CallbackPoster:
    """One delivery lane's HTTP client: POSTs a JSON body, keeping one connection per host alive.

    http.client rather than requests: a callback is one small POST with no redirects, proxies or
    retries (Tavus posts directly and does not retry), and under a run of many scenarios requests'
    per-call work was most of the sandbox's cost per callback. A kept-alive connection the other side
    has closed (it reads as ready, at EOF) is replaced before it is used, never after a send.
    """

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._open: dict[tuple, http.client.HTTPConnection] = {}

    def post(self, url: str, body: bytes) -> int:
        """Send one callback; the answer's status code (OSError/HTTPException when there is none)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        key = (parts.scheme, parts.hostname, parts.port)
        conn = self._open.get(key)
        if conn is not None and (conn.sock is None or select.select([conn.sock], [], [], 0)[0]):
            conn.close()  # closed by the other side while idle (or never connected)
            conn = None
        if conn is None:
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            conn = self._open[key] = kind(parts.hostname, parts.port, timeout=self.timeout)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("POST", target, body, {"Content-Type": "application/json", "User-Agent": USER_AGENT})
            resp = conn.getresponse()
            resp.read()
        except BaseException:
            conn.close()
            del self._open[key]
            raise
        if resp.will_close:
            conn.close()
            del self._open[key]
        return resp.status

    def close(self) -> None:
        for conn in self._open.values():
            conn.close()
        self._open.clear()


class Deliverer:
    """POSTs callbacks fire-and-forget (no retries: CONTRACT A.5), in queue order per conversation.

    `lanes` worker threads each own the conversations whose id hashes to them (and a Session of
    their own), so one conversation's callbacks go out in order while many conversations' go out
    side by side: one lane made 16 concurrent scenarios queue behind each other's callbacks.
    """

    def __init__(self, timeout: float = 5.0, faults=None, delay: float = 0.3, lanes: int = 4):
        self.timeout = timeout
        self.faults = faults
        self.delay = delay  # how late a "late" or held-back callback comes
        self._held = None
        self.deliveries: list[dict] = []
        self._queues: list[queue.Queue] = [queue.Queue() for _ in range(max(1, lanes))]
        self._pending = 0
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._run, args=(q,), name=f"sandbox-callbacks-{i}", daemon=True)
                         for i, q in enumerate(self._queues)]

    def start(self):
        for thread in self._threads:
            thread.start()

    def send(self, url: str, event: dict) -> None:
        """Queue one callback; injected callback faults may delay, duplicate or reorder it.

        A held-back ("reorder") callback goes out right after the next one, whatever that one draws.
        """
        items = [(url, event)] * (2 if self._fault("dup") else 1)
        late = self._fault("late")
        with self._cond:  # take and set `_held` in one step: no held callback is dropped or overwritten
            self._pending += len(items)
            held, self._held = self._held, None
            hold = not late and held is None and self._fault("reorder")
            if hold:
                self._held = items
        if hold:
            threading.Timer(self.delay, self._release_held).start()
        elif late:
            threading.Timer(self.delay, self._put, (items + (held or []),)).start()
        else:
            self._put(items + (held or []))

    def _fault(self, kind: str) -> bool:
        return bool(self.faults and self.faults.callback_fault(kind))

    def _put(self, items: list) -> None:
        for item in items:
            lane = zlib.crc32(str(item[1].get("conversation_id")).encode()) % len(self._queues)
            self._queues[lane].put(item)

    def _release_held(self):
        with self._cond:
            held, self._held = self._held, None
        self._put(held or [])

    def clear(self) -> None:
        """Forget the record of past deliveries (the sandbox's reset)."""
        with self._cond:
            self.deliveries.clear()

    def wait_idle(self, timeout: float) -> bool:
        """Wait (bounded) until every queued callback has been sent (or has failed)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending, timeout)

    def _run(self, lane: queue.Queue):
        poster = CallbackPoster(self.timeout)
        try:
            while True:
                item = lane.get()
                if item is None:
                    return
                url, event = item
                # document and replica-training callbacks have no envelope: their status stands in for the type
                record = {"url": url, "event_type": event.get("event_type") or event.get("status"),
                          "conversation_id": event.get("conversation_id"), "at": utc_now()}
                try:
                    record["status"] = poster.post(url, json.dumps(event).encode())
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    record["error"] = type(exc).__name__
                with self._cond:
                    self.deliveries.append(record)
                    self._pending -= 1
                    self._cond.notify_all()
        finally:
            poster.close()

    def stop(self, timeout: float = 2.0):
        for lane in self._queues:
            lane.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class Lifecycle:
    """The conversation half of the Sandbox (a mixin): timers, the join, the participant's presence,
    the end with its events and their delays, deletion, in-call events and the room's clock.

    Uses the Sandbox's `settings`, `state`, `scheduler`, `deliverer`, `save()` and `script_for()`.
    """

    def _init_lifecycle(self) -> None:
        self.dialogues: dict = {}  # conversation id -> dialogue.Dialogue, made at the first need
        self.room_changed = threading.Condition(self.state.lock)  # in-call events and ends wake room polls
        self._later: dict[str, float] = {}  # key -> due (monotonic): end-of-call work still to come
        self._later_cond = threading.Condition()

    # -- timers -----------------------------------------------------------------------------------
    def schedule_conversation(self, cid: str, rejoin: bool = True) -> None:
        """Timers of a new conversation: replica join, then max_call_duration / absent timeout / script end."""
        scale = self.settings.time_scale
        with self.state.lock:
            conv = self.state.conversations[cid]
            props = conv.get("properties") or {}
            script = self.script_for(conv) or {}
            conv.setdefault("created_epoch", time.time())
            if conv.get("chat"):  # our choice: in chat mode the API client is the user, present from the start
                conv["participant_present"] = True
        if rejoin:
            self.scheduler.at(JOIN_DELAY * scale, f"{cid}:join", lambda: self._join(cid))
        self.scheduler.at(float(props.get("max_call_duration") or DEFAULT_MAX_CALL) * scale, f"{cid}:max",
                          lambda: self.finish(cid, "max_call_duration reached"))
        absent = float(props.get("participant_absent_timeout") or DEFAULT_ABSENT)
        self.scheduler.at(absent * scale, f"{cid}:absent", lambda: self._absent(cid))
        if script.get("end_after_seconds") is not None:
            self.scheduler.at((JOIN_DELAY + float(script["end_after_seconds"])) * scale, f"{cid}:scripted-end",
                              lambda: self.finish(cid, "end_conversation_endpoint_hit"))

    def _absent(self, cid: str) -> None:
        """participant_absent_timeout: end the call unless someone was there (see mark_present)."""
        with self.state.lock:
            conv = self.state.conversations.get(cid)
            if conv is None or conv.get("participant_present"):
                return
        self.finish(cid, "participant_absent_timeout reached")

    def mark_present(self, cid: str) -> bool:
        """A participant is in the call (a chat user, a user turn sent, or a script's participant_joins).

        Returns True the first time. Nobody can join a sandbox room, so these stand in for a join.
        """
        with self.state.lock:
            conv = self.state.conversations.get(cid)
            if conv is None or conv.get("participant_present"):
                return False
            conv["participant_present"] = True
            return True

    def participant_arrived(self, cid: str) -> None:
        """Mark the participant present; once the replica is in, it greets them (see dialogue.Dialogue)."""
        if not self.mark_present(cid):
            return
        with self.state.lock:
            conv = self.state.conversations.get(cid) or {}
            joined = conv.get("status") == "active" and conv.get("joined_at")
        if joined:
            self.dialogue(cid).joined()

    def _join(self, cid: str) -> None:
        with self.state.lock:
            conv = self.state.conversations.get(cid)
            if conv is None or conv["status"] != "active":
                return
            conv["joined_at"] = time.time()
            rid = conv["replica_id"]
            events = [envelope(conv, "system.replica_joined", {"replica_id": rid})]
            if self.settings.send_pal_joined:  # CONTRACT §10.6: sent together, face_id in the PAL-era name
                events.append(envelope(conv, "system.pal_joined", {"replica_id": rid, "face_id": rid}))
            self._emit(conv, events)
            if (self.script_for(conv) or {}).get("participant_joins"):
                conv["participant_present"] = True
            wanted = conv.get("participant_present") or cid in self.dialogues
        if wanted:
            self.dialogue(cid).joined()

    def dialogue(self, cid: str):
        """The conversation's dialogue engine (imported and made at the first need: start-up stays quick)."""
        from .dialogue import Dialogue
        with self.state.lock:
            found = self.dialogues.get(cid)
            if found is None:
                found = self.dialogues[cid] = Dialogue(self, cid)
            return found

    # -- the end ----------------------------------------------------------------------------------
    def end_conversation(self, conversation_id: str, reason: str = "end_conversation_endpoint_hit") -> None:
        """End a conversation as if Tavus did, with any shutdown reason (for tests)."""
        self.finish(conversation_id, reason)

    def finish(self, cid: str, reason: str, deleted: bool = False) -> None:
        """active → ended once: shutdown and transcript now, recording seconds and perception minutes later.

        `deleted`: the conversation is being deleted while active (our choice, CONTRACT §9.4): the
        room shuts down (system.shutdown, daily_room_has_been_deleted) and nothing follows, as the
        transcript, recording and analysis are the data a delete removes.
        """
        with self.state.lock:
            conv = self.state.conversations.get(cid)
            if conv is None or conv["status"] != "active":
                return
            conv["status"] = "ended"
            conv["updated_at"] = utc_now()
            conv["ended_at"] = time.time()
            dialogue = self.dialogues.pop(cid, None)
        self.scheduler.cancel_prefix(f"{cid}:")
        if dialogue is not None:
            dialogue.close()
        with self.state.lock:
            rid = conv["replica_id"]
            if deleted:
                self._emit(conv, [envelope(conv, "system.shutdown", {"replica_id": rid, "shutdown_reason": reason})])
            else:
                self._emit(conv, self._end_events(conv, reason))
            spoke = any(e["role"] == "user" for e in conv.get("dialogue") or [])
            self.room_changed.notify_all()
        if not deleted:
            scale = self.settings.time_scale
            self._emit_later(cid, RECORDING_DELAY * scale, "application.recording_ready",
                             lambda c: recording_event(c))
            self._emit_later(cid, PERCEPTION_DELAY * scale, "application.perception_analysis",
                             lambda c: self._analysis(c))
            if spoke:  # post-call tools do not run when there was no dialogue (CONTRACT §10.4)
                self._post_call(cid)
        self.save()

    def _analysis(self, conv: dict) -> dict | None:
        persona = self.state.persona(conv.get("persona_id") or "")
        text = perception_analysis(persona, self.script_for(conv), conv)
        return {"analysis": text} if text else None

    def test_mode_ended(self, cid: str) -> None:
        """With test_mode_callbacks: a test_mode conversation (created ended, nobody joined) reports its end.

        Whether Tavus sends anything in test mode is undocumented (CONTRACT §5); by default nothing is sent.
        Invented: system.shutdown (end_conversation_endpoint_hit) and the transcript, nothing else.
        """
        with self.state.lock:
            conv = self.state.conversations.get(cid)
            if conv is None or not conv.get("test_mode") or not self.settings.test_mode_callbacks:
                return
            self._emit(conv, self._end_events(conv, "end_conversation_endpoint_hit"))

    def _end_events(self, conv: dict, reason: str) -> list[dict]:
        """system.shutdown and application.transcription_ready (caller holds the lock)."""
        persona = self.state.persona(conv.get("persona_id") or "")
        rid = conv["replica_id"]
        return [envelope(conv, "system.shutdown", {"replica_id": rid, "shutdown_reason": reason}),
                envelope(conv, "application.transcription_ready",
                         {"replica_id": rid, "transcript": build_transcript(persona, conv, self.script_for(conv))})]

    def delete_conversation(self, cid: str) -> None:
        """DELETE: an active conversation is shut down first (see finish, `deleted`); what was still to
        come for an ended one (recording, perception, post-call tools) is dropped with it."""
        self.finish(cid, "daily_room_has_been_deleted", deleted=True)
        self.scheduler.cancel_prefix(f"after:{cid}:")
        self._forget_later(f"after:{cid}:")
        with self.state.lock:
            self.state.conversations.pop(cid, None)
        self.save()

    # -- events -----------------------------------------------------------------------------------
    def _emit(self, conv: dict, events: list[dict]) -> None:
        """Record events for verbose GET and deliver them to callback_url (caller holds the lock)."""
        conv.setdefault("events", []).extend(events)
        if conv.get("callback_url"):
            for event in events:
                self.deliverer.send(conv["callback_url"], event)

    def emit_in_call(self, cid: str, event_type: str, properties: dict, turn_idx: int | None = None,
                     inference_id: str | None = None) -> dict | None:
        """An in-call event (CONTRACT §6.5): numbered by `seq`, kept for the room route and verbose GET,
        never sent to callback_url. None when the conversation is no longer active."""
        with self.state.lock:
            conv = self.state.conversations.get(cid)
            if conv is None or conv["status"] != "active":
                return None
            conv["seq"] = conv.get("seq", 0) + 1
            event = {"message_type": "conversation", "event_type": event_type, "conversation_id": cid,
                     "timestamp": round(time.time(), 3), "seq": conv["seq"], "turn_idx": turn_idx,
                     "inference_id": inference_id, "properties": properties}
            conv.setdefault("events", []).append(event)
            self.room_changed.notify_all()
            return event

    def _emit_later(self, cid: str, delay: float, event_type: str, properties_of) -> None:
        """Emit `event_type` after `delay` real seconds with `properties_of(conversation)` (skipped when None)."""
        key = f"after:{cid}:{event_type}"

        def fire():
            try:
                with self.state.lock:
                    conv = self.state.conversations.get(cid)
                    props = properties_of(conv) if conv is not None else None
                    if props:
                        self._emit(conv, [envelope(conv, event_type, props)])
                if props:
                    self.save()
            finally:
                self._forget_later(key)

        with self._later_cond:
            self._later[key] = time.monotonic() + delay
        self.scheduler.at(delay, key, fire)

    def _forget_later(self, prefix: str) -> None:
        with self._later_cond:
            for key in [k for k in self._later if k.startswith(prefix)]:
                del self._later[key]
            self._later_cond.notify_all()

    def _post_call(self, cid: str) -> None:
        """Run the persona's post-call tools in the background (each reported to callback_url)."""
        key = f"after:{cid}:post_call"
        with self._later_cond:
            self._later[key] = time.monotonic()

        def run():
            try:
                from .toolcalls import run_post_call_tools
                run_post_call_tools(self, cid)
            finally:
                self._forget_later(key)

        threading.Thread(target=run, name=f"sandbox-post-call-{cid}", daemon=True).start()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until no end-of-call work is still to come and no callback delivery is pending."""
        deadline = time.monotonic() + timeout
        with self._later_cond:
            if not self._later_cond.wait_for(lambda: not self._later, timeout):
                return False
        return self.deliverer.wait_idle(max(deadline - time.monotonic(), 0.0))
