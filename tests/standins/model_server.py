"""A stand-in for a third party's OpenAI-compatible model server, for tests: a real HTTP server on 127.0.0.1.

The test decides what the model says with `answer(request_body) -> Answer`; the server records
every request (path, headers, JSON body) and answers `POST …/chat/completions` in the OpenAI
shape, streamed as server-sent events when the request asks for `stream: true`.

    with ModelServer(lambda body: Answer(tool_calls=[ToolCall("schedule_meeting", {"attendee": "Ana"})])) as model:
        persona["layers"]["llm"]["base_url"] = model.base_url
        ...
        assert model.requests[0].body["tools"][0]["function"]["name"] == "schedule_meeting"
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness_core.serving import BackgroundServer, status_line


@dataclass
class ToolCall:
    """A function call the model makes: a name and its arguments (sent as a JSON string, as OpenAI does)."""
    name: str
    arguments: dict = field(default_factory=dict)


@dataclass
class Answer:
    """What the model answers to one request: text, tool calls, or an HTTP error (`status` ≠ 200)."""
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    status: int = 200
    error_body: str = '{"error": {"message": "stand-in failure"}}'


@dataclass
class Recorded:
    """One request the server received."""
    path: str
    headers: dict
    body: dict


def last_user_words(body: dict) -> str:
    """The text of the last `user` message of a chat-completions request ('' when none)."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content or ""
    return ""


class ModelServer:
    """An OpenAI-compatible chat-completions server whose answers a test scripts."""

    def __init__(self, answer: Callable[[dict], Answer | str]):
        self.answer = answer
        self.requests: list[Recorded] = []
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self.server = BackgroundServer(self._app, threads=4)

    @property
    def base_url(self) -> str:
        """The URL to configure as `base_url` (the route suffix `/chat/completions` is added by clients)."""
        return f"{self.server.base_url}/v1"

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        """Wait (bounded) until at least `count` requests arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s with {len(self.requests)} of {count} model requests")
                self._cond.wait(left)
            return list(self.requests)

    def _app(self, environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(size) if size else b""
        path = environ.get("PATH_INFO", "")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        with self._cond:
            self.requests.append(Recorded(path, headers, body))
            self._cond.notify_all()
        if not path.endswith("/chat/completions") or environ.get("REQUEST_METHOD") != "POST":
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": {"message": "not found"}}']
        answer = self.answer(body)
        answer = Answer(content=answer) if isinstance(answer, str) else answer
        if answer.status != 200:
            start_response(status_line(answer.status), [("Content-Type", "application/json")])
            return [answer.error_body.encode()]
        completion_id = f"chatcmpl-{next(self._ids)}"
        calls = [{"id": f"call_{completion_id}_{i}", "type": "function",
                  "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                 for i, c in enumerate(answer.tool_calls)]
        finish = "tool_calls" if calls else "stop"
        model = body.get("model", "stand-in")
        if not body.get("stream"):
            message = {"role": "assistant", "content": answer.content or None, **({"tool_calls": calls} if calls else {})}
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps({"id": completion_id, "object": "chat.completion", "model": model,
                                "choices": [{"index": 0, "message": message, "finish_reason": finish}]}).encode()]
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return [f"data: {json.dumps(chunk)}\n\n".encode() for chunk in self._chunks(completion_id, model, answer, calls, finish)] \
            + [b"data: [DONE]\n\n"]

    @staticmethod
    def _chunks(completion_id, model, answer, calls, finish):
        def chunk(delta, reason=None):
            return {"id": completion_id, "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}
        yield chunk({"role": "assistant"})
        words = answer.content.split(" ") if answer.content else []
        for i, word in enumerate(words):  # the text in several pieces, as a real stream arrives
            yield chunk({"content": word if i == 0 else " " + word})
        for index, call in enumerate(calls):
            args = call["function"]["arguments"]
            half = len(args) // 2
            yield chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                         "function": {"name": call["function"]["name"], "arguments": args[:half]}}]})
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": args[half:]}}]})
        yield chunk({}, finish)

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop()
