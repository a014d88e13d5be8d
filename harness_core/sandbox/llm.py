"""The sandbox's client for OpenAI-compatible models: the persona's custom LLM or a stand-in model.

Tavus calls a custom LLM at `POST {base_url}/chat/completions` with streaming (CONTRACT §10.7);
the exact body is undocumented, so the sandbox sends a standard chat-completions body
(`model`, `messages`, `tools`, `stream: true`, plus the persona's `extra_body`), the persona's
`headers`, its `api_key` as a bearer token and `default_query` as query parameters. A streamed
answer (server-sent events) and a plain JSON completion are both read.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

MODEL_TIMEOUT = 30.0  # real seconds for one model answer (our choice; Tavus documents none)


class ModelError(Exception):
    """The model failed: unreachable, an HTTP error, too slow, or an answer that is not a chat completion."""


@dataclass
class Endpoint:
    """Where and how to call one model. `label` names it in errors (never its key)."""

    base_url: str
    model: str
    label: str
    api_key: str | None = None
    headers: dict = field(default_factory=dict)
    extra_body: dict = field(default_factory=dict)
    default_query: dict = field(default_factory=dict)

    @property
    def where(self) -> str:
        """The URL without credentials or query: safe to show."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"


@dataclass
class ModelToolCall:
    """A function call the model made: `arguments` is the JSON string the model sent."""

    id: str
    name: str
    arguments: str


@dataclass
class Completion:
    """What the model answered: text and tool calls."""

    content: str = ""
    tool_calls: list[ModelToolCall] = field(default_factory=list)


def endpoint_for(persona: dict | None, settings) -> Endpoint | None:
    """The persona's custom LLM (`layers.llm.base_url`), else the configured stand-in, else None."""
    llm = (((persona or {}).get("layers") or {}).get("llm")) or {}
    if isinstance(llm.get("base_url"), str) and llm["base_url"]:
        return Endpoint(llm["base_url"], str(llm.get("model") or "custom"), "the persona's custom LLM",
                        llm.get("api_key") or None, dict(llm.get("headers") or {}), dict(llm.get("extra_body") or {}),
                        dict(llm.get("default_query") or {}))
    if settings.llm_url:
        return Endpoint(settings.llm_url, settings.llm_model or "default", "the sandbox model (TAVUS_SANDBOX_LLM_URL)",
                        settings.llm_api_key)
    return None


def complete(endpoint: Endpoint, messages: list[dict], tools: list[dict] | None = None,
             timeout: float = MODEL_TIMEOUT, **extra) -> Completion:
    """One chat completion, streamed; raises ModelError naming the endpoint and what went wrong."""
    body = {"model": endpoint.model, "messages": messages, "stream": True, **endpoint.extra_body, **extra}
    if tools:
        body["tools"] = tools
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if endpoint.api_key:
        headers["Authorization"] = f"Bearer {endpoint.api_key}"
    headers.update({str(k): str(v) for k, v in endpoint.headers.items()})
    url = endpoint.base_url.rstrip("/") + "/chat/completions"
    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        session.trust_env = False  # straight to the model, as Tavus would: no proxy from our environment
        try:
            resp = session.post(url, data=json.dumps(body), headers=headers, params=endpoint.default_query or None,
                                timeout=timeout, stream=True)
        except requests.Timeout:
            raise ModelError(f"{endpoint.label} at {endpoint.where} did not answer within {timeout:g}s") from None
        except requests.RequestException as exc:
            raise ModelError(f"{endpoint.label} at {endpoint.where} could not be reached ({type(exc).__name__})") from None
        with resp:
            if resp.status_code != 200:
                raise ModelError(f"{endpoint.label} at {endpoint.where} answered HTTP {resp.status_code}")
            try:
                if "text/event-stream" in resp.headers.get("Content-Type", ""):
                    return read_stream(resp.iter_lines(decode_unicode=True), deadline, endpoint)
                return read_completion(resp.json(), endpoint)
            except requests.RequestException as exc:
                raise ModelError(f"{endpoint.label} at {endpoint.where} broke off its answer ({type(exc).__name__})") from None
            except ValueError:
                raise ModelError(f"{endpoint.label} at {endpoint.where} answered something that is not a chat completion") from None


def read_completion(data, endpoint: Endpoint) -> Completion:
    """A plain (not streamed) chat.completion."""
    try:
        message = data["choices"][0]["message"]
        calls = [ModelToolCall(c.get("id") or f"call_{i}", c["function"]["name"], c["function"].get("arguments") or "{}")
                 for i, c in enumerate(message.get("tool_calls") or [])]
        return Completion(message.get("content") or "", calls)
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ModelError(f"{endpoint.label} at {endpoint.where} answered something that is not a chat completion") from None


def read_stream(lines, deadline: float, endpoint: Endpoint) -> Completion:
    """Server-sent `chat.completion.chunk`s up to `data: [DONE]`: text deltas joined, tool calls assembled by index."""
    text, calls, seen = [], {}, False
    for line in lines:
        if time.monotonic() > deadline:
            raise ModelError(f"{endpoint.label} at {endpoint.where} did not finish its answer in time")
        if not line or not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not isinstance(choices, list):
            raise ValueError("not a chunk")
        seen = True
        for choice in choices[:1]:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                text.append(delta["content"])
            for part in delta.get("tool_calls") or []:
                call = calls.setdefault(part.get("index", 0), {"id": "", "name": "", "arguments": ""})
                call["id"] = part.get("id") or call["id"]
                function = part.get("function") or {}
                call["name"] += function.get("name") or ""
                call["arguments"] += function.get("arguments") or ""
    if not seen:
        raise ValueError("no chunks")
    return Completion("".join(text), [ModelToolCall(c["id"] or f"call_{i}", c["name"], c["arguments"] or "{}")
                                      for i, c in sorted(calls.items())])
