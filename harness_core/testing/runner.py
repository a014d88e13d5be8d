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
import gc
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
from .dialogue import Driver, RateLimiter, Room, RoomMissing, ToolBackends, Turn, align_transcript
from .expectations import REPLY_KINDS, Observed, Verdict, all_kinds, evaluate
from .models import NO_MODEL, Model, ModelFailed, judge_with_model, next_user_message
from ..resources.lookup import persona_id_for, personas_named
from ..resources.persona import apply_persona
from .scenario import Scenario, load_scenario
from ..signals import stop_on_signals

POLL = 0.05  # seconds between looks at the received callbacks
END_WAIT = 30.0  # at most this long for the end-after timer to finish an end it already sent (its retries are bounded)
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
    turns: list = field(default_factory=list)  # dialogue.Turn records, for scenarios with turns
    replies_from: str | None = None  # "room" (seen live) or "transcript" (aligned afterwards)
    skipped: str | None = None  # why nothing ran (e.g. a simulated user without a model)

    @property
    def passed(self) -> bool:
        return self.error is None and all(v.passed for v in self.verdicts)

    @property
    def dialogue(self) -> list[dict]:
        return [t.as_dict() for t in self.turns]


class Cancelled(Exception):
    """The run was cancelled (Ctrl-C, SIGTERM): stop waiting, clean up."""


class ConversationSlots:
    """At most `limit` of a run's conversations open at once: the account's concurrency limit.

    A scenario takes a slot before it creates its conversation and gives it back as soon as that
    conversation is over (the run ended it, or it ended on its own), so the checks it still runs
    afterwards (waiting out late callbacks, judging, writing artifacts) do not hold up the next call.
    """

    def __init__(self, limit: int):
        self._free = threading.BoundedSemaphore(max(1, limit))

    def take(self, cancel: threading.Event) -> Slot:
        """Wait for a free slot (a cancel raises Cancelled)."""
        while not self._free.acquire(timeout=POLL):
            if cancel.is_set():
                raise Cancelled()
        return Slot(self._free)


class Slot:
    """One taken conversation slot; `release()` gives it back once, however often it is called."""

    def __init__(self, free: threading.BoundedSemaphore | None = None):
        self._free, self._lock = free, threading.Lock()

    def release(self) -> None:
        """Give the slot back (again: nothing)."""
        with self._lock:
            free, self._free = self._free, None
        if free is not None:
            free.release()


class LogEvents:
    """Events of one conversation from logs/callbacks.sqlite3 (a receiver in another process wrote them)."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def current(self, cid: str) -> list[dict]:
        return [r["event"] for r in iter_events(self.ctx, conversation_id=cid)]

    def wait(self, cid: str, seen: int, seconds: float, cancel: threading.Event) -> None:
        """Sleep `seconds` (another process writes the store: there is nothing to wake on); a cancel ends it."""
        cancel.wait(seconds)


class ReceiverEvents:
    """Events of one conversation from an in-process Receiver."""

    def __init__(self, receiver):
        self.receiver = receiver

    def current(self, cid: str) -> list[dict]:
        return self.receiver.events_of(cid)

    def wait(self, cid: str, seen: int, seconds: float, cancel: threading.Event) -> None:
        """Wait up to `seconds`, waking as soon as conversation `cid` has more than `seen` events.

        Keep `seconds` short (POLL): a cancel is noticed when it ends."""
        self.receiver.wait_for_more(cid, seen, seconds)


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


@dataclass
class RunApi:
    """The API a run talks to: the context to use, a label for reports, and its clock (a
    time-scaled sandbox runs simulated seconds faster)."""

    ctx: RunContext
    label: str
    time_scale: float = 1.0


@contextlib.contextmanager
def api_target(ctx: RunContext, max_concurrent: int = 1):
    """Yield the RunApi of this run: the configured API, or an embedded sandbox started for it.

    An embedded sandbox allows at least `max_concurrent` active conversations, so the run's own
    parallelism never meets the account limit it emulates. It runs in a forked process where that
    is safe (sandbox/embedded.py): so it is started before anything in this process starts a thread.
    """
    if api_configured(ctx.env):
        target = resolve_target(ctx.env)
        yield RunApi(ctx, target.label, sandbox_time_scale(target) if target.is_sandbox else 1.0)
        return
    from ..sandbox import SandboxSettings
    from ..sandbox.embedded import embedded_sandbox
    settings = SandboxSettings(time_scale=EMBEDDED_TIME_SCALE,
                               max_concurrent=max(EMBEDDED_MIN_CONCURRENT, max_concurrent),
                               allow_loopback_tools=True,  # the local receiver forwards tool calls
                               **SandboxSettings.model_from(ctx.env))  # .env's stand-in model too
    with embedded_sandbox(settings) as sandbox:
        label = f"embedded local sandbox at {sandbox.url} (nothing reaches Tavus)"
        yield RunApi(sandbox_context(ctx, sandbox.url), label, settings.time_scale)


@contextlib.contextmanager
def run_environment(api: RunApi, tool_routes: dict | None = None):
    """Yield the RunTarget of a run on `api`: where its callbacks go and how they are read.

    Against a sandbox, an in-process receiver on a free loopback port (which also forwards the
    tool calls in `tool_routes`); against the real API the public WEBHOOK_URL, checked first.
    """
    from ..callbacks.publicurl import receiver_answers
    from ..callbacks.receiver import Receiver

    ctx = api.ctx
    if resolve_target(ctx.env).is_sandbox:
        with Receiver(ctx, path="/tavus/callback", tools=tool_routes or {}) as receiver:
            yield RunTarget(ctx, receiver.callback_url, ReceiverEvents(receiver), api.label, api.time_scale)
        return
    hook = ctx.env.get("WEBHOOK_URL")
    if not hook or is_loopback(hook):
        raise ConfigError("WEBHOOK_URL: the real Tavus API needs a public callback URL to report to",
                          hint="run `invoke webhook --tunnel` in another terminal first")
    up, detail = receiver_answers(hook)
    if not up:  # otherwise every expected event would just time out, on a billed conversation
        raise ConfigError(f"WEBHOOK_URL: {detail}", hint="run `invoke webhook --tunnel` in another terminal first")
    yield RunTarget(ctx, hook, LogEvents(ctx), api.label)


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
    known_tools = persona_tools(ctx)
    scenarios = [load_scenario(p, kinds, known_tools) for p in paths]
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    cancel = threading.Event()
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(api_target(ctx, max_concurrent))  # first: before any thread starts
        for sc in scenarios:
            sc.tools = resolve_tools(ctx, sc, stack)
        routes = {name: spec for sc in scenarios for name, spec in sc.tools.items()}
        where = stack.enter_context(run_environment(api, routes))
        return _run_all(where, scenarios, kinds, run_id, cancel, keep, max_concurrent, on_result)


def _run_all(where: RunTarget, scenarios, kinds, run_id, cancel, keep, max_concurrent, on_result):
    """Run the scenarios on `where`, at most `max_concurrent` conversations at once."""
    rctx, label = where.ctx, where.label
    if keep and not lockfile.tracked(rctx):  # the embedded sandbox
        rctx.note("note: --keep has no effect here: the embedded sandbox stops when this run ends")
    # twice as many scenarios as conversations: one per slot finishes its checks while the next one talks
    pool = ThreadPoolExecutor(max_workers=max(1, min(2 * max_concurrent, len(scenarios))))
    slots = ConversationSlots(max_concurrent)
    futures, results, personas = [], [], {}
    gc.freeze()  # what start-up made lives through the run: the collector need not walk it each time
    try:
        with stop_on_signals():  # a cancelled CI job (SIGTERM) still ends the conversations
            futures += [pool.submit(run_one, rctx, sc, where.callback_url, where.source, kinds, run_id, keep,
                                    cancel, where.time_scale, personas, slots)
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
    finally:
        gc.unfreeze()  # in a longer-lived process (a test session) they may become garbage later
    pool.shutdown(wait=True)
    return results, label


def persona_tools(ctx: RunContext):
    """`names(persona_config) -> set | None`: the tool names a persona config gives its LLM, found
    offline (None when that cannot be known: tools attached by id, or a config that does not build)."""
    cache: dict[str, set | None] = {}

    def names(config_path: str) -> set | None:
        key = str(Path(config_path).resolve())
        if key not in cache:
            cache[key] = _persona_tool_names(ctx, config_path)
        return cache[key]
    return names


def _persona_tool_names(ctx: RunContext, config_path: str) -> set | None:
    from ..config import Resolved, gather, load_file
    from ..resources import persona as personas
    from ..resources.payload import assemble
    try:
        if set(load_file(config_path)) & {"tool_ids", "pal_id"}:
            return None
        resolved, _ = gather(flags={}, config_path=config_path, env=ctx.env, env_map=personas.ENV_MAP)
        values = dict(resolved.values)
        layers = personas.build_layers(ctx, values, lambda key: str(config_path))
        if layers:
            values["layers"] = layers
        payload = assemble("persona", Resolved(values, resolved.sources), personas.API_KEYS, ctx)
    except HarnessError:
        return None  # the upsert says what is wrong with the config, in its own words
    tools = ((payload.get("layers") or {}).get("llm") or {}).get("tools") or []
    return {(t.get("function") or {}).get("name") for t in tools if isinstance(t, dict)} - {None}


def resolve_tools(ctx: RunContext, sc: Scenario, stack: contextlib.ExitStack) -> dict:
    """The scenario's [tools] with `{tool_backend}` replaced by the URL of its served backend and
    `{"$env": NAME}` values read (and remembered as secrets)."""
    from ..config import expand_env_refs
    if not sc.tools:
        return {}
    base = serve_tool_backend(sc.tool_backend, stack) if sc.tool_backend else ""
    tools = expand_env_refs(sc.tools, ctx.env.get, str(sc.path), "tools")
    for spec in tools.values():
        if isinstance(spec.get("url"), str):
            spec["url"] = spec["url"].replace("{tool_backend}", base)
    return tools


_BACKENDS: dict[str, str] = {}


def serve_tool_backend(path: str, stack: contextlib.ExitStack) -> str:
    """Serve the WSGI `app` of a Python file on a free loopback port for this run; its base URL."""
    import importlib.util

    from ..serving import BackgroundServer
    key = str(Path(path).resolve())
    if key in _BACKENDS:
        return _BACKENDS[key]
    spec = importlib.util.spec_from_file_location(f"tool_backend_{abs(hash(key))}", key)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file: say what broke, in one line
        raise ConfigError(f"{path}: cannot load the tool backend: {type(exc).__name__}: {exc}") from None
    app = getattr(module, "app", None)
    if not callable(app):
        raise ConfigError(f"{path}: no WSGI `app` in the tool backend", hint="define app(environ, start_response)")
    server = BackgroundServer(app, threads=8).start()
    _BACKENDS[key] = server.base_url

    def stop():
        _BACKENDS.pop(key, None)
        server.stop()
    stack.callback(stop)
    return server.base_url


class RunFlags(dict):
    """A run's own values for the conversation: labelled as the scenario's, not as flags the user typed."""

    key_labels = {"persona_id": SCENARIO_PERSONA, "callback_url": "the run's callback receiver",
                  "conversation_name": "the run (scenario name + run id)"}


def run_one(ctx: RunContext, sc: Scenario, callback_url: str, source, kinds, run_id: str, keep: bool,
            cancel: threading.Event | None = None, time_scale: float = 1.0, personas: dict | None = None,
            slots: ConversationSlots | None = None) -> RunResult:
    """One scenario, with its artifacts under logs/runs/<run-id>/<scenario>/.

    With `slots`, the conversation is created once a slot is free (the scenario's timeout counts
    from then) and the slot is given back as soon as the conversation is over.

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
    seen: dict = {}  # the status the end-after timer's check saw
    timer: threading.Thread | None = None
    save(run_dir, "scenario.json", {"path": str(sc.path), "name": sc.name, "expect": sc.expect, "events": sc.events,
                                    "overrides": sc.overrides, "sandbox": sc.sandbox, "mode": sc.mode, "turns": sc.turns,
                                    "tools": sc.tools, "simulated_user": sc.simulated_user}, ctx.secrets)
    model = Model.from_env(ctx.env)
    if sc.simulated_user and model is None:  # never silently passed: reported as skipped, nothing created
        result.skipped = f"simulated user: {NO_MODEL}"
        result.verdicts.append(Verdict("simulated_user", True, None, NO_MODEL, skipped=True))
        save(run_dir, "verdicts.json", [v.__dict__ for v in result.verdicts], ctx.secrets)
        return result
    slot = Slot()
    try:
        if slots is not None:
            slot = slots.take(cancel)
            started = time.monotonic()  # waiting for a slot is not the scenario's time
            deadline = started + sc.timeout_seconds
        pid = upsert_persona(ctx, sc, personas, callback_url)
        flags = RunFlags({**sc.overrides, "callback_url": callback_url, "persona_id": pid})
        if sc.mode == "chat":
            flags["chat"] = True
        if "conversation_name" not in sc.overrides:
            flags["conversation_name"] = f"{sc.name} [{run_id}]"
        plan = build_conversation(ctx, flags, sc.conversation_config)
        save(run_dir, "payload.json", plan.payload, ctx.secrets)
        response = create_when_a_slot_is_free(ctx, plan.payload, deadline, cancel)
        save(run_dir, "response.json", response, ctx.secrets)
        cid = result.conversation_id = response["conversation_id"]
        script_sandbox(ctx, sc, cid)
        if sc.is_dialogue:
            talk(ctx, sc, cid, result, deadline, cancel, model, time_scale, source)
            if not keep and _quiet_end(ctx, cid):  # the dialogue is over: the end events (and the transcript) follow
                slot.release()
            if sc.events:
                result.verdicts += wait_for_events(sc, source, cid, deadline, cancel)
            if result.replies_from == "transcript":
                result.verdicts += transcript_replies(sc, source, cid, result, deadline, cancel)
            _settle(source, cid, deadline, cancel, settle_quiet(time_scale))
            result.events = source.current(cid)
            judge = make_judge(ctx, model)
            result.verdicts += turn_verdicts(sc, result, kinds, judge)
            rest = {k: v for k, v in sc.expect.items() if k != "events"}
            result.verdicts += evaluate(rest, Observed(result.events, status_of(ctx, cid), result.turns, judge), kinds)
            result.error = result.error or turn_errors(sc, result.turns)
        elif sc.end_after_seconds:
            timer = threading.Thread(target=end_after_join, args=(ctx, source, cid, sc.end_after_seconds * time_scale,
                                                                  deadline, ender, ended, seen), daemon=True)
            timer.start()
        if not sc.is_dialogue:
            def release_if_over():  # over: what is left to check needs no conversation
                if ended.is_set() or has_shutdown(source.current(cid)):
                    slot.release()

            result.verdicts += wait_for_events(sc, source, cid, deadline, cancel)
            release_if_over()
            stalled = any(not v.passed for v in result.verdicts)  # end it now: waiting on would only bill the call
            if not stalled and not keep and any(k != "events" for k in sc.expect) and _needs_end(sc):
                _settle(source, cid, deadline, cancel, settle_quiet(time_scale))
                release_if_over()  # the settle waited for the shutdown
            result.events = source.current(cid)
            observed = Observed(result.events, final_status(ctx, cid, seen))
            result.verdicts += evaluate(sc.expect, observed, kinds)
    except HarnessError as exc:
        result.error = exc.render()
    except (KeyboardInterrupt, Cancelled):
        result.error = "interrupted"
    except Exception as exc:  # noqa: BLE001 - one scenario's surprise must not skip the cleanup of the others
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        ender.set()
        if timer is not None:  # an end it already sent must be known below (its shutdown may arrive first)
            timer.join(END_WAIT)
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
        slot.release()
        result.seconds = round(time.monotonic() - started, 3)
        if result.conversation_id:
            result.events = result.events or source.current(result.conversation_id)
        save(run_dir, "events.json", result.events, ctx.secrets)
        if sc.is_dialogue:
            save(run_dir, "dialogue.json", {"replies_from": result.replies_from, "turns": result.dialogue}, ctx.secrets)
        save(run_dir, "verdicts.json", [v.__dict__ for v in result.verdicts] + ([{"error": result.error}] if result.error else []),
             ctx.secrets)
    return result


TURN_GAP = 6.0  # seconds between turns when the room cannot be watched (Tavus's CLI waits 2 s after the last event)
SEND_LIMITER = RateLimiter()  # the documented send-app-message limit, shared by a process's scenarios
TRANSCRIPT_MODE = ("replies read from the final transcript, aligned by turn: the real API shows an HTTP client "
                   "no replies during the call")


def talk(ctx: RunContext, sc: Scenario, cid: str, result: RunResult, deadline: float, cancel: threading.Event,
         model: Model | None, time_scale: float, source=None) -> None:
    """Send the scenario's turns (then the simulated user's), recording each in result.turns.

    Against a sandbox each turn is watched in its room until it ends; elsewhere the turns are
    sent `turn_timeout_seconds` apart and the replies come from the transcript afterwards.
    A turn with an error (refused send, failing tool backend, failed reply) stops the dialogue.
    """
    room = Room(ctx, cid) if ctx.client().target.is_sandbox else None
    if room is not None:
        try:
            room.poll(0)
        except RoomMissing as exc:
            ctx.note(f"{sc.path}: {exc.message}; {TRANSCRIPT_MODE}")
            room = None
    result.replies_from = "room" if room is not None else "transcript"
    driver = Driver(ctx, cid, ToolBackends(ctx, sc.tools, cid), SEND_LIMITER, cancel, room)
    scripted = iter(sc.turns)
    simulated = sc.simulated_user.get("max_turns", 0)
    while not cancel.is_set() and time.monotonic() < deadline:
        spec = next(scripted, None)
        if spec is None:
            if simulated <= 0:
                break
            simulated -= 1
            try:
                words = next_user_message(model, sc.simulated_user["goal"], sc.simulated_user.get("persona", ""),
                                          result.turns)
            except ModelFailed as exc:
                result.error = f"simulated user, before turn {len(result.turns) + 1}: {exc.message}"
                return
            if words is None:
                break
            spec = {"user": words, "simulated": True}
        turn = Turn(len(result.turns) + 1, spec["user"], simulated=bool(spec.get("simulated")))
        within = float(spec.get("within_seconds") or sc.turn_timeout_seconds)
        result.turns.append(turn)
        seen = len(source.current(cid)) if source is not None and room is None else 0
        driver.run_turn(turn, within, deadline)
        if room is None:  # nothing to watch: give the agent time to answer before the next turn
            cancel.wait(max(0.0, min(TURN_GAP * time_scale, within, deadline - time.monotonic())))
            if source is not None:
                absorb(turn, source.current(cid)[seen:])
        if turn.errors:
            return


def absorb(turn: Turn, events: list[dict]) -> None:
    """What reached the receiver during a turn (real API): forwarded tool calls, objective and guardrail callbacks."""
    for event in events:
        props, kind = event.get("properties") or {}, event.get("event_type")
        if kind == "harness.tool_forwarded":
            turn.tool_calls.append({"name": props.get("name"), "arguments": props.get("arguments"),
                                    "tool_call_id": props.get("tool_call_id")})
            turn.tool_results.append({"name": props.get("name"), "tool_call_id": props.get("tool_call_id"),
                                      "output": (props.get("response") or {}).get("output"),
                                      "status": props.get("status"), "source": "api"})
        elif kind == "conversation.objective.completed":
            turn.objectives.append({"name": props.get("objective_name") or event.get("objective_name"),
                                    "output_variables": props.get("output_variables") or event.get("output_variables") or {}})
        elif kind == "conversation.guardrail.triggered":
            turn.guardrails.append({"name": props.get("guardrail_name"), "utterance": props.get("utterance")})


def transcript_replies(sc: Scenario, source, cid: str, result: RunResult, deadline: float,
                       cancel: threading.Event) -> list[Verdict]:
    """Against the real API: fill the turns' replies from application.transcription_ready (bounded wait)."""
    while time.monotonic() < deadline and not cancel.is_set():
        events = source.current(cid)
        ready = [e for e in events if e.get("event_type") == "application.transcription_ready"]
        if ready:
            transcript = (ready[-1].get("properties") or {}).get("transcript") or []
            notes = align_transcript(result.turns, transcript)
            return [Verdict("transcript", not notes, len(transcript), "; ".join(notes) or TRANSCRIPT_MODE)]
        source.wait(cid, len(events), POLL, cancel)  # wakes on its next callback; a cancel is seen within POLL
    return [Verdict("transcript", False, None, "no application.transcription_ready arrived: the turns' replies are unknown")]


def make_judge(ctx: RunContext, model: Model | None):
    """judge(rubric, turns) -> Verdict: a harness_judge plugin first, else the configured model; None without either."""
    plugged = bool(ctx.hook.harness_judge.get_hookimpls())
    if not plugged and model is None:
        return None

    def judge(rubric: str, turns) -> Verdict:
        dialogue = [t.as_dict() for t in turns]
        try:
            answer = ctx.hook.harness_judge(rubric=rubric, dialogue=dialogue, context=ctx) if plugged else None
            if answer is None and model is None:
                return Verdict("judge", True, None, NO_MODEL, skipped=True)
            passed, reason = ((bool(answer.get("passed")), str(answer.get("reason") or "")) if answer is not None
                              else judge_with_model(model, rubric, turns))
        except ModelFailed as exc:
            return Verdict("judge", False, None, f"the judge could not judge {rubric!r}: {exc.message}")
        return Verdict("judge", passed, reason, f"{'met' if passed else 'not met'}: {rubric!r}; the judge said: {reason}")
    return judge


def turn_verdicts(sc: Scenario, result: RunResult, kinds: dict, judge) -> list[Verdict]:
    """Each scripted turn's expectations over that turn alone, named `turn N kind`, messages prefixed by the turn."""
    out = []
    for spec, turn in zip(sc.turns, result.turns):
        for v in evaluate(spec["expect"], Observed([], None, [turn], judge), kinds):
            if turn.errors and not v.passed:
                continue  # the turn's error says what went wrong; its unmet checks would only repeat it
            note = " (from the final transcript)" if v.kind in REPLY_KINDS and result.replies_from == "transcript" else ""
            out.append(Verdict(f"turn {turn.index} {v.kind}", v.passed, v.observed, f"{turn.label}: {v.message}{note}",
                               v.skipped))
    for spec in sc.turns[len(result.turns):]:
        out.append(Verdict(f"turn {sc.turns.index(spec) + 1}", False, None,
                           f"turn {sc.turns.index(spec) + 1} ({spec['user'][:60]!r}) was not sent: an earlier turn failed"))
    return out


def turn_errors(sc: Scenario, turns) -> str | None:
    """The first turn error, naming the turn (None when every turn went through)."""
    for turn in turns:
        if turn.errors:
            return f"{turn.label}: {turn.errors[0]}"
    failed = [r["failed"] for t in turns for r in t.tool_results if r.get("failed")]
    expects_error = any("error" in json.dumps(e.get("tool_result_status", "")) for e in
                        [sc.expect, *(s["expect"] for s in sc.turns)])
    if failed and not expects_error:
        turn = next(t for t in turns if any(r.get("failed") for r in t.tool_results))
        return f"{turn.label}: {failed[0]}"
    return None


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


def upsert_persona(ctx: RunContext, sc: Scenario, done: dict | None = None, callback_url: str | None = None) -> str:
    """The persona's id: created from its config, or updated in place when one of that name exists.

    `done` (config path -> persona id) is the run's memory: scenarios of one run that share a
    persona config upsert it once, not once each (the config does not change during a run).
    The scenario's policies post their callbacks to `callback_url` (the run's receiver), tagged.
    """
    if sc.policies:
        apply_policies(ctx, sc, done, callback_url)
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


def apply_policies(ctx: RunContext, sc: Scenario, done: dict | None, callback_url: str | None = None) -> None:
    """Create (or update by name) the objectives and guardrails the scenario's persona attaches, once per run.

    Each objective and guardrail without a callback_url of its own gets the run's receiver URL
    tagged `&objective=NAME` / `&guardrail=NAME`: the receiver is the one endpoint for everything
    Tavus posts, and the only place their completions and triggers show against the real API.
    """
    from ..config import load_file
    from ..resources.policies import apply_policy
    for path in sc.policies:
        key = "policy:" + str(Path(path).resolve())
        with _UPSERT:
            if done is not None and key in done:
                continue
            data = load_file(path)
            items = data.get("data") if isinstance(data, dict) else None
            first = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else data
            kind = "objectives" if isinstance(first, dict) and "objective_name" in first else "guardrails"
            apply_policy(ctx, kind, path, callback_url=callback_url)
            if done is not None:
                done[key] = kind


def script_sandbox(ctx: RunContext, sc: Scenario, cid: str) -> None:
    """Against a sandbox, hand it the scenario's scripted transcript/perception output and its
    dialogue rules (`PUT /_sandbox/conversations/{id}/rules`)."""
    if not sc.sandbox:
        return
    target = ctx.client().target
    if not target.is_sandbox:
        ctx.note(f"{sc.path}: [sandbox] ignored: the target is the real Tavus API")
        return
    base, headers = target.base_url.rsplit("/v2", 1)[0], {"x-api-key": target.api_key}
    script = {k: v for k, v in sc.sandbox.items() if k != "rules"}
    if script:
        resp = ctx.client().session.post(f"{base}/_sandbox/script", json={"conversation_id": cid, **script},
                                         headers=headers, timeout=10)  # the client's session: kept-alive
        if resp.status_code != 200:
            raise ConfigError(f"{sc.path}: [sandbox]: the sandbox refused the script ({resp.status_code})")
    if "rules" in sc.sandbox:
        resp = ctx.client().session.put(f"{base}/_sandbox/conversations/{cid}/rules",
                                        json={"rules": sc.sandbox["rules"]}, headers=headers, timeout=10)
        if resp.status_code == 404 and "conversation" not in resp.text.lower():
            raise ConfigError(f"{sc.path}: sandbox.rules: this sandbox has no rule engine "
                              "(PUT /_sandbox/conversations/ID/rules answered 404)", hint="update tavus-harness")
        if resp.status_code != 200:
            try:
                said = resp.json().get("error") or resp.json().get("message") or resp.text
            except ValueError:
                said = resp.text
            raise ConfigError(f"{sc.path}: sandbox.rules: the sandbox refused them ({resp.status_code}): {str(said)[:200]}")


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
            events = source.current(cid)
            if any(e.get("event_type") == wanted for e in events):
                verdicts.append(Verdict(f"event {wanted}", True, round(time.monotonic() - t0, 3),
                                        f"arrived after {time.monotonic() - t0:.2f}s"))
                break
            source.wait(cid, len(events), max(0.0, min(POLL, stop - time.monotonic())), cancel)
        else:
            waited = time.monotonic() - t0
            seen = [e.get("event_type") for e in source.current(cid)]
            verdicts.append(Verdict(f"event {wanted}", False, None,
                                    f"stalled: waited {waited:.1f}s for {wanted} (limit {limit:g}s); received {seen}"))
            break
    return verdicts


def end_after_join(ctx: RunContext, source, cid: str, seconds: float, deadline: float, stop: threading.Event,
                   ended: threading.Event, seen: dict | None = None) -> None:
    """End the conversation `seconds` after its replica joined (system.replica_joined arrived).

    Counted from the join, as a sandbox script's end_after_seconds is, so the call lasts that long
    however slow the join (a timer from the creation raced the join on a time-scaled sandbox).
    Gives up at `deadline` or when `stop` is set: the run's cleanup ends it then. Sets `ended` when
    the API confirmed the conversation is no longer active (the cleanup need not ask again), and
    the status it reported in `seen` (see _quiet_end).
    """
    while True:
        events = source.current(cid)
        if any(e.get("event_type") == "system.replica_joined" for e in events):
            break
        source.wait(cid, len(events), POLL, stop)
        if stop.is_set() or time.monotonic() >= deadline:
            return
    if not stop.wait(seconds) and _quiet_end(ctx, cid, seen):
        ended.set()


def has_shutdown(events: list[dict]) -> bool:
    """Whether the conversation's system.shutdown (it is over) is among `events`."""
    return any(e.get("event_type") == "system.shutdown" for e in events)


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
        events = source.current(cid)
        if len(events) != count:
            count, last_change = len(events), time.monotonic()
        elif time.monotonic() - last_change >= quiet_for and has_shutdown(events):
            return
        source.wait(cid, len(events), max(0.0, min(POLL, last_change + quiet_for - time.monotonic())) or POLL, cancel)


def status_of(ctx: RunContext, cid: str) -> str | None:
    from ..api import unwrap_one
    try:
        return unwrap_one(ctx.client().get(f"/conversations/{cid}")).get("status")
    except HarnessError:
        return None


def _quiet_end(ctx: RunContext, cid: str, seen: dict | None = None) -> bool:
    """End it (nothing is sent when it already ended); True only when the API then reports it not active.

    An API that cannot be asked gives False: a conversation that may still bill is never called ended.
    The status it then reported goes into `seen["status"]` when given: "ended" is final, so the
    scenario's final_status needs no second look.
    """
    try:
        end_conversation(ctx, cid, look_first=False)  # the status is read just below: no look before
    except HarnessError:  # e.g. an API that refuses to end an ended call: the status below decides
        pass
    status = status_of(ctx, cid)
    if seen is not None:
        seen["status"] = status
    return status is not None and status != "active"


def final_status(ctx: RunContext, cid: str, seen: dict) -> str | None:
    """The conversation's status for the checks: "ended" as the end timer saw it, or asked now."""
    return "ended" if seen.get("status") == "ended" else status_of(ctx, cid)


def save(run_dir, name: str, data, secrets=()) -> None:
    """One artifact of a run, redacted (tokens in URLs included)."""
    from ..redact import redact
    (run_dir / name).write_text(json.dumps(redact(data, secrets), indent=2, default=str) + "\n", encoding="utf-8")
