"""Webhook tasks: webhook (the receiver), set-webhook-url, events, replay, trigger."""
from __future__ import annotations

import sys

from invoke import task

from .base import HarnessTask, _emit, context, not_help, number, say, say_json, say_json_line, warn


@task(klass=HarnessTask, help={
    "port": "port to listen on (default 8000; 0 takes a free one)",
    "host": "address to bind (default 127.0.0.1; 0.0.0.0 exposes it to your network)",
    "path": "callback path (default /tavus/callback)",
    "tunnel": "use the https tunnel of a running ngrok agent (NGROK_API_URL) that forwards to --port, "
              "save its URL (+ path + token) as WEBHOOK_URL in .env and check it end to end",
    "json": "print each callback as one JSON line {ts, run_id, type, event} (redacted), as `events --json` does",
    "print_url": "print just the callback URL, token included, and exit (for scripts)",
    "ui": "also serve the web inspector (as `tune ui`) on 127.0.0.1, on a second port",
    "ui_port": "the inspector's port with --ui (default 8040; 0 takes a free one)",
})
def webhook(c, port=None, host=None, path=None, tunnel=False, json=False, print_url=False, ui=False, ui_port=None):
    """Receive Tavus conversation callbacks: store each in logs/callbacks.sqlite3 and show one line per event.

    Callbacks must carry ?token=WEBHOOK_TOKEN (generated into .env when absent); others are
    refused with 403. Every event also goes to the plugins' harness_handle_callback hook.
    GET /healthz answers liveness checks. With --ui the inspector runs beside it. Ctrl-C stops.
    """
    import contextlib

    from ..callbacks.listener import serve
    from ..callbacks.publicurl import resolve_callback_url
    ctx = context()
    port = number(port, "port", None, high=65535, example=8000)
    if print_url:  # the one output that shows the token: the user asked for it
        print(resolve_callback_url(ctx, host=host, port=port, path=path, tunnel=tunnel), flush=True)
        return
    with contextlib.ExitStack() as beside:
        if ui:  # local only, whatever --host and --tunnel say
            from ..ui.server import Inspector
            inspector = beside.enter_context(Inspector(ctx, number(ui_port, "ui-port", None, high=65535, example=8040)))
            (warn if json else say)(ctx, f"Inspector at {inspector.url} (this machine only)")
        summary = serve(ctx, say=lambda text: say(ctx, text), warn=lambda text: warn(ctx, text),
                        host=host, port=port, path=path, tunnel=tunnel, as_json=json)
    warn(ctx, f"Stopped: {summary.accepted} callbacks stored, {summary.rejected} requests refused.")


@task(klass=HarnessTask, help={
    "url": "absolute http(s) URL with a path, e.g. https://example.ngrok-free.app/tavus/callback",
    "as_is": "save the URL exactly as given (no ?token= added), e.g. for your own app",
    "json": "print {webhook_url, path, notes} as one JSON document (the token redacted)",
})
def set_webhook_url(c, url, as_is=False, json=False):
    """Save URL as WEBHOOK_URL in .env (the rest of .env is kept); conversations use it as callback_url.

    Adds ?token=WEBHOOK_TOKEN when the URL has none, so `invoke webhook` accepts the callbacks.
    """
    from ..callbacks.publicurl import set_webhook_url as save_webhook_url
    ctx = context()
    saved = save_webhook_url(ctx, not_help(url, "set-webhook-url"), as_is=as_is)
    if json:
        say_json(ctx, {"webhook_url": saved.url, "path": str(saved.path), "notes": saved.notes})
        return
    for note in saved.notes:
        warn(ctx, f"note: {note}")
    say(ctx, f"WEBHOOK_URL={saved.url} saved in {saved.path}")


@task(klass=HarnessTask, help={
    "conversation_id": "only this conversation's events",
    "type": "only this event type (e.g. system.shutdown), or a group: system, application",
    "json": "print one stored record {ts, run_id, type, event} per line (JSON lines, as `webhook --json`)",
    "jsonl": "the same as --json (its older name)",
})
def events(c, conversation_id=None, type=None, json=False, jsonl=False):
    """List the callbacks stored in logs/callbacks.sqlite3, oldest first: time, conversation, event type, detail."""
    from ..callbacks.events import EVENT_SHAPES, event_lines, iter_events
    ctx = context()
    secrets = ctx.secrets  # once, not per line
    shown = 0
    for shown, line in enumerate(event_lines(iter_events(ctx, conversation_id=conversation_id, event_type=type),
                                             "jsonl" if json or jsonl else "text", secrets), 1):
        _emit(line, sys.stdout)  # already redacted
    if not shown:
        if type and type not in (*EVENT_SHAPES, "system", "application"):
            warn(ctx, f"note: {type!r} is not an event type Tavus documents; known: {', '.join(EVENT_SHAPES)}")
        if not (json or jsonl):
            say(ctx, "no stored events match (the receiver, `invoke webhook`, stores them in logs/callbacks.sqlite3)")


@task(klass=HarnessTask, help={
    "to": "URL to post to (default WEBHOOK_URL); a loopback URL gets ?token=WEBHOOK_TOKEN when it has none",
    "conversation_id": "only this conversation's events",
    "type": "only this event type, or a group: system, application",
    "json": "print one JSON line per delivery {conversation_id, event_type, status, ok, duplicate}",
})
def replay(c, to=None, conversation_id=None, type=None, json=False):
    """Re-post stored events, in the order they arrived, to any URL (your own app, or a receiver)."""
    from ..callbacks.events import delivery_json, delivery_line, replay_events
    ctx = context()
    replay_events(ctx, to=to, conversation_id=conversation_id, event_type=type,
                  report=(lambda d: say_json_line(ctx, delivery_json(d))) if json else
                  (lambda d: say(ctx, delivery_line(d))))


@task(klass=HarnessTask, help={
    "event_type": "system.replica_joined, system.pal_joined, system.shutdown, application.transcription_ready, "
                  "application.recording_ready, application.recording_copy_failed, application.perception_analysis",
    "reason": "shutdown_reason for system.shutdown (default end_conversation_endpoint_hit); the bare form "
              "without ' reached' is accepted",
    "conversation_id": "conversation id to put in the event (default: a new random one)",
    "to": "URL to post to (default WEBHOOK_URL); a loopback URL gets ?token=WEBHOOK_TOKEN when it has none",
    "json": "print {url, conversation_id, event_type, status, ok, duplicate, event} as one JSON document",
})
def trigger(c, event_type, reason=None, conversation_id=None, to=None, json=False):
    """Post one synthetic callback in the exact documented envelope, to test a handler offline."""
    from ..callbacks.events import delivery_json, delivery_line, trigger_event
    ctx = context()
    result = trigger_event(ctx, not_help(event_type, "trigger"), to=to, reason=reason, conversation_id=conversation_id)
    if json:
        say_json(ctx, {"url": result.url, **delivery_json(result.delivery), "event": result.delivery.event})
        return
    say(ctx, f"posted to {result.url}: {delivery_line(result.delivery)}")
