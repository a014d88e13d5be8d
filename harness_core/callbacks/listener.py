"""`invoke webhook`: the long-running receiver session, with an optional tunnel, until Ctrl-C."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from ..context import RunContext
from ..env import write_dotenv
from ..signals import ignoring_signals, wait_until_stopped
from .eventstore import DB_NAME
from .events import format_event_line
from .publicurl import (DEFAULT_PORT, check_reachable, compose_callback_url, ensure_webhook_token, forget_running,
                        normalise_path, note_running, public_url)
from .receiver import Receiver
from .toolforward import routes_from_env


@dataclass
class ServeSummary:
    accepted: int
    rejected: int
    public_url: str | None = None
    reachable: bool | None = None


def serve(ctx: RunContext, *, say, warn, host: str | None = None, port: int | None = None,
          path: str | None = None, tunnel: bool = False, as_json: bool = False,
          stop: threading.Event | None = None) -> ServeSummary:
    """Run the receiver until Ctrl-C (or `stop` is set), printing through `say`/`warn`.

    With `tunnel`, finds the public URL through harness_public_url, saves it (with path and
    token) as WEBHOOK_URL in .env, and pings it end to end before saying "Ready".
    With `as_json`, stdout gets one stored record (redacted; the raw event under `event`) per line and everything else goes to `warn`.
    """
    path = normalise_path(path)
    token, generated = ensure_webhook_token(ctx)
    if generated:
        warn("generated WEBHOOK_TOKEN and saved it to .env (callbacks without it are refused)")
    # --json: the same JSON line per callback as `invoke events --json` (the stored record: ts, run_id, type, event).
    # One print per committed batch: under load a flush per callback costs the receiver's threads the GIL.
    # The JSON line is the record's text as stored: no second serialisation per callback.
    line = (lambda record, text: text) if as_json else (lambda record, text: format_event_line(record))
    show = lambda stored: say("\n".join(line(record, text) for record, text in stored))  # noqa: E731
    info = warn if as_json else say
    rx = Receiver(ctx, path, token, host or "127.0.0.1", DEFAULT_PORT if port is None else int(port),
                  show=show, on_problem=warn, keep_events=False,  # a long session: they are on disk already
                  tools=routes_from_env(ctx.env))  # delivery.api tool calls to /tools/NAME (toolforward.py)
    rx.start()
    if rx.log.problem:
        warn(f"cannot open the callback store ({rx.log.problem}); callbacks are answered 500 until it opens")
    summary = ServeSummary(0, 0)
    try:
        note_running(ctx, rx.host, rx.port, rx.path, rx.instance)
        if host == "0.0.0.0":
            info(f"Listening on all interfaces, port {rx.port}: anyone who can reach it and knows the token can post.")
        if tunnel:
            base = public_url(ctx, rx.port, rx.path)
            summary.public_url = compose_callback_url(base, rx.path, token)
            summary.reachable, detail = check_reachable(base, rx.instance)
            if not summary.reachable:  # never replace a WEBHOOK_URL that may work with one that does not
                warn(f"NOT READY for Tavus: {detail}. {summary.public_url} was NOT saved as WEBHOOK_URL "
                     f"(.env is unchanged); check that the tunnel forwards to port {rx.port}.")
            else:
                write_dotenv(ctx.env, "WEBHOOK_URL", summary.public_url)
                info(f"Public URL {summary.public_url} saved as WEBHOOK_URL in .env")
                info(f"Checked end to end: {detail}.")
        state = "Ready!" if summary.reachable in (None, True) else "Listening locally only."
        info(f"{state} Callbacks are stored in logs/{DB_NAME} (`invoke events` lists them). "
             f"Listening on {rx.callback_url} (Ctrl-C to quit)")
        if not tunnel:
            info("The full URL (with its token) for scripts: `invoke webhook --print-url`; "
                 "a public one: `invoke webhook --tunnel`.")
        wait_until_stopped(stop)
    finally:
        with ignoring_signals():  # a second Ctrl-C must not cut the drain short (or print a traceback)
            forget_running(ctx, rx.instance)
            rx.stop()
    summary.accepted, summary.rejected = rx.accepted, rx.rejected
    return summary
