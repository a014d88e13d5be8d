"""`delivery.api` tool calls reaching the receiver at `/tools/NAME`: verified, forwarded, recorded.

Like `stripe listen --forward-to`: Tavus (or the sandbox) calls the tool's URL, which points at the
receiver (through `--tunnel` against the real API); the receiver checks the call carries the
tool's auth (CONTRACT §10.4: HMAC `X-Tavus-Signature` = hex HMAC-SHA256 of the raw body, bearer,
api_key in a header or the query, basic; with none, the receiver's `?token=`), forwards it to the
local tool backend the scenario names (`[tools.NAME] url`), answers with the backend's answer,
and records both as a `harness.tool_forwarded` event of the conversation.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlencode

import requests

FORWARD_TIMEOUT = 30.0
PASSED_HEADERS = ("Content-Type", "X-Tavus-Signature", "Authorization")


def header(environ, name: str) -> str:
    """A request header from the WSGI environ ('' when absent)."""
    key = "CONTENT_TYPE" if name.lower() == "content-type" else "HTTP_" + name.upper().replace("-", "_")
    return environ.get(key) or ""


def _same(given: str, wanted: str) -> bool:
    return bool(wanted) and hmac.compare_digest(given.encode(), wanted.encode())


def signature(secret: str, raw: bytes) -> str:
    """The X-Tavus-Signature Tavus puts on an HMAC-authenticated tool call: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def verify(auth: dict | None, environ, query: dict, raw: bytes, token: str) -> str | None:
    """Why the call is refused (None: it carries the tool's auth)."""
    kind = (auth or {}).get("type", "none")
    if kind == "hmac":
        given = header(environ, "X-Tavus-Signature").removeprefix("sha256=")
        return None if _same(given, signature(auth["secret"], raw)) else "X-Tavus-Signature does not match the body"
    if kind == "bearer":
        return None if _same(header(environ, "Authorization"), f"Bearer {auth['token']}") else "wrong or missing bearer token"
    if kind == "api_key":
        name, location = auth["name"], auth.get("location", "header")
        given = (query.get(name) or [""])[0] if location == "query" else header(environ, name)
        return None if _same(given, auth["value"]) else f"wrong or missing api key in {location} {name!r}"
    if kind == "basic":
        pair = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
        return None if _same(header(environ, "Authorization"), f"Basic {pair}") else "wrong or missing basic credentials"
    return None if _same((query.get("token") or [""])[0], token) else "missing or wrong token in the tool URL"


def credentials(auth: dict | None, raw: bytes) -> tuple[dict, dict]:
    """(headers, query parameters) that carry `auth` on a call whose body is `raw`: what `verify` checks."""
    kind = (auth or {}).get("type", "none")
    if kind == "hmac":
        return {"X-Tavus-Signature": signature(auth["secret"], raw)}, {}
    if kind == "bearer":
        return {"Authorization": f"Bearer {auth['token']}"}, {}
    if kind == "api_key":
        pair = {auth["name"]: auth["value"]}
        return ({}, pair) if auth.get("location", "header") == "query" else (pair, {})
    if kind == "basic":
        pair = base64.b64encode(f"{auth['username']}:{auth['password']}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}, {}
    return {}, {}


def call_details(raw: bytes) -> tuple[str, str, object]:
    """(conversation_id, tool_call_id, arguments) from the body: the sandbox's HMAC envelope
    `{conversation_id, tool_call_id, tool_name, arguments: "<JSON>"}`, or the arguments themselves."""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return "", "", raw[:500].decode("utf-8", "replace")
    if isinstance(body, dict) and {"tool_call_id", "arguments"} <= set(body):
        args = body["arguments"]
        try:
            args = json.loads(args) if isinstance(args, str) else args
        except ValueError:
            pass
        return str(body.get("conversation_id") or ""), str(body["tool_call_id"]), args
    return "", "", body


def forward(route: dict, environ, query: dict, raw: bytes) -> tuple[int, bytes, str]:
    """Send the call on to the backend; (status, body, content type). 502 when it cannot be reached."""
    rest = {k: v for k, v in query.items() if k != "token"}
    url = route["url"] + (("&" if "?" in route["url"] else "?") + urlencode(rest, doseq=True) if rest else "")
    headers = {name: header(environ, name) for name in PASSED_HEADERS if header(environ, name)}
    try:
        resp = requests.request(environ.get("REQUEST_METHOD", "POST"), url, data=raw, headers=headers,
                                timeout=float(route.get("timeout_seconds", FORWARD_TIMEOUT)))
    except requests.RequestException as exc:
        body = json.dumps({"error": f"the tool backend at {route['url']} did not answer ({type(exc).__name__})"})
        return 502, body.encode(), "application/json"
    return resp.status_code, resp.content, resp.headers.get("Content-Type", "application/octet-stream")


def handle(routes: dict, name: str, environ, raw: bytes, token: str) -> tuple[int, bytes, str, dict | None]:
    """One call to /tools/NAME: (status, body, content type, the event to record or None)."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    route = routes.get(name)
    if route is None or not route.get("url"):
        return 404, json.dumps({"error": f"no tool backend for {name!r} here"}).encode(), "application/json", None
    problem = verify(route.get("auth"), environ, query, raw, token)
    if problem:
        return 401, json.dumps({"error": problem}).encode(), "application/json", None
    status, body, content_type = forward(route, environ, query, raw)
    cid, call_id, arguments = call_details(raw)
    cid = cid or (query.get("conversation_id") or [""])[0] or "unattributed"
    try:
        output = json.loads(body)
    except ValueError:
        output = body[:2000].decode("utf-8", "replace")
    event = {"conversation_id": cid, "event_type": "harness.tool_forwarded", "message_type": "harness",
             "properties": {"name": name, "tool_call_id": call_id, "arguments": arguments,
                            "auth": (route.get("auth") or {}).get("type", "none"), "backend": route["url"],
                            "status": "success" if 200 <= status < 300 else "error",
                            "response": {"status": status, "output": output}}}
    return status, body, content_type, event


class BackendRoutes:
    """Every /tools/NAME forwarded to `{base}/tools/NAME`, all with one auth (for `invoke webhook`)."""

    def __init__(self, base: str, auth: dict | None = None):
        self.base, self.auth = base.rstrip("/"), auth

    def get(self, name: str) -> dict | None:
        return {"url": f"{self.base}/tools/{name}", "auth": self.auth} if name else None


def routes_from_env(env) -> BackendRoutes | dict:
    """`invoke webhook`'s tool forwarding: TOOL_BACKEND_URL (e.g. http://127.0.0.1:9000), checked
    with HMAC when TOOL_HMAC_SECRET is set, else with the receiver's token; none without the URL."""
    base = env.get("TOOL_BACKEND_URL")
    if not base:
        return {}
    secret = env.get("TOOL_HMAC_SECRET")
    return BackendRoutes(base, {"type": "hmac", "secret": secret} if secret else None)
