"""The local record of conversations this harness created (logs/conversations.jsonl).

`invoke end --all-mine` ends only conversations recorded here for the same API base URL, so a
conversation the harness did not create is never touched.
"""
from __future__ import annotations

from ..context import RunContext

STREAM = "conversations"


def record_created(ctx: RunContext, conversation: dict, api_url: str) -> None:
    """Remember a conversation we created (id, name, created_at, API base URL)."""
    ctx.store.append(STREAM, {"type": "created", "conversation_id": conversation.get("conversation_id"),
                              "conversation_name": conversation.get("conversation_name"),
                              "created_at": conversation.get("created_at"), "api_url": api_url,
                              "test_mode": conversation.get("status") == "ended"})


def record_ended(ctx: RunContext, conversation_id: str, api_url: str) -> None:
    """Remember that we ended one (the audit trail; live status is always asked of the API)."""
    ctx.store.append(STREAM, {"type": "ended", "conversation_id": conversation_id, "api_url": api_url})


def mine(ctx: RunContext, api_url: str) -> list[dict]:
    """Conversations created by this harness against `api_url`, oldest first."""
    rows: dict[str, dict] = {}
    for record in ctx.store.read(STREAM):
        if record.get("api_url") == api_url and record.get("conversation_id") and record.get("type") == "created":
            rows[record["conversation_id"]] = record
    return list(rows.values())
