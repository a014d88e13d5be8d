"""The Tavus HTTP client: one requests.Session, timeouts everywhere, errors as ApiError.

Reads (GET) and DELETE are retried by urllib3's Retry on the session's adapter; POST and
PATCH never are (a retried create could make a duplicate). Every exchange is appended to
logs/api.jsonl, redacted, except the pages of a listing: list_all() writes one summary line per
listing (the log of a plan over 500 configs was 144 MB of pages). Request headers are never logged.
"""
from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from . import __version__
from .env import Target
from .errors import ApiError, ApiUnreachable
from .store import Store

TIMEOUT = (5.0, 30.0)  # connect, read (seconds)
RETRY_STATUSES = (429, 500, 502, 503, 504)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})


@dataclass
class Reply:
    """A successful answer: the status and the decoded JSON body (None when empty)."""

    status: int
    body: object


MAX_RETRY_AFTER = 30.0  # seconds: a longer Retry-After is cut to this, so a read never waits unbounded


class BoundedRetry(Retry):
    """urllib3's Retry, with Retry-After honoured up to MAX_RETRY_AFTER seconds."""

    def get_retry_after(self, response):
        value = super().get_retry_after(response)
        return None if value is None else min(value, MAX_RETRY_AFTER)


def build_session(retries: int = 4, connect_retries: int | None = None) -> requests.Session:
    """A Session whose adapter retries idempotent requests with backoff and (bounded) Retry-After."""
    session = requests.Session()
    connect = retries if connect_retries is None else connect_retries
    retry = BoundedRetry(total=retries, connect=connect, read=retries, status=retries,
                  backoff_factor=0.3, status_forcelist=RETRY_STATUSES,
                  allowed_methods=IDEMPOTENT,
                  respect_retry_after_header=True, raise_on_status=False)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class TavusClient:
    """Talks to the Tavus API (or the local sandbox) described by a Target."""

    def __init__(self, target: Target, store: Store | None = None, *, timeout=TIMEOUT, retries: int = 4):
        self.target = target
        self.store = store
        self.timeout = timeout
        self.retries = retries
        self._listings: dict[tuple, list[dict]] = {}  # (path, params) -> rows, see list_all(cached=True)
        self._listing_lock = threading.Lock()  # cached listings: concurrent askers wait for one fetch
        # A local sandbox that refuses the connection is not running: say so now, not in 4 s.
        self.session = build_session(retries, connect_retries=1 if target.is_sandbox else None)
        # No proxy, netrc or CA bundle from the environment applies to a loopback sandbox, and
        # looking for them costs a scan of os.environ per request (a third of a busy run's CPU).
        self.session.trust_env = not target.is_sandbox
        self.session.headers.update({
            "x-api-key": target.api_key,
            "User-Agent": f"tavus-harness/{__version__}",
            "Accept": "application/json",
        })

    def request(self, method: str, path: str, *, json_body=None, params: dict | None = None, log: bool = True) -> Reply:
        """Send one request; return a Reply for 2xx/304, raise ApiError otherwise.

        `log=False` leaves a successful exchange out of logs/api.jsonl (list_all logs one summary
        per listing instead); a failure is always logged.
        """
        url = self.target.base_url + path
        started = time.monotonic()
        try:
            resp = self._send(method, url, json_body, params)
        except requests.RequestException as exc:
            self._log(method, url, params, json_body, None, None, started, error=type(exc).__name__)
            hint = ("is the sandbox still running? start it with `invoke sandbox`" if self.target.is_sandbox
                    else "check your network and TAVUS_API_URL")
            maybe_sent = not isinstance(exc, (requests.ConnectTimeout,)) and "refused" not in str(exc).lower()
            raise ApiUnreachable(f"{method} {path}: cannot reach {self.target.label} ({type(exc).__name__})",
                                 method=method, url=url, hint=hint, maybe_sent=maybe_sent) from None
        body = decode_body(resp)
        ok = resp.status_code == 304 or 200 <= resp.status_code < 300
        if log or not ok:
            self._log(method, url, params, json_body, resp.status_code, body, started)
        if ok:
            return Reply(resp.status_code, body)
        said = error_message(body, resp)
        raise ApiError(f"{method} {path}: {resp.status_code} {said}", status=resp.status_code, method=method,
                       url=url, body=body, hint=_hint_for(resp.status_code, self.target, said),
                       retry_after=parse_retry_after(resp.headers.get("Retry-After")))

    def _send(self, method: str, url: str, json_body, params) -> requests.Response:
        """One request; a read that breaks mid-answer (which urllib3 does not retry) is tried again.

        A connection that cannot be made at all was already retried by urllib3: it fails now.
        """
        attempts = self.retries + 1 if method in IDEMPOTENT else 1
        for attempt in range(1, attempts + 1):
            try:
                return self.session.request(method, url, json=json_body, params=params, timeout=self.timeout)
            except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
                if attempt == attempts or not broke_mid_answer(exc):
                    raise
                time.sleep(min(0.2 * attempt, 1.0))
        raise AssertionError("unreachable")

    def get(self, path: str, **params) -> object:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).body

    def post(self, path: str, body=None) -> object:
        return self.request("POST", path, json_body=body).body

    def create(self, path: str, body: dict, *, find_existing=None, attempts: int = 4,
               max_wait: float = 20.0, sleep=time.sleep) -> object:
        """POST a create without ever making a duplicate.

        429 means "not processed": wait Retry-After (or a backoff) and try again. After an
        ambiguous failure (the request may have been processed: connection dropped, timeout,
        5xx) `find_existing()` is asked first; when it finds the resource, that is the result,
        otherwise the POST is tried again. Waiting is bounded by `max_wait` seconds in total.
        """
        waited = 0.0
        for attempt in range(1, attempts + 1):
            try:
                created = self.post(path, body)
                self._remember_created(path, body, created)
                return created
            except ApiError as exc:
                rate_limited = exc.status == 429
                ambiguous = (isinstance(exc, ApiUnreachable) and exc.maybe_sent) or (exc.status or 0) >= 500
                if not (rate_limited or ambiguous) or attempt == attempts:
                    raise
                if ambiguous and find_existing is not None:
                    found = find_existing()
                    if found is not None:
                        self._remember_created(path, body, found)
                        return found
                delay = exc.retry_after or min(0.25 * 2 ** (attempt - 1), 4.0)
                if waited + delay > max_wait:
                    raise
                sleep(delay)
                waited += delay
        raise AssertionError("unreachable")

    def post_repeatable(self, path: str, body=None, *, attempts: int = 6, max_wait: float = 30.0,
                        sleep=time.sleep) -> object:
        """POST a request that is harmless to repeat (ending a conversation), retried until it lands.

        Retried after 429 (waiting Retry-After, or a backoff of 0.25 s doubling up to 4 s), after a
        5xx and after a connection that broke or timed out (a refused one is not retried: no server is
        listening): sending it twice changes nothing. At most
        `attempts` tries and `max_wait` seconds of waiting in total; then the last error is raised.
        """
        waited = 0.0
        for attempt in range(1, attempts + 1):
            try:
                return self.post(path, body)
            except ApiError as exc:
                transient = exc.status == 429 or (exc.status or 0) >= 500 or (
                    isinstance(exc, ApiUnreachable) and exc.maybe_sent)  # refused: nobody is there to retry
                if not transient or attempt == attempts:
                    raise
                delay = exc.retry_after if exc.retry_after is not None else min(0.25 * 2 ** (attempt - 1), 4.0)
                if waited + delay > max_wait:
                    raise
                sleep(delay)
                waited += delay
        raise AssertionError("unreachable")

    def patch(self, path: str, ops: list) -> Reply:
        return self.request("PATCH", path, json_body=ops)

    def list_all(self, path: str, *, limit: int = 100, max_pages: int = 50, cached: bool = False,
                 **params) -> list[dict]:
        """Every row of a `{data, total_count}` list endpoint, page by page (1-based pages).

        `cached=True`: a listing already fetched by this client (one command) is answered from
        memory; rows this client created since are appended to it (see create()), so lookups by
        name see them without listing again. The rows are shared with the cache: read them only.
        `cached=False` always asks the API (and refreshes the cache): use it where a stale answer
        would be wrong, e.g. to find what an ambiguous create left behind. Each fetch writes one
        summary record to logs/api.jsonl (pages, rows), not one per page.
        """
        key = (path, tuple(sorted((k, str(v)) for k, v in params.items() if v is not None)))
        if cached:  # threads that ask at once wait for one fetch instead of each listing the account
            with self._listing_lock:
                if key not in self._listings:
                    self._fetch_all(path, key, limit, max_pages, params)
                return list(self._listings[key])
        return self._fetch_all(path, key, limit, max_pages, params)

    def _fetch_all(self, path: str, key: tuple, limit: int, max_pages: int, params: dict) -> list[dict]:
        """List every page of `path` now, log one summary record, and keep the rows as the cached listing."""
        rows: list[dict] = []
        started, pages = time.monotonic(), 0
        for page in range(1, max_pages + 1):
            pages = page
            body = self.request("GET", path, params={k: v for k, v in {**params, "limit": limit, "page": page}.items()
                                                     if v is not None}, log=False).body or {}
            data = body.get("data") or [] if isinstance(body, dict) else []
            rows.extend(data)
            total = body.get("total_count") if isinstance(body, dict) else None
            if len(data) < limit or (isinstance(total, int) and len(rows) >= total):
                break
        if self.store is not None:
            self.store.append("api", {"type": "api", "method": "GET", "url": self.target.base_url + path,
                                      "params": dict(key[1]) or None, "listing": True, "pages": pages,
                                      "rows": len(rows), "status": 200,
                                      "duration_ms": round((time.monotonic() - started) * 1000, 1)})
        self._listings[key] = rows
        return list(rows)

    def _remember_created(self, path: str, body, created) -> None:
        """Append a created resource (what was sent, overlaid with the answer) to cached listings of `path`."""
        if not isinstance(created, dict):
            return
        row = {**body, **created} if isinstance(body, dict) else dict(created)
        for (listed, _params), rows in list(self._listings.items()):  # a snapshot: other threads may list
            if listed == path:
                rows.append(row)

    def _log(self, method, url, params, payload, status, body, started, error=None):
        if self.store is None:
            return
        record = {"type": "api", "method": method, "url": url, "params": params or None,
                  "payload": payload, "status": status, "response": body,
                  "duration_ms": round((time.monotonic() - started) * 1000, 1)}
        if error:
            record["error"] = error
        self.store.append("api", record)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form), capped at 30; None if absent, a date or not finite."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def decode_body(resp: requests.Response):
    """The JSON body of a response, the raw text when it is not JSON, or None when empty."""
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        return resp.text[:2000]


def broke_mid_answer(exc: requests.RequestException) -> bool:
    """True when the server was reached and the answer broke off (reset, truncated body)."""
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, urllib3.exceptions.ProtocolError)


def error_message(body, resp=None) -> str:
    """The server's own words from a Tavus error body (`message` or `error` key)."""
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else json.dumps(value)
        return json.dumps(body)[:300]
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return resp.reason if resp is not None and resp.reason else "no details"


def unwrap_policy(body) -> dict:
    """A GET-one answer of an objectives set or guardrail, flat or wrapped in `{"data": [obj]}`.

    (Not unwrap_one: a set's own items live under `data`.)
    """
    if isinstance(body, dict) and set(body) <= {"data", "total_count"} and isinstance(body.get("data"), list) \
            and len(body["data"]) == 1 and isinstance(body["data"][0], dict) \
            and any(k in body["data"][0] for k in ("objectives_id", "guardrails_id", "uuid", "name")):
        return body["data"][0]
    return body if isinstance(body, dict) else {}


def unwrap_one(body) -> dict:
    """Accept both shapes of a GET-one answer: a flat object or `{"data": [obj]}`."""
    if isinstance(body, dict) and isinstance(body.get("data"), list) and len(body) <= 2 and body["data"]:
        first = body["data"][0]
        if isinstance(first, dict):
            return first
    if isinstance(body, dict) and isinstance(body.get("data"), dict) and len(body) == 1:
        return body["data"]
    return body if isinstance(body, dict) else {}


# Tavus's words for an unknown id -> the field (and flag) the user should check.
ID_FIELDS = {"invalid replica_uuid": "default_replica_id / --default-replica-id",
             "invalid replica_id": "replica_id / --replica-id",
             "invalid persona_id": "persona_id / --persona-id",
             "invalid objectives_id": "objectives_id / --objectives-id",
             "invalid guardrails_id": "guardrails_id / --guardrails-id",
             "invalid guardrail_id": "guardrail_ids / --guardrails-id"}


def _hint_for(status: int, target: Target, message: str = "") -> str | None:
    if status == 400:
        for words, field in ID_FIELDS.items():
            if message.lower().startswith(words):
                return f"check {field}: no such id on {target.label}"
    if status == 401:
        return ("check TAVUS_API_KEY (and the sandbox's --api-key)" if target.is_sandbox
                else "check TAVUS_API_KEY in .env or the environment")
    if status == 402:
        return "the account is out of conversational credits"
    return None
