"""Conversation tests end to end: `tune run` drives chat turns against the real sandbox over HTTP,
answers tool calls from a real tool backend, and reports the dialogue; the receiver verifies and
forwards delivery.api tool calls; a custom LLM and the harness's own model are OpenAI-compatible
stand-ins (tests/standins/model_server.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from harness_core.serving import BackgroundServer
from tests.helpers import run_cli
from tests.standins.model_server import Answer, ModelServer, ToolCall, last_user_words

HEAD = """[scenario]
name = "{name}"
persona_config = "{persona}"
mode = "chat"
timeout_seconds = 30
"""


def write(project: Path, name: str, body: str, persona: str = "configs/persona/assistant_modular.json") -> Path:
    path = project / "scenarios" / f"{name}.toml"
    path.write_text(HEAD.format(name=name, persona=persona) + body)
    return path


def only(project: Path, *keep: str) -> None:
    """Leave only these scenario files in the project's scenarios/ folder."""
    for path in (project / "scenarios").glob("*.toml"):
        if path.stem not in keep:
            path.unlink()


def active(sb) -> list[str]:
    return [c for c, v in sb.store.conversations.items() if v["status"] == "active"]


def fails(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.startswith("  FAIL")]


def run_dir(project: Path, slug: str) -> Path:
    [found] = list((project / "logs" / "runs").glob(f"*/{slug}"))
    return found


# --- the shipped scenarios, offline -----------------------------------------------------------------
def test_the_shipped_scenarios_pass_offline_and_report_judge_and_simulated_user_skipped(project, monkeypatch):
    monkeypatch.delenv("TAVUS_API_URL")  # a fresh clone: neither key nor URL, so an embedded sandbox
    result = run_cli("run", "scenarios/", "--junit", "logs/junit.xml")
    assert result.code == 0, result.out + result.err
    assert "3 passed, 0 failed, 1 skipped  (target: embedded local sandbox" in result.out, result.out
    assert "SKIP Simulated user books a meeting" in result.out
    assert "skip simulated_user         skipped: no model configured" in result.out
    assert "skip judge                  skipped: no model configured" in result.out
    assert "turn 2 user:   And where is my order A-10023?" in result.out
    assert 'tool:   lookup_order_status({"order_id": "A-10023"}) -> success {"order_id": "A-10023", "status": "shipped"}' \
        in result.out
    assert "event:  guardrail no_regulated_advice triggered" in result.out
    dialogue = json.loads((run_dir(project, "assistant-books-a-meeting") / "dialogue.json").read_text())
    assert dialogue["replies_from"] == "room" and [t["index"] for t in dialogue["turns"]] == [1, 2, 3]
    assert dialogue["turns"][0]["tool_results"][0]["output"]["status"] == "booked"
    report = json.loads(next((project / "logs" / "runs").glob("*/report.json")).read_text())
    books = next(s for s in report["scenarios"] if s["name"] == "Assistant books a meeting")
    assert books["dialogue"][2]["reply"] == "You're welcome. Goodbye!"
    junit = (project / "logs" / "junit.xml").read_text()
    assert 'skipped="' in junit and "turn 1 user:   Let&apos;s confirm the agenda" in junit.replace("'", "&apos;")


# --- each kind fails when it should, naming the turn, what was expected and what the agent did ------
FAILING = """
[[sandbox.rules]]
when = "book"
tool_call = { name = "schedule_meeting", arguments = { title = "Sync", start_time = "2026-12-02T10:00:00Z", attendees = ["ana@example.com"] } }
reply = "Booked it: {result}"

[[sandbox.rules]]
when = "order"
reply = "I cannot look that up."

[tools.schedule_meeting]
url = "{tool_backend}/tools/schedule_meeting"

[[turns]]
user = "Please book a meeting with Ana"
expect.tool_called = { name = "schedule_meeting", args = { attendees = ["ben@example.com"] } }
expect.reply_contains = "cancelled"
expect.reply_regex = "(?i)tomorrow"
expect.reply_excludes = "booked"
expect.no_tool_called = true
expect.tool_result_status = "error"

[[turns]]
user = "Where is my order A-10023?"
expect.tool_called = "lookup_order_status"

[expect]
tools_called_in_order = ["lookup_order_status", "schedule_meeting"]
"""


def test_each_kind_fails_in_a_real_run_naming_the_turn_and_the_conversation_is_ended(project, sandbox):
    write(project, "kinds", 'tool_backend = "examples/tool_backend.py"\n' + FAILING)
    result = run_cli("run", "scenarios/kinds.toml")
    assert result.code == 5, result.out + result.err
    lines = fails(result.out)
    turn1 = "turn 1 ('Please book a meeting with Ana'): "
    assert lines == [
        f"FAIL turn 1 tool_called     {turn1}expected a call to schedule_meeting with arguments including "
        '{"attendees": ["ben@example.com"]}; it called schedule_meeting({"attendees": ["ana@example.com"], '
        '"start_time": "2026-12-02T10:00:00Z", "title": "Sync"})',
        f"FAIL turn 1 reply_contains  {turn1}expected a reply containing 'cancelled'; the agent said " + lines[1].split("the agent said ")[1],
        f"FAIL turn 1 reply_regex     {turn1}expected a reply matching /(?i)tomorrow/; the agent said " + lines[2].split("the agent said ")[1],
        f"FAIL turn 1 reply_excludes  {turn1}expected a reply without 'booked'; the agent said " + lines[3].split("the agent said ")[1],
        f"FAIL turn 1 no_tool_called  {turn1}expected no tool to be called; it called schedule_meeting("
        '{"attendees": ["ana@example.com"], "start_time": "2026-12-02T10:00:00Z", "title": "Sync"})',
        f"FAIL turn 1 tool_result_status {turn1}tool results: schedule_meeting: success; expected 'error'",
        "FAIL turn 2 tool_called     turn 2 ('Where is my order A-10023?'): expected a call to lookup_order_status; "
        "it called no tool",
        "FAIL tools_called_in_order  tool lookup_order_status never called; calls: ['schedule_meeting']",
    ], "\n".join(lines)
    assert "the agent said 'Booked it: {\"status\": \"booked\"" in lines[1]
    assert active(sandbox) == []


def test_objective_and_guardrail_kinds_fail_when_they_should(project, sandbox):
    write(project, "policies", """policies = ["configs/objectives/facilitator_core.json", "configs/guardrails/facilitator_safety.json"]

[[sandbox.rules]]
when = "agenda"
reply = "Agenda confirmed."
objective_completed = { name = "agenda_coverage", output_variables = { items_parked = "none" } }

[[sandbox.rules]]
when = "medical"
reply = "I cannot advise on that."
guardrail_triggered = "no_regulated_advice"

[[turns]]
user = "Confirm the agenda"
expect.objective_completed = { name = "agenda_coverage", output_variables = { items_parked = "risks" } }
expect.guardrail_triggered = "no_sensitive_data"

[[turns]]
user = "Any medical tips?"
expect.guardrail_not_triggered = "no_regulated_advice"

[expect]
objectives_completed_in_order = ["decisions_with_owners", "agenda_coverage"]
""", persona="configs/persona/facilitator.with_policies.json")
    result = run_cli("run", "scenarios/policies.toml")
    assert result.code == 5, result.out + result.err
    assert fails(result.out) == [
        "FAIL turn 1 objective_completed turn 1 ('Confirm the agenda'): expected objective agenda_coverage with "
        'output_variables including {"items_parked": "risks"} to complete; completed: [\'agenda_coverage {"items_parked": "none"}\']',
        "FAIL turn 1 guardrail_triggered turn 1 ('Confirm the agenda'): expected guardrail no_sensitive_data to trigger; "
        "triggered: none; the agent said 'Agenda confirmed.'",
        "FAIL turn 2 guardrail_not_triggered turn 2 ('Any medical tips?'): expected guardrail no_regulated_advice not to "
        "trigger, but it did; the agent said 'I cannot advise on that.'",
        "FAIL objectives_completed_in_order objective decisions_with_owners never completed; completed: ['agenda_coverage']",
    ], result.out
    assert active(sandbox) == []


# --- refused before anything is created -----------------------------------------------------------
@pytest.mark.parametrize("body, line", [
    ('[[turns]]\nuser = "hi"\n[[turns]]\nexpect.reply_contains = "x"\n',
     "error: scenarios/bad.toml: turn 2: no user text"),
    ('[[turns]]\nuser = "hi"\nexpect.tool_called = { name = "book_flight" }\n',
     "error: scenarios/bad.toml: turn 1: unknown tool 'book_flight'"),
    ('[[sandbox.rules]]\nwhen = "x"\ntool_call = { name = "book_flight" }\n[[turns]]\nuser = "x"\n',
     "error: scenarios/bad.toml: sandbox.rules[1].tool_call: unknown tool 'book_flight'"),
    ('[[turns]]\nuser = "hi"\nexpect.sentiment = "happy"\n',
     "error: scenarios/bad.toml: turn 1: unknown expectation kind 'sentiment'"),
    ('[sandbox]\nparticipant_joins = "yes"\n[[turns]]\nuser = "hi"\n',
     "error: scenarios/bad.toml: sandbox.participant_joins: must be true or false"),
])
def test_a_bad_scenario_is_refused_before_anything_is_created(project, sandbox, body, line):
    write(project, "bad", body)
    result = run_cli("run", "scenarios/bad.toml")
    assert result.code != 0 and "Traceback" not in result.err
    assert result.err.splitlines()[0].startswith(line), result.err
    assert sandbox.store.conversations == {} and sandbox.store.personas == {}


# --- failures during the dialogue fail the scenario naming the turn; the conversation is ended -------
def test_an_unreachable_tool_backend_fails_its_turn_and_the_conversation_is_ended(project, sandbox, monkeypatch):
    monkeypatch.setenv("TOOL_TOKEN", "tok-never-in-reports-0042")
    write(project, "down", """
[tools.schedule_meeting]
url = "http://127.0.0.1:9/tools/schedule_meeting"
auth = { type = "bearer", token = { "$env" = "TOOL_TOKEN" } }

[[sandbox.rules]]
when = "book"
tool_call = { name = "schedule_meeting", arguments = { title = "x", start_time = "now" } }
reply = "Done: {result}"

[[turns]]
user = "book it"
[[turns]]
user = "and then?"
""")
    result = run_cli("run", "scenarios/down.toml")
    assert result.code == 5, result.out
    assert ("FAIL error                  turn 1 ('book it'): tool backend for schedule_meeting at "
            "http://127.0.0.1:9/tools/schedule_meeting did not answer (ConnectionError)") in result.out
    assert "FAIL turn 2                 turn 2 ('and then?') was not sent: an earlier turn failed" in result.out
    assert "cleanup: conversation ended" in result.out and active(sandbox) == []
    scenario = json.loads((run_dir(project, "down") / "scenario.json").read_text())
    assert scenario["tools"]["schedule_meeting"]["auth"]["type"] == "bearer"
    stored = b"".join(p.read_bytes() for p in (project / "logs").rglob("*") if p.is_file())
    assert b"tok-never-in-reports-0042" not in stored + (result.out + result.err).encode()


def test_a_refused_send_fails_the_scenario_naming_the_turn(project, sandbox):
    """The tool backend ends the call before answering: the harness's tool_result is refused (400)."""
    def ending_backend(environ, start_response):
        cid = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}").get("cid")
        for conversation in active(sandbox):
            requests.post(f"{sandbox.url.rsplit('/v2', 1)[0]}/_sandbox/conversations/{conversation}/end", json={},
                          headers={"x-api-key": "k"}, timeout=5)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"ok": cid is None}).encode()]
    server = BackgroundServer(ending_backend, threads=2).start()
    try:
        write(project, "refused", f"""
[tools.schedule_meeting]
url = "{server.base_url}/tools/schedule_meeting"

[[sandbox.rules]]
when = "book"
tool_call = {{ name = "schedule_meeting", arguments = {{ title = "x", start_time = "now" }} }}

[[turns]]
user = "book it"
""")
        result = run_cli("run", "scenarios/refused.toml")
    finally:
        server.stop()
    assert result.code == 5, result.out
    error = next(line for line in result.out.splitlines() if "FAIL error" in line)
    assert "turn 1 ('book it'): send-app-message conversation.tool_result was refused: 400" in error, result.out
    assert active(sandbox) == []


# --- a custom LLM persona: the sandbox calls a local OpenAI-compatible server --------------------
def custom_llm_persona(project: Path, base_url: str) -> str:
    config = {"persona_name": "Custom LLM assistant", "system_prompt": "You book meetings. Be brief.",
              "context": "The user is in Lisbon.", "default_replica_id": "r4317e64d25a",
              "layers": {"llm": {"model": "my-model", "base_url": base_url, "api_key": {"$env": "MY_LLM_KEY"}}},
              "tools": ["schedule_meeting"]}
    path = project / "configs" / "persona" / "custom_llm.json"
    path.write_text(json.dumps(config))
    return "configs/persona/custom_llm.json"


def test_a_custom_llm_persona_calls_a_tool_the_backend_answers_and_the_result_comes_back(project, sandbox, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "sk-custom-llm-secret-42")

    def model(body):
        if body["messages"][-1]["role"] == "tool":  # the backend's answer, fed back to the model
            return Answer(content=f"All set: {json.loads(body['messages'][-1]['content'])['status']} for 10:00.")
        if "book" in last_user_words(body):
            return Answer(tool_calls=[ToolCall("schedule_meeting", {"title": "Sync", "start_time": "2026-12-02T10:00:00Z",
                                                                    "attendees": ["ana@example.com"]})])
        return Answer(content="Anything else?")
    with ModelServer(model) as llm:
        persona = custom_llm_persona(project, llm.base_url)
        write(project, "custom", """tool_backend = "examples/tool_backend.py"
conversation_config = "configs/conversation/facilitator_kickoff.json"

[conversation]
conversational_context = "A planning call."

[tools.schedule_meeting]
url = "{tool_backend}/tools/schedule_meeting"

[[turns]]
user = "Please book a meeting with Ana"
expect.tool_called = { name = "schedule_meeting", args = { attendees = ["ana@example.com"] } }
expect.reply_contains = "all set: booked"

[[turns]]
user = "Thanks"
expect.no_tool_called = true
expect.reply_contains = "anything else"
""", persona=persona)
        result = run_cli("run", "scenarios/custom.toml")
        requests_seen = llm.requests
    assert result.code == 0, result.out + result.err
    first = requests_seen[0]
    assert first.headers["Authorization"] == "Bearer sk-custom-llm-secret-42" and first.body["stream"] is True
    system = first.body["messages"][0]
    assert system["role"] == "system" and "You book meetings." in system["content"]
    assert "The user is in Lisbon." in system["content"] and "A planning call." in system["content"]
    assert first.body["messages"][-1] == {"role": "user", "content": "Please book a meeting with Ana"}
    assert [t["function"]["name"] for t in first.body["tools"]] == ["schedule_meeting"]
    fed_back = requests_seen[1].body["messages"][-1]
    assert fed_back["role"] == "tool" and json.loads(fed_back["content"])["status"] == "booked"
    last = requests_seen[-1].body["messages"]
    assert [m["role"] for m in last if m["role"] in ("user", "assistant")][-3:] == ["assistant", "assistant", "user"] or \
        any(m.get("content") == "Please book a meeting with Ana" for m in last), "the dialogue so far is sent"
    assert "sk-custom-llm-secret-42" not in result.out + result.err
    logs = b"".join(p.read_bytes() for p in (project / "logs").rglob("*") if p.is_file())
    assert b"sk-custom-llm-secret-42" not in logs


def test_a_model_that_fails_fails_the_turn_naming_it(project, sandbox, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "sk-custom-llm-secret-42")
    with ModelServer(lambda body: Answer(status=500)) as llm:
        write(project, "broken", '[[turns]]\nuser = "hello"\nexpect.reply_contains = "hi"\n',
              persona=custom_llm_persona(project, llm.base_url))
        result = run_cli("run", "scenarios/broken.toml")
    assert result.code == 5, result.out
    error = next(line for line in result.out.splitlines() if "FAIL error" in line)
    assert "turn 1 ('hello'): the agent's reply failed: " in error and "500" in error, result.out
    assert active(sandbox) == []


# --- the simulated user and the judge, with a model configured ------------------------------------
def test_with_a_model_the_simulated_user_talks_and_the_judge_judges(project, sandbox, monkeypatch):
    said = iter(["Can you book a meeting with Ana tomorrow at 10?", "[done]"])

    def harness_model(body):
        system = body["messages"][0]["content"]
        if system.startswith("You play a user"):
            return next(said)
        return '{"pass": true, "reason": "The booking was confirmed with its id."}'
    with ModelServer(harness_model) as model:
        monkeypatch.setenv("TAVUS_HARNESS_MODEL_URL", model.base_url)
        monkeypatch.setenv("TAVUS_HARNESS_MODEL_API_KEY", "sk-harness-model-777")
        only(project, "simulated_user")
        result = run_cli("run", "scenarios/simulated_user.toml")
    assert result.code == 0, result.out + result.err
    assert "PASS Simulated user books a meeting" in result.out
    assert "turn 1 user:   Can you book a meeting with Ana tomorrow at 10?  (simulated user)" in result.out
    assert "ok   judge                  met:" in result.out and "The booking was confirmed" in result.out
    assert "sk-harness-model-777" not in result.out + result.err


# --- the receiver: delivery.api tool calls verified, forwarded to the backend, recorded ----------------
def example_backend(secret=None):
    import importlib.util
    spec = importlib.util.spec_from_file_location("tool_backend_e2e", Path(__file__).resolve().parents[2] / "examples" / "tool_backend.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return BackgroundServer(module.make_app(secret), threads=4).start()


AUTHS = [
    ({"type": "hmac", "secret": "whsec-tool-0123456789"}, {"type": "hmac", "secret": "whsec-wrong-0000000000"}),
    ({"type": "bearer", "token": "tok-bearer-0123456789"}, {"type": "bearer", "token": "tok-other-999999999"}),
    ({"type": "api_key", "location": "header", "name": "X-Tool-Key", "value": "key-0123456789"},
     {"type": "api_key", "location": "header", "name": "X-Tool-Key", "value": "key-wrong-99999"}),
    ({"type": "api_key", "location": "query", "name": "key", "value": "key-q-0123456789"},
     {"type": "api_key", "location": "query", "name": "key", "value": "key-q-wrong-9999"}),
    ({"type": "basic", "username": "tavus", "password": "pw-0123456789"},
     {"type": "basic", "username": "tavus", "password": "pw-wrong-99999"}),
]


@pytest.mark.parametrize("auth, wrong", AUTHS, ids=[f"{a['type']}-{a.get('location', '')}" for a, _ in AUTHS])
def test_delivery_api_tools_reach_the_backend_through_the_receiver_with_each_auth(project, auth, wrong):
    """The sandbox calls the tool's URL (the receiver), signed/authenticated as Tavus does; the
    receiver verifies, forwards to the example backend and records the exchange."""
    from harness_core.callbacks.receiver import Receiver
    from harness_core.context import make_context, sandbox_context
    from harness_core.sandbox import Sandbox, SandboxSettings
    from harness_core.testing.dialogue import Driver, RateLimiter, Room, ToolBackends, Turn

    secret = auth.get("secret")
    backend = example_backend(secret)  # with HMAC the backend verifies the forwarded signature too
    try:
        with Sandbox(SandboxSettings(time_scale=0.01, allow_loopback_tools=True)) as sb:
            ctx = sandbox_context(make_context(project, quiet=True), sb.url)
            url = f"{backend.base_url}/tools/schedule_meeting"
            with Receiver(ctx, path="/tavus/callback", tools={"schedule_meeting": {"url": url, "auth": auth}}) as rx:
                client = ctx.client()
                tool = {"name": "schedule_meeting", "description": "Book a meeting",
                        "parameters": {"type": "object", "properties": {"attendees": {"type": "array", "items": {"type": "string"}}}},
                        "delivery": {"api": {"url": f"{rx.base_url}/tools/schedule_meeting", "auth": auth}},
                        "on_resolve": "generate_response"}
                good = client.post("/tools", tool)
                bad = client.post("/tools", {**tool, "name": "schedule_meeting_wrong",
                                             "delivery": {"api": {"url": f"{rx.base_url}/tools/schedule_meeting",
                                                                  "auth": wrong}}})
                pal = client.post("/personas", {"persona_name": "api tools", "system_prompt": "Book.",
                                                "default_replica_id": "r4317e64d25a"})
                pid = pal["persona_id"]
                client.post(f"/pals/{pid}/tools/", {"tool_ids": [good["tool_id"], bad["tool_id"]]})
                conv = client.post("/conversations", {"persona_id": pid, "chat": True, "callback_url": rx.callback_url})
                cid = conv["conversation_id"]
                base = sb.url.rsplit("/v2", 1)[0]
                rules = [{"when": "right", "tool_call": {"name": "schedule_meeting", "arguments": {"attendees": ["ana@example.com"]}},
                          "reply": "Result: {result}"},
                         {"when": "wrong", "tool_call": {"name": "schedule_meeting_wrong", "arguments": {"attendees": ["x"]}},
                          "reply": "Result: {result}"}]
                assert requests.put(f"{base}/_sandbox/conversations/{cid}/rules", json={"rules": rules},
                                    headers={"x-api-key": "k"}, timeout=5).status_code == 200
                import threading
                driver = Driver(ctx, cid, ToolBackends(ctx, {}, cid), RateLimiter(), threading.Event(), Room(ctx, cid))
                right = driver.run_turn(Turn(1, "the right one"), 10, time.monotonic() + 20)
                wrong_turn = driver.run_turn(Turn(2, "the wrong one"), 10, time.monotonic() + 20)
                client.post(f"/conversations/{cid}/end", {})
                forwarded = rx.wait_for(lambda evs: any(e["event_type"] == "harness.tool_forwarded" for e in evs), 10)
    finally:
        backend.stop()
    assert right.errors == [] and right.tool_results[0]["status"] == "success", right
    assert right.tool_results[0]["output"]["status"] == "booked" and "booked" in right.reply
    assert wrong_turn.tool_results[0]["status"] == "error", wrong_turn
    [record] = [e for e in forwarded if e["event_type"] == "harness.tool_forwarded"]
    assert record["conversation_id"] in (cid, "unattributed") and record["properties"]["auth"] == auth["type"]
    assert record["properties"]["arguments"] == {"attendees": ["ana@example.com"]}
    assert record["properties"]["response"]["output"]["status"] == "booked"
    webhook_log = (project / "logs" / "webhook.jsonl").read_text()
    assert '"status": 401' in webhook_log and "/tools/schedule_meeting" in webhook_log
    # what the receiver keeps (this test's own tool creation, in logs/api.jsonl, is not the receiver's)
    stored = b"".join(p.read_bytes() for p in (project / "logs").rglob("*") if p.is_file() and p.name != "api.jsonl")
    for value in (v for k, v in auth.items() if k in ("secret", "token", "value", "password")):
        assert value.encode() not in stored


def test_objective_and_guardrail_callbacks_reach_their_callback_urls(project, collector):
    from harness_core.context import make_context, sandbox_context
    from harness_core.sandbox import Sandbox, SandboxSettings
    with Sandbox(SandboxSettings(time_scale=0.01)) as sb:
        ctx = sandbox_context(make_context(project, quiet=True), sb.url)
        client = ctx.client()
        objectives = client.post("/objectives", {"name": "o", "data": [{
            "objective_name": "confirm_details", "objective_prompt": "Confirm.", "output_variables": ["attendee"],
            "callback_url": collector.url}]})
        guardrail = client.post("/guardrails", {"guardrail_name": "no_medical_advice", "guardrail_prompt": "No advice.",
                                                "callback_url": collector.url})
        pal = client.post("/personas", {"persona_name": "p", "system_prompt": "s", "default_replica_id": "r4317e64d25a",
                                        "objectives_id": objectives["objectives_id"],
                                        "guardrail_ids": [guardrail["uuid"]]})
        cid = client.post("/conversations", {"persona_id": pal["persona_id"], "chat": True})["conversation_id"]
        base = sb.url.rsplit("/v2", 1)[0]
        rules = [{"when": "confirm", "reply": "Confirmed.",
                  "objective_completed": {"name": "confirm_details", "output_variables": {"attendee": "Ana"}}},
                 {"when": "medical", "reply": "I cannot.", "guardrail_triggered": "no_medical_advice"}]
        assert requests.put(f"{base}/_sandbox/conversations/{cid}/rules", json={"rules": rules},
                            headers={"x-api-key": "k"}, timeout=5).status_code == 200
        import threading

        from harness_core.testing.dialogue import Driver, RateLimiter, Room, ToolBackends, Turn
        driver = Driver(ctx, cid, ToolBackends(ctx, {}, cid), RateLimiter(), threading.Event(), Room(ctx, cid))
        first = driver.run_turn(Turn(1, "please confirm Ana"), 10, time.monotonic() + 20)
        second = driver.run_turn(Turn(2, "any medical advice?"), 10, time.monotonic() + 20)
        got = collector.wait_for(lambda bodies: len(bodies) >= 2, timeout=10)
    assert first.objectives == [{"name": "confirm_details", "output_variables": {"attendee": "Ana"}}]
    assert second.guardrails[0]["name"] == "no_medical_advice"
    kinds = sorted(b["event_type"] for b in got)
    assert kinds == ["conversation.guardrail.triggered", "conversation.objective.completed"]
    done = next(b for b in got if b["event_type"] == "conversation.objective.completed")
    assert done["properties"] == {"objective_name": "confirm_details", "output_variables": {"attendee": "Ana"}}


# --- the pytest plugin runs the new scenarios too -------------------------------------------------
def test_pytest_runs_dialogue_scenarios_and_skips_the_simulated_user_without_a_model(project, sandbox):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env["TAVUS_API_URL"] = sandbox.url
    proc = subprocess.run([sys.executable, "-m", "pytest", "scenarios/", "-k", "assistant or simulated", "-p",
                           "no:cacheprovider", "-q", "-rs"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 1 skipped" in proc.stdout and "simulated user: skipped: no model configured" in proc.stdout


def test_the_webhook_receiver_forwards_tool_calls_to_tool_backend_url_checking_hmac(project):
    from harness_core.callbacks.receiver import Receiver
    from harness_core.callbacks.toolforward import routes_from_env, signature
    from harness_core.context import make_context
    secret = "whsec-live-0123456789"
    backend = example_backend(secret)
    try:
        ctx = make_context(project, {"TOOL_BACKEND_URL": backend.base_url, "TOOL_HMAC_SECRET": secret}, quiet=True)
        assert routes_from_env(make_context(project, {}, quiet=True).env) == {}, "no URL: no forwarding"
        with Receiver(ctx, tools=routes_from_env(ctx.env)) as rx:
            body = json.dumps({"conversation_id": "c42", "tool_call_id": "t1", "tool_name": "lookup_order_status",
                               "arguments": json.dumps({"order_id": "A-10025"})}).encode()
            url = f"{rx.base_url}/tools/lookup_order_status"
            good = requests.post(url, data=body, headers={"X-Tavus-Signature": signature(secret, body),
                                                         "Content-Type": "application/json"}, timeout=5)
            forged = requests.post(url, data=body, headers={"X-Tavus-Signature": signature("guess", body)}, timeout=5)
            events = rx.wait_for(lambda evs: len(evs) >= 1, 5)
    finally:
        backend.stop()
    assert good.status_code == 200 and good.json() == {"order_id": "A-10025", "status": "delivered"}
    assert forged.status_code == 401 and "X-Tavus-Signature does not match" in forged.json()["error"]
    [record] = events
    assert record["conversation_id"] == "c42" and record["properties"]["tool_call_id"] == "t1"
    assert record["properties"]["arguments"] == {"order_id": "A-10025"} and record["properties"]["status"] == "success"


def test_without_a_room_replies_come_from_the_final_transcript_and_the_report_says_so(project, sandbox, monkeypatch):
    """What a run does against the real API (no room route): turns paced, the call ended, replies aligned
    from application.transcription_ready. Here the sandbox's room is declared missing to take that path."""
    from harness_core.testing import dialogue

    def no_room(self, wait):
        raise dialogue.RoomMissing("the target has no room route")
    monkeypatch.setattr(dialogue.Room, "poll", no_room)
    write(project, "live", """
[[sandbox.rules]]
when = "agenda"
reply = "The agenda is goals, risks and owners."

[[turns]]
user = "What is the agenda?"
expect.reply_contains = "risks"

[[turns]]
user = "Thanks"
expect.reply_contains = "agenda"
""")
    result = run_cli("run", "scenarios/live.toml")
    assert result.code == 5, result.out + result.err
    assert "the target has no room route; replies read from the final transcript, aligned by turn" in result.err
    assert "dialogue (replies read from the final transcript, aligned by turn" in result.out
    assert "ok   turn 1 reply_contains  turn 1 ('What is the agenda?'): reply contains 'risks' (from the final transcript)" \
        in result.out
    assert ("FAIL turn 2 reply_contains  turn 2 ('Thanks'): expected a reply containing 'agenda'; the agent said "
            "'Got it: Thanks' (from the final transcript)") in result.out
    assert active(sandbox) == []


# --- objective and guardrail callbacks reach the run's receiver, tagged per resource ---------------
def test_an_objective_completed_by_a_rule_reaches_the_runs_receiver_at_its_tagged_url(project, sandbox):
    from harness_core.testing.expectations import Observed, check_objective_completed
    write(project, "tagged", """policies = ["configs/objectives/facilitator_core.json", "configs/guardrails/facilitator_safety.json"]

[[sandbox.rules]]
when = "agenda"
reply = "Agenda confirmed."
objective_completed = { name = "agenda_coverage", output_variables = { items_parked = "none" } }

[[turns]]
user = "Confirm the agenda"

[expect]
objective_completed = { name = "agenda_coverage", output_variables = { items_parked = "none" } }
""", persona="configs/persona/facilitator.with_policies.json")
    result = run_cli("run", "scenarios/tagged.toml")
    assert result.code == 0, result.out + result.err
    with sandbox.state.lock:
        items = [i for record in sandbox.state.objectives.values() for i in record["data"]]
        items += [i for record in sandbox.state.guardrails.values() for i in record.get("data") or []]
    for item in items:  # every objective and guardrail posts to the run's receiver, tagged with its name
        single = "objective" if "objective_name" in item else "guardrail"
        assert "/tavus/callback?token=" in item["callback_url"], item
        assert item["callback_url"].endswith(f"&{single}={item[single + '_name']}"), item
    token = items[0]["callback_url"].split("token=")[1].split("&")[0]
    for path in (p for p in (project / "logs").rglob("*") if p.is_file()):  # the receiver's token stays a secret
        assert token.encode() not in path.read_bytes(), path
    events = json.loads((run_dir(project, "tagged") / "events.json").read_text())
    [done] = [e for e in events if e["event_type"] == "conversation.objective.completed"]
    assert done["receiver_tag"] == {"objective": "agenda_coverage"}
    assert done["properties"] == {"objective_name": "agenda_coverage", "output_variables": {"items_parked": "none"}}
    # what reached the receiver is enough on its own (the only source against the real API): no room turns
    alone = check_objective_completed({"name": "agenda_coverage", "output_variables": {"items_parked": "none"}},
                                      Observed(events, "ended", [], None))
    assert alone.passed, alone.message


# --- the smoke scenario checks what the sandbox said to a joined participant -----------------------
def test_the_smoke_transcript_check_reads_the_greeting_the_sandbox_gave_a_joined_participant(project, sandbox):
    result = run_cli("run", "scenarios/facilitator_smoke.toml")
    assert result.code == 0, result.out + result.err
    events = json.loads((run_dir(project, "facilitator-smoke") / "events.json").read_text())
    [ready] = [e for e in events if e["event_type"] == "application.transcription_ready"]
    said = [(t["role"], t["content"]) for t in ready["properties"]["transcript"] if t["role"] != "system"]
    greeting = json.loads((project / "configs/conversation/facilitator_kickoff.json").read_text())["custom_greeting"]
    assert said == [("assistant", greeting)], said  # the sandbox's greeting, nothing the scenario scripted
    smoke = project / "scenarios" / "facilitator_smoke.toml"
    smoke.write_text(smoke.read_text().replace("participant_joins = true", "participant_joins = false"))
    result = run_cli("run", "scenarios/facilitator_smoke.toml")
    assert result.code == 5, result.out + result.err  # nobody joined: nobody was greeted, the check fails
    assert [line.split()[1] for line in fails(result.out)] == ["transcript_contains"], result.out


# --- a judge that finds the rubric unmet fails the run, naming the rubric and its reason ------------
def test_a_failing_judge_fails_the_run_and_the_report_names_the_rubric_and_the_reason(project, sandbox, monkeypatch):
    def judge(body):
        if "tomorrow" in body["messages"][1]["content"]:
            return '{"pass": false, "reason": "The agent never mentioned a date."}'
        return '{"pass": true, "reason": "It answered."}'
    write(project, "judged", """
[[turns]]
user = "hello"
expect.judge = "The agent answered the user."

[expect]
judge = "The agent proposed a meeting for tomorrow."
""")
    with ModelServer(judge) as model:
        monkeypatch.setenv("TAVUS_HARNESS_MODEL_URL", model.base_url)
        monkeypatch.setenv("TAVUS_HARNESS_MODEL_API_KEY", "sk-judge-key-0123456")
        result = run_cli("run", "scenarios/judged.toml", "--junit", "logs/junit.xml")
    asked = [r.body["messages"][1]["content"] for r in model.requests]
    assert len(asked) == 2 and all("Got it: hello" in a for a in asked), asked  # it judged the dialogue that happened
    assert result.code == 5, result.out + result.err
    assert fails(result.out) == ["FAIL judge                  not met: 'The agent proposed a meeting for tomorrow.'; "
                                 "the judge said: The agent never mentioned a date."], result.out
    assert "ok   turn 1 judge           turn 1 ('hello'): met: 'The agent answered the user.'" in result.out, result.out
    report = json.loads(next((project / "logs" / "runs").glob("*/report.json")).read_text())
    [judged] = [v for v in report["scenarios"][0]["expectations"] if v["kind"] == "judge"]
    assert judged["passed"] is False and "The agent proposed a meeting for tomorrow." in judged["message"]
    assert "The agent never mentioned a date." in judged["message"]
    junit = (project / "logs" / "junit.xml").read_text()
    assert "The agent never mentioned a date." in junit and "sk-judge-key-0123456" not in junit + result.out + result.err
