"""The local Tavus sandbox over real HTTP: every endpoint, every documented error, callbacks."""
from __future__ import annotations

import time

import pytest
import requests

from harness_core.sandbox import Sandbox, SandboxSettings

KEY = {"x-api-key": "any-key"}
STOCK = "r4317e64d25a"


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def call(sb, method, path, body=None, headers=KEY, **params):
    return requests.request(method, sb.url + path, json=body, headers=headers, params=params, timeout=10)


def make_persona(sb, **extra):
    body = {"persona_name": "Tester", "system_prompt": "Be helpful.", "default_replica_id": STOCK, **extra}
    resp = call(sb, "POST", "/personas", body)
    assert resp.status_code == 200, resp.text
    return resp.json()["persona_id"]


@pytest.fixture
def sb():
    with Sandbox(SandboxSettings(time_scale=0.01, max_concurrent=2)) as sandbox:
        yield sandbox


# --- auth and transport ---------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"x-api-key": ""}])
def test_missing_key_is_401_with_the_tavus_body(sb, headers):
    resp = call(sb, "GET", "/personas", headers=headers)
    assert resp.status_code == 401 and resp.json() == {"message": "Invalid access token"}


def test_a_sandbox_started_with_a_key_refuses_other_keys():
    with Sandbox(SandboxSettings(api_key="right-key")) as sandbox:
        assert call(sandbox, "GET", "/replicas", headers={"x-api-key": "wrong"}).status_code == 401
        assert call(sandbox, "GET", "/replicas", headers={"x-api-key": "right-key"}).status_code == 200


@pytest.mark.parametrize("path", ["/personas", "/personas/", "/objectives/", "/guardrails/", "/replicas/", "/conversations/"])
def test_collection_routes_answer_with_and_without_trailing_slash_without_redirect(sb, path):
    resp = requests.get(sb.url + path, headers=KEY, timeout=10, allow_redirects=False)
    assert resp.status_code == 200 and set(resp.json()) >= {"data", "total_count"}


def test_unknown_route_404_wrong_method_405_bad_json_400(sb):
    assert call(sb, "GET", "/nothing").status_code == 404
    assert call(sb, "PUT", "/personas").status_code == 405
    resp = requests.post(sb.url + "/personas", data=b"{nope", headers={**KEY, "Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 400 and resp.json() == {"error": "Invalid JSON body"}


# --- personas and PALs ----------------------------------------------------------------------
def test_persona_create_returns_the_summary_and_stores_the_document(sb):
    resp = call(sb, "POST", "/personas", {"persona_name": "A", "system_prompt": "p", "default_replica_id": STOCK,
                                          "layers": {"llm": {"model": "tavus-gpt-oss"}}})
    body = resp.json()
    assert set(body) == {"persona_id", "persona_name", "created_at"} and body["persona_id"].startswith("p")
    stored = sb.store.personas[body["persona_id"]]
    assert stored["layers"] == {"llm": {"model": "tavus-gpt-oss"}} and stored["pipeline_mode"] == "full"


@pytest.mark.parametrize("body, status, answer", [
    ({"persona_name": "A"}, 400, {"error": "system_prompt is required when pipeline_mode is full"}),
    ({"system_prompt": "p", "default_replica_id": "rnope"}, 400, {"error": "Invalid replica_uuid"}),
    ({"system_prompt": "p", "objectives_id": "o000"}, 400, {"error": "Invalid objectives_id"}),
    ({"system_prompt": "p", "favourite_colour": "blue"}, 400, None),
    ({"system_prompt": "p", "layers": {"tts": {"tts_emotion_control": "yes"}}}, 400, None),
    ({"system_prompt": "p", "layers": {"llm": {"model": "gpt-nine"}}}, 400, None),
])
def test_persona_create_validation(sb, body, status, answer):
    resp = call(sb, "POST", "/personas", body)
    assert resp.status_code == status
    assert resp.json() == answer if answer else "error" in resp.json()
    assert not sb.store.personas


def test_echo_mode_needs_no_prompt_and_custom_llm_takes_any_model(sb):
    assert call(sb, "POST", "/personas", {"pipeline_mode": "echo"}).status_code == 200
    assert call(sb, "POST", "/personas", {"system_prompt": "p", "layers": {"llm": {"model": "my-model", "base_url": "http://127.0.0.1:1"}}}).status_code == 200


def test_persona_list_get_and_stock_filter(sb):
    pid = make_persona(sb)
    users = call(sb, "GET", "/personas", persona_type="user").json()
    assert users["total_count"] == 1 and users["data"][0]["persona_id"] == pid
    stock = call(sb, "GET", "/personas", persona_type="system").json()
    assert stock["total_count"] >= 4 and all(p["persona_type"] == "system" for p in stock["data"])
    paged = call(sb, "GET", "/personas", limit=2, page=2).json()
    assert len(paged["data"]) == 2 and paged["total_count"] == users["total_count"] + stock["total_count"]
    assert call(sb, "GET", f"/personas/{pid}").json()["persona_name"] == "Tester"
    assert call(sb, "GET", "/personas/pnope").json() == {"error": "Invalid persona_id"}


def test_wrapped_get_shape_is_a_setting_and_pals_are_always_flat():
    with Sandbox(SandboxSettings(persona_get_shape="wrapped")) as sandbox:
        pid = make_persona(sandbox)
        wrapped = call(sandbox, "GET", f"/personas/{pid}").json()
        assert wrapped["data"][0]["persona_id"] == pid
        pal = call(sandbox, "GET", f"/pals/{pid}").json()
        assert pal["pal_id"] == pid and pal["default_face_id"] == STOCK and "persona_id" not in pal


def test_pal_patches_use_pal_names_and_unknown_pals_and_faces_are_404(sb):
    pid = call(sb, "POST", "/pals", {"pal_name": "P", "system_prompt": "x", "default_face_id": STOCK}).json()["pal_id"]
    patched = call(sb, "PATCH", f"/pals/{pid}", [{"op": "replace", "path": "/pal_name", "value": "Q"}])
    assert patched.status_code == 200 and patched.json()["pal_name"] == "Q" and "persona_name" not in patched.json()
    assert sb.store.personas[pid]["persona_name"] == "Q"
    assert call(sb, "PATCH", f"/pals/{pid}", [{"op": "replace", "path": "/default_face_id", "value": STOCK}]).status_code == 304
    assert call(sb, "GET", "/pals/pnope").status_code == 404 and call(sb, "GET", "/faces/rnope").status_code == 404
    assert call(sb, "GET", "/personas/pnope").status_code == 400 and call(sb, "GET", "/replicas/rnope").status_code == 400


def test_pals_use_current_names_and_require_a_face(sb):
    assert call(sb, "POST", "/pals", {"pal_name": "P", "system_prompt": "x"}).status_code == 400
    body = call(sb, "POST", "/pals", {"pal_name": "P", "system_prompt": "x", "default_face_id": STOCK}).json()
    assert set(body) == {"pal_id", "pal_name", "created_at"}
    assert sb.store.personas[body["pal_id"]]["persona_name"] == "P"


def test_patch_applies_json_patch_and_answers_304_422_400(sb):
    pid = make_persona(sb, layers={"stt": {"hotwords": "Tavus"}})
    ok = call(sb, "PATCH", f"/personas/{pid}", [{"op": "replace", "path": "/persona_name", "value": "New"},
                                                {"op": "add", "path": "/layers/llm", "value": {"model": "tavus-gpt-oss"}},
                                                {"op": "remove", "path": "/layers/stt/hotwords"}])
    assert ok.status_code == 200
    stored = sb.store.personas[pid]
    assert stored["persona_name"] == "New" and stored["layers"] == {"stt": {}, "llm": {"model": "tavus-gpt-oss"}}
    same = call(sb, "PATCH", f"/personas/{pid}", [{"op": "replace", "path": "/persona_name", "value": "New"}])
    assert same.status_code == 304 and same.content == b""
    bad = call(sb, "PATCH", f"/personas/{pid}", {"op": "replace", "path": "/persona_name", "value": "x"})
    assert bad.status_code == 422 and bad.json() == {"message": "Invalid JSON patch format"}
    missing = call(sb, "PATCH", f"/personas/{pid}", [{"op": "replace", "path": "/context_missing/x", "value": 1}])
    assert missing.status_code == 400 and missing.json() == {"error": "Invalid patch operation"}
    assert call(sb, "PATCH", "/personas/pnope", []).json() == {"error": "Invalid persona_id"}


def test_delete_persona_is_204_empty(sb):
    pid = make_persona(sb)
    resp = call(sb, "DELETE", f"/personas/{pid}")
    assert resp.status_code == 204 and resp.content == b"" and pid not in sb.store.personas
    assert call(sb, "DELETE", f"/personas/{pid}").status_code == 400


# --- replicas and faces ---------------------------------------------------------------------
def test_stock_replicas_and_faces(sb):
    rows = call(sb, "GET", "/replicas", replica_type="system", verbose="true", limit=50).json()["data"]
    stock = {r["replica_id"]: r for r in rows}
    assert STOCK in stock and stock[STOCK]["status"] == "completed" and stock[STOCK]["replica_type"] == "system"
    assert "replica_type" not in call(sb, "GET", f"/replicas/{STOCK}").json()
    face = call(sb, "GET", f"/faces/{STOCK}", verbose="true").json()
    assert face["face_id"] == STOCK and face["face_type"] == "system"
    assert call(sb, "GET", "/replicas/rnope").json() == {"error": "Invalid replica_id"}


# --- conversations --------------------------------------------------------------------------
@pytest.mark.parametrize("body, answer", [
    ({"replica_id": STOCK, "language": "english"}, "unknown field 'language'"),
    ({"replica_id": STOCK, "callback_url": None}, "callback_url"),
    ({"replica_id": STOCK, "properties": {"max_call_duration": "long"}}, "properties.max_call_duration"),
    ({"replica_id": STOCK, "properties": {"colour": "red"}}, "properties.colour"),
    ({"replica_id": STOCK, "max_participants": 1}, "max_participants"),
    ({"replica_id": "rnope"}, "Invalid replica_id"),
    ({"persona_id": "pnope"}, "Invalid persona_id"),
    ({}, "replica_id is required"),
])
def test_conversation_create_validation(sb, body, answer):
    resp = call(sb, "POST", "/conversations", body)
    assert resp.status_code == 400 and answer in resp.json()["error"]
    assert not sb.store.conversations


def test_conversation_create_get_list_end_delete(sb):
    pid = make_persona(sb)
    created = call(sb, "POST", "/conversations", {"persona_id": pid, "conversation_name": "C1"}).json()
    cid = created["conversation_id"]
    assert created["status"] == "active" and created["conversation_url"] == f"https://tavus.daily.co/{cid}"
    assert "callback_url" not in created and created["replica_id"] == STOCK
    assert call(sb, "GET", "/conversations", status="active").json()["total_count"] == 1
    assert call(sb, "POST", f"/conversations/{cid}/end").status_code == 200
    got = call(sb, "GET", f"/conversations/{cid}", verbose="true").json()
    assert got["status"] == "ended"
    assert [e["event_type"] for e in got["events"]][-2:] == ["system.shutdown", "application.transcription_ready"]
    assert sb.wait_idle(10)  # the raven-1 analysis (the default) comes minutes later, scaled
    got = call(sb, "GET", f"/conversations/{cid}", verbose="true").json()
    assert [e["event_type"] for e in got["events"]][-1] == "application.perception_analysis"
    assert call(sb, "GET", "/conversations", status="active").json()["total_count"] == 0
    assert call(sb, "DELETE", f"/conversations/{cid}").status_code == 204
    assert call(sb, "GET", f"/conversations/{cid}").json() == {"error": "Invalid conversation_id"}


def test_concurrency_cap_counts_active_non_test_conversations(sb):
    for _ in range(2):
        assert call(sb, "POST", "/conversations", {"replica_id": STOCK}).status_code == 200
    over = call(sb, "POST", "/conversations", {"replica_id": STOCK})
    assert over.status_code == 400 and over.json() == {"message": "User has reached maximum concurrent conversations"}
    assert call(sb, "POST", "/conversations", {"replica_id": STOCK, "test_mode": True}).status_code == 200


def test_test_mode_is_created_ended_and_sends_no_callbacks(sb, collector):
    body = call(sb, "POST", "/conversations", {"replica_id": STOCK, "test_mode": True, "callback_url": collector.url}).json()
    assert body["status"] == "ended"
    sb.wait_idle(2)
    import time
    time.sleep(0.2)  # longer than the scaled replica join delay (0.02 s)
    assert collector.events == [] and sb.deliveries == []


def test_callbacks_arrive_in_the_documented_order_and_envelope(sb, collector):
    pid = make_persona(sb, layers={"perception": {"perception_model": "raven-1",
                                                   "perception_analysis_queries": ["Is the user smiling?"]}})
    cid = call(sb, "POST", "/conversations", {
        "persona_id": pid, "callback_url": collector.url, "custom_greeting": "Welcome to the kickoff!",
        "properties": {"enable_recording": True, "recording_storage": {"provider": "s3", "bucket_name": "rec",
                                                                          "bucket_region": "us-east-1"}}}).json()["conversation_id"]
    collector.wait_for(lambda evs: len(evs) == 2)
    requests.post(sb.url.replace("/v2", "/_sandbox/script"), json={"conversation_id": cid, "participant_joins": True},
                  headers=KEY, timeout=10)  # someone is there: the replica greets them
    wait_until(lambda: any(e.get("event_type") == "conversation.utterance" for e in sb.store.conversations[cid]["events"]))
    call(sb, "POST", f"/conversations/{cid}/end")
    events = collector.wait_for(lambda evs: len(evs) == 6)
    # the recording seconds after the end, the analysis minutes after it (CONTRACT §6.4; both scaled)
    assert [e["event_type"] for e in events] == ["system.replica_joined", "system.pal_joined", "system.shutdown",
                                                 "application.transcription_ready",
                                                 "application.recording_ready", "application.perception_analysis"]
    events = [events[0], *events[2:4], events[5], events[4]]
    for e in events:
        assert set(e) == {"properties", "conversation_id", "webhook_url", "event_type", "message_type", "timestamp"}
        assert e["conversation_id"] == cid and e["message_type"] == e["event_type"].split(".")[0]
        assert e["timestamp"].endswith("Z") and len(e["timestamp"]) == 27
    assert events[1]["properties"]["shutdown_reason"] == "end_conversation_endpoint_hit"
    transcript = events[2]["properties"]["transcript"]
    assert transcript[0] == {"role": "system", "content": "Be helpful."}
    assert transcript[1]["role"] == "assistant" and transcript[1]["content"] == "Welcome to the kickoff!"
    assert "Is the user smiling?" in events[3]["properties"]["analysis"]
    assert events[4]["properties"]["storage_uri"].startswith("s3://rec/")


def test_max_call_duration_ends_the_call_with_its_reason(sb, collector):
    call(sb, "POST", "/conversations", {"replica_id": STOCK, "callback_url": collector.url,
                                        "properties": {"max_call_duration": 30}})
    events = collector.wait_for(lambda evs: len(evs) >= 3, timeout=10)
    assert events[2]["properties"]["shutdown_reason"] == "max_call_duration reached"


def test_scripted_transcript_and_end_over_http(sb, collector):
    pid = make_persona(sb)
    script = {"persona_id": pid, "transcript": [{"role": "user", "content": "Let's cover risks."}], "end_after_seconds": 5}
    resp = requests.post(sb.url.replace("/v2", "/_sandbox/script"), json=script, headers=KEY, timeout=10)
    assert resp.status_code == 200
    call(sb, "POST", "/conversations", {"persona_id": pid, "callback_url": collector.url})
    events = collector.wait_for(lambda evs: any(e["event_type"] == "application.transcription_ready" for e in evs))
    # later callbacks (perception, recording) may already be there: pick the transcript itself
    ready = next(e for e in events if e["event_type"] == "application.transcription_ready")
    transcript = ready["properties"]["transcript"]
    assert [t["content"] for t in transcript[1:]] == ["Let's cover risks."]


# --- objectives, guardrails, documents ------------------------------------------------------
def test_objectives_lifecycle_and_errors(sb):
    bad = call(sb, "POST", "/objectives", {"data": [{"objective_prompt": "x"}]})
    assert bad.status_code == 400 and bad.json() == {"message": "objective_name is required"}
    body = {"name": "Core", "data": [{"objective_name": "agenda", "objective_prompt": "Cover the agenda"}]}
    created = call(sb, "POST", "/objectives/", body).json()
    oid = created["objectives_id"]
    assert oid.startswith("o") and created["status"] == "active"
    assert call(sb, "GET", f"/objectives/{oid}").json()["data"][0]["objective_name"] == "agenda"
    ok = call(sb, "PATCH", f"/objectives/{oid}", [{"op": "replace", "path": "/data/0/objective_prompt", "value": "New"}])
    assert ok.json() == {"message": "Objective updated successfully"}
    assert call(sb, "PATCH", f"/objectives/{oid}", [{"op": "replace", "path": "/data/0/objective_prompt", "value": "New"}]).status_code == 304
    assert call(sb, "GET", "/objectives/onope").json() == {"error": "Objective not found"}
    assert call(sb, "DELETE", f"/objectives/{oid}").status_code == 204


@pytest.mark.parametrize("links, problem", [
    ({"next_required_objective": "ghost"}, "'ghost' does not exist"),
    ({"next_required_objective": "agenda"}, "cannot lead to itself"),
    ({"next_required_objective": "wrap", "next_conditional_objectives": {"wrap": "when done"}}, "next_required_objective"),
])
def test_objective_links_must_name_another_objective_of_the_set(sb, links, problem):
    items = [{"objective_name": "agenda", "objective_prompt": "Cover it", **links},
             {"objective_name": "wrap", "objective_prompt": "Wrap up"}]
    refused = call(sb, "POST", "/objectives", {"name": "Core", "data": items})
    assert refused.status_code == 400 and problem in refused.json()["message"]
    first = {"objective_name": "agenda", "objective_prompt": "Cover it", "next_required_objective": "wrap"}
    good = call(sb, "POST", "/objectives", {"name": "Core", "data": [first, items[1]]}).json()
    patch = [{"op": "replace", "path": "/data/0/next_required_objective", "value": "ghost"}]
    assert call(sb, "PATCH", f"/objectives/{good['objectives_id']}", patch).json() == {"error": "Invalid patch operation"}


def test_flat_and_set_guardrails_and_detach_on_delete(sb):
    assert call(sb, "POST", "/guardrails", {"guardrail_prompt": "x"}).json() == {"message": "guardrail_name is required"}
    assert call(sb, "POST", "/guardrails", {"guardrail_name": "has space", "guardrail_prompt": "x"}).status_code == 400
    flat = call(sb, "POST", "/guardrails/", {"guardrail_name": "no_advice", "guardrail_prompt": "No advice."}).json()
    assert flat["uuid"].startswith("g") and flat["modality"] == "verbal"
    legacy = call(sb, "POST", "/guardrails", {"name": "Safety", "data": [{"guardrail_name": "a", "guardrail_prompt": "b"}]}).json()
    assert legacy["guardrails_id"].startswith("g") and legacy["guardrails_name"] == "Safety"
    assert {r.get("uuid") for r in call(sb, "GET", "/guardrails", legacy="false").json()["data"]} == {flat["uuid"]}
    pid = make_persona(sb, guardrail_ids=[flat["uuid"]], guardrails_id=legacy["guardrails_id"])
    assert call(sb, "DELETE", f"/guardrails/{flat['uuid']}").status_code == 204
    assert sb.store.personas[pid]["guardrail_ids"] == []
    assert call(sb, "GET", "/guardrails/gnope").json() == {"error": "Guardrails not found"}


def test_documents_list_is_zero_based_and_echoes_paging(sb):
    body = call(sb, "GET", "/documents", limit=1).json()
    assert body["page"] == 0 and body["limit"] == 1 and len(body["data"]) == 1 and body["total_count"] == len(sb.state.documents) > 1
    did = body["data"][0]["document_id"]
    assert call(sb, "GET", f"/documents/{did}").json()["status"] == "ready"
    assert call(sb, "GET", "/documents/dnope").json() == {"message": "Document not found"}


def test_state_file_keeps_resources_between_runs(tmp_path):
    path = tmp_path / "state.json"
    with Sandbox(SandboxSettings(state_file=str(path))) as first:
        pid = make_persona(first)
    with Sandbox(SandboxSettings(state_file=str(path))) as second:
        assert call(second, "GET", f"/personas/{pid}").json()["persona_name"] == "Tester"


@pytest.mark.parametrize("content, needle", [("{bad", "not a sandbox state file"), ("[1]", "top level is not an object"),
                                             (None, "is a directory")])
def test_a_state_file_that_cannot_be_used_is_one_error_at_start(tmp_path, content, needle):
    from harness_core.errors import ConfigError
    from harness_core.sandbox import Sandbox, SandboxSettings
    path = tmp_path / "state.json"
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
    with pytest.raises(ConfigError, match=needle) as caught:
        Sandbox(SandboxSettings(state_file=str(path)))
    assert str(path) in caught.value.render() and "\n" not in caught.value.render()
    if content is not None:
        assert path.read_text() == content, "the broken file is left as it was"
