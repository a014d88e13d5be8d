"""`invoke demo`: the first end-to-end run, entirely on this machine.

Starts the local sandbox and a callback receiver on free loopback ports, creates the example
persona and a conversation with the receiver as callback_url, ends the conversation, waits for
the callbacks and returns what happened. Nothing reaches Tavus, whatever keys are set.
The example configs are the project's when it has them, else the built-in ones (`tune init`'s),
so the demo also runs in an empty folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..context import RunContext, sandbox_context
from ..errors import CheckFailed
from ..callbacks.events import describe_event
from ..scaffold import TEMPLATE

PERSONA_CONFIG = "configs/persona/facilitator.example.json"
CONVERSATION_CONFIG = "configs/conversation/facilitator_kickoff.json"
FINAL_EVENT = "application.transcription_ready"
TIME_SCALE = 0.02  # the embedded sandbox's clock: a call's seconds pass 50 times faster


def example_file(ctx: RunContext, relative: str) -> str:
    """The project's copy of an example config, else the built-in one."""
    own = ctx.root / relative
    return os.path.relpath(own) if own.is_file() else str(TEMPLATE / relative)


@dataclass
class DemoResult:
    sandbox_url: str
    persona_id: str
    persona_name: str
    conversation_id: str
    conversation_url: str
    status: str
    events: list[dict] = field(default_factory=list)
    key_was_set: bool = False


def run_demo(ctx: RunContext, *, timeout: float = 20.0, time_scale: float | None = None) -> DemoResult:
    """Run persona + conversation + callbacks against an embedded sandbox; return the outcome."""
    from ..resources.conversation import build_conversation, create_conversation, end_conversation
    from ..resources.persona import apply_persona
    from ..sandbox import Sandbox, SandboxSettings
    from ..callbacks.receiver import Receiver

    key_was_set = bool(ctx.env.get("TAVUS_API_KEY"))
    persona_config, conversation_config = example_file(ctx, PERSONA_CONFIG), example_file(ctx, CONVERSATION_CONFIG)
    with Sandbox(SandboxSettings(time_scale=TIME_SCALE if time_scale is None else time_scale,
                                 allow_loopback_tools=True)) as sandbox:
        local = sandbox_context(ctx, sandbox.url)
        with Receiver(local, path="/tavus/callback") as receiver:
            persona = apply_persona(local, {}, persona_config)
            plan = build_conversation(local, {"callback_url": receiver.callback_url}, conversation_config)
            conversation = create_conversation(local, plan.payload)
            cid = conversation["conversation_id"]
            _wait(lambda: receiver.wait_for(lambda evs: _has(evs, cid, "system.replica_joined"), timeout),
                  "the sandbox sent no system.replica_joined callback", timeout)
            end_conversation(local, cid)
            _wait(lambda: receiver.wait_for(lambda evs: _has(evs, cid, FINAL_EVENT), timeout),
                  f"the sandbox sent no {FINAL_EVENT} callback", timeout)
            # every callback the sandbox sent has been answered...
            _wait(lambda: sandbox.wait_idle(timeout), "the sandbox's callbacks were not all answered", timeout)
            sent = sum(1 for d in sandbox.deliveries if d["conversation_id"] == cid and d.get("status") == 200)
            # ...and handed to the plugins, which happens just after the answer
            events = [e for e in _wait(lambda: receiver.wait_for(lambda evs: _count(evs, cid) >= sent, timeout),
                                       "the receiver did not hand every callback to the plugins", timeout)
                      if e.get("conversation_id") == cid]
            status = local.client().get(f"/conversations/{cid}").get("status", "?")
    return DemoResult(sandbox.url, persona.persona_id, persona.persona_name, cid,
                      conversation.get("conversation_url", ""), status, events, key_was_set)


def _wait(wait, problem: str, timeout: float):
    """Run one bounded wait; running out of time is a one-line CheckFailed naming `problem`, not a traceback."""
    try:
        result = wait()
    except (TimeoutError, AssertionError):
        result = False
    if result is False:  # Sandbox.wait_idle answers False instead of raising
        raise CheckFailed(f"demo: {problem} within {timeout:g}s",
                          hint="give it more time, e.g. --timeout 60; if that fails too, run `invoke doctor`")
    return result


def _count(events: list[dict], cid: str) -> int:
    return sum(1 for e in events if e.get("conversation_id") == cid)


def _has(events: list[dict], cid: str, event_type: str) -> bool:
    return any(e.get("conversation_id") == cid and e.get("event_type") == event_type for e in events)


def summary_lines(result: DemoResult) -> list[str]:
    """The readable summary `invoke demo` prints."""
    lines = []
    if result.key_was_set:
        lines.append("note: TAVUS_API_KEY is set, but the demo always uses the embedded sandbox.")
    lines += [
        f"Ran against the local Tavus sandbox at {result.sandbox_url}: nothing reached Tavus, nothing was billed.",
        f"persona       {result.persona_id}  {result.persona_name!r}",
        f"conversation  {result.conversation_id}  status: {result.status}",
        f"              {result.conversation_url}",
        f"callbacks received ({len(result.events)}):",
    ]
    for event in result.events:
        lines.append(f"  {event.get('timestamp', '')}  {event.get('event_type', '?'):<34} {describe_event(event)}")
    lines.append("Next: `invoke sandbox` for a long-running sandbox, or put TAVUS_API_KEY in .env for the real API.")
    return lines

