"""Tasks: conversation, end, conversations (each imports its area when it runs, to keep start-up short)."""
from __future__ import annotations

from invoke import task

from ..errors import ConfigError
from .base import HarnessTask, context, json_object, say, say_json, show_request, split_list

CONVERSATION_HELP = {
    "config": "conversation config file (JSON or TOML), e.g. configs/conversation/facilitator_kickoff.json",
    "persona_id": "persona_id to talk to (preferred over --replica-id)",
    "persona_name": "resolve this exact persona name to its persona_id",
    "replica_id": "replica_id (without a persona, the first completed stock replica is picked)",
    "callback_url": "where Tavus posts callbacks (default: WEBHOOK_URL from the environment or .env)",
    "conversation_name": "name (default: derived from the config file name)",
    "conversational_context": "context for this conversation (a meeting block is appended after it)",
    "custom_greeting": "the replica's first line",
    "audio_only": "voice-only conversation",
    "document_ids": "comma-separated document_ids",
    "document_tags": "comma-separated document_tags",
    "document_retrieval_strategy": "speed, quality or balanced",
    "memory_stores": "comma-separated memory store keys",
    "properties": 'JSON object merged into properties, e.g. \'{"max_call_duration": 600}\'',
    "language": "language name or two-letter code; sent as properties.language (en -> english)",
    "record": "enable recording with the S3 settings from .env (also TUNE_AUTO_RECORDING=true)",
    "test_mode": "create it ended: no replica joins, no callbacks, no cost",
    "meeting_title": "meeting helper: title",
    "agenda": "meeting helper: agenda items separated by ';'",
    "participants": "meeting helper: names separated by ','",
    "duration_minutes": "meeting helper: planned length in minutes",
    "goals": "meeting helper: goals separated by ';'",
    "decisions_needed": "meeting helper: decisions separated by ';'",
    "dry_run": "print the exact payload and send nothing",
    "json": "print the raw API response (with --dry-run: the request, as one JSON document)",
}


# Config paths set by a flag of another name, so messages name the flag the user typed.
FLAG_LABELS = {"enable_recording": "flag --record", "meeting.title": "flag --meeting-title",
               "meeting.agenda": "flag --agenda", "meeting.participants": "flag --participants",
               "meeting.duration_minutes": "flag --duration-minutes", "meeting.goals": "flag --goals",
               "meeting.decisions_needed": "flag --decisions-needed"}


class Flags(dict):
    """The flag values of one command, labelled for config.gather() with FLAG_LABELS."""

    key_labels = FLAG_LABELS


@task(klass=HarnessTask, help=CONVERSATION_HELP)
def conversation(c, config=None, persona_id=None, persona_name=None, replica_id=None, callback_url=None,
                 conversation_name=None, conversational_context=None, custom_greeting=None, audio_only=False,
                 document_ids=None, document_tags=None, document_retrieval_strategy=None, memory_stores=None,
                 language=None, record=False, test_mode=False, meeting_title=None, agenda=None, participants=None,
                 duration_minutes=None, goals=None, decisions_needed=None, properties=None, dry_run=False, json=False):
    """Create a conversation from a config file and flags (precedence: flag > config > env/.env > default).

    callback_url falls back to WEBHOOK_URL and is left out when empty. Prints the id, status and
    conversation_url; payloads and responses are logged to logs/.
    """
    from ..resources.conversation import build_conversation, create_conversation, summary_lines
    ctx = context()
    meeting = {k: v for k, v in dict(title=meeting_title, agenda=agenda, participants=participants,
                                      duration_minutes=duration_minutes, goals=goals,
                                      decisions_needed=decisions_needed).items() if v is not None}
    flags = Flags(persona_id=persona_id, persona_name=persona_name, replica_id=replica_id, callback_url=callback_url,
                   conversation_name=conversation_name, conversational_context=conversational_context,
                   custom_greeting=custom_greeting, audio_only=audio_only or None,
                   document_ids=split_list(document_ids), document_tags=split_list(document_tags),
                   document_retrieval_strategy=document_retrieval_strategy, memory_stores=split_list(memory_stores),
                   language=language, enable_recording=record or None, test_mode=test_mode or None,
                   meeting=meeting or None, properties=json_object(properties, "properties"))
    plan = build_conversation(ctx, flags, config)
    if dry_run:
        show_request(ctx, json, action="would create conversation", method="POST", path="/conversations",
                     body=plan.payload)
        ctx.note("dry run: nothing sent")
        return
    response = create_conversation(ctx, plan.payload)
    if json:
        say_json(ctx, response)
    else:
        for line in summary_lines(response, plan):
            say(ctx, line)


@task(klass=HarnessTask, help={"conversation_id": "the conversation to end",
                               "all_mine": "end every still-active conversation this harness created on this API",
                               "json": "print the result as JSON"})
def end(c, conversation_id=None, all_mine=False, json=False):
    """End a conversation (stops billing and frees a concurrency slot), or all of yours with --all-mine."""
    from ..resources.conversation import end_all_mine, end_conversation
    ctx = context()
    if bool(conversation_id) == bool(all_mine):
        raise ConfigError("end: give exactly one of --conversation-id ID or --all-mine",
                          hint="`invoke conversations` lists the ones this harness created")
    rows = end_all_mine(ctx) if all_mine else [end_conversation(ctx, conversation_id)]
    if json:
        say_json(ctx, rows)
    elif not rows:
        say(ctx, "no active conversation created by this harness on this API")
    for row in [] if json else rows:
        say(ctx, f"{row['status']} {row['conversation_id']}" + (f"  {row.get('conversation_name')!r}" if row.get("conversation_name") else ""))


@task(klass=HarnessTask, help={"json": "print as JSON"})
def conversations(c, json=False):
    """List the conversations this harness created on the current API, with their live status."""
    from ..resources.conversation import list_mine
    ctx = context()
    rows = list_mine(ctx)
    if json:
        say_json(ctx, rows)
        return
    if not rows:
        say(ctx, "no conversation created by this harness on this API yet")
    for row in rows:
        say(ctx, f"{row['conversation_id']}  {str(row.get('status') or '?'):<8} {row.get('created_at') or '':<28} "
                 f"{row.get('conversation_name') or ''}")
