"""The model stand-in answers in the OpenAI shape: a stream reassembles to the same message as a plain answer."""
import json

import requests

from tests.standins.model_server import Answer, ModelServer, ToolCall, last_user_words


def _reassemble(lines):
    text, calls = "", {}
    for line in lines:
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        delta = json.loads(line[6:])["choices"][0]["delta"]
        text += delta.get("content") or ""
        for part in delta.get("tool_calls", []):
            call = calls.setdefault(part["index"], {"name": "", "arguments": ""})
            call["name"] += part.get("function", {}).get("name", "")
            call["arguments"] += part.get("function", {}).get("arguments", "")
    return text, [calls[i] for i in sorted(calls)]


def test_stream_and_plain_answers_carry_the_same_text_and_tool_calls():
    answer = Answer("Booked with Ana at ten.", [ToolCall("schedule_meeting", {"attendee": "Ana", "hour": 10})])
    with ModelServer(lambda body: answer if "book" in last_user_words(body) else "no") as model:
        body = {"model": "m", "messages": [{"role": "user", "content": "please book"}]}
        plain = requests.post(f"{model.base_url}/chat/completions", json=body, timeout=5).json()["choices"][0]["message"]
        streamed = requests.post(f"{model.base_url}/chat/completions", json={**body, "stream": True}, timeout=5)
        text, calls = _reassemble(streamed.text.splitlines())
        other = requests.post(f"{model.base_url}/chat/completions",
                              json={"messages": [{"role": "user", "content": "hi"}]}, timeout=5).json()
    assert plain["content"] == text == "Booked with Ana at ten."
    assert [c["function"]["name"] for c in plain["tool_calls"]] == [c["name"] for c in calls] == ["schedule_meeting"]
    assert json.loads(calls[0]["arguments"]) == {"attendee": "Ana", "hour": 10}
    assert other["choices"][0]["message"]["content"] == "no"
    assert [r.body.get("stream") for r in model.requests] == [None, True, None]


def test_a_scripted_error_is_answered_with_its_status():
    with ModelServer(lambda body: Answer(status=503)) as model:
        reply = requests.post(f"{model.base_url}/chat/completions", json={"messages": []}, timeout=5)
    assert reply.status_code == 503
