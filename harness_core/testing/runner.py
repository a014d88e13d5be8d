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

import requests

from ..resources import lockfile
from ..context import RunContext, sandbox_context
from ..resources.conversation import build_conversation, create_conversation, end_conversation
from ..env import api_configured, is_loopback, resolve_target
from ..errors import ConfigError, HarnessError, Interrupted
from ..callbacks.events import iter_events
from .expectations import Observed, Verdict, all_kinds, evaluate
from ..resources.lookup import persona_id_for, personas_named
from ..resources.persona import apply_persona
from .scenario import Scenario, load_scenario
from ..signals import stop_on_signals

POLL = 0.05
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


@contextlib.contextmanager
def run_environment(ctx: RunContext):
    """Yield (context to use, callback URL, event source, label) for the target this run talks to."""
    from ..sandbox import Sandbox, SandboxSettings
    from ..callbacks.publicurl import receiver_answers
    from ..callbacks.receiver import Receiver

    with contextlib.ExitStack() as stack:
        if not api_configured(ctx.env):  # neither key nor URL: an embedded sandbox
            sandbox = stack.enter_context(Sandbox(SandboxSettings(time_scale=0.02, max_concurrent=8)))
            ctx = sandbox_context(ctx, sandbox.url)
            label = f"embedded local sandbox at {sandbox.url} (nothing reaches Tavus)"
        else:
            label = resolve_target(ctx.env).label
        target = resolve_target(ctx.env)
        if target.is_sandbox:
            receiver = stack.enter_context(Receiver(ctx, path="/tavus/callback"))
            yield ctx, receiver.callback_url, ReceiverEvents(receiver), label
            return
        hook = ctx.env.get("WEBHOOK_URL")
        if not hook or is_loopback(hook):
            raise ConfigError("WEBHOOK_URL: the real Tavus API needs a public callback URL to report to",
                              hint="run `invoke webhook --tunnel` in another terminal first")
        up, detail = receiver_answers(hook)
        if not up:  # otherwise every expected event would just time out, on a billed conversation
            raise ConfigError(f"WEBHOOK_URL: {detail}", hint="run `invoke webhook --tunnel` in another terminal first")
        yield ctx, hook, LogEvents(ctx), label


def run_scenarios(ctx: RunContext, paths, *, keep: bool = False, max_concurrent: int = 2, on_result=None) -> tuple[list[RunResult], str]:
    """Run every scenario (at most max_concurrent at once); returns the results and the target label."""
    kinds = all_kinds(ctx)
    scenarios = [load_scenario(p, kinds) for p in paths]
    run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    cancel = threading.Event()
    with run_environment(ctx) as (rctx, callback_url, source, label):
        if keep and not lockfile.tracked(rctx):  # the embedded sandbox
            rctx.note("note: --keep has no effect here: the embedded sandbox stops when this run ends")
        pool = ThreadPoolExecutor(max_workers=max(1, min(max_concurrent, len(scenarios))))
        futures, results = [], []
        try:
            with stop_on_signals():  # a cancelled CI job (SIGTERM) still ends the conversations
                futures += [pool.submit(run_one, rctx, sc, callback_url, source, kinds, run_id, keep, cancel)
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


def run_one(ctx: RunContext, sc: Scenario, callback_url: str, source, kinds, run_id: str, keep: bool,
            cancel: threading.Event | None = None) -> RunResult:
    """One scenario, with its artifacts under logs/runs/<run-id>/<scenario>/."""
    run_dir = ctx.root / "logs" / "runs" / run_id / sc.slug
    run_dir.mkdir(parents=True, exist_ok=True)
    result = RunResult(sc, str(run_dir))
    started = time.monotonic()
    deadline = started + sc.timeout_seconds
    cancel = cancel or threading.Event()
    ender: threading.Timer | None = None
    save(run_dir, "scenario.json", {"path": str(sc.path), "name": sc.name, "expect": sc.expect, "events": sc.events,
                                    "overrides": sc.overrides, "sandbox": sc.sandbox}, ctx.secrets)
    try:
        pid = upsert_persona(ctx, sc)
        flags = {**sc.overrides, "callback_url": callback_url, "persona_id": pid}
        if "conversation_name" not in sc.overrides:
            flags["conversation_name"] = f"{sc.name} [{run_id}]"
        plan = build_conversation(ctx, flags, sc.conversation_config)
        save(run_dir, "payload.json", plan.payload, ctx.secrets)
        response = create_conversation(ctx, plan.payload)
        save(run_dir, "response.json", response, ctx.secrets)
        cid = result.conversation_id = response["conversation_id"]
        script_sandbox(ctx, sc, cid)
        if sc.end_after_seconds:
            ender = threading.Timer(sc.end_after_seconds, lambda: _quiet_end(ctx, cid))
            ender.daemon = True
            ender.start()
        result.verdicts += wait_for_events(sc, source, cid, deadline, cancel)
        if any(k != "events" for k in sc.expect) and _needs_end(sc):
            _settle(source, cid, deadline, cancel)
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
        if ender:
            ender.cancel()
        result.kept = bool(result.conversation_id and keep)
        if result.conversation_id and not keep:
            result.cleaned_up = _quiet_end(ctx, result.conversation_id)
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


def upsert_persona(ctx: RunContext, sc: Scenario) -> str:
    """The persona's id: created from its config, or updated in place when one of that name exists."""
    if sc.persona_id:
        return sc.persona_id
    if sc.persona_config:
        from ..config import load_file
        name = load_file(sc.persona_config).get("persona_name")
        with _UPSERT:
            # two or more of that name: the update reports the ambiguity instead of making a third
            exists = bool(name) and bool(personas_named(ctx.client(), name))
            return apply_persona(ctx, {}, sc.persona_config, update=exists).persona_id
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


def _needs_end(sc: Scenario) -> bool:
    return bool(sc.end_after_seconds)


def _settle(source, cid: str, deadline: float, cancel: threading.Event, quiet_for: float = 0.3) -> None:
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
