"""Built-in: turn a `meeting` block (or the --meeting-* flags) into readable conversational_context.

An explicit conversational_context is kept; the meeting block is appended after it.
"""
from __future__ import annotations

import difflib

from harness_core import ConfigError, hookimpl

FIELDS = ("title", "agenda", "participants", "duration_minutes", "goals", "decisions_needed")


def as_list(value, sep: str) -> list[str]:
    """A list from a list or an `a;b;c` / `a,b,c` string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(sep) if part.strip()]
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    raise ConfigError(f"meeting: expected a list or a {sep!r}-separated string, got {type(value).__name__}",
                      hint=f'write e.g. "Goals{sep}Risks"')


def meeting_text(meeting: dict) -> str:
    """The meeting block, one fact per line, as the replica will read it."""
    unknown = sorted(set(meeting) - set(FIELDS))
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), FIELDS, n=1, cutoff=0.6)
        raise ConfigError(f"meeting.{unknown[0]}: unknown key",
                          hint=f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(FIELDS)}")
    lines = ["Meeting details:"]
    if meeting.get("title"):
        lines.append(f"- Title: {meeting['title']}")
    if meeting.get("duration_minutes") is not None:
        minutes = meeting["duration_minutes"]
        if isinstance(minutes, str) and minutes.strip().isdigit():
            minutes = int(minutes)
        if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
            raise ConfigError(f"meeting.duration_minutes: {minutes!r} is not a positive whole number",
                              hint="write e.g. 30")
        lines.append(f"- Duration: {minutes} minutes; keep to time")
    participants = as_list(meeting.get("participants"), ",")
    if participants:
        lines.append(f"- Participants: {', '.join(participants)}")
    agenda = as_list(meeting.get("agenda"), ";")
    if agenda:
        lines.append("- Agenda:")
        lines += [f"  {i}. {item}" for i, item in enumerate(agenda, 1)]
    for key, label in (("goals", "Goals"), ("decisions_needed", "Decisions needed")):
        items = as_list(meeting.get(key), ";")
        if items:
            lines.append(f"- {label}: {'; '.join(items)}")
    return "\n".join(lines) if len(lines) > 1 else ""


@hookimpl
def harness_config_keys(kind):
    """`meeting` is a harness-only conversation key."""
    return ["meeting"] if kind == "conversation" else None


@hookimpl
def harness_build_payload(kind, config, payload):
    """Append the meeting block to conversational_context."""
    meeting = config.get("meeting") if kind == "conversation" else None
    if not meeting:
        return None
    if not isinstance(meeting, dict):
        raise ConfigError("meeting: must be an object", hint='write e.g. {"title": "Q3 kickoff", "agenda": ["Goals"]}')
    text = meeting_text(meeting)
    if not text:
        return None
    before = (payload.get("conversational_context") or "").rstrip()
    return {"conversational_context": f"{before}\n\n{text}" if before else text}
