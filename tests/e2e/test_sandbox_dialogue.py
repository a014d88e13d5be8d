"""The sandbox's dialogue engine over real HTTP (issue 16, sandbox side): chat conversations driven by
send-app-message, the room and rules routes, a custom LLM (the stand-in model server), tool calls by
app message and by delivery.api with each auth mode, objective and guardrail callbacks."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time

import pytest
import requests

from harness_core.sandbox import Sandbox, SandboxSettings
from harness_core.serving import BackgroundServer
from tests.standins.model_server import Answer, ModelServer, ToolCall

KEY = {"x-api-key": "any-key"}
STOCK = "r4317e64d25a"
SECRET = "hmac-secret-never-logged"


@pytest.fixture
def sb():
    with Sandbox(SandboxSettings(time_scale=0.01, max_concurrent=50, allow_loopback_tools=True)) as sandbox:
        yield sandbox


def call(sb, method, path, body=None, **params):
    return requests.request(method, sb.url + path, json=body, headers=KEY, params=params, timeout=10)


def control(sb, method, path, body=None, **params):
    return requests.request(method, sb.url.replace("/v2", "/_sandbox") + path, json=body, headers=KEY,
                            params=params, timeout=40)


def persona(sb, **extra):
    body = {"persona_name": "Helper", "system_prompt": "You help with orders.", "context": "Shop: Acme.",
            "default_replica_id": STOCK, **extra}
    resp = call(sb, "POST", "/personas", body)
    assert resp.status_code == 200, resp.text
    return resp.json()["persona_id"]


def chat(sb, pid, **extra):
    resp = call(sb, "POST", "/conversations", {"persona_id": pid, "chat": True, **extra})
    assert resp.status_code == 200, resp.text
    return resp.json()["conversation_id"]


def send(sb, cid, event_type="conversation.respond", **props):
    return call(sb, "POST", f"/conversations/{cid}/send-app-message",
                {"message_type": "conversation", "event_type": event_type, "conversation_id": cid, "properties": props})


def events_until(sb, cid, done, timeout=15.0):
    """Long-poll the room until done(events) holds; return every event so far."""
    seen, last, deadline = [], 0, time.monotonic() + timeout
    while not done(seen):
        assert time.monotonic() < deadline, f"room never got there: {[e['event_type'] for e in seen]}"
        page = control(sb, "GET", f"/conversations/{cid}/room", after=last, wait=2).json()
        seen += page["events"]
        last = page["last_seq"]
    return seen


def turn_ended(turn):
    return lambda evs: any(e["event_type"] == "conversation.replica.stopped_speaking" and e["turn_idx"] == turn
                           for e in evs)


def replies(events):
    return [e["properties"]["speech"] for e in events
            if e["event_type"] == "conversation.utterance" and e["properties"]["role"] == "replica"]


# --- the rule engine, events and transcript ----------------------------------------------------
def test_a_chat_turn_with_rules_gives_ordered_events_and_the_transcript_of_what_was_said(sb, collector):
    pid = persona(sb)
    cid = chat(sb, pid, custom_greeting="Hello, how can I help?", callback_url=collector.url)
    rules = [{"when": r"order\s+(status|where)", "reply": "It ships tomorrow."}]
    assert control(sb, "PUT", f"/conversations/{cid}/rules", {"rules": rules}).json() == {"rules": rules}
    assert send(sb, cid, text="What's my order status?").status_code == 200
    assert send(sb, cid, text="Thanks").status_code == 200
    events = events_until(sb, cid, turn_ended(2))
    turn1 = [e for e in events if e["turn_idx"] == 1]
    assert [e["event_type"] for e in turn1] == ["conversation.utterance", "conversation.replica.started_speaking",
                                                "conversation.utterance", "conversation.replica.stopped_speaking"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len({e["inference_id"] for e in turn1}) == 1 and turn1[0]["inference_id"]
    assert replies(events) == ["Hello, how can I help?", "It ships tomorrow.", "Got it: Thanks"]
    assert call(sb, "POST", f"/conversations/{cid}/end").status_code == 200
    ready = collector.wait_for(lambda b: any(e["event_type"] == "application.transcription_ready" for e in b))
    transcript = next(e for e in ready if e["event_type"] == "application.transcription_ready")["properties"]["transcript"]
    assert [(t["role"], t["content"]) for t in transcript[1:]] == [
        ("assistant", "Hello, how can I help?"), ("user", "What's my order status?"), ("assistant", "It ships tomorrow."),
        ("user", "Thanks"), ("assistant", "Got it: Thanks")]
    shutdown = next(e for e in ready if e["event_type"] == "system.shutdown")
    ended = time.mktime(time.strptime(shutdown["timestamp"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone + 1
    assert all(t["timestamp"] + t["duration"] <= ended for t in transcript[1:]), "nothing said after the end"
    verbose = call(sb, "GET", f"/conversations/{cid}", verbose="true").json()["events"]
    assert [e for e in verbose if "seq" in e] == events, "in-call events are in the verbose GET too"
    assert not [d for d in sb.deliveries if d["event_type"].startswith("conversation.")], "never to callback_url"


def test_messages_sent_before_the_replica_joins_wait_for_it(collector):
    with Sandbox(SandboxSettings(time_scale=0.2)) as sb:  # the replica joins 0.4 s after the create
        cid = chat(sb, persona(sb), callback_url=collector.url)
        assert send(sb, cid, text="early words").status_code == 200
        assert sb.store.conversations[cid].get("dialogue") is None
        events = events_until(sb, cid, turn_ended(1))
        assert replies(events) == ["Got it: early words"]
        joined = collector.wait_for(lambda b: b)[0]
        assert joined["event_type"] == "system.replica_joined"


@pytest.mark.parametrize("rule, needle", [
    ({"when": "x", "replied": "y"}, "rules[0]: unknown key 'replied'"),
    ({"when": "(unclosed"}, "rules[0].when: not a valid regular expression"),
    ({"when": "x", "tool_call": {"name": "nope"}}, "rules[0].tool_call.name: the persona has no tool 'nope'"),
    ({"when": "x", "objective_completed": {"name": "ghost"}}, "the persona has no objective 'ghost'"),
    ({"when": "x", "guardrail_triggered": "ghost"}, "the persona has no guardrail 'ghost'"),
    ({"reply": "no when"}, "rules[0].when: required"),
])
def test_a_malformed_rule_is_a_400_naming_it(sb, rule, needle):
    cid = chat(sb, persona(sb))
    resp = control(sb, "PUT", f"/conversations/{cid}/rules", {"rules": [rule]})
    assert resp.status_code == 400 and needle in resp.json()["error"], resp.text


# --- send-app-message limits -------------------------------------------------------------------
def test_send_app_message_limits_and_errors(sb):
    cid = chat(sb, persona(sb))
    big = send(sb, cid, text="x" * 70_000)
    assert big.status_code == 413 and big.json() == {"error": "Request body exceeds 65536 bytes"}
    assert send(sb, "c0000000000000000", text="hi").status_code == 404
    bad = call(sb, "POST", f"/conversations/{cid}/send-app-message", {"message_type": "chat", "event_type": "x"})
    assert bad.status_code == 400 and "message_type" in bad.json()["error"]
    assert send(sb, cid, text="").status_code == 400
    assert send(sb, cid, "conversation.sensitivity").status_code == 400
    assert send(sb, cid, "conversation.tool_result", tool_call_id="c1", output=3).status_code == 400
    codes = [send(sb, cid, "app.custom", n=i).status_code for i in range(125)]
    assert codes.count(200) == 120 - 4 and codes[-1] == 429  # the 4 refused as malformed above count too
    limited = send(sb, cid, text="hi")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    relayed = events_until(sb, cid, lambda evs: len([e for e in evs if e["event_type"] == "app.custom"]) == 116)
    assert [e["properties"]["n"] for e in relayed if e["event_type"] == "app.custom"][:3] == [0, 1, 2]
    other = chat(sb, persona(sb))
    call(sb, "POST", f"/conversations/{other}/end")
    ended = send(sb, other, text="hello?")
    assert ended.status_code == 400 and ended.json() == {"error": "App messages can only be sent to active conversations."}


# --- app-message tools, objectives, guardrails -------------------------------------------------
def test_an_app_message_tool_waits_for_the_apps_result_and_objectives_and_guardrails_call_back(sb, collector):
    objectives = call(sb, "POST", "/objectives", {"name": "Set", "data": [
        {"objective_name": "confirm_details", "objective_prompt": "Confirm", "callback_url": collector.url + "?o=1"}]}).json()
    guardrail = call(sb, "POST", "/guardrails", {"guardrail_name": "no_medical_advice", "guardrail_prompt": "No advice",
                                                 "callback_url": collector.url + "?g=1"}).json()
    tools = [{"type": "function", "function": {"name": "schedule_meeting", "description": "Book",
                                               "parameters": {"type": "object", "properties": {"attendee": {"type": "string"}}}}}]
    pid = persona(sb, objectives_id=objectives["objectives_id"], guardrail_ids=[guardrail["uuid"]],
                  layers={"llm": {"tools": tools}})
    cid = chat(sb, pid)
    rules = [{"when": "book", "tool_call": {"name": "schedule_meeting", "arguments": {"attendee": "Ana"}},
              "reply": "Booked: {result}"},
             {"when": "thanks", "reply": "Bye.", "objective_completed": {"name": "confirm_details",
                                                                         "output_variables": {"attendee": "Ana"}}},
             {"when": "pills", "reply": "I can't advise on that.", "guardrail_triggered": "no_medical_advice"}]
    assert control(sb, "PUT", f"/conversations/{cid}/rules", {"rules": rules}).status_code == 200
    send(sb, cid, text="Please book Ana")
    asked = events_until(sb, cid, lambda evs: any(e["event_type"] == "conversation.tool_call" for e in evs))[-1]
    assert asked["properties"]["name"] == "schedule_meeting" and json.loads(asked["properties"]["arguments"]) == {"attendee": "Ana"}
    assert send(sb, cid, "conversation.tool_result", tool_call_id=asked["properties"]["tool_call_id"],
                output={"slot": "10:00"}, status="success").status_code == 200
    send(sb, cid, text="thanks")
    send(sb, cid, text="which pills?")
    events = events_until(sb, cid, turn_ended(3))
    assert replies(events) == ['Booked: {"slot": "10:00"}', "Bye.", "I can't advise on that."]
    assert not [e for e in events if e["event_type"] == "conversation.tool_result"], "the app's own result is not echoed"
    done = next(e for e in events if e["event_type"] == "conversation.objective.completed")
    assert done["turn_idx"] == 2 and done["properties"] == {"objective_name": "confirm_details", "output_variables": {"attendee": "Ana"}}
    fired = next(e for e in events if e["event_type"] == "conversation.guardrail.triggered")
    assert fired["properties"] == {"guardrail_name": "no_medical_advice", "guardrail_id": guardrail["uuid"],
                                   "modality": "verbal", "utterance": "which pills?"}
    bodies = collector.wait_for(lambda b: len(b) == 2)
    by_query = {e["query"]: e["body"] for e in collector.events}
    assert by_query["o=1"] == {"conversation_id": cid, "event_type": "conversation.objective.completed",
                               "message_type": "conversation", "properties": done["properties"]}
    assert by_query["g=1"]["event_type"] == "conversation.guardrail.triggered" and len(bodies) == 2


# --- a custom LLM and delivery.api tools -------------------------------------------------------
class ToolBackend:
    """A developer's tool backend: records each request, answers an order status."""

    def __init__(self):
        self.requests = []
        self.server = BackgroundServer(self.app, threads=2)

    def app(self, environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(size) if size else b""
        self.requests.append({"headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
                              "query": environ.get("QUERY_STRING"), "raw": raw, "method": environ["REQUEST_METHOD"]})
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status": "shipped"}']


AUTHS = {"bearer": {"type": "bearer", "token": "tok-123"},
         "api_key_header": {"type": "api_key", "location": "header", "name": "X-Key", "value": "k-1"},
         "api_key_query": {"type": "api_key", "location": "query", "name": "key", "value": "k-2"},
         "basic": {"type": "basic", "username": "ana", "password": "pw"},
         "hmac": {"type": "hmac", "secret": SECRET}}


@pytest.mark.parametrize("mode", list(AUTHS))
def test_a_custom_llm_calls_an_api_tool_with_its_auth_and_gets_the_result_back(sb, mode):
    backend = ToolBackend()

    def answer(body):
        if body["messages"][-1]["role"] == "tool":
            return Answer(content="Your order is " + json.loads(body["messages"][-1]["content"])["status"] + ".")
        return Answer(tool_calls=[ToolCall("lookup_order_status", {"order_id": "A-7"})])

    backend.server.start()
    with ModelServer(answer) as model:
        tool = call(sb, "POST", "/tools", {
            "name": "lookup_order_status", "description": "Look up an order",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
            "on_resolve": "generate_response",
            "delivery": {"api": {"url": f"{backend.server.base_url}/tools/lookup", "auth": AUTHS[mode]}}}).json()
        pid = persona(sb, layers={"llm": {"model": "my-model", "base_url": model.base_url, "api_key": "sk-model"}})
        assert call(sb, "POST", f"/pals/{pid}/tools", {"tool_ids": [tool["tool_id"]]}).status_code == 200
        cid = chat(sb, pid, conversational_context="The caller is a VIP.")
        send(sb, cid, text="Where is order A-7?")
        events = events_until(sb, cid, turn_ended(1))
        first, second = model.wait_for_requests(2)
    backend.server.stop()
    body = first.body
    assert body["stream"] is True and body["model"] == "my-model" and first.headers["Authorization"] == "Bearer sk-model"
    assert body["messages"][0] == {"role": "system", "content": "You help with orders.\n\nShop: Acme.\n\nThe caller is a VIP."}
    assert body["messages"][-1] == {"role": "user", "content": "Where is order A-7?"}
    assert body["tools"][0]["function"]["name"] == "lookup_order_status"
    assert second.body["messages"][-1]["role"] == "tool" and json.loads(second.body["messages"][-1]["content"]) == {"status": "shipped"}
    assert replies(events) == ["Your order is shipped."]
    result = next(e for e in events if e["event_type"] == "conversation.tool_result")["properties"]
    assert result["output"] == {"status": "shipped"} and result["status"] == "success" and result["source"] == "api"
    (got,) = backend.requests
    headers = got["headers"]
    if mode == "hmac":
        assert hmac.compare_digest(headers["HTTP_X_TAVUS_SIGNATURE"], hmac.new(SECRET.encode(), got["raw"], hashlib.sha256).hexdigest())
        envelope = json.loads(got["raw"])
        assert envelope["conversation_id"] == cid and envelope["tool_name"] == "lookup_order_status"
        assert json.loads(envelope["arguments"]) == {"order_id": "A-7"}
    else:
        assert json.loads(got["raw"]) == {"order_id": "A-7"}
    expected = {"bearer": ("HTTP_AUTHORIZATION", "Bearer tok-123"), "api_key_header": ("HTTP_X_KEY", "k-1"),
                "basic": ("HTTP_AUTHORIZATION", "Basic " + base64.b64encode(b"ana:pw").decode())}.get(mode)
    if expected:
        assert headers[expected[0]] == expected[1]
    if mode == "api_key_query":
        assert got["query"] == "key=k-2"
    assert SECRET not in json.dumps(call(sb, "GET", f"/conversations/{cid}", verbose="true").json())


def test_a_failing_model_is_a_conversation_error_and_the_turn_still_ends(sb):
    with ModelServer(lambda body: Answer(status=500)) as model:
        cid = chat(sb, persona(sb, layers={"llm": {"model": "m", "base_url": model.base_url, "api_key": "sk-secret"}}))
        send(sb, cid, text="hello")
        events = events_until(sb, cid, turn_ended(1))
    error = next(e for e in events if e["event_type"] == "conversation.error")
    assert error["properties"]["turn_idx"] == 1 and "answered HTTP 500" in error["properties"]["message"]
    assert "sk-secret" not in json.dumps(events) and replies(events) == []


def test_the_sandbox_model_from_the_environment_answers_when_the_persona_has_no_custom_llm(monkeypatch):
    with ModelServer(lambda body: "From the stand-in.") as model:
        monkeypatch.setenv("TAVUS_SANDBOX_LLM_URL", model.base_url)
        monkeypatch.setenv("TAVUS_SANDBOX_LLM_MODEL", "local-model")
        with Sandbox(SandboxSettings(time_scale=0.01)) as sb:
            cid = chat(sb, persona(sb))
            send(sb, cid, text="hi")
            assert replies(events_until(sb, cid, turn_ended(1))) == ["From the stand-in."]
        assert model.requests[0].body["model"] == "local-model" and "tools" not in model.requests[0].body


def test_an_interrupt_drops_the_reply_of_the_turn_in_progress(sb):
    tools = [{"type": "function", "function": {"name": "slow", "description": "d", "parameters": {"type": "object"}}}]
    cid = chat(sb, persona(sb, layers={"llm": {"tools": tools}}))
    control(sb, "PUT", f"/conversations/{cid}/rules", {"rules": [{"when": "go", "tool_call": {"name": "slow"}, "reply": "Done."}]})
    send(sb, cid, text="go")
    events_until(sb, cid, lambda evs: any(e["event_type"] == "conversation.tool_call" for e in evs))
    assert send(sb, cid, "conversation.interrupt").status_code == 200
    events = events_until(sb, cid, turn_ended(1))
    assert replies(events) == []


def test_tune_sandbox_in_a_project_reads_the_stand_in_model_from_its_env_file(project):
    """A developer's `.env` configures the sandbox's model as it configures everything else."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    from types import SimpleNamespace

    from tests.helpers import interrupt, spawn
    with ModelServer(lambda body: "From the project's model.") as model:
        (project / ".env").write_text(f"TAVUS_SANDBOX_LLM_URL={model.base_url}\nTAVUS_SANDBOX_LLM_MODEL=dotenv-model\n"
                                      "TAVUS_SANDBOX_LLM_API_KEY=sk-dotenv-model-0123\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
        proc = spawn([str(Path(sys.executable).parent / "tune"), "sandbox", "--port", "0", "--time-scale", "0.01"],
                     cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            proc.stdout.readline()
            served = SimpleNamespace(url=proc.stdout.readline().strip().split("=", 1)[1])  # what the helpers call `sb`
            cid = chat(served, persona(served))
            send(served, cid, text="hi")
            assert replies(events_until(served, cid, turn_ended(1))) == ["From the project's model."]
        finally:
            out, err = interrupt(proc)
        [request] = model.requests
        assert request.body["model"] == "dotenv-model"
        assert request.headers.get("Authorization") == "Bearer sk-dotenv-model-0123"
        assert "sk-dotenv-model-0123" not in out + err
