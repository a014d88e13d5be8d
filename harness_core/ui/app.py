"""The inspector's WSGI app: routing, the guards, server-sent events, replay.

Guards, before anything else: a request whose Host is not the loopback address and port this
app serves is refused (403), so a page on another site cannot reach it by rebinding its DNS name
to 127.0.0.1; the only action that sends anything (replay) is a POST carrying the per-session
token embedded in the pages, from this origin. Pages are rendered by Jinja2 with autoescaping and
served with a Content-Security-Policy that allows scripts from this server only.
"""
from __future__ import annotations

import hmac
import json
import mimetypes
import re
import secrets as _secrets
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..callbacks.events import post_event, resolve_target_url
from ..callbacks.eventstore import query_page
from ..callbacks.events import callbacks_dir, events_db
from ..context import RunContext
from ..errors import HarnessError
from ..redact import redact_text
from ..serving import status_line
from . import views

HERE = Path(__file__).parent
STREAM_SECONDS = 25.0  # one live stream lasts this long; the browser reconnects (Last-Event-ID) at once
STREAM_POLL = 0.15  # seconds between the stream's indexed reads of new rows
STREAM_KEEPALIVE = 10.0  # a comment line this often keeps proxies and the browser from giving up
MAX_FORM = 64 * 1024
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
]
ROUTES = [  # (method, pattern, handler name)
    ("GET", r"/", "home"),
    ("GET", r"/events", "events"),
    ("GET", r"/events/stream", "stream"),
    ("POST", r"/replay", "replay"),
    ("GET", r"/conversations", "conversations"),
    ("GET", r"/conversations/(?P<cid>[^/]+)", "conversation"),
    ("GET", r"/runs", "runs"),
    ("GET", r"/runs/(?P<run_id>[^/]+)/files/(?P<name>[^/]+)", "run_file"),
    ("GET", r"/runs/(?P<run_id>[^/]+)/(?P<slug>[^/]+)", "scenario"),
    ("GET", r"/runs/(?P<run_id>[^/]+)/(?P<slug>[^/]+)/files/(?P<name>[^/]+)", "scenario_file"),
    ("GET", r"/state", "state"),
    ("GET", r"/static/(?P<name>[A-Za-z0-9_.-]+)", "static"),
]


def templates() -> Environment:
    """The Jinja2 environment: the package's templates, every value escaped (autoescape for .html)."""
    return Environment(loader=FileSystemLoader(str(HERE / "templates")),
                       autoescape=select_autoescape(["html"], default=True, default_for_string=True))


class Response:
    """Status, headers and body chunks of one answer."""

    def __init__(self, status: int = 200, body=b"", content_type: str = "text/html; charset=utf-8", headers=()):
        self.status, self.content_type, self.headers = status, content_type, list(headers)
        self.body = [body.encode("utf-8") if isinstance(body, str) else body] if isinstance(body, (str, bytes)) else body


class InspectorApp:
    """The inspector for one project (`ctx`); `port` is set once the server has bound, to check Host."""

    def __init__(self, ctx: RunContext, *, max_streams: int = 6):
        self.ctx = ctx
        self.token = _secrets.token_urlsafe(32)  # per session: a page from another origin cannot know it
        self.port: int | None = None
        self.closing = threading.Event()
        self.env = templates()
        self._streams = threading.BoundedSemaphore(max_streams)
        self._routes = [(m, re.compile(p + r"\Z"), name) for m, p, name in ROUTES]

    # -- WSGI ------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        try:
            response = self.handle(environ)
        except HarnessError as exc:
            response = self.page("error.html", status=400, message=redact_text(exc.render(), self.ctx.secrets))
        headers = [("Content-Type", response.content_type), *SECURITY_HEADERS, *response.headers]
        start_response(status_line(response.status), headers)
        return response.body

    def allowed_hosts(self) -> set[str]:
        """The Host values this server answers to: its loopback address (by number or as localhost) and port."""
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"} if self.port else set()

    def handle(self, environ) -> Response:
        """Check the Host header, then route by method and path."""
        host = (environ.get("HTTP_HOST") or "").strip().lower()
        if host not in self.allowed_hosts():
            return Response(403, "refused: this inspector answers only to its loopback address "
                                 f"(http://127.0.0.1:{self.port}/), not to Host {host[:100]!r}\n",
                            "text/plain; charset=utf-8")
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO") or "/"
        allowed = []
        for route_method, pattern, name in self._routes:
            match = pattern.match(path)
            if match:
                if route_method == method or (route_method == "GET" and method == "HEAD"):
                    return getattr(self, "do_" + name)(environ, **match.groupdict())
                allowed.append(route_method)
        if allowed:
            return Response(405, "method not allowed\n", "text/plain; charset=utf-8", [("Allow", ", ".join(allowed))])
        return self.page("error.html", status=404, message=f"no page at {path}")

    def page(self, template: str, status: int = 200, **values) -> Response:
        """Render a template (escaped) with the session token and the current page's name."""
        html = self.env.get_template(template).render(token=self.token, **values)
        return Response(status, html)

    # -- pages -----------------------------------------------------------------------------------
    def replay_url(self) -> str:
        """Where "replay" sends by default: WEBHOOK_URL (with its token), or nothing when unset."""
        if not self.ctx.env.get("WEBHOOK_URL"):
            return ""
        try:
            return resolve_target_url(self.ctx, None)
        except HarnessError:
            return ""

    def do_home(self, environ):
        return Response(302, "", headers=[("Location", "/events")])

    def do_events(self, environ):
        params = _query(environ)
        data = views.events_page(self.ctx, params, self.replay_url())
        filters = data["filters"]
        stream = None
        if data["last_id"] is not None:  # the newest page follows new rows live
            stream = "/events/stream?" + "&".join(f"{k}={quote(v)}" for k, v in filters.items() if v)
        older = None
        if data["older"] is not None:
            older = "/events?" + "&".join(f"{k}={quote(v)}" for k, v in {**filters, "before": str(data["older"])}.items() if v)
        return self.page("events.html", nav="events", data=data, filters=filters, stream=stream, older=older,
                         has_default_target=bool(self.replay_url()))

    def do_stream(self, environ):
        """Server-sent events: each row stored after `after` (or Last-Event-ID) that matches the filters."""
        params = _query(environ)
        filters = views.clean_filters(params)
        after = _int(environ.get("HTTP_LAST_EVENT_ID")) or _int(params.get("after"))
        if after is None:
            after = views.last_row_id(self.ctx)
        if not self._streams.acquire(blocking=False):
            return Response(503, "too many live views open; close a tab\n", "text/plain; charset=utf-8")
        return Response(200, _Stream(self._stream(after, filters), self._streams.release),
                        "text/event-stream; charset=utf-8", [("X-Accel-Buffering", "no")])

    def _stream(self, after: int, filters: dict):
        yield b"retry: 300\n\n"
        ends = time.monotonic() + STREAM_SECONDS
        quiet_since = time.monotonic()
        replay_url = self.replay_url()
        while not self.closing.is_set() and time.monotonic() < ends:
            rows = views.new_rows(self.ctx, after, filters, replay_url)
            for row in rows:
                after = row["id"]
                yield f"id: {row['id']}\nevent: callback\ndata: {json.dumps(row)}\n\n".encode("utf-8")
            if rows:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > STREAM_KEEPALIVE:
                yield b": keep-alive\n\n"
                quiet_since = time.monotonic()
            self.closing.wait(STREAM_POLL)

    def do_replay(self, environ):
        """POST event_id (+ url, token): re-send that stored callback; 403 without this session's token."""
        form = _form(environ)
        origin = environ.get("HTTP_ORIGIN")
        if origin and origin.lower().removeprefix("http://") not in self.allowed_hosts():
            return _json(403, {"error": "refused: replay is only accepted from this inspector's own pages"})
        if not hmac.compare_digest(form.get("token", "").encode(), self.token.encode()):
            return _json(403, {"error": "refused: replay needs this session's token (reload the page)"})
        event_id = _int(form.get("event_id"))
        page = query_page(events_db(self.ctx), legacy_dir=callbacks_dir(self.ctx), before_id=event_id + 1,
                          limit=1) if event_id is not None else []
        if not page or page[0][0] != event_id:
            return _json(404, {"error": f"no stored event {form.get('event_id', '')[:40]!r}"})
        try:
            url = resolve_target_url(self.ctx, form.get("url", "").strip() or None)
            status, body = post_event(url, page[0][1]["event"])
        except HarnessError as exc:
            return _json(400, {"error": redact_text(exc.render(), self.ctx.secrets)})
        return _json(200, {"status": status, "body": redact_text(body, self.ctx.secrets),
                           "url": redact_text(url, self.ctx.secrets)})

    def do_conversations(self, environ):
        data = views.conversations_page(self.ctx, _query(environ))
        return self.page("conversations.html", nav="conversations", rows=data["rows"], before=data["before"],
                         older=None if data["older"] is None else f"/conversations?before={data['older']}")

    def do_conversation(self, environ, cid):
        data = views.conversation_page(self.ctx, cid)
        return self.page("conversation.html", nav="conversations", data=data, status=200 if not data["missing"] else 404)

    def do_runs(self, environ):
        return self.page("runs.html", nav="runs", runs=views.runs_page(self.ctx))

    def do_scenario(self, environ, run_id, slug):
        data = views.scenario_page(self.ctx, run_id, slug)
        if data is None:
            return self.page("error.html", status=404, message="no such run or scenario")
        return self.page("scenario.html", nav="runs", data=data)

    def do_run_file(self, environ, run_id, name):
        return _file(views.report_file(self.ctx, run_id, name))

    def do_scenario_file(self, environ, run_id, slug, name):
        return _file(views.report_file(self.ctx, run_id, name, slug))

    def do_state(self, environ):
        return self.page("state.html", nav="state", data=views.state_page(self.ctx))

    def do_static(self, environ, name):
        path = HERE / "static" / name
        return _file(path if path.is_file() else None)


class _Stream:
    """A streamed body whose close() (called by the server however the stream ends) frees its slot once."""

    def __init__(self, chunks, release):
        self.chunks, self._release = chunks, release

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        self.chunks.close()
        release, self._release = self._release, None
        if release:
            release()


def _file(path: Path | None) -> Response:
    if path is None:
        return Response(404, "not found\n", "text/plain; charset=utf-8")
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/json", "application/xml", "application/javascript"):
        kind += "; charset=utf-8"
    if kind.startswith(("application/json", "application/xml", "text/xml")):
        kind = "text/plain; charset=utf-8"  # shown as text in the browser, never interpreted
    return Response(200, path.read_bytes(), kind)


def _json(status: int, data: dict) -> Response:
    return Response(status, json.dumps(data), "application/json")


def _int(value) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _query(environ) -> dict:
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}


def _form(environ) -> dict:
    if not (environ.get("CONTENT_TYPE") or "").startswith("application/x-www-form-urlencoded"):
        return {}
    size = _int(environ.get("CONTENT_LENGTH")) or 0
    body = environ["wsgi.input"].read(min(size, MAX_FORM)).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
