"""The local Tavus sandbox: an offline emulator of the Tavus API (CONTRACT.md), served by waitress.

    with Sandbox(SandboxSettings(time_scale=0.01)) as sb:
        ...  # TAVUS_API_URL = sb.url

`invoke sandbox` serves one until Ctrl-C (serve_forever). Tests read `sb.store`, `sb.requests`
and `sb.deliveries` to assert what really happened.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from ..errors import ConfigError
from ..serving import BackgroundServer
from .faults import CALLBACK_KINDS, FaultPlan, FaultSpecError, parse_faults
from .app import MAX_BODY, SandboxApp
from .lifecycle import DEFAULT_MAX_CALL, JOIN_DELAY, Deliverer, Scheduler, build_transcript, envelope, \
    perception_analysis, recording_event
from ..store import utc_now
from .state import SandboxState

__all__ = ["Sandbox", "SandboxSettings", "serve_forever"]


PERSONA_GET_SHAPES = ("flat", "wrapped")
PAL_EDITING = ("maker", "draft")


@dataclass
class SandboxSettings:
    """Knobs of the emulator. Durations are simulated seconds multiplied by time_scale."""

    api_key: str | None = None          # None: any non-empty x-api-key; else only this one
    max_concurrent: int = 3             # active non-test conversations before the limit error
    time_scale: float = 1.0             # 0.01 makes a 60 s call last 0.6 s
    persona_get_shape: str = "flat"     # "flat" or "wrapped" ({"data": [persona]}) for GET /v2/personas/{id}
    # How a PATCH meets a PAL edited in the dashboard (CONTRACT §10.5; POST /_sandbox/pals/{id}/dashboard-edit):
    # "maker" (the newer docs: 409 maker_changes, ?force=true) or "draft" (the Builder draft + publish_url)
    pal_editing: str = "maker"
    test_mode_callbacks: bool = False   # test_mode conversations send shutdown + transcript at once (undocumented)
    state_file: str | None = None       # JSON file: loaded at start, saved after every write
    send_pal_joined: bool = False       # also send system.pal_joined after replica_joined
    callback_timeout: float = 5.0
    faults: str | None = None           # e.g. "429:0.2,500:0.1,latency:200ms,reset:0.05" (faults.py)
    callback_faults: str | None = None  # e.g. "late:0.2,dup:0.1,reorder:0.1"
    fault_seed: int = 1                 # the same seed injects the same faults
    retry_after: int = 1                # Retry-After seconds on an injected 429


def _faults(spec: str | None, flag: str, example: str, *kinds) -> dict[str, float]:
    try:
        return parse_faults(spec, *kinds)
    except FaultSpecError as exc:
        raise ConfigError(f"sandbox --{flag}: {exc}", hint=f"write e.g. --{flag} {example}") from None


class Sandbox:
    """The emulator: state, timers, callback delivery and the WSGI app, on 127.0.0.1 by default."""

    def __init__(self, settings: SandboxSettings | None = None):
        self.settings = settings or SandboxSettings()
        for flag, value, allowed in (("persona-get-shape", self.settings.persona_get_shape, PERSONA_GET_SHAPES),
                                     ("pal-editing", self.settings.pal_editing, PAL_EDITING)):
            if value not in allowed:
                raise ConfigError(f"sandbox --{flag} {value!r}: not one of {', '.join(allowed)}",
                                  hint=f"write e.g. --{flag} {allowed[0]}")
        self.state = SandboxState(self.settings.state_file)
        self.requests: list[tuple[str, str]] = []
        self._requests_lock = threading.Lock()
        self.faults = FaultPlan(_faults(self.settings.faults, "faults", '"429:0.2,latency:200ms"'),
                                _faults(self.settings.callback_faults, "callback-faults", '"late:0.2,dup:0.1"',
                                        CALLBACK_KINDS), self.settings.fault_seed)
        if self.faults.api.get("reset"):  # dropped answers are on purpose: keep waitress from warning about each
            logging.getLogger("waitress").setLevel(logging.ERROR)
        self.scheduler = Scheduler()
        self.deliverer = Deliverer(self.settings.callback_timeout, self.faults, 0.3 * max(self.settings.time_scale, 0.1))
        self.app = SandboxApp(self)
        self.server: BackgroundServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> "Sandbox":
        # waitress refuses a body longer than the app takes (413) by its Content-Length, before
        # reading it, and stops reading a chunked one at the limit (its default allows 1 GiB).
        self.server = BackgroundServer(self.app, host=host, port=port, threads=8, max_request_body_size=MAX_BODY + 1)
        self.scheduler.start()
        self.deliverer.start()
        self.server.start()
        with self.state.lock:  # conversations active in a loaded state file keep running
            active = [cid for cid, c in self.state.conversations.items() if c["status"] == "active"]
        for cid in active:
            self.schedule_conversation(cid, rejoin=False)
        return self

    def stop(self) -> None:
        if self.server:
            self.server.stop()
        self.scheduler.stop()
        self.deliverer.wait_idle(2.0)
        self.deliverer.stop()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self.server.port)

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/v2"

    @property
    def store(self) -> SandboxState:
        return self.state

    @property
    def deliveries(self) -> list[dict]:
        return self.deliverer.deliveries

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait (bounded) until no callback delivery is pending."""
        return self.deliverer.wait_idle(timeout)

    def record_request(self, method: str, path: str) -> None:
        with self._requests_lock:
            self.requests.append((method, path))

    def save(self) -> None:
        self.state.save()

    def reset(self) -> None:
        """Start fresh: no timers, the seeded state (saved), no recorded deliveries or requests."""
        self.scheduler.cancel_prefix("")
        self.state.reset()
        self.deliverer.clear()
        with self._requests_lock:
            self.requests.clear()

    # -- scripted content --------------------------------------------------------------------------
    def script(self, conversation_id: str | None = None, persona_id: str | None = None, **script) -> None:
        """Control transcript/perception output (and end_after_seconds) of a conversation or a persona's next ones."""
        target = f"conversation:{conversation_id}" if conversation_id else f"persona:{persona_id}" if persona_id else "default"
        self.set_script(target, script)

    def set_script(self, target: str, script: dict) -> None:
        with self.state.lock:
            self.state.scripts[target] = script
        cid = target.split(":", 1)[1] if target.startswith("conversation:") else None
        if cid and script.get("end_after_seconds") is not None:
            self.scheduler.at(float(script["end_after_seconds"]) * self.settings.time_scale, f"{cid}:scripted-end",
                              lambda: self.finish(cid, "end_conversation_endpoint_hit"))

    def script_for(self, conv: dict) -> dict | None:
        scripts = self.state.scripts
        return scripts.get(f"conversation:{conv['conversation_id']}") or \
            scripts.get(f"persona:{conv.get('persona_id')}") or scripts.get("default")

    # -- conversation lifecycle --------------------------------------------------------------------
    def schedule_conversation(self, cid: str, rejoin: bool = True) -> None:
        """Timers of a new conversation: replica join, then max_call_duration / absent timeout / script end."""
        scale = self.settings.time_scale
        with self.state.lock:
            conv = self.state.conversations[cid]
            props = conv.get("properties") or {}
            script = self.script_for(conv) or {}
        if rejoin:
            self.scheduler.at(JOIN_DELAY * scale, f"{cid}:join", lambda: self._join(cid))
        self.scheduler.at(float(props.get("max_call_duration") or DEFAULT_MAX_CALL) * scale, f"{cid}:max",
                          lambda: self.finish(cid, "max_call_duration reached"))
        # Nobody ever joins a sandbox room, so the absent timeout only applies when set explicitly (our choice).
        if props.get("participant_absent_timeout"):
            self.scheduler.at(float(props["participant_absent_timeout"]) * scale, f"{cid}:absent",
                              lambda: self.finish(cid, "participant_absent_timeout reached"))
        if script.get("end_after_seconds") is not None:
            self.scheduler.at((JOIN_DELAY + float(script["end_after_seconds"])) * scale, f"{cid}:scripted-end",
                              lambda: self.finish(cid, "end_conversation_endpoint_hit"))

    def _join(self, cid: str) -> None:
        with self.state.lock:
            conv = self.state.conversations.get(cid)
            if conv is None or conv["status"] != "active":
                return
            events = [envelope(conv, "system.replica_joined", {"replica_id": conv["replica_id"]})]
            if self.settings.send_pal_joined:
                events.append(envelope(conv, "system.pal_joined", {"replica_id": conv["replica_id"]}))
            self._emit(conv, events)

    def end_conversation(self, conversation_id: str, reason: str = "end_conversation_endpoint_hit") -> None:
        """End a conversation as if Tavus did, with any shutdown reason (for tests)."""
        self.finish(conversation_id, reason)

    def finish(self, cid: str, reason: str) -> None:
        """active → ended once: shutdown, transcript, perception analysis, recording, in that order."""
        with self.state.lock:
            conv = self.state.conversations.get(cid)
            if conv is None or conv["status"] != "active":
                return
            conv["status"] = "ended"
            conv["updated_at"] = utc_now()
            events = self._end_events(conv, reason)
            recording = recording_event(conv)
            if recording:
                events.append(envelope(conv, "application.recording_ready", recording))
            self._emit(conv, events)
        self.scheduler.cancel_prefix(f"{cid}:")
        self.save()

    def test_mode_ended(self, cid: str) -> None:
        """With test_mode_callbacks: a test_mode conversation (created ended, nobody joined) reports its end.

        Whether Tavus sends anything in test mode is undocumented (CONTRACT §5); by default nothing is sent.
        Invented: system.shutdown (end_conversation_endpoint_hit) and the end-of-call application events,
        no replica_joined and no recording.
        """
        with self.state.lock:
            conv = self.state.conversations.get(cid)
            if conv is None or not conv.get("test_mode") or not self.settings.test_mode_callbacks:
                return
            self._emit(conv, self._end_events(conv, "end_conversation_endpoint_hit"))

    def _end_events(self, conv: dict, reason: str) -> list[dict]:
        """system.shutdown, application.transcription_ready and perception analysis (caller holds the lock)."""
        persona = self.state.persona(conv.get("persona_id") or "")
        script = self.script_for(conv)
        rid = conv["replica_id"]
        events = [envelope(conv, "system.shutdown", {"replica_id": rid, "shutdown_reason": reason}),
                  envelope(conv, "application.transcription_ready",
                           {"replica_id": rid, "transcript": build_transcript(persona, conv, script)})]
        analysis = perception_analysis(persona, script)
        if analysis:
            events.append(envelope(conv, "application.perception_analysis", {"analysis": analysis}))
        return events

    def _emit(self, conv: dict, events: list[dict]) -> None:
        """Record events for verbose GET and deliver them to callback_url (caller holds the lock)."""
        conv.setdefault("events", []).extend(events)
        if conv.get("callback_url"):
            for event in events:
                self.deliverer.send(conv["callback_url"], event)


def serve_forever(settings: SandboxSettings, host: str = "127.0.0.1", port: int = 8800, on_ready=None) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop cleanly. `on_ready(url)` is called once listening."""
    import time

    from ..signals import stop_on_signals

    sandbox = Sandbox(settings).start(host, port)
    try:
        with stop_on_signals():
            if on_ready:
                on_ready(sandbox.url)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
