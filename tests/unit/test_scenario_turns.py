"""Scenario turns: files refused before anything runs, each expectation kind passing and failing with
the turn named, replies aligned from a recorded transcript, the judge and the simulated user on a
stand-in model, the tool-call and judge hooks, and the reports."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness_core import hookimpl
from harness_core.context import make_context
from harness_core.errors import ConfigError
from harness_core.serving import BackgroundServer
from harness_core.testing.dialogue import ToolBackendFailed, ToolBackends, Turn, align_transcript
from harness_core.testing.expectations import BUILTIN_KINDS, Observed, all_kinds, evaluate
from harness_core.testing.models import NO_MODEL, Model, next_user_message
from harness_core.testing.report import as_json, text_lines, write_junit
from harness_core.testing.runner import RunResult, make_judge, persona_tools, turn_errors, turn_verdicts
from harness_core.testing.scenario import Scenario, load_scenario
from tests.standins.model_server import Answer, ModelServer

REPO = Path(__file__).resolve().parents[2]
HEAD = '[scenario]\nname = "t"\npersona_config = "configs/persona/assistant_modular.json"\nmode = "chat"\n'


def load(project: Path, body: str) -> Scenario:
    path = project / "scenarios" / "t.toml"
    path.write_text(HEAD + body)
    ctx = make_context(project, quiet=True)
    return load_scenario(path, all_kinds(ctx), persona_tools(ctx))


# --- refused before anything is created ---------------------------------------------------------
@pytest.mark.parametrize("body, needle", [
    ('[[turns]]\nexpect.reply_contains = "x"\n', "t.toml: turn 1: no user text"),
    ('[[turns]]\nuser = "   "\n', "t.toml: turn 1: no user text"),
    ('[[turns]]\nuser = "hi"\n[[turns]]\nuser = "book"\nexpect.reply_contain = "x"\n',
     "t.toml: turn 2: unknown expectation kind 'reply_contain'"),
    ('[[turns]]\nuser = "hi"\nexpect.tools_called_in_order = ["schedule_meeting"]\n',
     "t.toml: turn 1: unknown expectation kind 'tools_called_in_order'"),
    ('[[turns]]\nuser = "hi"\n[[turns]]\nuser = "fly"\nexpect.tool_called = { name = "book_flight" }\n',
     "t.toml: turn 2: unknown tool 'book_flight'"),
    ('[[sandbox.rules]]\nwhen = "fly"\ntool_call = { name = "book_flight" }\n',
     "t.toml: sandbox.rules[1].tool_call: unknown tool 'book_flight'"),
    ('[[sandbox.rules]]\nwhen = "(unclosed"\n', "t.toml: sandbox.rules[1].when: must be a regular expression"),
    ('[[sandbox.rules]]\nwhen = "x"\nsay = "y"\n', "t.toml: sandbox.rules[1]: unknown key 'say'"),
    ('[tools.schedule_meeting]\nurl = "{tool_backend}/tools/schedule_meeting"\n',
     "t.toml: tools.schedule_meeting.url: uses {tool_backend} but [scenario] names no tool_backend"),
    ('[tools.book_flight]\nurl = "http://127.0.0.1:9/x"\n', "t.toml: tools.book_flight: unknown tool 'book_flight'"),
    ('[tools.schedule_meeting]\nurl = "http://127.0.0.1:9/x"\nauth = { type = "hmac" }\n',
     "t.toml: tools.schedule_meeting.auth.secret: required for type 'hmac'"),
    ('[[turns]]\nuser = "hi"\nexpect.tool_called = 3\n', "t.toml: turn 1: expect.tool_called: 3 is not valid"),
    ('[[turns]]\nuser = "hi"\nexpect.reply_regex = "(x"\n', "t.toml: turn 1: expect.reply_regex: '(x' is not valid"),
    ('[simulated_user]\npersona = "busy"\n', "t.toml: simulated_user.goal: required"),
    ('[[turns]]\nuser = "' + "x" * 60_001 + '"\n', "t.toml: turn 1: user text is 60001 bytes"),
])
def test_a_bad_scenario_is_refused_in_one_line_naming_file_and_turn(project, body, needle):
    with pytest.raises(ConfigError) as caught:
        load(project, body)
    line = caught.value.render()
    assert needle in line and "\n" not in caught.value.message, line


def test_a_scenario_with_turns_tools_rules_and_policies_loads(project):
    sc = load_scenario(project / "scenarios" / "assistant_books_meeting.toml", all_kinds())
    assert sc.mode == "chat" and sc.is_dialogue and len(sc.turns) == 3
    assert sc.turns[0]["expect"]["tool_called"]["args"] == {"attendees": ["ana@example.com"]}
    assert sc.tools["schedule_meeting"]["url"] == "{tool_backend}/tools/schedule_meeting"
    assert sc.tool_backend.endswith("examples/tool_backend.py") and len(sc.sandbox["rules"]) == 3
    facilitator = load_scenario(project / "scenarios" / "facilitator_objectives.toml", all_kinds())
    assert [Path(p).name for p in facilitator.policies] == ["facilitator_core.json", "facilitator_safety.json"]


def test_the_persona_tools_are_found_offline(project):
    names = persona_tools(make_context(project, quiet=True))
    assert names("configs/persona/assistant_modular.json") == {"schedule_meeting", "lookup_order_status"}
    assert names("configs/persona/facilitator.example.json") == set()


# --- each kind passes and fails, naming what was expected and what the agent did ---------------
BOOK = Turn(1, "Book a meeting with Ana", reply="Booked for 10:00 with Ana.",
            tool_calls=[{"name": "schedule_meeting", "arguments": {"attendees": ["ana@example.com"], "title": "Sync"},
                         "tool_call_id": "c1"}],
            tool_results=[{"tool_call_id": "c1", "name": "schedule_meeting", "status": "success", "output": {"ok": 1}}],
            objectives=[{"name": "confirm_details", "output_variables": {"attendee": "Ana", "time": "10:00"}}],
            guardrails=[{"name": "no_medical_advice"}])
BYE = Turn(2, "Thanks, that's all.", reply="Goodbye!",
           tool_calls=[{"name": "lookup_order_status", "arguments": {"order_id": "A-1"}, "tool_call_id": "c2"}],
           tool_results=[{"tool_call_id": "c2", "name": "lookup_order_status", "status": "error", "output": "no order"}],
           objectives=[{"name": "wrap_up", "output_variables": {}}])

KINDS = [  # kind, a value that holds for BOOK, one that does not, what the failure must say
    ("reply_contains", "booked", "cancelled", "expected a reply containing 'cancelled'; the agent said 'Booked for 10:00 with Ana.'"),
    ("reply_regex", r"\b10:00\b", r"(?i)tomorrow", "expected a reply matching /(?i)tomorrow/; the agent said"),
    ("reply_excludes", "sorry", "ana", "expected a reply without 'ana'; the agent said"),
    ("tool_called", {"name": "schedule_meeting", "args": {"attendees": ["ana@example.com"]}},
     {"name": "schedule_meeting", "args": {"attendees": ["ben@example.com"]}},
     'expected a call to schedule_meeting with arguments including {"attendees": ["ben@example.com"]}; '
     'it called schedule_meeting({"attendees": ["ana@example.com"], "title": "Sync"})'),
    ("no_tool_called", "lookup_order_status", True, "expected no tool to be called; it called schedule_meeting("),
    ("tool_result_status", "success", {"name": "schedule_meeting", "status": "error"},
     "tool results of schedule_meeting: schedule_meeting: success; expected 'error'"),
    ("objective_completed", {"name": "confirm_details", "output_variables": {"attendee": "ana"}},
     {"name": "confirm_details", "output_variables": {"attendee": "Ben"}},
     'expected objective confirm_details with output_variables including {"attendee": "Ben"} to complete; completed: '),
    ("guardrail_triggered", "no_medical_advice", "no_sensitive_data",
     "expected guardrail no_sensitive_data to trigger; triggered: ['no_medical_advice']"),
    ("guardrail_not_triggered", "no_sensitive_data", ["no_medical_advice"],
     "expected guardrail no_medical_advice not to trigger, but it did; the agent said"),
]


@pytest.mark.parametrize("kind, good, bad, needle", KINDS, ids=[k[0] for k in KINDS])
def test_each_turn_kind_passes_and_fails_saying_what_was_expected_and_done(kind, good, bad, needle):
    kinds = all_kinds()
    ok = evaluate({kind: good}, Observed([], None, [BOOK]), kinds)[0]
    assert ok.passed, ok.message
    failed = evaluate({kind: bad}, Observed([], None, [BOOK]), kinds)[0]
    assert not failed.passed and needle in failed.message, failed.message


def test_conversation_kinds_look_at_every_turn_and_at_the_callbacks():
    kinds = all_kinds()
    both = Observed([], "ended", [BOOK, BYE])

    def check(kind, value):
        return evaluate({kind: value}, both, kinds)[0]
    assert check("tools_called_in_order", ["schedule_meeting", "lookup_order_status"]).passed
    swapped = check("tools_called_in_order", ["lookup_order_status", "schedule_meeting"])
    assert not swapped.passed and swapped.message == ("tool schedule_meeting called out of order; "
                                                      "calls: ['schedule_meeting', 'lookup_order_status']")
    assert check("objectives_completed_in_order", ["confirm_details", "wrap_up"]).passed
    never = check("objectives_completed_in_order", ["confirm_details", "escalate"])
    assert not never.passed and "objective escalate never completed" in never.message
    mixed = check("tool_result_status", "success")
    assert not mixed.passed and "lookup_order_status: error; expected 'success'" in mixed.message
    assert "turn 2 (\"Thanks, that's all.\") the agent said 'Goodbye!'" in check("reply_contains", "ciao").message
    callback = {"event_type": "conversation.objective.completed", "conversation_id": "c1",
                "properties": {"objective_name": "escalate", "output_variables": {"to": "human"}}}
    with_callback = Observed([callback], "ended", [BOOK])
    assert evaluate({"objective_completed": {"name": "escalate", "output_variables": {"to": "human"}}},
                    with_callback, kinds)[0].passed, "a callback to the objective's callback_url counts"
    assert BUILTIN_KINDS["no_tool_called"](False, both).passed


def test_judge_without_a_model_or_plugin_is_skipped_not_passed(project):
    ctx = make_context(project, quiet=True)
    judge = make_judge(ctx, None)
    verdict = evaluate({"judge": "The agent was polite."}, Observed([], None, [BOOK], judge), all_kinds())[0]
    assert judge is None and verdict.skipped and verdict.message == NO_MODEL


def scenario_with(turns: list[dict], **extra) -> Scenario:
    return Scenario(path=Path("scenarios/s.toml"), name="s", turns=turns, **extra)


def test_runner_names_the_turn_in_every_turn_verdict():
    sc = scenario_with([{"user": BOOK.user, "expect": {"reply_contains": "booked"}},
                        {"user": BYE.user, "expect": {"reply_contains": "see you", "no_tool_called": True}}])
    result = RunResult(sc, "logs/runs/x", turns=[BOOK, BYE], replies_from="room")
    verdicts = turn_verdicts(sc, result, all_kinds(), None)
    assert [v.kind for v in verdicts] == ["turn 1 reply_contains", "turn 2 reply_contains", "turn 2 no_tool_called"]
    assert [v.passed for v in verdicts] == [True, False, False]
    assert verdicts[1].message == "turn 2 (\"Thanks, that's all.\"): expected a reply containing 'see you'; the agent said 'Goodbye!'"
    assert verdicts[2].message.startswith("turn 2 (\"Thanks, that's all.\"): expected no tool to be called; "
                                          'it called lookup_order_status({"order_id": "A-1"})')


def test_turns_not_sent_after_a_failed_turn_fail_and_the_error_names_the_turn():
    sc = scenario_with([{"user": "one", "expect": {}}, {"user": "two", "expect": {"reply_contains": "x"}}])
    first = Turn(1, "one", errors=["tool backend for schedule_meeting at http://127.0.0.1:9/x did not answer (ConnectionError)"])
    result = RunResult(sc, "logs/runs/x", turns=[first])
    verdicts = turn_verdicts(sc, result, all_kinds(), None)
    assert [(v.kind, v.passed) for v in verdicts] == [("turn 2", False)] and "was not sent" in verdicts[0].message
    assert turn_errors(sc, result.turns) == ("turn 1 ('one'): tool backend for schedule_meeting at "
                                             "http://127.0.0.1:9/x did not answer (ConnectionError)")


def test_a_backend_error_answer_fails_the_scenario_unless_an_error_status_is_expected():
    failing = Turn(1, "where is A-9?", tool_results=[{"name": "lookup_order_status", "status": "error", "output": "no",
                                                       "failed": "tool backend for lookup_order_status at U answered 404: no"}])
    plain = scenario_with([{"user": "where is A-9?", "expect": {}}])
    assert turn_errors(plain, [failing]) == "turn 1 ('where is A-9?'): tool backend for lookup_order_status at U answered 404: no"
    expecting = scenario_with([{"user": "where is A-9?", "expect": {"tool_result_status": "error"}}])
    assert turn_errors(expecting, [failing]) is None


# --- against the real API: replies from the final transcript, aligned by turn --------------------
RECORDED = [  # application.transcription_ready of a chat conversation, as Tavus sends it
    {"role": "system", "content": "You are a helpful assistant. Use the schedule_meeting tool..."},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": "Can you book a meeting with Ana tomorrow at 10?"},
    {"role": "assistant", "content": "Sure, one moment."},
    {"role": "assistant", "content": "Your meeting with Ana is booked for 10:00."},
    {"role": "user", "content": "thanks, that's all"},
    {"role": "assistant", "content": "Goodbye!"},
]


def test_replies_are_aligned_by_turn_from_a_recorded_transcript_and_the_report_says_so():
    turns = [Turn(1, "Can you book a meeting with Ana tomorrow at 10?"), Turn(2, "Thanks, that's all."),
             Turn(3, "Never said")]
    notes = align_transcript(turns, RECORDED)
    assert turns[0].reply == "Sure, one moment. Your meeting with Ana is booked for 10:00."
    assert turns[1].reply == "Goodbye!" and turns[2].reply == ""
    assert notes == ["turn 3 ('Never said'): its words are not in the final transcript"]
    sc = scenario_with([{"user": t.user, "expect": {"reply_contains": "booked"}} for t in turns[:2]])
    result = RunResult(sc, "logs/runs/x", turns=turns[:2], replies_from="transcript")
    first, second = turn_verdicts(sc, result, all_kinds(), None)
    assert first.passed and first.message.endswith("(from the final transcript)")
    assert not second.passed and "the agent said 'Goodbye!' (from the final transcript)" in second.message
    assert "replies read from the final transcript, aligned by turn" in "\n".join(text_lines(result))


# --- the judge and the simulated user on an OpenAI-compatible stand-in -----------------------------
def test_the_judge_asks_the_model_and_reports_its_reason(project):
    answers = iter(['{"pass": true, "reason": "It confirmed Ana and 10:00."}',
                    'Verdict: {"pass": false, "reason": "It never confirmed the time."}', "I think it is fine.",
                    Answer(status=500)])
    with ModelServer(lambda body: next(answers)) as model:
        ctx = make_context(project, {"TAVUS_HARNESS_MODEL_URL": model.base_url,
                                     "TAVUS_HARNESS_MODEL_API_KEY": "sk-judge-secret-123"}, quiet=True)
        judge = make_judge(ctx, Model.from_env(ctx.env))
        rubric = "The agent confirmed date, time and attendee."
        met, unmet, rambling, broken = (judge(rubric, [BOOK]) for _ in range(4))
        request = model.requests[0]
    assert met.passed and met.message == f"met: {rubric!r}; the judge said: It confirmed Ana and 10:00."
    assert not unmet.passed and "not met" in unmet.message and "never confirmed the time" in unmet.message
    assert not rambling.passed and "is not a verdict" in rambling.message
    assert not broken.passed and "answered 500" in broken.message
    assert request.headers["Authorization"] == "Bearer sk-judge-secret-123"
    sent = json.dumps(request.body)
    assert rubric in sent and "Book a meeting with Ana" in sent and "schedule_meeting" in sent
    assert "sk-judge-secret-123" not in " ".join(v.message for v in (met, unmet, rambling, broken))


def test_the_simulated_user_speaks_for_its_goal_until_it_is_done():
    replies = iter(["Please book Ana for 10 tomorrow.", "[done]"])
    with ModelServer(lambda body: next(replies)) as model:
        m = Model(model.base_url)
        first = next_user_message(m, "book a meeting", "a busy manager", [])
        done = next_user_message(m, "book a meeting", "a busy manager", [BOOK])
        system = model.requests[0].body["messages"][0]["content"]
        later = model.requests[1].body["messages"]
    assert first == "Please book Ana for 10 tomorrow." and done is None
    assert "book a meeting" in system and "a busy manager" in system
    assert later[1] == {"role": "assistant", "content": BOOK.user} and later[2]["content"] == BOOK.reply


def test_hook_harness_judge(project):
    ctx = make_context(project, quiet=True)
    seen = []

    class Judge:
        @hookimpl
        def harness_judge(self, rubric, dialogue):
            seen.append((rubric, dialogue))
            return {"passed": "Ana" in dialogue[0]["reply"], "reason": "checked the reply for Ana"}
    ctx.hook  # builds the plugin manager
    ctx.pm.register(Judge())
    judge = make_judge(ctx, None)
    verdict = evaluate({"judge": "Mentions Ana"}, Observed([], None, [BOOK], judge), all_kinds())[0]
    assert verdict.passed and not verdict.skipped and "checked the reply for Ana" in verdict.message
    assert seen[0][0] == "Mentions Ana" and seen[0][1][0]["tool_calls"][0]["name"] == "schedule_meeting"


def test_hook_harness_tool_call(project):
    ctx = make_context(project, quiet=True)

    class Orders:
        @hookimpl
        def harness_tool_call(self, name, arguments, conversation_id):
            if name == "lookup_order_status":
                return {"output": {"order": arguments["order_id"], "conversation": conversation_id}, "status": "success"}
            return None
    ctx.hook
    ctx.pm.register(Orders())
    backends = ToolBackends(ctx, {}, "c123")
    answered = backends.call("lookup_order_status", {"order_id": "A-7"}, "call-1")
    assert answered["output"] == {"order": "A-7", "conversation": "c123"} and answered["status"] == "success"
    assert answered["backend"] == "plugin (harness_tool_call)"
    with pytest.raises(ToolBackendFailed) as caught:
        backends.call("schedule_meeting", {}, "call-2")  # the plugin passes; the scenario names no URL
    assert "the agent called schedule_meeting but the scenario names no backend for it" in caught.value.render()


def test_the_scenario_url_answers_tool_calls_and_an_error_answer_is_recorded_as_such(project):
    import importlib.util
    spec = importlib.util.spec_from_file_location("tool_backend", REPO / "examples" / "tool_backend.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = BackgroundServer(module.make_app(), threads=2).start()
    try:
        ctx = make_context(project, quiet=True)
        tools = {"lookup_order_status": {"url": f"{server.base_url}/tools/lookup_order_status"}}
        found = ToolBackends(ctx, tools).call("lookup_order_status", {"order_id": "a-10023"}, "c1")
        missing = ToolBackends(ctx, tools).call("lookup_order_status", {"order_id": "Z-1"}, "c2")
    finally:
        server.stop()
    assert found["status"] == "success" and found["output"] == {"order_id": "A-10023", "status": "shipped"}
    assert missing["status"] == "error" and "answered 404" in missing["failed"]
    with pytest.raises(ToolBackendFailed) as caught:
        ToolBackends(ctx, tools).call("lookup_order_status", {"order_id": "A-1"}, "c3")  # the server is gone
    assert "tool backend for lookup_order_status at http://127.0.0.1:" in caught.value.message


# --- the report: the dialogue turn by turn, in every format, without secrets --------------------
def test_the_report_shows_the_dialogue_in_text_json_and_junit_without_secrets(tmp_path):
    secret = "tool-token-abcdef123456"
    leaky = Turn(1, "Book a meeting with Ana", reply="Booked.", tool_calls=BOOK.tool_calls,
                 tool_results=[{**BOOK.tool_results[0], "output": {"auth": secret}}], objectives=BOOK.objectives,
                 guardrails=BOOK.guardrails)
    sc = scenario_with([{"user": leaky.user, "expect": {"reply_contains": "cancelled"}}], expect={"judge": "polite"})
    result = RunResult(sc, str(tmp_path / "run"), "c1", turns=[leaky], replies_from="room", cleaned_up=True)
    result.verdicts = turn_verdicts(sc, result, all_kinds(), None) + evaluate(sc.expect, Observed([], None, [leaky]), all_kinds())
    text = "\n".join(text_lines(result))
    for needle in ("dialogue (replies seen live in the sandbox's room):", "turn 1 user:   Book a meeting with Ana",
                   'tool:   schedule_meeting({"attendees": ["ana@example.com"], "title": "Sync"}) -> success',
                   'event:  objective confirm_details completed {"attendee": "Ana", "time": "10:00"}',
                   "event:  guardrail no_medical_advice triggered", "agent:  Booked.",
                   "FAIL turn 1 reply_contains", "skip judge"):
        assert needle in text, text
    report = as_json([result], "sandbox")
    assert report["scenarios"][0]["dialogue"][0]["tool_calls"][0]["name"] == "schedule_meeting"
    assert report["scenarios"][0]["expectations"][-1]["skipped"] is True
    path = write_junit([result], tmp_path / "junit.xml", [secret])
    suite = ET.parse(path).getroot()
    assert suite.get("skipped") == "1" and suite.get("failures") == "1"
    assert "turn 1 user:   Book a meeting with Ana" in suite.find("system-out").text
    assert secret not in path.read_text() and secret in text  # the CLI redacts what it prints (ctx.secrets)


# --- send-app-message: retried on 502 and 429, never resent after a 504 ------------------------------
def test_send_app_message_retries_a_502_and_never_resends_after_a_504(project):
    """A stand-in for Tavus's gateway answering 502/504 (the sandbox does not emulate gateway errors)."""
    import threading

    from harness_core.context import sandbox_context
    from harness_core.testing.dialogue import RateLimiter, SendRefused, send_app_message
    script, seen = [], []

    def gateway(environ, start_response):
        seen.append(json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))))
        status = script.pop(0) if script else 200
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [json.dumps({"message": f"gateway {status}"}).encode()]
    server = BackgroundServer(gateway, threads=2).start()
    try:
        ctx = sandbox_context(make_context(project, quiet=True), f"{server.base_url}/v2")
        limiter, cancel = RateLimiter(), threading.Event()
        script[:] = [502, 502]
        assert send_app_message(ctx, "c1", "conversation.respond", {"text": "hi"}, limiter=limiter, cancel=cancel) == "sent"
        assert len(seen) == 3 and seen[0] == {"message_type": "conversation", "event_type": "conversation.respond",
                                              "conversation_id": "c1", "properties": {"text": "hi"}}
        seen.clear()
        script[:] = [504]
        assert send_app_message(ctx, "c1", "conversation.respond", {"text": "hi"}, limiter=limiter, cancel=cancel) == "maybe"
        assert len(seen) == 1, "a respond that may have been delivered is not sent twice"
        script[:] = [400]
        with pytest.raises(SendRefused) as refused:
            send_app_message(ctx, "c1", "conversation.respond", {"text": "hi"}, limiter=limiter, cancel=cancel)
        assert "send-app-message conversation.respond was refused: 400 gateway 400" == refused.value.message
        with pytest.raises(SendRefused) as too_big:
            send_app_message(ctx, "c1", "conversation.respond", {"text": "x" * 70_000}, limiter=limiter, cancel=cancel)
        assert "send-app-message takes at most 65536" in too_big.value.message
    finally:
        server.stop()


def test_the_rate_limiter_holds_the_documented_pace():
    import threading
    import time as clock

    from harness_core.testing.dialogue import RateLimiter
    limiter, cancel = RateLimiter(limit=3, window=0.3), threading.Event()
    started = clock.monotonic()
    for _ in range(4):
        limiter.acquire(cancel)
    assert clock.monotonic() - started >= 0.25, "the 4th send waited for the window to free a slot"


def test_policies_point_at_the_receiver_tagged_per_resource_keeping_their_own_callback_urls():
    from harness_core.resources.policies import with_receiver
    url = "https://hook.example/tavus/callback?token=t0k"
    objectives = {"name": "o", "data": [{"objective_name": "a"}, {"objective_name": "b", "callback_url": "https://mine/x"}]}
    out = with_receiver("objectives", objectives, "set", url)
    assert [i["callback_url"] for i in out["data"]] == [url + "&objective=a", "https://mine/x"]
    assert "callback_url" not in objectives["data"][0], "the config itself is left alone"
    flat = with_receiver("guardrails", {"guardrail_name": "g", "guardrail_prompt": "p"}, "flat", url + "&guardrail=old")
    assert flat["callback_url"] == url + "&guardrail=g"


def test_the_receiver_reads_only_well_formed_resource_tags():
    from harness_core.callbacks.receiver import resource_tag
    assert resource_tag({"token": ["t"], "objective": ["agenda_coverage"]}) == {"objective": "agenda_coverage"}
    assert resource_tag({"guardrail": ["no advice!"], "other": ["x"]}) == {}
