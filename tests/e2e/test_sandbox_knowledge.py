"""The sandbox's knowledge base, tools, pronunciation dictionaries, voices and faces over real HTTP
(issue 14): every route, every documented rule, the OAS request examples and response schemas."""
from __future__ import annotations

import time

import pytest
import requests

from harness_core.sandbox import Sandbox, SandboxSettings
from tests.oas import conforms, request_examples, response_schema

KEY = {"x-api-key": "any-key"}
STOCK = "r4317e64d25a"
SCALE = 0.002  # documents finish in 0.06 s, replicas train in 1.2 s, the recrawl cooldown is 7.2 s


def call(sb, method, path, body=None, **params):
    return requests.request(method, sb.url + path, json=body, headers=KEY, params=params, timeout=10)


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def sb():
    with Sandbox(SandboxSettings(time_scale=SCALE)) as sandbox:
        yield sandbox


def make_pal(sb):
    resp = call(sb, "POST", "/pals", {"pal_name": "Kb", "system_prompt": "Help.", "default_face_id": STOCK})
    assert resp.status_code == 200, resp.text
    return resp.json()["pal_id"]


def make_document(sb, **body):
    resp = call(sb, "POST", "/documents", {"document_url": "https://docs.example.com/guide.pdf", **body})
    assert resp.status_code == 200, resp.text
    return resp.json()


def status_of(sb, did):
    return call(sb, "GET", f"/documents/{did}").json()["status"]


# --- documents ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, body", request_examples("/v2/documents", "post"))
def test_each_oas_document_example_is_accepted_and_answered_in_the_documented_shape(sb, name, body):
    resp = call(sb, "POST", "/documents", body)
    assert resp.status_code == 200, (name, resp.text)
    assert conforms(response_schema("/v2/documents", "post", 200), resp.json(), complete=True) == []
    assert resp.json()["status"] == "started"
    did = resp.json()["document_id"]
    got = call(sb, "GET", f"/documents/{did}").json()
    assert conforms(response_schema("/v2/documents/{document_id}", "get", 200), got, complete=True) == []
    listed = call(sb, "GET", "/documents").json()
    assert conforms(response_schema("/v2/documents", "get", 200), listed, complete=True) == []


def test_a_document_goes_started_processing_ready_with_a_callback_for_each(sb, collector):
    doc = make_document(sb, callback_url=collector.url, crawl={"depth": 1, "max_pages": 3},
                        document_url="https://docs.example.com/")
    bodies = collector.wait_for(lambda b: any(x.get("status") == "ready" for x in b))
    assert [b["status"] for b in bodies] == ["started", "processing", "ready"]
    assert {b["document_id"] for b in bodies} == {doc["document_id"]}
    ready = call(sb, "GET", f"/documents/{doc['document_id']}").json()
    assert ready["crawl_count"] == 1 and ready["crawled_urls"][0] == "https://docs.example.com/"
    assert ready["last_crawled_at"] and ready["progress"] is None


@pytest.mark.parametrize("url, code", [
    ("ftp://files.example.com/a.pdf", "invalid_file_url"),
    ("https://files.example.com/setup.exe", "file_format_unsupported"),
    ("https://files.example.com/a.pdf?sandbox_error=file_size_too_large", "file_size_too_large"),
])
def test_processing_fails_with_the_documented_error_code(sb, collector, url, code):
    doc = make_document(sb, document_url=url, callback_url=collector.url)
    bodies = collector.wait_for(lambda b: any(x.get("status") == "error" for x in b))
    assert bodies[-1]["error_message"] == code
    assert call(sb, "GET", f"/documents/{doc['document_id']}").json()["error_message"] == code


def test_document_create_errors_are_the_documented_ones(sb):
    assert call(sb, "POST", "/documents", {"document_name": "x"}).json() == \
        {"error": "Invalid request: document_url is required"}
    resp = call(sb, "POST", "/documents", {"document_url": "https://a.example/", "crawl": {"depth": 11}})
    assert resp.status_code == 400 and "crawl.depth" in resp.json()["error"]
    resp = call(sb, "POST", "/documents", {"document_url": "https://a.example/", "colour": "red"})
    assert resp.status_code == 400 and "colour" in resp.json()["error"]


def test_the_sixth_concurrent_crawl_is_refused_with_429():
    with Sandbox(SandboxSettings(time_scale=10.0)) as slow:  # crawls stay busy for the whole test
        for _ in range(5):
            make_document(slow, document_url="https://docs.example.com/", crawl={"depth": 1})
        resp = call(slow, "POST", "/documents", {"document_url": "https://docs.example.com/", "crawl": {"depth": 1}})
        assert resp.status_code == 429 and "5" in resp.json()["error"]
        assert call(slow, "POST", "/documents", {"document_url": "https://docs.example.com/a.pdf"}).status_code == 200


def test_patch_is_a_plain_object_and_tags_overwrite(sb):
    (name, body), = request_examples("/v2/documents/{document_id}", "patch")
    did = make_document(sb, tags=["old", "keep"])["document_id"]
    resp = call(sb, "PATCH", f"/documents/{did}", body)
    assert resp.status_code == 200
    assert conforms(response_schema("/v2/documents/{document_id}", "patch", 200), resp.json(), complete=True) == []
    got = call(sb, "GET", f"/documents/{did}").json()
    assert got["tags"] == body["tags"] and got["document_name"] == body["document_name"]
    assert call(sb, "PATCH", f"/documents/{did}", [{"op": "replace", "path": "/tags", "value": []}]).status_code == 400
    assert call(sb, "PATCH", f"/documents/{did}", {"document_name": 3}).json() == \
        {"error": "Invalid request: document_name must be a string"}
    assert call(sb, "PATCH", "/documents/dnope", {"tags": []}).json() == {"message": "Document not found"}


def test_delete_is_204_then_404(sb):
    did = make_document(sb)["document_id"]
    resp = call(sb, "DELETE", f"/documents/{did}")
    assert resp.status_code == 204 and resp.content == b""
    assert call(sb, "GET", f"/documents/{did}").status_code == 404
    assert call(sb, "DELETE", f"/documents/{did}").json() == {"message": "Document not found"}


def test_recrawl_answers_202_then_409_while_busy_then_429_in_the_cooldown(collector):
    with Sandbox(SandboxSettings(time_scale=0.02)) as sb:  # a 72 s cooldown that no loaded machine outlasts
        _recrawl_sequence(sb, collector)


def _recrawl_sequence(sb, collector):
    did = make_document(sb, document_url="https://docs.example.com/", crawl={"depth": 1},
                        callback_url=collector.url)["document_id"]
    busy = call(sb, "POST", f"/documents/{did}/recrawl")  # still started or processing: which one is timing
    assert busy.status_code == 409 and busy.json()["error"].rpartition(": ")[2] in ("started", "processing")
    wait_until(lambda: status_of(sb, did) == "ready")
    (name, body), = request_examples("/v2/documents/{document_id}/recrawl", "post")
    resp = call(sb, "POST", f"/documents/{did}/recrawl", body)
    assert resp.status_code == 202 and resp.json()["status"] == "recrawling"
    assert conforms(response_schema("/v2/documents/{document_id}/recrawl", "post", 202), resp.json()) == []
    wait_until(lambda: status_of(sb, did) == "ready")
    assert call(sb, "GET", f"/documents/{did}").json()["crawl_count"] == 2
    resp = call(sb, "POST", f"/documents/{did}/recrawl")
    assert resp.status_code == 429 and resp.json()["error"].startswith("Recrawl cooldown: please wait")
    statuses = [b["status"] for b in collector.wait_for(lambda b: [x["status"] for x in b].count("ready") == 2)]
    assert "recrawling" in statuses


def test_recrawl_of_a_document_without_crawl_config_is_400(sb):
    did = make_document(sb)["document_id"]
    wait_until(lambda: status_of(sb, did) == "ready")
    assert call(sb, "POST", f"/documents/{did}/recrawl").json() == \
        {"error": "Document was not created with crawl configuration"}
    assert call(sb, "POST", "/documents/dnope/recrawl").status_code == 404


def test_document_tags_and_chunks():
    # processing takes 3 s here (0.06 s at SCALE): the "nothing indexed before ready" check must run before it ends
    with Sandbox(SandboxSettings(time_scale=0.1)) as sb:
        _tags_and_chunks(sb)


def _tags_and_chunks(sb):
    did = make_document(sb, tags=["zeta-tag"], document_url="https://docs.example.com/",
                        crawl={"max_pages": 2})["document_id"]
    tags = call(sb, "GET", "/documents/tags", search="zeta").json()
    assert tags["tags"] == ["zeta-tag"] and tags["total_count"] == 1
    assert call(sb, "GET", f"/documents/{did}/chunks").json()["data"] == []  # nothing indexed before ready
    wait_until(lambda: status_of(sb, did) == "ready", timeout=20)
    chunks = call(sb, "GET", f"/documents/{did}/chunks", limit=1).json()
    assert chunks["total_count"] == 2 and len(chunks["data"]) == 1 and chunks["next_offset"] == "1"
    assert chunks["data"][0]["document_id"] == did
    assert call(sb, "GET", f"/documents/{did}/chunks", collection="other").status_code == 400


def test_document_list_filters_and_refuses_bad_paging(sb):
    did = make_document(sb, tags=["only-here"], document_name="Findable")["document_id"]
    assert [d["document_id"] for d in call(sb, "GET", "/documents", tags="only-here").json()["data"]] == [did]
    assert [d["document_id"] for d in call(sb, "GET", "/documents", name_or_uuid="findab").json()["data"]] == [did]
    for params in ({"limit": -1}, {"limit": 0}, {"page": -1}, {"limit": "x"}):
        assert call(sb, "GET", "/documents", **params).status_code == 400, params


def test_document_ids_must_name_a_document_of_the_sandbox(sb):
    body = {"persona_name": "A", "system_prompt": "p", "default_replica_id": STOCK, "document_ids": ["dmissing"]}
    assert call(sb, "POST", "/personas", body).json() == {"error": "Invalid document_id: dmissing"}
    did = make_document(sb)["document_id"]
    pid = call(sb, "POST", "/personas", {**body, "document_ids": [did]}).json()["persona_id"]
    patch = [{"op": "add", "path": "/document_ids/-", "value": "dother"}]
    assert call(sb, "PATCH", f"/personas/{pid}", patch).json() == {"error": "Invalid document_id: dother"}
    conv = {"replica_id": STOCK, "document_ids": ["dmissing"], "test_mode": True}
    assert call(sb, "POST", "/conversations", conv).json() == {"error": "Invalid document_id: dmissing"}
    assert call(sb, "POST", "/conversations", {**conv, "document_ids": [did]}).status_code == 200


# --- tools ---------------------------------------------------------------------------------------
def api_tool(**api):
    return {"name": "weather_lookup", "description": "Get the weather.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "delivery": {"api": {"url": "https://api.example.com/weather/{city}", "method": "GET", **api}}}


def test_tool_crud_scrubs_secrets_and_patch_is_a_plain_object(sb):
    body = api_tool(auth={"type": "bearer", "token": "sk-very-secret"})
    resp = call(sb, "POST", "/tools", body)
    assert resp.status_code == 200, resp.text
    tool = resp.json()
    tid = tool["tool_id"]
    assert tool["delivery"]["api"]["auth"]["token"] == "********"
    assert (tool["on_call"], tool["on_resolve"], tool["origin"]) == ("generate_filler", "fire_and_forget", "llm")
    got = call(sb, "GET", f"/tools/{tid}")
    assert "sk-very-secret" not in got.text and got.json()["delivery"]["api"]["auth"]["token"] == "********"
    assert "sk-very-secret" not in call(sb, "GET", "/tools").text
    assert sb.state.tools[tid]["delivery"]["api"]["auth"]["token"] == "sk-very-secret"
    # PATCH replaces the given fields; an auth without its secret keeps the stored one
    new_delivery = {"api": {"url": "https://api.example.com/w/{city}", "method": "GET", "auth": {"type": "bearer"}}}
    resp = call(sb, "PATCH", f"/tools/{tid}", {"description": "New.", "delivery": new_delivery})
    assert resp.status_code == 200 and resp.json()["description"] == "New."
    assert sb.state.tools[tid]["delivery"]["api"]["auth"]["token"] == "sk-very-secret"
    assert call(sb, "PATCH", f"/tools/{tid}", {"delivery": {"api": {**new_delivery["api"], "auth": {
        "type": "bearer", "token": "********"}}}}).status_code == 400
    assert call(sb, "PATCH", f"/tools/{tid}", [{"op": "replace", "path": "/name", "value": "x"}]).status_code == 400
    listed = call(sb, "GET", "/tools", name_or_uuid="weather").json()
    assert listed["total_count"] == 1 and listed["data"][0]["tool_id"] == tid
    assert call(sb, "DELETE", f"/tools/{tid}").status_code == 204
    assert call(sb, "GET", f"/tools/{tid}").status_code == 404


@pytest.mark.parametrize("change, field", [
    ({"name": "9starts_with_digit"}, "name"),
    ({"name": "x" * 65}, "name"),
    ({"parameters": {"type": "object", "properties": {"tavus_secret": {"type": "string"}}}}, "tavus_"),
    ({"delivery": {"app_message": True, "api": {"url": "https://a.example/"}}}, "exactly one"),
    ({"delivery": {}}, "exactly one"),
    ({"delivery": {"api": {"url": "http://api.example.com/x"}}}, "https"),
    ({"delivery": {"api": {"url": "https://127.0.0.1/x"}}}, "private"),
    ({"delivery": {"api": {"url": "https://10.1.2.3/x"}}}, "private"),
    ({"delivery": {"api": {"url": "https://localhost/x"}}}, "public"),
    ({"delivery": {"api": {"url": "https://{city}.example.com/"}}}, "hostname"),
    ({"delivery": {"api": {"url": "https://a.example/{zip}"}}}, "zip"),
    ({"delivery": {"api": {"url": "https://a.example/", "timeout": 61}}}, "timeout"),
    ({"delivery": {"api": {"url": "https://a.example/", "method": "GET", "body_template": {"a": "b"}}}}, "body_template"),
    ({"delivery": {"api": {"url": "https://a.example/", "auth": {"type": "hmac", "secret": "s"},
                           "query_params": {"q": "{city}"}}}}, "hmac"),
    ({"delivery": {"api": {"url": "https://a.example/{city}", "auth": {"type": "hmac", "secret": "s"}}}}, "hmac"),
    ({"delivery": {"api": {"url": "https://a.example/", "auth": {"type": "basic", "username": "u"}}}}, "password"),
    ({"delivery": {"api": {"url": "https://a.example/", "auth": {"type": "oauth2_client_credentials",
      "token_url": "http://a.example/t", "client_id": "c", "client_secret": "s"}}}}, "token_url"),
    ({"delivery": {"api": {"url": "https://a.example/", "auth": {"type": "magic"}}}}, "auth.type"),
    ({"on_call": "static_filler"}, "static_filler"),
    ({"origin": "vision", "on_call": "silent"}, "on_call"),
    ({"trigger_type": "post_call"}, "post_call"),
    ({"description": "d" * 10_001}, "10000"),
    ({"colour": "red"}, "colour"),
])
def test_tool_rules_are_enforced_with_an_error_naming_the_field(sb, change, field):
    body = {"name": "ok_tool", "description": "Fine.", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}}, "delivery": {"app_message": True}, **change}
    resp = call(sb, "POST", "/tools", body)
    assert resp.status_code == 400 and field in resp.json()["error"], resp.text
    assert sb.state.tools == {}


def test_valid_delivery_variants_are_accepted(sb):
    for auth in ({"type": "none"}, {"type": "api_key", "name": "X-Key", "value": "v", "location": "query"},
                 {"type": "hmac", "secret": "s"}, {"type": "basic", "username": "u", "password": "p"},
                 {"type": "oauth2_client_credentials", "token_url": "https://a.example/t", "client_id": "c",
                  "client_secret": "s", "scope": "x"}):
        url = "https://hooks.example.com/static" if auth["type"] == "hmac" else "https://a.example/{city}"
        body = {**api_tool(auth=auth), "trigger_type": "post_call"}
        body["delivery"]["api"]["url"] = url
        assert call(sb, "POST", "/tools", body).status_code == 200, auth
    vision = {"name": "spot", "description": "See.", "delivery": {"app_message": True}, "origin": "vision"}
    assert call(sb, "POST", "/tools", vision).json()["on_call"] is None


def test_pal_tools_attach_list_detach(sb):
    pid = make_pal(sb)
    tid = call(sb, "POST", "/tools", {"name": "a", "description": "A.", "delivery": {"app_message": True}}).json()["tool_id"]
    assert call(sb, "GET", f"/pals/{pid}/tools/").json() == {"data": [], "total_count": 0}
    resp = call(sb, "POST", f"/pals/{pid}/tools/", {"tool_ids": [tid]})
    assert resp.status_code == 200 and [t["tool_id"] for t in resp.json()["data"]] == [tid]
    assert call(sb, "GET", f"/pals/{pid}").json()["tool_ids"] == [tid]
    assert call(sb, "POST", f"/pals/{pid}/tools", {"tool_ids": ["tnope"]}).json() == {"error": "Invalid tool_id: tnope"}
    assert call(sb, "POST", f"/pals/{pid}/tools", {"tool_ids": []}).status_code == 400
    assert call(sb, "POST", f"/pals/{pid}/tools", {"tool_ids": [f"t{i}" for i in range(51)]}).status_code == 400
    assert call(sb, "GET", "/pals/pnope/tools/").status_code == 404
    assert call(sb, "DELETE", f"/pals/{pid}/tools/{tid}").status_code == 204
    assert call(sb, "GET", f"/pals/{pid}/tools").json()["total_count"] == 0
    assert call(sb, "DELETE", f"/pals/{pid}/tools/{tid}").status_code == 404
    call(sb, "POST", f"/pals/{pid}/tools/", {"tool_ids": [tid]})
    call(sb, "DELETE", f"/tools/{tid}")  # deleting a tool detaches it
    assert call(sb, "GET", f"/pals/{pid}").json()["tool_ids"] == []


# --- pronunciation dictionaries ------------------------------------------------------------------
PD = "/v2/pronunciation-dictionaries"


def test_pronunciation_dictionary_crud_matches_the_oas(sb):
    (name, body), = request_examples(PD, "post")
    resp = call(sb, "POST", "/pronunciation-dictionaries/", body)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert conforms(response_schema(PD, "post", 201), created, complete=True) == []
    did = created["pronunciation_dictionary_id"]
    assert did.startswith("pd_") and created["rules_count"] == 1 and created["rules"][0]["word_boundaries"] is True
    assert conforms(response_schema(PD + "/{dictionary_id}", "get", 200), call(sb, "GET", f"/pronunciation-dictionaries/{did}").json(),
                    complete=True) == []
    listed = call(sb, "GET", "/pronunciation-dictionaries").json()
    assert conforms(response_schema(PD, "get", 200), listed, complete=True) == []
    assert "rules" not in listed["data"][0] and listed["data"][0]["uuid"] == did
    for example, ops in request_examples(PD + "/{dictionary_id}", "patch"):
        resp = call(sb, "PATCH", f"/pronunciation-dictionaries/{did}", ops)
        assert resp.status_code in (200, 304), (example, resp.text)
        if resp.status_code == 200:
            assert conforms(response_schema(PD + "/{dictionary_id}", "patch", 200), resp.json(), complete=True) == []
    assert call(sb, "GET", f"/pronunciation-dictionaries/{did}").json()["name"] == "Updated Brand Terms"
    same = [{"op": "add", "path": "/name", "value": "Updated Brand Terms"}, {"op": "replace", "path": "/created_at", "value": "x"}]
    assert call(sb, "PATCH", f"/pronunciation-dictionaries/{did}", same).status_code == 304
    assert call(sb, "PATCH", f"/pronunciation-dictionaries/{did}", {"name": "x"}).json() == {"message": "Invalid JSON patch format"}
    dup = [{"op": "replace", "path": "/rules", "value": [{"text": "a", "pronunciation": "b", "type": "alias"}] * 2}]
    assert call(sb, "PATCH", f"/pronunciation-dictionaries/{did}", dup).json() == \
        {"error": "Invalid request: duplicate text values in rules"}
    assert call(sb, "DELETE", f"/pronunciation-dictionaries/{did}").status_code == 204
    assert call(sb, "GET", f"/pronunciation-dictionaries/{did}").json() == {"message": "Pronunciation dictionary not found"}


@pytest.mark.parametrize("body, text", [
    ({"rules": []}, "name is required"), ({"name": "n" * 256}, "255"),
    ({"name": "x", "rules": [{"text": "a", "pronunciation": "b", "type": "phonetic"}]}, "type"),
    ({"name": "x", "rules": [{"text": "a" * 201, "pronunciation": "b", "type": "alias"}]}, "200"),
])
def test_pronunciation_dictionary_rules_are_checked(sb, body, text):
    resp = call(sb, "POST", "/pronunciation-dictionaries", body)
    assert resp.status_code == 400 and text in resp.json()["error"]


def test_deleting_a_dictionary_unlinks_it_from_personas(sb):
    did = call(sb, "POST", "/pronunciation-dictionaries", {"name": "d"}).json()["pronunciation_dictionary_id"]
    pid = call(sb, "POST", "/personas", {"persona_name": "A", "system_prompt": "p", "default_replica_id": STOCK,
                                         "layers": {"tts": {"pronunciation_dictionary_id": did}}}).json()["persona_id"]
    call(sb, "DELETE", f"/pronunciation-dictionaries/{did}")
    assert sb.state.personas[pid]["layers"]["tts"]["pronunciation_dictionary_id"] is None


# --- voices, replicas and faces ------------------------------------------------------------------
def test_voices_list_matches_the_oas_and_filters(sb):
    body = call(sb, "GET", "/voices").json()
    assert conforms(response_schema("/v2/voices", "get", 200), body, complete=True) == []
    names = [v["voice_name"] for v in body["data"]]
    assert "anna" in names and names == sorted(names) and body["page"] == 1 and body["limit"] == 10
    assert [v["voice_name"] for v in call(sb, "GET", "/voices", search="ANN").json()["data"]] == ["anna"]
    assert call(sb, "GET", "/voices", sort="desc").json()["data"][0]["voice_name"] == names[-1]
    tagged = call(sb, "GET", "/voices", tag="CALM").json()["data"]
    assert tagged and all("calm" in [t["tag_name"] for t in v["tags"]] for v in tagged)
    assert call(sb, "GET", "/voices", limit=101).status_code == 400
    assert call(sb, "GET", "/voices", limit=0).status_code == 400


@pytest.mark.parametrize("name, body", request_examples("/v2/replicas", "post"))
def test_each_oas_replica_example_trains_with_progress_and_the_callback(sb, collector, name, body):
    resp = call(sb, "POST", "/replicas", {**body, "callback_url": collector.url})
    assert resp.status_code == 200, (name, resp.text)
    assert conforms(response_schema("/v2/replicas", "post", 200), resp.json(), complete=True) == []
    rid = resp.json()["replica_id"]
    seen = set()

    def done():
        got = call(sb, "GET", f"/replicas/{rid}").json()
        seen.add((got["status"], got["training_progress"]))
        return got["status"] == "completed"
    wait_until(done)
    assert ("started", "0/100") in seen or any(s == "started" for s, _ in seen)
    final = call(sb, "GET", f"/replicas/{rid}", verbose="true").json()
    assert conforms(response_schema("/v2/replicas/{replica_id}", "get", 200), final, complete=True) == []
    assert final["training_progress"] == "100/100" and final["replica_type"] == "user"
    assert collector.wait_for(lambda b: len(b) >= 1) == [{"replica_id": rid, "status": "ready"}]


def test_failed_training_reports_error_and_the_error_callback(sb, collector):
    url = "https://b.example/train.mp4?sandbox_error=Consent%20statement%20missing"
    rid = call(sb, "POST", "/faces", {"train_video_url": url, "callback_url": collector.url}).json()["face_id"]
    body = collector.wait_for(lambda b: len(b) >= 1)[0]
    assert body == {"replica_id": rid, "status": "error", "error_message": "Consent statement missing"}
    assert call(sb, "GET", f"/faces/{rid}").json()["status"] == "error"


def test_replica_create_errors(sb):
    assert call(sb, "POST", "/replicas", {"replica_name": "x"}).json() == \
        {"error": "Either train_video_url or train_image_url must be provided."}
    assert call(sb, "POST", "/replicas", {"train_image_url": "https://a.example/i.png"}).status_code == 400
    resp = call(sb, "POST", "/replicas", {"train_image_url": "https://a.example/i.png", "voice_name": "nobody"})
    assert resp.status_code == 400 and "voice_name" in resp.json()["error"]
    assert call(sb, "POST", "/replicas", {"train_image_url": "https://a.example/i.png", "voice_name": "ANNA"}).status_code == 200
    assert call(sb, "POST", "/replicas", {"train_video_url": "https://a.example/v.mp4", "model_name": "phoenix-9"}).status_code == 400


def test_rename_merge_patch_and_delete_on_replicas_and_faces(sb):
    rid = call(sb, "POST", "/faces", {"train_video_url": "https://a.example/v.mp4", "face_name": "Old"}).json()["face_id"]
    (name, body), = request_examples("/v2/replicas/{replica_id}/name", "patch")
    assert call(sb, "PATCH", f"/replicas/{rid}/name", body).status_code == 200
    assert call(sb, "GET", f"/faces/{rid}").json()["face_name"] == body["replica_name"]
    assert call(sb, "PATCH", f"/faces/{rid}/name", {"face_name": "Nia"}).status_code == 200
    assert call(sb, "GET", f"/replicas/{rid}").json()["replica_name"] == "Nia"
    resp = call(sb, "PATCH", f"/faces/{rid}", {"face_name": "Ola", "default_voice_id": "v1"})
    assert resp.json()["face_name"] == "Ola" and resp.json()["default_voice_id"] == "v1"
    assert call(sb, "PATCH", f"/replicas/{rid}/name", {}).status_code == 400
    assert call(sb, "PATCH", f"/replicas/{STOCK}/name", body).json() == {"error": "Invalid replica_id"}
    assert call(sb, "PATCH", "/faces/rnope/name", {"face_name": "x"}).status_code == 404
    assert call(sb, "DELETE", f"/replicas/{rid}", hard="true").status_code == 200
    assert call(sb, "GET", f"/replicas/{rid}").json() == {"error": "Invalid replica_id"}
    assert call(sb, "DELETE", f"/faces/{rid}").status_code == 404


def test_new_collections_survive_a_restart_with_a_state_file(tmp_path):
    path = tmp_path / "state.json"
    with Sandbox(SandboxSettings(time_scale=SCALE, state_file=str(path))) as first:
        tid = call(first, "POST", "/tools", {"name": "a", "description": "A.", "delivery": {"app_message": True}}).json()["tool_id"]
        did = call(first, "POST", "/pronunciation-dictionaries", {"name": "d"}).json()["pronunciation_dictionary_id"]
    with Sandbox(SandboxSettings(time_scale=SCALE, state_file=str(path))) as second:
        assert call(second, "GET", f"/tools/{tid}").status_code == 200
        assert call(second, "GET", f"/pronunciation-dictionaries/{did}").status_code == 200


@pytest.mark.parametrize("path", ["/personas", "/pals", "/conversations", "/replicas", "/faces", "/tools",
                                  "/pronunciation-dictionaries", "/voices", "/objectives", "/guardrails"])
def test_every_list_refuses_a_limit_below_one_and_a_negative_page(sb, path):
    for params in ({"limit": -1}, {"limit": 0}, {"page": -1}):
        resp = call(sb, "GET", path, **params)
        assert resp.status_code == 400 and "Invalid request" in resp.json()["error"], (params, resp.text)
    assert call(sb, "GET", path, page=0, limit=1).status_code == 200  # the CLI's page=0 still reads
