"""The local record of conversations this harness created (logs/conversations.jsonl).

`invoke end --all-mine` ends only conversations recorded here for the same API base URL, so a
conversation the harness did not create is never touched.

The ledger also remembers which conversations are over: one this harness ended, one created in
test mode (born ended), and one the API was seen to answer `ended` or not found for. A conversation
never comes back from those, so `invoke conversations` asks the API only about the others: its
cost follows the conversations still open, not every conversation ever created. (The list
endpoint was the other way; per-id reads of the open ones need no paging through the account's
whole history and cannot miss one.)

Conversations on a sandbox that dies with its command (the demo's, an embedded run's) are not
recorded: nobody can ask about them again.
"""
from __future__ import annotations

from ..context import EPHEMERAL, RunContext

STREAM = "conversations"
FINAL = ("ended", "gone")  # statuses a conversation never leaves


def _kept(ctx: RunContext) -> bool:
    """Whether this context's conversations are worth remembering: not those of a sandbox that
    dies with the command (the demo's, an embedded run's), which nobody can ask about later."""
    return not ctx.env.flag(EPHEMERAL)


def record_created(ctx: RunContext, conversation: dict, api_url: str) -> None:
    """Remember a conversation we created (id, name, created_at, API base URL)."""
    if not _kept(ctx):
        return
    ctx.store.append(STREAM, {"type": "created", "conversation_id": conversation.get("conversation_id"),
                              "conversation_name": conversation.get("conversation_name"),
                              "created_at": conversation.get("created_at"), "api_url": api_url,
                              "test_mode": conversation.get("status") == "ended"})


def record_ended(ctx: RunContext, conversation_id: str, api_url: str) -> None:
    """Remember that we ended one (it is then never asked about again)."""
    if not _kept(ctx):
        return
    ctx.store.append(STREAM, {"type": "ended", "conversation_id": conversation_id, "api_url": api_url})


def record_final(ctx: RunContext, conversation_id: str, api_url: str, status: str) -> None:
    """Remember that the API answered a final status (`ended`, or `gone` for not found) for one of ours."""
    if not _kept(ctx):
        return
    ctx.store.append(STREAM, {"type": "final", "status": status, "conversation_id": conversation_id,
                              "api_url": api_url})


def mine(ctx: RunContext, api_url: str) -> list[dict]:
    """Conversations created by this harness against `api_url`, oldest first.

    Each row is the `created` record plus `final`: "ended" or "gone" when the ledger already
    knows the conversation is over, else None (ask the API).
    """
    rows: dict[str, dict] = {}
    final: dict[str, str] = {}
    for record in ctx.store.read(STREAM):
        cid = record.get("conversation_id")
        if record.get("api_url") != api_url or not cid:
            continue
        kind = record.get("type")
        if kind == "created":
            rows[cid] = {**record, "final": "ended" if record.get("test_mode") else None}
        elif kind == "ended":
            final[cid] = "ended"
        elif kind == "final" and record.get("status") in FINAL:
            final[cid] = record["status"]
    for cid, status in final.items():
        if cid in rows:
            rows[cid]["final"] = status
    return list(rows.values())
