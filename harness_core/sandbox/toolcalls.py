"""A persona's tools in a sandbox call: which tools it has, and calling `delivery.api` tools as Tavus does.

Tools come from the persona's attached first-class tools (`tool_ids`, CONTRACT §10.4) and its
legacy inline `layers.llm.tools` (OpenAI function format; delivered by app message, and answered
per `generate_response`: our choice, as legacy tools have no `on_resolve`).

`delivery.api` calls (CONTRACT §10.4): the tool's method (default POST), URL with `{placeholders}`
filled from the arguments, `query_params`, `headers`, `content_type`, `timeout` (default 10 s) and
`auth`: bearer, api_key (header or query), basic, oauth2_client_credentials (token fetched, one
retry on 401) and hmac. Sandbox choices where Tavus documents nothing: with hmac the body is the
envelope `{"conversation_id", "tool_call_id", "tool_name", "arguments": "<JSON string>"}`, signed
as `X-Tavus-Signature: hex(HMAC-SHA256(secret, raw body))`; without hmac the body is the
`body_template` (placeholders filled) or else the arguments object; GET/HEAD/DELETE send no body
and, without `query_params`, put the arguments in the query. The answer's JSON (else its text) is
the output; 2xx is success, anything else an error. Loopback and private URLs are refused as
Tavus refuses them, unless the sandbox runs with --allow-loopback-tools.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import requests

from ..callbacks.toolforward import credentials
from .http import Reply
from .records import envelope
from .resources.tools import BODYLESS, check_url

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
INLINE_ON_RESOLVE = "generate_response"
_tokens: dict[str, str] = {}  # oauth2 access tokens by tool id (refreshed on a 401)
_tokens_lock = threading.Lock()


@dataclass
class ApiResult:
    """What a tool's URL answered: output (JSON or text), success/error, and the request body sent."""

    output: object
    status: str
    request_body: object = None
    http_status: int | None = None
    extra: dict = field(default_factory=dict)


def persona_tools(state, persona: dict | None) -> list[dict]:
    """Every tool of `persona` as a tool record (inline ones shaped like first-class app-message tools).

    The caller holds the state lock.
    """
    persona = persona or {}
    out = [state.tools[tid] for tid in persona.get("tool_ids") or [] if tid in state.tools]
    for item in (((persona.get("layers") or {}).get("llm") or {}).get("tools")) or []:
        function = item.get("function") if isinstance(item, dict) else None
        if isinstance(function, dict) and function.get("name"):
            out.append({"name": function["name"], "description": function.get("description", ""),
                        "parameters": function.get("parameters") or {"type": "object", "properties": {}},
                        "delivery": {"app_message": True}, "origin": "llm", "on_resolve": INLINE_ON_RESOLVE,
                        "trigger_type": "in_call", "inline": True})
    return out


def in_call(tools: list[dict]) -> list[dict]:
    """The tools the model may call during the call (LLM-origin, in_call)."""
    return [t for t in tools if t.get("origin", "llm") == "llm" and t.get("trigger_type", "in_call") == "in_call"]


def openai_tools(tools: list[dict]) -> list[dict]:
    """Tools in the OpenAI `tools` form a chat-completions request carries."""
    return [{"type": "function", "function": {"name": t["name"], "description": t.get("description", ""),
                                              "parameters": t.get("parameters") or {"type": "object", "properties": {}}}}
            for t in tools]


def output_text(output) -> str:
    """A tool output as text (objects as JSON)."""
    return output if isinstance(output, str) else json.dumps(output)


def fill(template: str, arguments: dict, encode: bool = False) -> str:
    """`{name}` in `template` replaced by the argument's value (URL-encoded in a path when `encode`)."""
    def value(match):
        raw = arguments.get(match.group(1), "")
        text = raw if isinstance(raw, str) else json.dumps(raw)
        return quote(text, safe="") if encode else text
    return PLACEHOLDER.sub(value, template)


def fill_body(template, arguments: dict):
    """A body_template with placeholders filled; a string that is one whole placeholder keeps the value's type."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        return arguments.get(whole.group(1)) if whole else fill(template, arguments)
    if isinstance(template, dict):
        return {k: fill_body(v, arguments) for k, v in template.items()}
    if isinstance(template, list):
        return [fill_body(v, arguments) for v in template]
    return template


def call_api(tool: dict, arguments: dict, *, conversation_id: str, tool_call_id: str,
             allow_loopback: bool = False) -> ApiResult:
    """Call a `delivery.api` tool's URL as Tavus does (module docstring); never raises for the backend's failures."""
    api = tool["delivery"]["api"]
    url = fill(api["url"], arguments, encode=True)
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"  # no query: it may hold a key
    try:
        check_url(url, "delivery.api.url", allow_loopback)
    except Reply as refused:
        return ApiResult(f"refused to call {where}: {refused.body['error'].split(': ', 2)[-1]}", "error")
    method = api.get("method", "POST")
    auth = api.get("auth") or {"type": "none"}
    headers = {str(k): str(v) for k, v in (api.get("headers") or {}).items()}
    params = {k: fill(v, arguments) for k, v in (api.get("query_params") or {}).items()}
    body = None
    if method in BODYLESS:
        if not api.get("query_params") and auth.get("type") != "hmac":
            params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in arguments.items()})
    elif auth.get("type") == "hmac":
        body = {"conversation_id": conversation_id, "tool_call_id": tool_call_id, "tool_name": tool["name"],
                "arguments": json.dumps(arguments)}
    elif api.get("body_template") is not None:
        body = fill_body(api["body_template"], arguments)
    else:
        body = arguments
    raw = b"" if body is None else json.dumps(body).encode()
    if body is not None:
        headers.setdefault("Content-Type", api.get("content_type") or "application/json")
    kind = auth.get("type")
    signed, in_query = credentials(auth, raw)  # the same rules the receiver verifies (callbacks/toolforward.py)
    headers.update(signed)
    params.update(in_query)
    timeout = float(api.get("timeout", 10))
    with requests.Session() as session:
        session.trust_env = False
        try:
            for attempt in range(2):
                if kind == "oauth2_client_credentials":
                    headers["Authorization"] = f"Bearer {oauth_token(session, tool, auth, timeout, fresh=attempt > 0)}"
                resp = session.request(method, url, data=raw or None, headers=headers, params=params or None,
                                       timeout=timeout, allow_redirects=False)
                if not (kind == "oauth2_client_credentials" and resp.status_code == 401 and attempt == 0):
                    break
        except requests.Timeout:
            return ApiResult(f"{where} did not answer within {timeout:g}s", "error", body)
        except (requests.RequestException, OAuthError) as exc:
            return ApiResult(f"could not call {where} ({exc if isinstance(exc, OAuthError) else type(exc).__name__})",
                             "error", body)
    try:
        output = resp.json()
    except ValueError:
        output = resp.text
    return ApiResult(output, "success" if 200 <= resp.status_code < 300 else "error", body, resp.status_code)


class OAuthError(Exception):
    """The token URL of an oauth2_client_credentials tool gave no access token."""


def oauth_token(session, tool: dict, auth: dict, timeout: float, fresh: bool = False) -> str:
    """A client-credentials access token for `tool`, cached until a 401 asks for a fresh one."""
    key = tool.get("tool_id") or tool["name"]
    with _tokens_lock:
        if not fresh and key in _tokens:
            return _tokens[key]
    form = {"grant_type": "client_credentials", "client_id": auth["client_id"], "client_secret": auth["client_secret"]}
    if auth.get("scope"):
        form["scope"] = auth["scope"]
    resp = session.post(auth["token_url"], data=form, timeout=timeout)
    try:
        token = resp.json()["access_token"]
    except (ValueError, KeyError, TypeError):
        raise OAuthError(f"the token URL answered HTTP {resp.status_code} without an access_token") from None
    with _tokens_lock:
        _tokens[key] = token
    return token


def run_post_call_tools(sb, cid: str) -> None:
    """After the end: each post_call `delivery.api` tool runs once, reported as application.post_call_action_executed.

    Arguments (Tavus fills them from the transcript): a configured model is asked, with the transcript
    and that one tool; without a model, each parameter's schema `default` (our choice).
    """
    with sb.state.lock:
        conv = sb.state.conversations.get(cid)
        if conv is None:
            return
        persona = sb.state.persona(conv.get("persona_id") or "")
        tools = [t for t in persona_tools(sb.state, persona)
                 if t.get("trigger_type") == "post_call" and (t.get("delivery") or {}).get("api")]
        dialogue = [(e["role"], e["content"]) for e in conv.get("dialogue") or []]
    for tool in tools:
        arguments = post_call_arguments(sb, persona, tool, dialogue)
        result = call_api(tool, arguments, conversation_id=cid, tool_call_id=f"post_call_{tool.get('tool_id', tool['name'])}",
                          allow_loopback=sb.settings.allow_loopback_tools)
        props = {"tool_id": tool.get("tool_id"), "tool_name": tool["name"], "status": result.status,
                 "request": {"body": result.request_body if result.request_body is not None else arguments},
                 "response": result.output}
        with sb.state.lock:
            conv = sb.state.conversations.get(cid)
            if conv is not None:
                sb._emit(conv, [envelope(conv, "application.post_call_action_executed", props)])
    if tools:
        sb.save()


def post_call_arguments(sb, persona, tool: dict, dialogue: list[tuple[str, str]]) -> dict:
    """The post-call tool's arguments: from the model when one is configured, else the schema's defaults."""
    from .llm import ModelError, complete, endpoint_for
    props = (tool.get("parameters") or {}).get("properties") or {}
    defaults = {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}
    endpoint = endpoint_for(persona, sb.settings)
    if endpoint is None:
        return defaults
    transcript = "\n".join(f"{role}: {content}" for role, content in dialogue)
    messages = [{"role": "system", "content": f"The call has ended. Call {tool['name']} with arguments taken from "
                                              "this transcript."}, {"role": "user", "content": transcript}]
    try:
        answer = complete(endpoint, messages, openai_tools([tool]),
                          tool_choice={"type": "function", "function": {"name": tool["name"]}})
        arguments = json.loads(answer.tool_calls[0].arguments) if answer.tool_calls else defaults
    except (ModelError, ValueError):
        return defaults
    return arguments if isinstance(arguments, dict) else defaults
