"""Expectation kinds for scenarios: pure functions over the events a run received.

Each checker takes the expectation's value from the scenario and an `Observed` (events in
arrival order, the final status) and returns a Verdict: pass/fail, what was observed, and a
precise message. Plugins add kinds through the `harness_expectation_kinds` hook.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class Observed:
    """What a run saw: callbacks in arrival order and the conversation's status at the end."""

    events: list[dict] = field(default_factory=list)
    final_status: str | None = None

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


def parse_ts(value) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def check_events_in_order(expected, obs: Observed) -> Verdict:
    """Every listed event type arrived, in this relative order (others may come in between)."""
    seen = [e.get("event_type") for e in obs.events]
    position = 0
    for wanted in expected:
        try:
            position = seen.index(wanted, position) + 1
        except ValueError:
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


BUILTIN_KINDS = {
    "events_in_order": check_events_in_order,
    "shutdown_reason": check_shutdown_reason,
    "transcript_contains": check_transcript_contains,
    "transcript_excludes": check_transcript_excludes,
    "perception_mentions": check_perception_mentions,
    "recording_ready": check_recording_ready,
    "max_gap": check_max_gap,
    "final_status": check_final_status,
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
