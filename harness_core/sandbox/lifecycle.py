"""Conversation lifecycle: timers (replica join, time limits) and ordered callback delivery.

One scheduler thread fires due actions; one delivery thread POSTs callbacks in the order they
were queued, so per conversation they arrive in the documented order (CONTRACT §6.4):
replica_joined, then on end shutdown, transcription_ready, perception_analysis, recording_ready.
"""
from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
import zlib

import requests

from ..store import utc_now

JOIN_DELAY = 2.0            # seconds after create until the replica joins (simulated, scaled)
DEFAULT_MAX_CALL = 3600     # properties.max_call_duration default
DEFAULT_PERCEPTION = "raven-1"  # layers.perception.perception_model default (CONTRACT §4.4)


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
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _run(self, lane: queue.Queue):
        with requests.Session() as session:
            session.trust_env = False  # Tavus posts callbacks directly: no proxy from our environment
            while True:
                item = lane.get()
                if item is None:
                    return
                url, event = item
                # document and replica-training callbacks have no envelope: their status stands in for the type
                record = {"url": url, "event_type": event.get("event_type") or event.get("status"),
                          "conversation_id": event.get("conversation_id"), "at": utc_now()}
                try:
                    resp = session.post(url, json=event, timeout=self.timeout)
                    record["status"] = resp.status_code
                except requests.RequestException as exc:
                    record["error"] = type(exc).__name__
                with self._cond:
                    self.deliveries.append(record)
                    self._pending -= 1
                    self._cond.notify_all()

    def stop(self, timeout: float = 2.0):
        for lane in self._queues:
            lane.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def envelope(conversation: dict, event_type: str, properties: dict) -> dict:
    """A callback in the documented envelope (CONTRACT §6)."""
    return {"properties": properties, "conversation_id": conversation["conversation_id"],
            "webhook_url": conversation.get("callback_url") or "", "event_type": event_type,
            "message_type": event_type.split(".", 1)[0], "timestamp": utc_now()}


def build_transcript(persona: dict | None, conversation: dict, script: dict | None) -> list[dict]:
    """A plausible transcript: the system prompt, the greeting, and turns about the context.

    A script's `transcript` (list of {role, content}) replaces the generated turns.
    """
    persona = persona or {}
    system = " ".join(p for p in (persona.get("system_prompt"), persona.get("context"),
                                  conversation.get("conversational_context")) if p)
    greeting = conversation.get("custom_greeting") or persona.get("greeting") or \
        f"Hi, I'm {persona.get('persona_name') or 'your assistant'}. How can I help today?"
    if script and isinstance(script.get("transcript"), list):
        turns = [(t.get("role", "user"), str(t.get("content", ""))) for t in script["transcript"] if isinstance(t, dict)]
    else:
        topic = (conversation.get("conversational_context") or "today's topic").strip().splitlines()[0][:160]
        turns = [("assistant", greeting), ("user", "Hi, thanks. Let's get started."),
                 ("assistant", f"Great. We are here for: {topic}"), ("user", "Sounds good, that's all for now."),
                 ("assistant", "Thank you, goodbye.")]
    started = time.time()
    out = [{"role": "system", "content": system or "You are in a live video conference call with a user."}]
    offset = 0.0
    for role, content in turns:
        duration = round(0.4 + len(content) / 18, 2)
        out.append({"role": role, "content": content, "timestamp": round(started + offset, 2),
                    "seconds_from_start": round(offset, 2), "duration": duration})
        offset += duration + 0.6
    return out


def perception_analysis(persona: dict | None, script: dict | None) -> str | None:
    """The end-of-call visual summary, unless the persona's perception_model is "off" (raven-1 by default)."""
    perception = ((persona or {}).get("layers") or {}).get("perception") or {}
    if perception.get("perception_model", DEFAULT_PERCEPTION) == "off":
        return None
    if script and script.get("perception_analysis"):
        return str(script["perception_analysis"])
    queries = perception.get("perception_analysis_queries") or []
    text = "Here's a summary of the visual observations taken during the video call: the participant was " \
           "attentive, in a well-lit room, and looked at the camera most of the time."
    if queries:
        text += " Answers to the analysis queries: " + "; ".join(f"{q} - yes" for q in queries) + "."
    return text


def recording_event(conversation: dict) -> dict | None:
    """application.recording_ready properties when recording is enabled and storage configured."""
    props = conversation.get("properties") or {}
    if not props.get("enable_recording"):
        return None
    storage = props.get("recording_storage")
    cid = conversation["conversation_id"]
    key = f"recordings/{cid}/{cid}.mp4"
    if isinstance(storage, dict) and storage.get("bucket_name"):
        provider = storage.get("provider", "s3")
        scheme = {"s3": "s3", "gcs": "gs", "azure_blob": "https"}.get(provider, provider)
        return {"bucket_name": storage["bucket_name"], "s3_key": key, "duration": 42,
                "storage_provider": provider, "storage_uri": f"{scheme}://{storage['bucket_name']}/{key}"}
    if props.get("recording_s3_bucket_name"):
        return {"bucket_name": props["recording_s3_bucket_name"], "s3_key": key, "duration": 42}
    return None
