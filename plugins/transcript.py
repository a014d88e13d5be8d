"""Built-in plugin `transcript`: prints a conversation's transcript when application.transcription_ready arrives.

Lines go to the user through `context.note` (stderr, redacted). The system prompt entry is
shortened to its first words; other roles are printed in full.
"""
from __future__ import annotations

from harness_core import hookimpl, printable

SYSTEM_PREVIEW = 60


def transcript_lines(event: dict) -> list[str]:
    """The readable transcript of a transcription_ready event (empty list for any other event)."""
    if event.get("event_type") != "application.transcription_ready":
        return []
    props = event.get("properties") if isinstance(event.get("properties"), dict) else {}
    entries = props.get("transcript") if isinstance(props.get("transcript"), list) else []
    lines = [f"transcript of {event.get('conversation_id', '?')} ({len(entries)} entries):"]
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        role = str(entry.get("role", "?"))
        content = " ".join(str(entry.get("content") or "").split())
        if role == "system" and len(content) > SYSTEM_PREVIEW:
            content = f"{content[:SYSTEM_PREVIEW]}... ({len(content)} chars)"
        lines.append(printable(f"  {role:>9}: {content}"))
    return lines


@hookimpl
def harness_handle_callback(event, context):
    """Print the transcript of application.transcription_ready (other events: nothing)."""
    for line in transcript_lines(event):
        context.note(line)
