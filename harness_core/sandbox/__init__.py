"""The local Tavus sandbox: an offline emulator of the Tavus API (CONTRACT.md), served by waitress.

    with Sandbox(SandboxSettings(time_scale=0.01)) as sb:
        ...  # TAVUS_API_URL = sb.url

`invoke sandbox` serves one until Ctrl-C (serve_forever). Tests read `sb.store`, `sb.requests`
and `sb.deliveries` to assert what really happened.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from ..errors import ConfigError
from ..serving import BackgroundServer
from .faults import CALLBACK_KINDS, FaultPlan, FaultSpecError, parse_faults
from .app import MAX_BODY, SandboxApp
from .lifecycle import Deliverer, Lifecycle, Scheduler
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
    send_pal_joined: bool = True        # also send system.pal_joined with replica_joined (CONTRACT §10.6)
    callback_timeout: float = 5.0
    faults: str | None = None           # e.g. "429:0.2,500:0.1,latency:200ms,reset:0.05" (faults.py)
    callback_faults: str | None = None  # e.g. "late:0.2,dup:0.1,reorder:0.1"
    fault_seed: int = 1                 # the same seed injects the same faults
    retry_after: int = 1                # Retry-After seconds on an injected 429
    allow_loopback_tools: bool = False  # call delivery.api tools on loopback/private http URLs (Tavus refuses them)
    llm_url: str | None = None          # a stand-in model (OpenAI-compatible) for personas without a custom LLM;
    llm_model: str | None = None        #   None: read TAVUS_SANDBOX_LLM_URL / _MODEL / _API_KEY at start
    llm_api_key: str | None = None

    @classmethod
    def model_from(cls, env) -> dict:
        """The stand-in model settings from a harness Environment (the process environment, then
        the project's `.env`), as keyword arguments: `tune sandbox` and `tune run` read them so."""
        return {name: env.get(var) for name, var in LLM_VARS}


LLM_VARS = (("llm_url", "TAVUS_SANDBOX_LLM_URL"), ("llm_model", "TAVUS_SANDBOX_LLM_MODEL"),
            ("llm_api_key", "TAVUS_SANDBOX_LLM_API_KEY"))


def _faults(spec: str | None, flag: str, example: str, *kinds) -> dict[str, float]:
    try:
        return parse_faults(spec, *kinds)
    except FaultSpecError as exc:
        raise ConfigError(f"sandbox --{flag}: {exc}", hint=f"write e.g. --{flag} {example}") from None


class Sandbox(Lifecycle):
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
        self._init_lifecycle()
        for field_name, var in LLM_VARS:
            if getattr(self.settings, field_name) is None:
                setattr(self.settings, field_name, os.environ.get(var) or None)

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> "Sandbox":
        # waitress refuses a body longer than the app takes (413) by its Content-Length, before
        # reading it, and stops reading a chunked one at the limit (its default allows 1 GiB).
        self.server = BackgroundServer(self.app, host=host, port=port, threads=32, max_request_body_size=MAX_BODY + 1)
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
        for dialogue in list(self.dialogues.values()):
            dialogue.close()
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

    def record_request(self, method: str, path: str) -> None:
        with self._requests_lock:
            self.requests.append((method, path))

    def save(self) -> None:
        self.state.save()

    def reset(self) -> None:
        """Start fresh: no timers, the seeded state (saved), no recorded deliveries or requests."""
        self.scheduler.cancel_prefix("")
        self._forget_later("")
        for dialogue in list(self.dialogues.values()):
            dialogue.close()
        self.dialogues.clear()
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
        if cid and script.get("participant_joins"):
            self.participant_arrived(cid)

    def script_for(self, conv: dict) -> dict | None:
        scripts = self.state.scripts
        return scripts.get(f"conversation:{conv['conversation_id']}") or \
            scripts.get(f"persona:{conv.get('persona_id')}") or scripts.get("default")


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
