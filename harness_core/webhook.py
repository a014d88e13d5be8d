"""The callback receiver: a WSGI app on waitress that keeps Tavus callbacks and hands them to plugins.

A POST to the callback path carrying the right `?token=` and a valid envelope is appended
durably (flushed and fsynced) to logs/callbacks/<conversation_id>.jsonl and answered 200 at
once. One worker thread then shows it and dispatches it to `harness_handle_callback`, one
event at a time in arrival order, so a slow or failing plugin never delays or loses a callback.

Bad input gets a JSON error (400/403/404/405/413/422) and a `rejected` record in
logs/webhook.jsonl, and the server keeps running: this is the harness's second error edge.
`GET /healthz` answers liveness checks (and proves which receiver answered, for the tunnel check).
"""
from __future__ import annotations

import hmac
import json
import logging
import os
import queue
import secrets as _secrets
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from .context import RunContext
from .env import is_loopback, write_dotenv
from .errors import ConfigError, HarnessError, PluginError
from .events import CONVERSATION_ID, format_event_line
from .redact import redact, redact_text
from .serving import BackgroundServer
from .signals import stop_on_signals
from .store import RUN_ID, utc_now

DEFAULT_PATH = "/tavus/callback"
DEFAULT_PORT = 8000
MAX_BODY = 1024 * 1024  # callbacks larger than 1 MiB are refused with 413
WAITRESS_BODY_LIMIT = 16 * MAX_BODY  # beyond this waitress itself answers 413 (unlogged)
REQUIRED_FIELDS = ("conversation_id", "event_type")
OPTIONAL_STRING_FIELDS = ("message_type", "timestamp", "webhook_url")
STATUS_TEXT = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
               413: "Content Too Large", 422: "Unprocessable Content", 500: "Internal Server Error"}
PING_TIMEOUT = (3.0, 5.0)


def validate_envelope(data, *, check_depth: bool = True) -> list[str]:
    """Problems that stop `data` from being stored as a conversation callback (empty list: fine).

    Required: a JSON object with string `conversation_id` (letters, digits, `-`, `_`; it names
    the log file) and `event_type`. `properties`, when present, must be an object, and
    `message_type`, `timestamp`, `webhook_url` strings.
    """
    if not isinstance(data, dict):
        return [f"the body is a JSON {type(data).__name__}, not an object"]
    problems = []
    for name in REQUIRED_FIELDS:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"missing required field `{name}`" if value in (None, "")
                            else f"`{name}` must be a non-empty string")
    cid = data.get("conversation_id")
    if isinstance(cid, str) and cid and not CONVERSATION_ID.fullmatch(cid):
        problems.append("`conversation_id` may only hold letters, digits, `-` and `_` (at most 128)")
    if "properties" in data and not isinstance(data["properties"], dict):
        problems.append("`properties` must be an object")
    for name in OPTIONAL_STRING_FIELDS:
        if data.get(name) is not None and not isinstance(data[name], str):
            problems.append(f"`{name}` must be a string")
    if check_depth and nesting(data) > MAX_NESTING:
        problems.append(f"the body is nested deeper than {MAX_NESTING} levels")
    return problems


MAX_NESTING = 64  # real callbacks are 4 or 5 levels deep; deeper ones would only strain the redactor


def nesting(value) -> int:
    """How deep lists and objects go in `value` (iterative: a hostile body cannot overflow the stack)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def normalise_path(path: str | None) -> str:
    """The callback path: starts with `/`, no trailing `/`, no query; `/healthz` is reserved."""
    path = DEFAULT_PATH if path is None else path.strip()
    if not path.startswith("/") or "?" in path or "#" in path or " " in path:
        raise ConfigError(f"--path: {path!r} is not a URL path", hint="use e.g. --path /tavus/callback")
    path = "/" + path.strip("/")
    if path == "/" or path.endswith("/healthz"):
        raise ConfigError(f"--path: {path!r} cannot be the callback path",
                          hint="use a path of its own, e.g. --path /tavus/callback")
    return path


def compose_callback_url(base_url: str, path: str, token: str) -> str:
    """`base_url` + `path` + `?token=...`: what goes into callback_url / WEBHOOK_URL."""
    return f"{base_url.rstrip('/')}{path}?{urlencode({'token': token})}"


class _DurableFile:
    """One JSONL file appended with group commit: one write + fsync covers every waiting line.

    `append()` returns once its line is on disk, or raises OSError if the write that carried
    it failed (then none of that batch counts as stored).
    """

    def __init__(self, path: Path):
        self.path = path
        self._io = threading.Lock()
        self._state = threading.Lock()
        self._pending: list[bytes] = []
        self._queued = 0
        self._done = 0
        self._failed: list[tuple[int, int]] = []  # (after, upto] ranges of lines whose write failed
        self._fd: int | None = None

    def append(self, line: bytes) -> None:
        with self._state:
            self._pending.append(line)
            self._queued += 1
            mine = self._queued
        with self._io:
            with self._state:
                if self._done >= mine:  # a thread before us wrote our line (or failed to)
                    if any(after < mine <= upto for after, upto in self._failed):
                        raise OSError(f"writing {self.path} failed")
                    return
                batch, after, upto = self._pending, self._done, self._queued
                self._pending = []
            try:
                self._write(b"".join(batch))
            except BaseException:  # none of this batch is stored, and every thread waiting on it hears so
                with self._state:
                    self._failed.append((after, upto))
                    self._done = upto
                raise
            with self._state:
                self._done = upto

    def _write(self, data: bytes) -> None:
        """Append and fdatasync through a descriptor kept open (O_APPEND); a failure closes it."""
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except FileNotFoundError:  # first line of the first conversation, or logs/ was removed
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            os.fdatasync(self._fd)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None

    def release(self) -> None:
        """Close the descriptor between writes (it is opened again by the next one)."""
        with self._io:
            self.close()


MAX_OPEN_FILES = 256  # descriptors kept open at once (well under the usual limit of 1024); least recent closed first


class CallbackLog:
    """logs/callbacks/<conversation_id>.jsonl: one redacted record per accepted callback, durable.

    `append()` returns only after the line is flushed and fsynced. Each file has its own
    lock, so conversations never wait on each other. A callback already stored (same
    conversation, event type and timestamp: Tavus re-sent it) is not stored again; records
    already on disk count, so a restarted receiver does not store a re-sent callback twice.
    Out-of-order callbacks are kept in arrival order with their own timestamps.
    """

    def __init__(self, directory: Path, secrets=()):
        self.directory = Path(directory)
        self.secrets = list(secrets)
        self._files: dict[str, _DurableFile] = {}
        self._seen: dict[str, set] = {}
        self._open: OrderedDict[str, None] = OrderedDict()  # conversations whose file is open, oldest first
        self._lock = threading.Lock()

    def path(self, conversation_id: str) -> Path:
        return self.directory / f"{conversation_id}.jsonl"

    def append(self, event: dict, received_at: str | None = None) -> dict | None:
        """Store one accepted envelope; return the record as written, or None for a duplicate."""
        cid = event["conversation_id"]
        key = (event.get("event_type"), event.get("timestamp")) if event.get("timestamp") else None
        record = redact({"ts": received_at or utc_now(), "run_id": RUN_ID, "type": "callback", "event": event},
                        self.secrets)
        try:
            line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from the sender: keep it as a JSON escape
            line = (json.dumps(record, ensure_ascii=True, default=str) + "\n").encode("ascii")
        with self._lock:
            durable = self._files.get(cid)
            if durable is None:
                durable = self._files[cid] = _DurableFile(self.path(cid))
                self._seen[cid] = self._keys_on_disk(cid)
            if key is not None:
                if key in self._seen[cid]:
                    return None
                self._seen[cid].add(key)
            self._open[cid] = None
            self._open.move_to_end(cid)
            stale = []
            while len(self._open) > MAX_OPEN_FILES:
                stale.append(self._files[self._open.popitem(last=False)[0]])
        for old in stale:  # bounded descriptors however many conversations a long session sees
            old.release()
        try:
            durable.append(line)
        except BaseException:
            with self._lock:
                self._seen[cid].discard(key)
            raise
        return record

    def close(self) -> None:
        """Close every open file (the receiver is stopping)."""
        with self._lock:
            for durable in self._files.values():
                durable.close()

    def _keys_on_disk(self, cid: str) -> set:
        keys = set()
        path = self.path(cid)
        if path.is_file():
            for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    event = json.loads(text).get("event") or {}
                except (ValueError, AttributeError):
                    continue
                if event.get("timestamp"):
                    keys.add((event.get("event_type"), event.get("timestamp")))
        return keys


def dispatch(ctx: RunContext, event: dict) -> list[tuple[str, BaseException]]:
    """Hand one stored event to every `harness_handle_callback` implementation, each isolated.

    Returns (plugin name, exception) for each implementation that raised; the others still
    ran. With a wrapper implementation present the hook is called once as a whole instead.
    """
    hook = ctx.hook.harness_handle_callback
    impls = hook.get_hookimpls()
    if any(i.wrapper or i.hookwrapper for i in impls):
        try:
            hook(event=event, context=ctx)
        except Exception as exc:  # noqa: BLE001 - any plugin failure is reported, never raised
            return [("harness_handle_callback", exc)]
        return []
    failures = []
    for impl in reversed(impls):  # pluggy's own call order
        others = [i.plugin for i in impls if i is not impl]
        try:
            ctx.pm.subset_hook_caller("harness_handle_callback", remove_plugins=others)(event=event, context=ctx)
        except Exception as exc:  # noqa: BLE001
            failures.append((impl.plugin_name, exc))
    return failures


class Receiver:
    """The callback receiver, in-process: start(), callback_url, events, wait_for(), stop().

    `token=None` makes a fresh random token for this instance (kept in memory only). An
    accepted event is stored before the 2xx goes out; it joins `events` (arrival order) once
    it has been shown and handed to the plugins, so wait_for() also waits for them. `show`
    (called with each stored record) and `on_problem` (one line per rejected request or plugin
    failure) let the CLI print; both run off the request threads.
    """

    def __init__(self, ctx: RunContext, path: str = DEFAULT_PATH, token: str | None = None,
                 host: str = "127.0.0.1", port: int = 0, *, show=None, on_problem=None, threads: int = 8,
                 keep_events: bool = True):
        self.ctx = ctx
        self.path = normalise_path(path)
        self.token = token or _secrets.token_urlsafe(24)
        self.host, self.requested_port, self.threads = host, int(port), threads
        self.instance = uuid.uuid4().hex[:12]
        self.show, self.on_problem = show, on_problem
        if self.token not in ctx.store.secrets:
            ctx.store.secrets.append(self.token)
        self.log = CallbackLog(ctx.store.logs_dir / "callbacks", [*ctx.secrets, self.token])
        self.events: list[dict] = []  # handed-over events, for wait_for(); not kept when keep_events=False
        self.keep_events = keep_events
        self.accepted = 0
        self.rejected = 0
        self._cond = threading.Condition()
        self._queue: queue.Queue = queue.Queue()
        self._server: BackgroundServer | None = None
        self._worker: threading.Thread | None = None
        parent = self.path.rsplit("/", 1)[0]
        self._health_paths = {"/healthz", f"{parent}/healthz"}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Receiver":
        try:
            self._server = BackgroundServer(self.app, host=self.host, port=self.requested_port,
                                            threads=self.threads, max_request_body_size=WAITRESS_BODY_LIMIT)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}",
                              hint="pick another --port (0 takes a free one) or stop what uses it") from None
        self._worker = threading.Thread(target=self._work, name=f"receiver-dispatch:{self._server.port}",
                                        daemon=True)
        self._worker.start()
        self._server.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, let the worker finish the events already accepted (bounded), and return."""
        if self._server is not None:
            self._server.stop(timeout)
        if self._worker is not None and self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(timeout)
        self.log.close()

    def __enter__(self) -> "Receiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        return int(self._server.port)  # waitress may report it as a string

    @property
    def base_url(self) -> str:
        return self._server.base_url if self._server else ""

    @property
    def callback_url(self) -> str:
        """The full local callback URL, path and `?token=` included."""
        return compose_callback_url(self.base_url, self.path, self.token)

    # -- waiting -----------------------------------------------------------------------------
    def wait_for(self, predicate, timeout: float = 10.0) -> list[dict]:
        """Wait until predicate(events so far) is true; return a copy of the events. TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(list(self.events)):
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [e.get("event_type") for e in self.events]
                    raise TimeoutError(f"no matching callback within {timeout:g}s; received {len(seen)}: {seen[-10:]}")
                self._cond.wait(left)
            return list(self.events)

    # -- the WSGI app ------------------------------------------------------------------------
    def app(self, environ, start_response):
        try:
            status, body, headers = self._handle(environ)
        except Exception as exc:  # noqa: BLE001 - the receiver is an edge: a bug is a 500 + a log record
            self._reject(environ, 500, f"internal error: {type(exc).__name__}: {exc}",
                         detail=traceback.format_exc(limit=8))
            status, body, headers = 500, {"error": "internal error; see logs/webhook.jsonl"}, []
        data = json.dumps(body).encode()
        start_response(f"{status} {STATUS_TEXT.get(status, '')}".strip(),
                       [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers])
        return [data]

    def _handle(self, environ):
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO") or "/"
        if path in self._health_paths:
            if method not in ("GET", "HEAD"):
                return self._refuse(environ, 405, f"{method} not allowed on {path}", [("Allow", "GET, HEAD")])
            return 200, {"ok": True, "receiver": self.instance}, []
        if path.rstrip("/") != self.path:
            return self._refuse(environ, 404, f"no callback endpoint at {path} (it is {self.path})")
        if method != "POST":
            return self._refuse(environ, 405, f"{method} not allowed; callbacks are POSTed", [("Allow", "POST")])
        given = (parse_qs(environ.get("QUERY_STRING", "")).get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return self._refuse(environ, 403, "missing or wrong token in the callback URL")
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > MAX_BODY:
            return self._refuse(environ, 413, f"body of {int(length)} bytes is over the {MAX_BODY}-byte limit")
        raw = environ["wsgi.input"].read(int(length) if length.isdigit() else MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return self._refuse(environ, 413, f"body is over the {MAX_BODY}-byte limit")
        try:
            event = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." deeper than the parser goes
            return self._refuse(environ, 400, f"body is not JSON we can read ({str(exc)[:80]})", preview=raw)
        # fewer brackets than MAX_NESTING cannot nest deeper: skip the walk for ordinary callbacks
        problems = validate_envelope(event, check_depth=raw.count(b"{") + raw.count(b"[") > MAX_NESTING)
        if problems:
            return self._refuse(environ, 422, "; ".join(problems), preview=raw, problems=problems)
        record = self.log.append(event, utc_now())
        if record is None:  # Tavus re-sent one we already have: acknowledged, stored once
            return 200, {"ok": True, "duplicate": True}, []
        self._queue.put((event, record))
        return 200, {"ok": True}, []

    def _refuse(self, environ, status, reason, headers=(), *, preview=b"", problems=None):
        self._reject(environ, status, reason, preview=preview)
        body = {"error": reason, "status": status}
        if problems:
            body["problems"] = problems
        return status, body, list(headers)

    def _reject(self, environ, status, reason, *, preview=b"", detail=None):
        with self._cond:
            self.rejected += 1
        record = {"type": "rejected", "status": status, "reason": reason,
                  "method": environ.get("REQUEST_METHOD"), "path": environ.get("PATH_INFO"),
                  "remote": environ.get("REMOTE_ADDR")}
        if preview:
            record["body_preview"] = preview[:500].decode("utf-8", "replace")
        if detail:
            record["detail"] = detail
        try:
            written = self.ctx.store.append("webhook", record)
        except OSError:  # the log itself failed; the answer still goes out
            written = redact(record, self.log.secrets)
        self._problem(f"{utc_now()[11:23]}  rejected {status} {written['method']} {written['path']}: {written['reason']}")

    def _problem(self, line: str) -> None:
        if self.on_problem:
            try:
                self.on_problem(redact_text(line, self.log.secrets))
            except Exception:  # noqa: BLE001 - a broken printer never stops the receiver
                pass

    # -- the worker: show + plugins, one event at a time ---------------------------------------
    def _work(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            event, record = item
            if self.show:
                try:
                    self.show(record)
                except Exception:  # noqa: BLE001
                    pass
            for name, exc in dispatch(self.ctx, event):
                self._plugin_failed(name, event, exc)
            with self._cond:
                self.accepted += 1
                if self.keep_events:
                    self.events.append(event)
                self._cond.notify_all()

    def _plugin_failed(self, name, event, exc):
        message = exc.render() if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
        try:
            self.ctx.store.append("webhook", {
                "type": "plugin_error", "plugin": name, "event_type": event.get("event_type"),
                "conversation_id": event.get("conversation_id"), "error": message,
                "traceback": "".join(traceback.format_exception(exc, limit=8))})
        except OSError:
            pass
        self._problem(f"{utc_now()[11:23]}  plugin {name} failed on {event.get('event_type')}: {message}")


# -- settings: token and WEBHOOK_URL ------------------------------------------------------------
def ensure_webhook_token(ctx: RunContext) -> tuple[str, bool]:
    """WEBHOOK_TOKEN from env/.env, or a new one saved to .env (mode 0600); returns (token, generated)."""
    token = ctx.env.get("WEBHOOK_TOKEN")
    if token:
        return token, False
    token = _secrets.token_urlsafe(24)
    write_dotenv(ctx.env, "WEBHOOK_TOKEN", token)
    ctx.store.secrets.append(token)
    return token, True


@dataclass
class SavedUrl:
    url: str
    path: Path
    notes: list[str] = field(default_factory=list)


def set_webhook_url(ctx: RunContext, url: str, *, as_is: bool = False) -> SavedUrl:
    """Check `url` (absolute http(s) with a path) and save it as WEBHOOK_URL in .env, keeping the rest.

    Unless `as_is`, the receiver's `?token=` (WEBHOOK_TOKEN, generated when absent) is added
    when the URL carries none, so the receiver accepts what Tavus posts there.
    """
    text = (url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{url!r} is not an absolute http(s) URL",
                          hint='give the full URL, e.g. "https://example.ngrok-free.app/tavus/callback"')
    if parts.path in ("", "/"):
        raise ConfigError(f"{url!r} has no path",
                          hint=f'add the callback path, e.g. "{parts.scheme}://{parts.netloc}{DEFAULT_PATH}"')
    if parts.fragment:
        raise ConfigError(f"{url!r} has a #fragment, which is never sent to a server", hint="remove it")
    notes = []
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if not as_is:
        token, generated = ensure_webhook_token(ctx)
        if generated:
            notes.append("generated WEBHOOK_TOKEN and saved it to .env")
        if "token" not in query:
            query["token"] = token
            notes.append("added ?token= from WEBHOOK_TOKEN (the receiver refuses callbacks without it)")
        elif query["token"] != token:
            notes.append("the URL's token differs from WEBHOOK_TOKEN: `invoke webhook` will refuse its callbacks")
    if is_loopback(text):
        notes.append("this URL is on this machine: only the local sandbox can reach it, Tavus cannot")
    final = urlunsplit(parts._replace(query=urlencode(query)))
    path = write_dotenv(ctx.env, "WEBHOOK_URL", final)
    return SavedUrl(final, path, notes)


# -- tunnel ----------------------------------------------------------------------------------------
def public_url(ctx: RunContext, port: int, path: str) -> str:
    """The public base URL (scheme + host) forwarding to local `port`, from the harness_public_url hook."""
    url = ctx.hook.harness_public_url(port=port, path=path, context=ctx)
    if not url:
        raise PluginError("no plugin could provide a public URL for --tunnel",
                          hint="unblock the built-in `tunnel` plugin (TAVUS_HARNESS_DISABLE_PLUGINS), or run "
                               f"`ngrok http {port}` and `invoke set-webhook-url URL`")
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PluginError(f"the tunnel plugin returned {url!r}, which is not an http(s) URL",
                          hint="fix or block the plugin that implements harness_public_url")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Ping:
    """What answered GET <base>/healthz: its status (None: nothing did) and a receiver's instance id."""

    url: str
    status: int | None
    receiver: str | None = None
    error: str = ""


def ping_healthz(base_url: str) -> Ping:
    """One GET of `base_url`/healthz (through a tunnel too); never raises."""
    url = base_url.rstrip("/") + "/healthz"
    try:
        resp = requests.get(url, timeout=PING_TIMEOUT, headers={"ngrok-skip-browser-warning": "1"})
    except requests.RequestException as exc:
        return Ping(url, None, error=type(exc).__name__)
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    return Ping(url, resp.status_code, answer.get("receiver") if isinstance(answer, dict) else None)


def check_reachable(base_url: str, instance: str) -> tuple[bool, str]:
    """Ping `base_url`/healthz and check that this very receiver (by instance id) answered."""
    ping = ping_healthz(base_url)
    if ping.status is None:
        return False, f"nothing answered at {ping.url} ({ping.error})"
    if ping.receiver == instance:
        return True, f"a ping through {ping.url} reached this receiver"
    if ping.receiver:
        return False, f"{ping.url} reached a different receiver (another `invoke webhook` on that port?)"
    return False, f"{ping.url} answered {ping.status}, but not from this receiver"


def receiver_answers(webhook_url: str) -> tuple[bool, str]:
    """Whether some `invoke webhook` receiver answers /healthz at the origin of `webhook_url`."""
    parts = urlsplit(webhook_url)
    ping = ping_healthz(f"{parts.scheme}://{parts.netloc}")
    if ping.status is None:
        return False, f"nothing that looks like a receiver answered at {ping.url} ({ping.error})"
    if ping.receiver:
        return True, f"a receiver answered at {ping.url}"
    return False, f"{ping.url} answered {ping.status}, but not as a callback receiver"


# -- the long-running command -------------------------------------------------------------------
@dataclass
class ServeSummary:
    accepted: int
    rejected: int
    public_url: str | None = None
    reachable: bool | None = None


def resolve_callback_url(ctx: RunContext, *, host: str | None = None, port: int | None = None, path: str | None = None,
              tunnel: bool = False) -> str:
    """The callback URL `invoke webhook` would use, token included, without serving (`--print-url`)."""
    path = normalise_path(path)
    token, _ = ensure_webhook_token(ctx)
    port = DEFAULT_PORT if port is None else int(port)
    if tunnel:
        return compose_callback_url(public_url(ctx, port, path), path, token)
    shown = "127.0.0.1" if host in (None, "", "0.0.0.0") else host
    return compose_callback_url(f"http://{shown}:{port}", path, token)


def serve(ctx: RunContext, *, say, warn, host: str | None = None, port: int | None = None,
          path: str | None = None, tunnel: bool = False, as_json: bool = False,
          stop: threading.Event | None = None) -> ServeSummary:
    """Run the receiver until Ctrl-C (or `stop` is set), printing through `say`/`warn`.

    With `tunnel`, finds the public URL through harness_public_url, saves it (with path and
    token) as WEBHOOK_URL in .env, and pings it end to end before saying "Ready".
    With `as_json`, stdout gets one raw (redacted) event per line and everything else goes to `warn`.
    """
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" chatter under bursts
    path = normalise_path(path)
    token, generated = ensure_webhook_token(ctx)
    if generated:
        warn("generated WEBHOOK_TOKEN and saved it to .env (callbacks without it are refused)")
    show = (lambda r: say(json.dumps(r["event"], ensure_ascii=False))) if as_json else \
        (lambda r: say(format_event_line(r)))
    info = warn if as_json else say
    rx = Receiver(ctx, path, token, host or "127.0.0.1", DEFAULT_PORT if port is None else int(port),
                  show=show, on_problem=warn, keep_events=False)  # a long session: they are on disk already
    rx.start()
    summary = ServeSummary(0, 0)
    try:
        if host == "0.0.0.0":
            info(f"Listening on all interfaces, port {rx.port}: anyone who can reach it and knows the token can post.")
        if tunnel:
            base = public_url(ctx, rx.port, rx.path)
            summary.public_url = compose_callback_url(base, rx.path, token)
            write_dotenv(ctx.env, "WEBHOOK_URL", summary.public_url)
            info(f"Public URL {summary.public_url} saved as WEBHOOK_URL in .env")
            summary.reachable, detail = check_reachable(base, rx.instance)
            if not summary.reachable:
                warn(f"NOT READY for Tavus: {detail}. Callbacks sent to WEBHOOK_URL will not arrive; "
                     f"check that the tunnel forwards to port {rx.port}.")
            else:
                info(f"Checked end to end: {detail}.")
        state = "Ready!" if summary.reachable in (None, True) else "Listening locally only."
        info(f"{state} Callbacks are stored in logs/callbacks/. Listening on {rx.callback_url} (Ctrl-C to quit)")
        if not tunnel:
            info("The full URL (with its token) for scripts: `invoke webhook --print-url`; "
                 "a public one: `invoke webhook --tunnel`.")
        try:
            with stop_on_signals():
                while not (stop.wait(0.5) if stop else time.sleep(0.5)):
                    pass
        except KeyboardInterrupt:
            pass
    finally:
        rx.stop()
    summary.accepted, summary.rejected = rx.accepted, rx.rejected
    return summary
