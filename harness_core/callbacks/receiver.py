"""The callback receiver: keeps Tavus callbacks and hands them to plugins.

It is served by callbacks/server.py (one event loop, h11). A POST to the callback path carrying the
right `?token=` and a valid envelope is checked on the loop thread, committed to
logs/callbacks.sqlite3 (callbacks/eventstore.py: group commit, one fsync per batch) and answered
200 only after that; a copy already committed is answered 200 `{"duplicate": true}`.
The store hands each committed batch to one worker thread, which shows each event and
dispatches it to `harness_handle_callback`, one at a time in commit order, so a slow or failing
plugin never delays or loses a callback.

Bad input gets a JSON error (400/403/404/405/413/422) and a `rejected` record in
logs/webhook.jsonl, and the server keeps running: this is the harness's second error edge.
`GET /healthz` answers liveness checks (and proves which receiver answered, for the tunnel check).
"""
from __future__ import annotations

import functools
import hmac
import json
import queue
import re
import secrets as _secrets
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

from ..context import RunContext
from ..errors import ConfigError, HarnessError
from ..redact import redact, redact_text
from ..store import utc_now
from .eventstore import DB_NAME, LEGACY_DIR, EventStore, GroupCommit, Pending
from .events import CONVERSATION_ID
from .publicurl import DEFAULT_PATH, compose_callback_url, normalise_path
from .server import LoopServer, Request

MAX_BODY = 1024 * 1024  # callbacks larger than 1 MiB are refused with 413
TOOL_THREADS = 8  # delivery.api tool calls forwarded at once (each waits for the tool backend)
JSON = [("Content-Type", "application/json")]
# Limits that keep callbacks flowing while hundreds of sockets sit idle or trickle bytes (server.py):
CONNECTION_LIMIT = 1000  # open connections at once (beyond it: 503; waitress's default of 100 was easy to exhaust)
IDLE_TIMEOUT = 30  # seconds a kept-alive connection may sit idle between requests
REQUEST_TIMEOUT = 15.0  # seconds one request (headers + body) may take to arrive, however it trickles
CLEANUP_INTERVAL = 2  # seconds between the checks of both timeouts
REQUIRED_FIELDS = ("conversation_id", "event_type")
OPTIONAL_STRING_FIELDS = ("message_type", "timestamp", "webhook_url")


def json_answer(status: int, body, headers=()) -> tuple[int, list, bytes]:
    """(status, headers, bytes) of a JSON answer, as the server's `respond` takes them."""
    return status, [*JSON, *headers], json.dumps(body).encode()


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


TAG_PARAMS = ("objective", "guardrail")  # the callback_url query tags of resources/policies.py with_receiver()
TAG_VALUE = re.compile(r"\w{1,100}")


def resource_tag(query: dict) -> dict:
    """{"objective": NAME} or {"guardrail": NAME} from a callback URL's query: which objective or
    guardrail Tavus posted for (its callback_url was tagged so); {} for other callbacks."""
    return {key: query[key][0] for key in TAG_PARAMS if query.get(key) and TAG_VALUE.fullmatch(query[key][0])}


def dispatch(ctx: RunContext, event: dict) -> list[tuple[str, BaseException]]:
    """Hand one stored event to every `harness_handle_callback` implementation, each isolated.

    Returns (plugin name, exception) for each implementation that raised; the others still
    ran. With a wrapper implementation present the hook is called once as a whole instead.
    """
    hook = ctx.hook.harness_handle_callback
    impls = hook.get_hookimpls()
    if len(impls) <= 1 or any(i.wrapper or i.hookwrapper for i in impls):  # one call is already isolated
        try:
            hook(event=event, context=ctx)
        except Exception as exc:  # noqa: BLE001 - any plugin failure is reported, never raised
            return [(impls[0].plugin_name if len(impls) == 1 else "harness_handle_callback", exc)]
        return []
    failures = []
    for impl, call in _callers(ctx.pm, tuple(impls)):  # pluggy's own call order
        try:
            call(event=event, context=ctx)
        except Exception as exc:  # noqa: BLE001
            failures.append((impl.plugin_name, exc))
    return failures


@functools.lru_cache(maxsize=8)
def _callers(pm, impls: tuple) -> list:
    """(impl, a hook caller that runs only that impl), in pluggy's call order; made once per set of plugins."""
    return [(impl, pm.subset_hook_caller("harness_handle_callback",
                                         remove_plugins=[i.plugin for i in impls if i is not impl]))
            for impl in reversed(impls)]


class Receiver:
    """The callback receiver, in-process: start(), callback_url, events, wait_for(), stop().

    `token=None` makes a fresh random token for this instance (kept in memory only). An
    accepted event is stored before the 2xx goes out; it joins `events` (arrival order) once
    it has been shown and handed to the plugins, so wait_for() also waits for them. `show`
    (called with (record, its JSON text as stored) for each callback of a committed batch, in
    order) and `on_problem` (one line per rejected request or plugin failure) let the CLI print;
    `show` runs on the dispatch worker, never on the server's loop.
    """

    def __init__(self, ctx: RunContext, path: str = DEFAULT_PATH, token: str | None = None,
                 host: str = "127.0.0.1", port: int = 0, *, show=None, on_problem=None,
                 keep_events: bool = True, request_timeout: float = REQUEST_TIMEOUT, tools: dict | None = None):
        self.ctx = ctx
        self.path = normalise_path(path)
        self.token = token or _secrets.token_urlsafe(24)
        self.host, self.requested_port = host, int(port)
        self.request_timeout = request_timeout
        self.instance = uuid.uuid4().hex[:12]
        self.show, self.on_problem = show, on_problem
        self.tools = tools or {}  # name -> {url, auth}: delivery.api calls to /tools/NAME (callbacks/toolforward.py)
        if self.token not in ctx.store.secrets:
            ctx.store.secrets.append(self.token)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # batches of (event, record, text), as committed
        self.log = EventStore(ctx.store.logs_dir / DB_NAME, [*ctx.secrets, self.token],
                              legacy_dir=ctx.store.logs_dir / LEGACY_DIR, on_stored=self._queue.put)
        self.events: list[dict] = []  # handed-over events, for wait_for(); not kept when keep_events=False
        self._by_conversation: dict[str, list[dict]] = {}  # the same, by conversation id (events_of)
        self._arrivals: dict[str, threading.Condition] = {}  # per conversation, for wait_for_more()
        self.keep_events = keep_events
        self.accepted = 0
        self.rejected = 0
        self._mutex = threading.RLock()  # guards events and counters; shared by the conditions below
        self._cond = threading.Condition(self._mutex)
        self._server: LoopServer | None = None
        self._committer: GroupCommit | None = None
        self._tool_pool: ThreadPoolExecutor | None = None
        self._worker: threading.Thread | None = None
        parent = self.path.rsplit("/", 1)[0]
        self._health_paths = {"/healthz", f"{parent}/healthz"}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Receiver":
        try:
            self._server = LoopServer(self._serve, self.host, self.requested_port, connection_limit=CONNECTION_LIMIT,
                                      idle_timeout=IDLE_TIMEOUT, request_timeout=self.request_timeout,
                                      max_body=MAX_BODY, cleanup_interval=CLEANUP_INTERVAL)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}",
                              hint="pick another --port (0 takes a free one) or stop what uses it") from None
        self._worker = threading.Thread(target=self._work, name=f"receiver-dispatch:{self._server.port}",
                                        daemon=True)
        self._worker.start()
        self.log.start()
        self._committer = GroupCommit(self.log, self._server.loop)
        self._server.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Drain and stop: refuse new connections, answer every request in flight (each committed
        first), let the worker finish the events already accepted (bounded), close the store."""
        if self._server is not None:
            self._server.stop(timeout)
        if self._committer is not None:
            self._committer.close()
        if self._tool_pool is not None:
            self._tool_pool.shutdown(wait=False, cancel_futures=True)
        self.log.close()
        if self._worker is not None and self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(timeout)

    def __enter__(self) -> "Receiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        return self._server.port

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

    def events_of(self, conversation_id: str) -> list[dict]:
        """A copy of the handed-over events of one conversation, in arrival order."""
        with self._cond:
            return list(self._by_conversation.get(conversation_id, ()))

    def wait_for_more(self, conversation_id: str, seen: int, timeout: float) -> bool:
        """Wait up to `timeout` until conversation `conversation_id` has more than `seen` events
        handed over; only that conversation's arrivals wake the caller."""
        with self._cond:
            arrived = self._arrivals.get(conversation_id)
            if arrived is None:
                arrived = self._arrivals[conversation_id] = threading.Condition(self._mutex)
            return arrived.wait_for(lambda: len(self._by_conversation.get(conversation_id, ())) > seen, timeout)

    # -- answering (on the server's loop thread) ------------------------------------------------
    def _serve(self, request: Request, respond) -> None:
        """The server's handler: answer now, once the callback's batch is committed, or after a tool call."""
        if request.path.startswith("/tools/"):
            return self._tool(request, respond)
        try:
            outcome = self._handle(request)
        except Exception as exc:  # noqa: BLE001 - the receiver is an edge: a bug is a 500 + a log record
            outcome = self._failed(request, f"internal error: {type(exc).__name__}: {exc}",
                                   traceback.format_exc(limit=8))
        if isinstance(outcome, Pending):
            self._committer.add(outcome, lambda pending: respond(*self._stored(request, pending)))
        else:
            status, body, headers = outcome
            respond(*json_answer(status, body, headers))

    def _stored(self, request: Request, pending: Pending) -> tuple:
        """The answer to a callback once its batch is committed: 200, 200 duplicate, or 500."""
        if pending.error is not None:
            status, body, _ = self._failed(request, f"internal error: StoreError: {self.log.path}: {pending.error}",
                                           pending.detail)
            return json_answer(status, body)
        return 200, JSON, (b'{"ok": true}' if pending.stored else b'{"ok": true, "duplicate": true}')

    def _failed(self, request: Request, reason: str, detail: str | None = None) -> tuple:
        self._reject(request, 500, reason, detail=detail)
        return 500, {"error": "internal error; see logs/webhook.jsonl"}, []

    def _handle(self, request: Request):
        """A callback's checks: (status, body, headers) to answer now, or its Pending to commit first."""
        method, path = request.method, request.path
        if path in self._health_paths:
            if method not in ("GET", "HEAD"):
                return self._refuse(request, 405, f"{method} not allowed on {path}", [("Allow", "GET, HEAD")])
            return 200, {"ok": True, "receiver": self.instance}, []
        if path.rstrip("/") != self.path:
            return self._refuse(request, 404, f"no callback endpoint at {path} (it is {self.path})")
        if method != "POST":
            return self._refuse(request, 405, f"{method} not allowed; callbacks are POSTed", [("Allow", "POST")])
        query = parse_qs(request.query)
        given = (query.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return self._refuse(request, 403, "missing or wrong token in the callback URL")
        raw = request.body
        if raw is None:  # over the limit: the server did not read it
            length = request.headers.get("content-length", "")
            return self._refuse(request, 413, f"body of {int(length)} bytes is over the {MAX_BODY}-byte limit"
                                if length.isdigit() else f"body is over the {MAX_BODY}-byte limit")
        try:
            event = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[..." deeper than the parser goes
            return self._refuse(request, 400, f"body is not JSON we can read ({str(exc)[:80]})", preview=raw)
        # fewer brackets than MAX_NESTING cannot nest deeper: skip the walk for ordinary callbacks
        problems = validate_envelope(event, check_depth=raw.count(b"{") + raw.count(b"[") > MAX_NESTING)
        if problems:
            return self._refuse(request, 422, "; ".join(problems), preview=raw, problems=problems)
        tag = resource_tag(query)
        if tag:
            event["receiver_tag"] = tag
        return self.log.prepare(event, utc_now())  # answered once committed (_stored)

    def _tool(self, request: Request, respond) -> None:
        """A delivery.api tool call: verified, forwarded to the tool backend (off the loop thread),
        recorded, then answered with the backend's answer (toolforward.py)."""
        from .toolforward import handle
        if request.body is None:
            respond(413, JSON, b'{"error": "body over 1 MiB"}')
            return
        name = request.path[len("/tools/"):].strip("/")
        if self._tool_pool is None:
            self._tool_pool = ThreadPoolExecutor(TOOL_THREADS, thread_name_prefix="receiver-tools")
        call = self._server.loop.run_in_executor(self._tool_pool, handle, self.tools, name,
                                                 request.wsgi_environ(), request.body, self.token)
        call.add_done_callback(lambda future: self._tool_done(request, future, respond))

    def _tool_done(self, request: Request, future, respond) -> None:
        try:
            status, body, ctype, event = future.result()
        except Exception as exc:  # noqa: BLE001 - includes a stop that cancelled the call
            status, body, _ = self._failed(request, f"internal error: {type(exc).__name__}: {exc}")
            respond(*json_answer(status, body))
            return
        if status in (401, 404):
            self._reject(request, status, json.loads(body)["error"])
        answer = (status, [("Content-Type", ctype)], body)
        if event is None:
            respond(*answer)
        else:  # the call is on record before its answer goes back
            self._committer.add(self.log.prepare(event, utc_now()), lambda pending: respond(*answer))

    def _refuse(self, request: Request, status, reason, headers=(), *, preview=b"", problems=None):
        self._reject(request, status, reason, preview=preview)
        body = {"error": reason, "status": status}
        if problems:
            body["problems"] = problems
        return status, body, list(headers)

    def _reject(self, request: Request, status, reason, *, preview=b"", detail=None):
        with self._cond:
            self.rejected += 1
        record = {"type": "rejected", "status": status, "reason": reason,
                  "method": request.method, "path": request.path, "remote": request.remote}
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
            batch = self._queue.get()
            if batch is None:
                return
            if self.show:
                try:
                    self.show([(record, text) for _, record, text in batch])
                except Exception:  # noqa: BLE001
                    pass
            for event, _, _ in batch:
                for name, exc in dispatch(self.ctx, event):
                    self._plugin_failed(name, event, exc)
            with self._cond:
                self.accepted += len(batch)
                if self.keep_events:
                    for event, _, _ in batch:
                        self.events.append(event)
                        cid = event.get("conversation_id")
                        self._by_conversation.setdefault(cid, []).append(event)
                        if cid in self._arrivals:
                            self._arrivals[cid].notify_all()
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
