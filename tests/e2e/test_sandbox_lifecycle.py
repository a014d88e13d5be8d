"""The sandbox's conversation lifecycle over real HTTP (issue 14, items 2-4): the default absent
timeout, the transcript of what happened, no analysis without video, pal_joined, delete, loopback
tool URLs, post-call tools."""
from __future__ import annotations

import json

import pytest
import requests

from harness_core.sandbox import Sandbox, SandboxSettings
from harness_core.serving import BackgroundServer

KEY = {"x-api-key": "any-key"}
STOCK = "r4317e64d25a"


def call(sb, method, path, body=None, **params):
    return requests.request(method, sb.url + path, json=body, headers=KEY, params=params, timeout=10)


def persona(sb, **extra):
    body = {"persona_name": "L", "system_prompt": "Be brief.", "default_replica_id": STOCK, **extra}
    return call(sb, "POST", "/personas", body).json()["persona_id"]


def kinds(events):
    return [e["event_type"] for e in events]


@pytest.fixture
def sb():
    with Sandbox(SandboxSettings(time_scale=0.005, max_concurrent=50)) as sandbox:
        yield sandbox


def test_nobody_joins_so_the_default_absent_timeout_ends_it_with_an_empty_transcript(sb, collector):
    cid = call(sb, "POST", "/conversations", {"persona_id": persona(sb), "callback_url": collector.url,
                                              "custom_greeting": "Hi!"}).json()["conversation_id"]
    events = collector.wait_for(lambda b: "application.transcription_ready" in kinds(b), timeout=10)
    assert kinds(events)[:4] == ["system.replica_joined", "system.pal_joined", "system.shutdown",
                                 "application.transcription_ready"]
    assert events[1]["properties"]["face_id"] == STOCK
    assert events[2]["properties"]["shutdown_reason"] == "participant_absent_timeout reached"
    assert events[3]["properties"]["transcript"] == [{"role": "system", "content": "Be brief."}], "no one spoke"
    assert call(sb, "GET", f"/conversations/{cid}").json()["status"] == "ended"


def test_a_chat_user_counts_as_present_so_the_absent_timeout_leaves_it_running(sb):
    cid = call(sb, "POST", "/conversations", {"persona_id": persona(sb), "chat": True,
                                              "properties": {"participant_absent_timeout": 10,
                                                             "max_call_duration": 400}}).json()["conversation_id"]
    video = call(sb, "POST", "/conversations", {"persona_id": persona(sb),
                                                "properties": {"participant_absent_timeout": 10}}).json()["conversation_id"]
    assert sb.wait_idle(5)
    import time
    deadline = time.monotonic() + 5
    while sb.store.conversations[video]["status"] == "active":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert sb.store.conversations[cid]["status"] == "active", "the chat user is present: no absent timeout"


@pytest.mark.parametrize("extra, analysed", [({}, True), ({"audio_only": True}, False), ({"chat": True}, False)])
def test_the_analysis_comes_later_and_only_for_video(sb, collector, extra, analysed):
    cid = call(sb, "POST", "/conversations", {"persona_id": persona(sb), "callback_url": collector.url, **extra}).json()["conversation_id"]
    collector.wait_for(lambda b: "system.pal_joined" in kinds(b))
    call(sb, "POST", f"/conversations/{cid}/end")
    assert sb.wait_idle(10)
    events = collector.wait_for(lambda b: "application.transcription_ready" in kinds(b))
    assert ("application.perception_analysis" in kinds(events)) is analysed
    stamps = {e["event_type"]: e["timestamp"] for e in events}
    if analysed:  # 180 simulated seconds after the shutdown: 0.9 s here
        assert stamps["application.perception_analysis"] > stamps["system.shutdown"]


def test_deleting_an_active_conversation_shuts_it_down_and_sends_nothing_after(sb, collector):
    cid = call(sb, "POST", "/conversations", {"persona_id": persona(sb), "callback_url": collector.url}).json()["conversation_id"]
    collector.wait_for(lambda b: "system.pal_joined" in kinds(b))
    assert call(sb, "DELETE", f"/conversations/{cid}").status_code == 204
    assert sb.wait_idle(10)
    events = collector.wait_for(lambda b: "system.shutdown" in kinds(b))
    assert kinds(events) == ["system.replica_joined", "system.pal_joined", "system.shutdown"]
    assert events[-1]["properties"]["shutdown_reason"] == "daily_room_has_been_deleted"


def tool_body(url, **extra):
    return {"name": "save_summary", "description": "Save", "parameters": {"type": "object", "properties": {
        "summary": {"type": "string", "default": "none"}}}, "delivery": {"api": {"url": url}}, **extra}


def test_loopback_tool_urls_are_refused_unless_the_sandbox_allows_them(sb):
    refused = call(sb, "POST", "/tools", tool_body("http://127.0.0.1:9/tools/x"))
    assert refused.status_code == 400 and "https://" in refused.json()["error"]
    with Sandbox(SandboxSettings(allow_loopback_tools=True)) as open_sb:
        assert call(open_sb, "POST", "/tools", tool_body("http://127.0.0.1:9/tools/x")).status_code == 200
        assert call(open_sb, "POST", "/tools", tool_body("http://example.com/x")).status_code == 400, "public needs https"


def test_post_call_tools_run_after_a_call_with_dialogue_and_report_to_the_callback(collector):
    got = []

    def backend(environ, start_response):
        got.append(json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))))
        start_response("201 Created", [("Content-Type", "application/json")])
        return [b'{"saved": true}']

    server = BackgroundServer(backend, threads=2)
    server.start()
    try:
        with Sandbox(SandboxSettings(time_scale=0.005, allow_loopback_tools=True)) as sb:
            tool = call(sb, "POST", "/tools", tool_body(f"{server.base_url}/save", trigger_type="post_call")).json()
            pid = persona(sb)
            call(sb, "POST", f"/pals/{pid}/tools", {"tool_ids": [tool["tool_id"]]})
            silent = call(sb, "POST", "/conversations", {"persona_id": pid, "chat": True}).json()["conversation_id"]
            cid = call(sb, "POST", "/conversations", {"persona_id": pid, "chat": True, "callback_url": collector.url}).json()["conversation_id"]
            call(sb, "POST", f"/conversations/{cid}/send-app-message", {
                "message_type": "conversation", "event_type": "conversation.respond", "properties": {"text": "hello"}})
            import time
            deadline = time.monotonic() + 10
            while len(sb.store.conversations[cid].get("dialogue") or []) < 2:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            for conversation in (silent, cid):
                call(sb, "POST", f"/conversations/{conversation}/end")
            assert sb.wait_idle(10)
            events = collector.wait_for(lambda b: "application.post_call_action_executed" in kinds(b))
    finally:
        server.stop()
    done = next(e for e in events if e["event_type"] == "application.post_call_action_executed")
    assert done["properties"] == {"tool_id": tool["tool_id"], "tool_name": "save_summary", "status": "success",
                                  "request": {"body": {"summary": "none"}}, "response": {"saved": True}}
    assert got == [{"summary": "none"}], "once, and not for the conversation where nobody spoke"
