"""Expectation kinds for scenarios: pure functions over the events a run received.

Each checker takes the expectation's value from the scenario and an `Observed` (events in
arrival order, the final status) and returns a Verdict: pass/fail, what was observed, and a
precise message. Plugins add kinds through the `harness_expectation_kinds` hook.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Observed:
    """What a run saw: callbacks in arrival order and the conversation's status at the end."""

    events: list[dict] = field(default_factory=list)
    final_status: str | None = None
    turns: list = field(default_factory=list)  # dialogue.Turn records in scope (one turn, or all of them)
    judge: object = None  # judge(rubric, turns) -> Verdict, set by the runner

    def of_type(self, event_type: str) -> list[dict]:
        return [e for e in self.events if e.get("event_type") == event_type]

    def props(self, event_type: str) -> dict:
        found = self.of_type(event_type)
        return (found[-1].get("properties") or {}) if found else {}


@dataclass
class Verdict:
    kind: str
    passed: bool
    observed: object
    message: str
    skipped: bool = False  # not checked (e.g. no model to judge with); counts as not failed


def parse_ts(value) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _first_out_of_order(expected, seen: list):
    """The first of `expected` that `seen` lacks as a subsequence (others may come in between), else None."""
    position = 0
    for wanted in expected:
        try:
            position = seen.index(wanted, position) + 1
        except ValueError:
            return wanted
    return None


def check_events_in_order(expected, obs: Observed) -> Verdict:
    """Every listed event type arrived, in this relative order (others may come in between)."""
    seen = [e.get("event_type") for e in obs.events]
    wanted = _first_out_of_order(expected, seen)
    if wanted is not None:
        where = "never arrived" if wanted not in seen else "arrived out of order"
        return Verdict("events_in_order", False, seen, f"{wanted} {where}; received {seen}")
    return Verdict("events_in_order", True, seen, f"in order: {' -> '.join(expected)}")


def check_shutdown_reason(expected, obs: Observed) -> Verdict:
    """system.shutdown carried this reason (with or without the ' reached' suffix Tavus sometimes adds)."""
    reason = obs.props("system.shutdown").get("shutdown_reason")
    ok = isinstance(reason, str) and bool(reason.strip()) and _bare(reason) == _bare(str(expected))
    return Verdict("shutdown_reason", ok, reason, f"shutdown_reason {reason!r}" + ("" if ok else f", expected {expected!r}"))


def _bare(reason: str) -> str:
    reason = reason.strip()
    return reason[: -len(" reached")] if reason.endswith(" reached") else reason


def _transcript(obs: Observed) -> list[dict]:
    return [t for t in obs.props("application.transcription_ready").get("transcript") or [] if isinstance(t, dict)]


def _matches(entry: dict, rule: dict) -> bool:
    if rule.get("role") and entry.get("role") != rule["role"]:
        return False
    content = str(entry.get("content", ""))
    if "regex" in rule:
        return re.search(rule["regex"], content) is not None
    return str(rule.get("text", "")).lower() in content.lower()


def _rules(expected) -> list[dict]:
    return [r if isinstance(r, dict) else {"text": str(r)} for r in (expected if isinstance(expected, list) else [expected])]


def check_transcript_contains(expected, obs: Observed) -> Verdict:
    """Each rule ({text|regex, role?}) matches at least one transcript entry."""
    transcript = _transcript(obs)
    if not transcript:
        return Verdict("transcript_contains", False, None, "no application.transcription_ready transcript received")
    for rule in _rules(expected):
        if not any(_matches(t, rule) for t in transcript):
            return Verdict("transcript_contains", False, len(transcript),
                           f"no {rule.get('role') or 'any'}-role entry matches {rule} in {len(transcript)} entries")
    return Verdict("transcript_contains", True, len(transcript), f"{len(_rules(expected))} rule(s) matched")


def check_transcript_excludes(expected, obs: Observed) -> Verdict:
    """No transcript entry matches any rule."""
    transcript = _transcript(obs)
    for rule in _rules(expected):
        hits = [t for t in transcript if _matches(t, rule)]
        if hits:
            return Verdict("transcript_excludes", False, hits[0].get("content"),
                           f"{hits[0].get('role')} said {str(hits[0].get('content'))[:80]!r}, which matches {rule}")
    return Verdict("transcript_excludes", True, len(transcript), "no forbidden content")


def check_perception_mentions(expected, obs: Observed) -> Verdict:
    """application.perception_analysis mentions every listed phrase (case-insensitive)."""
    analysis = obs.props("application.perception_analysis").get("analysis")
    if not analysis:
        return Verdict("perception_mentions", False, None, "no application.perception_analysis received")
    missing = [p for p in (expected if isinstance(expected, list) else [expected]) if str(p).lower() not in analysis.lower()]
    return Verdict("perception_mentions", not missing, analysis[:80],
                   f"missing {missing} in the analysis" if missing else "all phrases mentioned")


def check_recording_ready(expected, obs: Observed) -> Verdict:
    """application.recording_ready arrived (true) or did not (false)."""
    got = bool(obs.of_type("application.recording_ready"))
    return Verdict("recording_ready", got == bool(expected), got,
                   f"recording_ready {'arrived' if got else 'did not arrive'}" + ("" if got == bool(expected) else f", expected {bool(expected)}"))


def check_max_gap(expected, obs: Observed) -> Verdict:
    """At most `seconds` between the first `from` event and the first `to` event (their timestamps)."""
    first = obs.of_type(expected["from"])
    second = obs.of_type(expected["to"])
    if not first or not second:
        return Verdict("max_gap", False, None, f"needs both {expected['from']} and {expected['to']}")
    a, b = parse_ts(first[0].get("timestamp")), parse_ts(second[0].get("timestamp"))
    if a is None or b is None:
        return Verdict("max_gap", False, None, "an event has no readable timestamp")
    gap = (b - a).total_seconds()
    ok = 0 <= gap <= float(expected["seconds"])
    return Verdict("max_gap", ok, round(gap, 3), f"{gap:.3f}s from {expected['from']} to {expected['to']} (max {expected['seconds']}s)")


def check_final_status(expected, obs: Observed) -> Verdict:
    """The conversation's status when the run ended."""
    return Verdict("final_status", obs.final_status == expected, obs.final_status,
                   f"status {obs.final_status!r}" + ("" if obs.final_status == expected else f", expected {expected!r}"))


# --- what the agent did in its turns (Observed.turns: one turn, or the whole dialogue) -------
def _each(value) -> list:
    return value if isinstance(value, list) else [value]


def _said(obs: Observed) -> str:
    replies = [f"{t.label} the agent said {t.reply!r}" if len(obs.turns) > 1 else f"the agent said {t.reply!r}"
               for t in obs.turns]
    return "; ".join(replies) or "there was no turn"


def _calls(obs: Observed) -> list[dict]:
    return [c for t in obs.turns for c in t.tool_calls]


def _did_tools(obs: Observed) -> str:
    calls = _calls(obs)
    return ("it called " + ", ".join(f"{c['name']}({json.dumps(c.get('arguments'), sort_keys=True)})" for c in calls)
            if calls else "it called no tool")


def _subset(want, got) -> bool:
    """`want` is contained in `got`: every key of a dict with a matching value (recursively);
    strings compare without case; lists need every wanted item somewhere in the list."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(got, list) and all(any(_subset(w, g) for g in got) for w in want)
    if isinstance(want, str) and isinstance(got, str):
        return want.strip().lower() == got.strip().lower()
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got
    return want == got


def check_reply_contains(expected, obs: Observed) -> Verdict:
    """The agent's reply contains each phrase (case-insensitive)."""
    text = " ".join(t.reply for t in obs.turns).lower()
    missing = [p for p in _each(expected) if str(p).lower() not in text]
    return Verdict("reply_contains", not missing, text[:200],
                   f"expected a reply containing {missing[0]!r}; {_said(obs)}" if missing else
                   f"reply contains {', '.join(map(repr, _each(expected)))}")


def check_reply_regex(expected, obs: Observed) -> Verdict:
    """The agent's reply matches each regular expression (re.search)."""
    text = " ".join(t.reply for t in obs.turns)
    missing = [p for p in _each(expected) if re.search(p, text) is None]
    return Verdict("reply_regex", not missing, text[:200],
                   f"expected a reply matching /{missing[0]}/; {_said(obs)}" if missing else "reply matches")


def check_reply_excludes(expected, obs: Observed) -> Verdict:
    """The agent's reply contains none of the phrases (case-insensitive)."""
    text = " ".join(t.reply for t in obs.turns).lower()
    found = [p for p in _each(expected) if str(p).lower() in text]
    return Verdict("reply_excludes", not found, text[:200],
                   f"expected a reply without {found[0]!r}; {_said(obs)}" if found else "no excluded phrase")


def _tool_spec(value) -> dict:
    return {"name": value} if isinstance(value, str) else value


def check_tool_called(expected, obs: Observed) -> Verdict:
    """Each tool was called, with at least the given arguments (`args`: a subset match)."""
    calls = _calls(obs)
    for spec in map(_tool_spec, _each(expected)):
        named = [c for c in calls if c.get("name") == spec["name"]]
        args = spec.get("args")
        if not named or (args is not None and not any(_subset(args, c.get("arguments")) for c in named)):
            wanted = spec["name"] + (f" with arguments including {json.dumps(args, sort_keys=True)}" if args else "")
            return Verdict("tool_called", False, calls, f"expected a call to {wanted}; {_did_tools(obs)}")
    return Verdict("tool_called", True, calls, _did_tools(obs))


def check_no_tool_called(expected, obs: Observed) -> Verdict:
    """`true`: no tool at all was called; a name or a list of names: none of those."""
    calls = _calls(obs)
    banned = None if expected is True else set(_each(expected))
    bad = [c for c in calls if banned is None or c.get("name") in banned]
    if expected is False:
        bad = []
    what = "no tool" if banned is None else f"none of {sorted(banned)}"
    return Verdict("no_tool_called", not bad, calls, f"expected {what} to be called; {_did_tools(obs)}" if bad
                   else f"{what} called")


def check_tool_result_status(expected, obs: Observed) -> Verdict:
    """Every tool result (or those of `name`) had this status ("success" or "error")."""
    spec = {"status": expected} if isinstance(expected, str) else expected
    results = [r for t in obs.turns for r in t.tool_results if not spec.get("name") or r.get("name") == spec["name"]]
    seen = [f"{r.get('name')}: {r.get('status')}" for r in results]
    scope = f" of {spec['name']}" if spec.get("name") else ""
    if not results:
        return Verdict("tool_result_status", False, [], f"expected a tool result{scope} with status {spec['status']!r}; "
                                                        f"there was none ({_did_tools(obs)})")
    ok = all(r.get("status") == spec["status"] for r in results)
    return Verdict("tool_result_status", ok, seen, f"tool results{scope}: {', '.join(seen)}"
                   + ("" if ok else f"; expected {spec['status']!r}"))


def _objectives(obs: Observed) -> list[dict]:
    found, seen = [], set()
    for t in obs.turns:
        for o in t.objectives:
            key = (o.get("name"), json.dumps(o.get("output_variables"), sort_keys=True))
            if key not in seen:
                seen.add(key)
                found.append(o)
    for e in obs.of_type("conversation.objective.completed"):  # callbacks to the objective's callback_url
        p = e.get("properties") or {}
        name = p.get("objective_name") or e.get("objective_name")  # both documented shapes (CONTRACT §10.6)
        if name not in [o["name"] for o in found]:  # the room event and the callback are one completion
            found.append({"name": name, "output_variables": p.get("output_variables") or e.get("output_variables") or {}})
    return found


def check_objective_completed(expected, obs: Observed) -> Verdict:
    """Each objective completed, with at least the given output_variables (subset match)."""
    done = _objectives(obs)
    summary = [f"{o['name']} {json.dumps(o.get('output_variables') or {}, sort_keys=True)}" for o in done]
    for spec in map(_tool_spec, _each(expected)):
        named = [o for o in done if o.get("name") == spec["name"]]
        outputs = spec.get("output_variables")
        if not named or (outputs and not any(_subset(outputs, o.get("output_variables")) for o in named)):
            wanted = spec["name"] + (f" with output_variables including {json.dumps(outputs, sort_keys=True)}" if outputs else "")
            return Verdict("objective_completed", False, summary,
                           f"expected objective {wanted} to complete; completed: {summary or 'none'}")
    return Verdict("objective_completed", True, summary, f"completed: {', '.join(summary)}")


def check_objectives_completed_in_order(expected, obs: Observed) -> Verdict:
    """The objectives completed in this relative order (others may come in between)."""
    order = [o["name"] for o in _objectives(obs)]
    wanted = _first_out_of_order(expected, order)
    if wanted is not None:
        where = "never completed" if wanted not in order else "completed out of order"
        return Verdict("objectives_completed_in_order", False, order, f"objective {wanted} {where}; completed: {order}")
    return Verdict("objectives_completed_in_order", True, order, f"in order: {' -> '.join(expected)}")


def _guardrails(obs: Observed) -> list[str]:
    names = [g.get("name") for t in obs.turns for g in t.guardrails]
    for e in obs.of_type("conversation.guardrail.triggered"):
        name = (e.get("properties") or {}).get("guardrail_name")
        if name not in names:
            names.append(name)
    return names


def check_guardrail_triggered(expected, obs: Observed) -> Verdict:
    """Each guardrail was triggered."""
    fired = _guardrails(obs)
    missing = [g for g in _each(expected) if g not in fired]
    return Verdict("guardrail_triggered", not missing, fired,
                   f"expected guardrail {missing[0]} to trigger; triggered: {fired or 'none'}; {_said(obs)}" if missing
                   else f"triggered: {fired}")


def check_guardrail_not_triggered(expected, obs: Observed) -> Verdict:
    """None of these guardrails was triggered."""
    fired = _guardrails(obs)
    bad = [g for g in _each(expected) if g in fired]
    return Verdict("guardrail_not_triggered", not bad, fired,
                   f"expected guardrail {bad[0]} not to trigger, but it did; {_said(obs)}" if bad
                   else f"not triggered: {_each(expected)}")


def check_tools_called_in_order(expected, obs: Observed) -> Verdict:
    """These tools were called in this relative order (others may come in between)."""
    order = [c.get("name") for c in _calls(obs)]
    wanted = _first_out_of_order(expected, order)
    if wanted is not None:
        where = "never called" if wanted not in order else "called out of order"
        return Verdict("tools_called_in_order", False, order, f"tool {wanted} {where}; calls: {order}")
    return Verdict("tools_called_in_order", True, order, f"in order: {' -> '.join(expected)}")


def check_judge(expected, obs: Observed) -> Verdict:
    """An LLM judge finds the dialogue meets the rubric (skipped when there is no judge)."""
    if obs.judge is None:
        from .models import NO_MODEL
        return Verdict("judge", True, None, NO_MODEL, skipped=True)
    return obs.judge(expected, obs.turns)


TURN_KINDS = {
    "reply_contains": check_reply_contains,
    "reply_regex": check_reply_regex,
    "reply_excludes": check_reply_excludes,
    "tool_called": check_tool_called,
    "no_tool_called": check_no_tool_called,
    "tool_result_status": check_tool_result_status,
    "objective_completed": check_objective_completed,
    "guardrail_triggered": check_guardrail_triggered,
    "guardrail_not_triggered": check_guardrail_not_triggered,
    "judge": check_judge,
}
DIALOGUE_KINDS = {  # whole-conversation only
    "objectives_completed_in_order": check_objectives_completed_in_order,
    "tools_called_in_order": check_tools_called_in_order,
}
REPLY_KINDS = ("reply_contains", "reply_regex", "reply_excludes")


BUILTIN_KINDS = {
    "events_in_order": check_events_in_order,
    "shutdown_reason": check_shutdown_reason,
    "transcript_contains": check_transcript_contains,
    "transcript_excludes": check_transcript_excludes,
    "perception_mentions": check_perception_mentions,
    "recording_ready": check_recording_ready,
    "max_gap": check_max_gap,
    "final_status": check_final_status,
    **TURN_KINDS,
    **DIALOGUE_KINDS,
}


def all_kinds(ctx=None) -> dict:
    """Built-in kinds plus those plugins register through harness_expectation_kinds."""
    kinds = dict(BUILTIN_KINDS)
    if ctx is not None:
        for contributed in ctx.hook.harness_expectation_kinds():
            kinds.update(contributed or {})
    return kinds


def evaluate(expect: dict, obs: Observed, kinds: dict) -> list[Verdict]:
    """One verdict per expectation, in the scenario's order. (`events` timeouts are judged by the runner.)"""
    out = []
    for kind, value in expect.items():
        if kind == "events":
            continue
        out.append(kinds[kind](value, obs))
    return out
