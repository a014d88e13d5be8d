"""Task: ui (the local web inspector)."""
from __future__ import annotations

from invoke import task

from .base import HarnessTask, context, number, say


@task(klass=HarnessTask, help={"port": "port on 127.0.0.1 to serve it on (default 8040; 0 takes a free one)"})
def ui(c, port=None):
    """Open the local web inspector: live callbacks, conversation timelines, runs and plan state.

    Served on 127.0.0.1 only (never through a tunnel), read-only except "replay", which needs the
    page's per-session token. It reads logs/ and the lock file as the other commands do. Ctrl-C stops.
    """
    from ..ui.server import serve_inspector
    ctx = context()
    serve_inspector(ctx, say=lambda text: say(ctx, text), port=number(port, "port", None, high=65535, example=8040))
