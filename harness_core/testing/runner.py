"""`invoke run`: one scenario = upsert persona, create conversation, watch callbacks, check, clean up.

Where the callbacks come from: against a sandbox (embedded when neither TAVUS_API_KEY nor
TAVUS_API_URL is set, or the one TAVUS_API_URL points at) an in-process receiver on a free
loopback port; against the real API the public WEBHOOK_URL, whose receiver (`invoke webhook
--tunnel`) stores events in logs/callbacks.sqlite3, which the run reads (one indexed query per poll).

Cleanup is guaranteed: the conversation is ended when the run passes, fails, times out or is
interrupted, unless keep=True.
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from ..resources import lockfile
from ..context import RunContext, sandbox_context
from ..resources.conversation import SCENARIO_PERSONA, build_conversation, create_conversation, end_conversation
from ..env import api_configured, is_loopback, resolve_target
from ..errors import ApiError, ConfigError, HarnessError, Interrupted
from ..callbacks.events import iter_events
from .expectations import Observed, Verdict, all_kinds, evaluate
from ..resources.lookup import persona_id_for, personas_named
from ..resources.persona import apply_persona
from .scenario import Scenario, load_scenario
from ..signals import stop_on_signals

POLL = 0.05  # seconds between looks at the received callbacks
_UPSERT = threading.Lock()  # concurrent scenarios sharing a persona must not each create it


@dataclass
class RunResult:
    scenario: Scenario
    run_dir: str
    conversation_id: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    cleaned_up: bool = False
    kept: bool = False  # --keep: left running on purpose

    @property
    def passed(self) -> bool:
        return self.error is None and all(v.passed for v in self.verdicts)


class Cancelled(Exception):
    """The run was cancelled (Ctrl-C, SIGTERM): stop waiting, clean up."""


class LogEvents:
    """Events of one conversation from logs/callbacks.sqlite3 (a receiver in another process wrote them)."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def current(self, cid: str) -> list[dict]:
        return [r["event"] for r in iter_events(self.ctx, conversation_id=cid)]


class ReceiverEvents:
    """Events of one conversation from an in-process Receiver."""

    def __init__(self, receiver):
        self.receiver = receiver

    def current(self, cid: str) -> list[dict]:
        return [e for e in list(self.receiver.events) if e.get("conversation_id") == cid]


@dataclass
class RunTarget:
    """Where one run's scenarios go: the context to use, the callback URL, the event source, a label,
    and the clock of the API (a time-scaled sandbox runs simulated seconds faster)."""

    ctx: RunContext
    callback_url: str
    source: object
    label: str
    time_scale: float = 1.0


EMBEDDED_TIME_SCALE = 0.02
EMBEDDED_MIN_CONCURRENT = 8


@contextlib.contextmanager
def run_environment(ctx: RunContext, max_concurrent: int = 1):
    """Yield the RunTarget this run talks to.

    An embedded sandbox allows at least `max_concurrent` active conversations, so the run's own
    parallelism never meets the account limit it emulates.
    """
    from ..sandbox import Sandbox, SandboxSettings
    from ..callbacks.publicurl import receiver_answers
    from ..callbacks.receiver import Receiver

    with contextlib.ExitStack() as stack:
        time_scale = 1.0
        if not api_configured(ctx.env):  # neither key nor URL: an embedded sandbox
            settings = SandboxSettings(time_scale=EMBEDDED_TIME_SCALE,
                                       max_concurrent=max(EMBEDDED_MIN_CONCURRENT, max_concurrent),
                                       allow_loopback_tools=True)  # the local receiver forwards tool calls
            sandbox = stack.enter_context(Sandbox(settings))
            ctx = sandbox_context(ctx, sandbox.url)
            label = f"embedded local sandbox at {sandbox.url} (nothing reaches Tavus)"
            time_scale = settings.time_scale
        else:
            label = resolve_target(ctx.env).label
        target = resolve_target(ctx.env)
        if target.is_sandbox:
            if time_scale == 1.0:
                time_scale = sandbox_time_scale(target)
            receiver = stack.enter_context(Receiver(ctx, path="/tavus/callback"))
            yield RunTarget(ctx, receiver.callback_url, ReceiverEvents(receiver), label, time_scale)
            return
        hook = ctx.env.get("WEBHOOK_URL")
        if not hook or is_loopback(hook):
            raise ConfigError("WEBHOOK_URL: the real Tavus API needs a public callback URL to report to",
                              hint="run `invoke webhook --tunnel` in another terminal first")
        up, detail = receiver_answers(hook)
        if not up:  # otherwise every expected event would just time out, on a billed conversation
            raise ConfigError(f"WEBHOOK_URL: {detail}", hint="run `invoke webhook --tunnel` in another terminal first")
        yield RunTarget(ctx, hook, LogEvents(ctx), label)


def sandbox_time_scale(target) -> float:
    """The time scale a running sandbox reports on /_sandbox/health (1.0 when it says nothing)."""
    url = target.base_url.rsplit("/v2", 1)[0] + "/_sandbox/health"
    try:
        scale = requests.get(url, headers={"x-api-key": target.api_key}, timeout=5).json().get("time_scale")
    except (requests.RequestException, ValueError, AttributeError):
        return 1.0
    return float(scale) if isinstance(scale, (int, float)) and 0 < scale <= 1 else 1.0


def run_scenarios(ctx: RunContext, paths, *, keep: bool = False, max_concurrent: int = 2, on_result=None) -> tuple[list[RunResult], str]:
    """Run every scenario (at most max_concurrent at once); returns the results and the target label."""
    kinds = all_kinds(ctx)
    scenarios = [load_scenario(p, kinds) for p in paths]
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    cancel = threading.Event()
    with run_environment(ctx, max_concurrent) as where:
        rctx, label = where.ctx, where.label
        if keep and not lockfile.tracked(rctx):  # the embedded sandbox
            rctx.note("note: --keep has no effect here: the embedded sandbox stops when this run ends")
        pool = ThreadPoolExecutor(max_workers=max(1, min(max_concurrent, len(scenarios))))
        futures, results, personas = [], [], {}
        try:
            with stop_on_signals():  # a cancelled CI job (SIGTERM) still ends the conversations
                futures += [pool.submit(run_one, rctx, sc, where.callback_url, where.source, kinds, run_id, keep,
                                        cancel, where.time_scale, personas)
                            for sc in scenarios]
                for future in futures:
                    results.append(future.result())
                    if on_result:
                        on_result(results[-1])
        except KeyboardInterrupt:
            cancel.set()  # every running scenario stops waiting and ends its conversation
            for future in futures:
                future.cancel()
            pool.shutdown(wait=True)
            raise Interrupted("interrupted: the running scenarios were stopped and their conversations ended",
                              hint="run again, or use --keep to leave conversations running") from None
        pool.shutdown(wait=True)
    return results, label


class RunFlags(dict):
    """A run's own values for the conversation: labelled as the scenario's, not as flags the user typed."""

    key_labels = {"persona_id": SCENARIO_PERSONA, "callback_url": "the run's callback receiver",
                  "conversation_name": "the run (scenario name + run id)"}


def run_one(ctx: RunContext, sc: Scenario, callback_url: str, source, kinds, run_id: str, keep: bool,
            cancel: threading.Event | None = None, time_scale: float = 1.0, personas: dict | None = None) -> RunResult:
    """One scenario, with its artifacts under logs/runs/<run-id>/<scenario>/.

    `end_after_seconds` counts from the replica's join, in simulated time: against a sandbox running
    `time_scale` times real time the conversation is ended end_after_seconds * time_scale real
    seconds after system.replica_joined arrived.
    """
    run_dir = ctx.root / "logs" / "runs" / run_id / sc.slug
    run_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(sc, str(run_dir))
    started = time.monotonic()
    deadline = started + sc.timeout_seconds
    cancel = cancel or threading.Event()
    ender, ended = threading.Event(), threading.Event()  # the end-after timer: stand down / it ended it
    save(run_dir, "scenario.json", {"path": str(sc.path), "name": sc.name, "expect": sc.expect, "events": sc.events,
                                    "overrides": sc.overrides, "sandbox": sc.sandbox}, ctx.secrets)
    try:
        pid = upsert_persona(ctx, sc, personas)
        flags = RunFlags({**sc.overrides, "callback_url": callback_url, "persona_id": pid})
        if "conversation_name" not in sc.overrides:
            flags["conversation_name"] = f"{sc.name} [{run_id}]"
        plan = build_conversation(ctx, flags, sc.conversation_config)
        save(run_dir, "payload.json", plan.payload, ctx.secrets)
        response = create_when_a_slot_is_free(ctx, plan.payload, deadline, cancel)
        save(run_dir, "response.json", response, ctx.secrets)
        cid = result.conversation_id = response["conversation_id"]
        script_sandbox(ctx, sc, cid)
        if sc.end_after_seconds:
            threading.Thread(target=end_after_join, args=(ctx, source, cid, sc.end_after_seconds * time_scale,
                                                          deadline, ender, ended), daemon=True).start()
        result.verdicts += wait_for_events(sc, source, cid, deadline, cancel)
        stalled = any(not v.passed for v in result.verdicts)  # end it now: waiting on would only bill the call
        if not stalled and not keep and any(k != "events" for k in sc.expect) and _needs_end(sc):
            _settle(source, cid, deadline, cancel, settle_quiet(time_scale))
        result.events = source.current(cid)
        observed = Observed(result.events, status_of(ctx, cid))
        result.verdicts += evaluate(sc.expect, observed, kinds)
    except HarnessError as exc:
        result.error = exc.render()
    except (KeyboardInterrupt, Cancelled):
        result.error = "interrupted"
    except Exception as exc:  # noqa: BLE001 - one scenario's surprise must not skip the cleanup of the others
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        ender.set()
        result.kept = bool(result.conversation_id and keep and not ended.is_set())
        if result.conversation_id and keep and ended.is_set():  # say why --keep left nothing up
            result.cleaned_up = True
            ctx.note(f"{sc.path}: --keep: conversation {result.conversation_id} was ended by the scenario's "
                     "end_after_seconds (part of the test); --keep leaves up only what the scenario does not end")
        if result.conversation_id and not keep:
            result.cleaned_up = ended.is_set() or _quiet_end(ctx, result.conversation_id)
            if not result.cleaned_up:  # a leaked conversation keeps billing: that fails the scenario
                result.error = result.error or (f"could not end conversation {result.conversation_id}: it may still "
                                                f"be active; run `invoke end --conversation-id {result.conversation_id}`")
        result.seconds = round(time.monotonic() - started, 3)
        if result.conversation_id:
            result.events = result.events or source.current(result.conversation_id)
        save(run_dir, "events.json", result.events, ctx.secrets)
        save(run_dir, "verdicts.json", [v.__dict__ for v in result.verdicts] + ([{"error": result.error}] if result.error else []),
             ctx.secrets)
    return result


CONCURRENCY_LIMIT = "maximum concurrent conversations"  # Tavus's 400 (CONTRACT §9; its wording varies)
QUEUE_FIRST_WAIT, QUEUE_MAX_WAIT = 0.05, 2.0  # seconds between tries while the account is full


def at_concurrency_limit(exc: ApiError) -> bool:
    """The API refused a create because the account has as many live conversations as it may."""
    return exc.status == 400 and CONCURRENCY_LIMIT in (exc.message or "").lower()


def create_when_a_slot_is_free(ctx: RunContext, payload: dict, deadline: float, cancel: threading.Event,
                               *, sleep=None) -> dict:
    """Create the conversation; while the account is at its concurrency limit, wait and try again.

    The limit's 400 means nothing was created, so trying again never duplicates. Waits double from
    QUEUE_FIRST_WAIT to QUEUE_MAX_WAIT seconds, until the scenario's deadline or a cancel.
    """
    wait = cancel.wait if sleep is None else sleep
    delay, told = QUEUE_FIRST_WAIT, False
    while True:
        try:
            return create_conversation(ctx, payload)
        except ApiError as exc:
            if not at_concurrency_limit(exc) or time.monotonic() + delay > deadline:
                raise
            if not told:
                ctx.note(f"{payload.get('conversation_name') or 'conversation'}: the account is at its limit of "
                         "concurrent conversations; waiting for one to end")
                told = True
        if wait(delay) is True or cancel.is_set():
            raise Cancelled()
        delay = min(delay * 2, QUEUE_MAX_WAIT)


def upsert_persona(ctx: RunContext, sc: Scenario, done: dict | None = None) -> str:
    """The persona's id: created from its config, or updated in place when one of that name exists.

    `done` (config path -> persona id) is the run's memory: scenarios of one run that share a
    persona config upsert it once, not once each (the config does not change during a run).
    """
    if sc.persona_id:
        return sc.persona_id
    if sc.persona_config:
        from ..config import load_file
        key = str(Path(sc.persona_config).resolve())
        with _UPSERT:
            if done is not None and key in done:
                return done[key]
            name = load_file(sc.persona_config).get("persona_name")
            # two or more of that name: the update reports the ambiguity instead of making a third
            exists = bool(name) and bool(personas_named(ctx.client(), name))
            pid = apply_persona(ctx, {}, sc.persona_config, update=exists, upsert=True).persona_id
            if done is not None:
                done[key] = pid
            return pid
    return persona_id_for(ctx.client(), sc.persona_name, f"{sc.path}: scenario.persona_name")


def script_sandbox(ctx: RunContext, sc: Scenario, cid: str) -> None:
    """Against a sandbox, hand it the scenario's scripted transcript/perception output."""
    if not sc.sandbox:
        return
    target = ctx.client().target
    if not target.is_sandbox:
        ctx.note(f"{sc.path}: [sandbox] ignored: the target is the real Tavus API")
        return
    url = target.base_url.rsplit("/v2", 1)[0] + "/_sandbox/script"
    resp = requests.post(url, json={"conversation_id": cid, **sc.sandbox}, headers={"x-api-key": target.api_key}, timeout=10)
    if resp.status_code != 200:
        raise ConfigError(f"{sc.path}: [sandbox]: the sandbox refused the script ({resp.status_code})")


def wait_for_events(sc: Scenario, source, cid: str, deadline: float, cancel: threading.Event) -> list[Verdict]:
    """Each expected event in turn, each within its own timeout; a stall says what and how long."""
    verdicts = []
    for step in sc.events:
        wanted, limit = step["type"], float(step.get("within_seconds", 30))
        t0 = time.monotonic()
        stop = min(t0 + limit, deadline)
        while time.monotonic() < stop:
            if cancel.is_set():
                raise Cancelled()
            if any(e.get("event_type") == wanted for e in source.current(cid)):
                verdicts.append(Verdict(f"event {wanted}", True, round(time.monotonic() - t0, 3),
                                        f"arrived after {time.monotonic() - t0:.2f}s"))
                break
            time.sleep(POLL)
        else:
            waited = time.monotonic() - t0
            seen = [e.get("event_type") for e in source.current(cid)]
            verdicts.append(Verdict(f"event {wanted}", False, None,
                                    f"stalled: waited {waited:.1f}s for {wanted} (limit {limit:g}s); received {seen}"))
            break
    return verdicts


def end_after_join(ctx: RunContext, source, cid: str, seconds: float, deadline: float, stop: threading.Event,
                   ended: threading.Event) -> None:
    """End the conversation `seconds` after its replica joined (system.replica_joined arrived).

    Counted from the join, as a sandbox script's end_after_seconds is, so the call lasts that long
    however slow the join (a timer from the creation raced the join on a time-scaled sandbox).
    Gives up at `deadline` or when `stop` is set: the run's cleanup ends it then. Sets `ended` when
    the API confirmed the conversation is no longer active (the cleanup need not ask again).
    """
    while not any(e.get("event_type") == "system.replica_joined" for e in source.current(cid)):
        if stop.wait(POLL) or time.monotonic() >= deadline:
            return
    if not stop.wait(seconds) and _quiet_end(ctx, cid):
        ended.set()


def _needs_end(sc: Scenario) -> bool:
    return bool(sc.end_after_seconds)


SETTLE_QUIET = 0.3  # seconds without a new callback after the shutdown before the checks run
SETTLE_QUIET_SCALED = 0.1  # against a time-scaled sandbox (see settle_quiet)


def settle_quiet(time_scale: float) -> float:
    """How long the callbacks must be quiet after the end: shorter against a time-scaled sandbox.

    Such a sandbox sends a conversation's end events in one burst, and holds back a "late" one
    for 0.3 s x its time scale (at least 0.03 s), so 0.1 s of quiet is enough there.
    """
    return SETTLE_QUIET if time_scale >= 1 else SETTLE_QUIET_SCALED


def _settle(source, cid: str, deadline: float, cancel: threading.Event, quiet_for: float = SETTLE_QUIET) -> None:
    """After the end, wait (bounded) until no new callback has arrived for `quiet_for` seconds."""
    count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline and not cancel.is_set():
        now = len(source.current(cid))
        if now != count:
            count, last_change = now, time.monotonic()
        elif time.monotonic() - last_change >= quiet_for and any(
                e.get("event_type") == "system.shutdown" for e in source.current(cid)):
            return
        time.sleep(POLL)


def status_of(ctx: RunContext, cid: str) -> str | None:
    from ..api import unwrap_one
    try:
        return unwrap_one(ctx.client().get(f"/conversations/{cid}")).get("status")
    except HarnessError:
        return None


def _quiet_end(ctx: RunContext, cid: str) -> bool:
    """End it (nothing is sent when it already ended); True only when the API then reports it not active.

    An API that cannot be asked gives False: a conversation that may still bill is never called ended.
    """
    try:
        end_conversation(ctx, cid)
    except HarnessError:
        pass
    status = status_of(ctx, cid)
    return status is not None and status != "active"


def save(run_dir, name: str, data, secrets=()) -> None:
    """One artifact of a run, redacted (tokens in URLs included)."""
    from ..redact import redact
    (run_dir / name).write_text(json.dumps(redact(data, secrets), indent=2, default=str) + "\n", encoding="utf-8")
