"""The sandbox's PAL-era routes and corrections over real HTTP (issue 14): stored default fields, publish
and both editing generations, skills, guardrail tags, objective validation, memory stores, objectives
and guardrail sets in both documented shapes, errors in words, and the `tune sandbox` settings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from harness_core.sandbox import Sandbox, SandboxSettings
from tests.helpers import interrupt, run_cli, spawn

BIN = Path(sys.executable).parent
KEY = {"x-api-key": "any-key"}
STOCK = "r4317e64d25a"


def call(sb, method, path, body=None, **params):
    return requests.request(method, sb.url + path, json=body, headers=KEY, params=params, timeout=10)


def control(sb, path, body):
    return requests.post(sb.url.replace("/v2", "/_sandbox") + path, json=body, headers=KEY, timeout=10)


@pytest.fixture
def sb():
    with Sandbox(SandboxSettings(time_scale=0.01)) as sandbox:
        yield sandbox


@pytest.fixture
def drafts():
    with Sandbox(SandboxSettings(time_scale=0.01, pal_editing="draft")) as sandbox:
        yield sandbox


def make_pal(sb, **extra):
    resp = call(sb, "POST", "/pals", {"pal_name": "Support", "system_prompt": "Help.", "default_face_id": STOCK, **extra})
    assert resp.status_code == 200, resp.text
    return resp.json()["pal_id"]


# --- item 1: what Tavus stores for every persona ---------------------------------------------------------
def test_a_minimal_persona_is_stored_with_every_documented_field_and_default_layers(sb):
    pid = call(sb, "POST", "/personas", {"system_prompt": "Be brief."}).json()["persona_id"]
    got = call(sb, "GET", f"/personas/{pid}").json()
    assert {"persona_name", "default_replica_id", "document_ids", "document_tags", "layers"} <= set(got)
    assert got["document_ids"] == [] and got["document_tags"] == [] and got["pipeline_mode"] == "full"
    assert set(got["layers"]) == {"llm", "tts", "stt", "perception", "conversational_flow"}
    assert got["layers"]["tts"] == {"tts_engine": "cartesia"} and "conferencing" not in got["layers"]


def test_layers_that_were_sent_are_kept_as_sent_and_the_missing_ones_get_defaults(sb):
    pid = call(sb, "POST", "/personas", {"system_prompt": "p", "layers": {"tts": {"tts_engine": "elevenlabs"}}}).json()["persona_id"]
    layers = call(sb, "GET", f"/personas/{pid}").json()["layers"]
    assert layers["tts"] == {"tts_engine": "elevenlabs"} and layers["stt"] == {"stt_engine": "tavus-auto"}


def test_knowledge_and_tts_patches_work_on_a_pal_that_never_set_them(sb):
    pid = make_pal(sb)
    ops = [{"op": "replace", "path": "/document_ids", "value": ["d1234567890"]},
           {"op": "replace", "path": "/document_tags", "value": ["docs"]},
           {"op": "add", "path": "/layers/tts/tts_emotion_control", "value": True}]
    resp = call(sb, "PATCH", f"/pals/{pid}", ops)
    assert resp.status_code == 200, resp.text
    got = call(sb, "GET", f"/pals/{pid}").json()
    assert got["document_ids"] == ["d1234567890"] and got["document_tags"] == ["docs"]
    assert got["layers"]["tts"] == {"tts_engine": "cartesia", "tts_emotion_control": True}


def test_document_ids_nested_in_layers_read_as_the_top_level_fields(sb):
    body = {"system_prompt": "p", "document_ids": ["d0987654321"],
            "layers": {"document_ids": ["d1234567890"], "document_tags": ["docs"], "llm": {"model": "tavus-gpt-oss"}}}
    resp = call(sb, "POST", "/personas", body)
    assert resp.status_code == 200, resp.text
    got = call(sb, "GET", f"/personas/{resp.json()['persona_id']}").json()
    assert got["document_ids"] == ["d0987654321", "d1234567890"] and got["document_tags"] == ["docs"]
    assert "document_ids" not in got["layers"]
    unknown = call(sb, "POST", "/personas", {"system_prompt": "p", "layers": {"document_ids": ["dnope"]}})
    assert unknown.status_code == 400 and unknown.json() == {"error": "Invalid document_id: dnope"}


# --- PAL publish and the two editing generations (CONTRACT §10.5) ---------------------------------------
def test_publish_without_a_draft_is_idempotent_and_answers_the_live_pal(sb):
    pid = make_pal(sb)
    first = call(sb, "POST", f"/pals/{pid}/publish")
    assert first.status_code == 200
    assert first.json() == {"status": "success", "pal_id": pid, "pal_name": "Support", "system_prompt": "Help.",
                            "updated_at": first.json()["updated_at"]}
    assert call(sb, "POST", f"/pals/{pid}/publish").json() == first.json()
    assert call(sb, "POST", "/pals/pnope/publish").status_code == 404


def test_maker_generation_refuses_a_patch_over_dashboard_changes_until_forced(sb):
    pid = make_pal(sb, layers={"conferencing": {"username": "support-pal"}})
    edit = control(sb, f"/pals/{pid}/dashboard-edit", [{"op": "replace", "path": "/system_prompt", "value": "From Maker."}])
    assert edit.status_code == 200 and edit.json()["pal_editing"] == "maker"
    assert call(sb, "GET", f"/pals/{pid}").json()["system_prompt"] == "Help.", "Maker changes are not live"
    ops = [{"op": "replace", "path": "/pal_name", "value": "API name"}]
    refused = call(sb, "PATCH", f"/pals/{pid}", ops)
    assert refused.status_code == 409 and refused.json()["conflict"] == "maker_changes" and "force=true" in refused.json()["error"]
    # conferencing alone is live-owned: never refused, and the Maker changes stay
    conf = call(sb, "PATCH", f"/pals/{pid}", [{"op": "replace", "path": "/layers/conferencing/username", "value": "desk"}])
    assert conf.status_code == 200 and "discarded_maker_changes" not in conf.json()
    assert call(sb, "PATCH", f"/pals/{pid}", ops).status_code == 409
    forced = requests.patch(f"{sb.url}/pals/{pid}?force=true", json=ops, headers=KEY, timeout=10)
    assert forced.status_code == 200 and forced.json()["discarded_maker_changes"] is True
    live = call(sb, "GET", f"/pals/{pid}").json()
    assert live["pal_name"] == "API name" and live["system_prompt"] == "Help."
    assert live["layers"]["conferencing"] == {"username": "desk"}
    assert call(sb, "PATCH", f"/pals/{pid}", [{"op": "replace", "path": "/pal_name", "value": "Again"}]).status_code == 200


def test_conferencing_cannot_share_a_pal_patch_with_authored_fields(sb):
    pid = make_pal(sb)
    mixed = [{"op": "add", "path": "/layers/conferencing", "value": {"username": "desk"}},
             {"op": "replace", "path": "/pal_name", "value": "X"}]
    resp = call(sb, "PATCH", f"/pals/{pid}", mixed)
    assert resp.status_code == 400 and "PATCH of their own" in resp.json()["error"]


def test_draft_generation_patches_the_draft_and_publish_makes_it_live_keeping_conferencing(drafts):
    sb = drafts
    pid = make_pal(sb, layers={"conferencing": {"username": "support-pal"}})
    control(sb, f"/pals/{pid}/dashboard-edit", [{"op": "replace", "path": "/system_prompt", "value": "Drafted."},
                                                {"op": "remove", "path": "/layers/conferencing"}])
    patched = call(sb, "PATCH", f"/pals/{pid}", [{"op": "replace", "path": "/pal_name", "value": "Draft name"}])
    assert patched.status_code == 200
    assert patched.json()["publish_url"].endswith(f"pal_id={pid}") and patched.json()["pal_name"] == "Draft name"
    assert call(sb, "GET", f"/pals/{pid}").json()["pal_name"] == "Support", "GET reads the live PAL"
    draft = requests.get(f"{sb.url}/pals/{pid}?source=draft", headers=KEY, timeout=10).json()
    assert draft["pal_name"] == "Draft name" and draft["system_prompt"] == "Drafted."
    published = call(sb, "POST", f"/pals/{pid}/publish").json()
    assert published["status"] == "success" and published["pal_name"] == "Draft name" and published["system_prompt"] == "Drafted."
    live = call(sb, "GET", f"/pals/{pid}").json()
    assert live["pal_name"] == "Draft name" and live["layers"]["conferencing"] == {"username": "support-pal"}
    after = call(sb, "PATCH", f"/pals/{pid}", [{"op": "replace", "path": "/pal_name", "value": "Live"}])
    assert after.status_code == 200 and "publish_url" not in after.json()
    assert call(sb, "GET", f"/pals/{pid}").json()["pal_name"] == "Live"


def test_a_dashboard_edit_names_an_existing_pal_and_takes_a_json_patch(sb):
    assert control(sb, "/pals/pnope/dashboard-edit", []).status_code == 404
    pid = make_pal(sb)
    bad = control(sb, f"/pals/{pid}/dashboard-edit", {"system_prompt": "x"})
    assert bad.status_code == 400 and "JSON Patch" in bad.json()["error"]


# --- skills ----------------------------------------------------------------------------------------------
def test_skills_registry_and_pal_skills_are_stored_as_given(sb):
    rows = call(sb, "GET", "/skills").json()
    assert rows["total_count"] == len(rows["data"]) >= 4
    assert {"skill_id", "display_name", "description", "tool_names"} <= set(rows["data"][0])
    assert call(sb, "GET", "/skills/internet_search").json()["skill_id"] == "internet_search"
    assert call(sb, "GET", "/skills/nope").status_code == 404
    pid = make_pal(sb)
    assert call(sb, "GET", f"/pals/{pid}/skills/").json() == {"data": {}}
    body = {"config": {"components": {"chart": {"enabled": False}}}, "note": "kept"}
    assert call(sb, "PUT", f"/pals/{pid}/skills/magic_canvas", body).json() == body
    assert call(sb, "GET", f"/pals/{pid}/skills/magic_canvas").json() == body
    merged = call(sb, "PATCH", f"/pals/{pid}/skills/magic_canvas", {"config": {"usage_guidance": "Charts only."}}).json()
    assert merged["config"] == {"components": {"chart": {"enabled": False}}, "usage_guidance": "Charts only."}
    assert call(sb, "PUT", f"/pals/{pid}/skills/nope", {"config": {}}).status_code == 404
    assert call(sb, "DELETE", f"/pals/{pid}/skills/magic_canvas").status_code == 204
    assert call(sb, "PATCH", f"/pals/{pid}/skills/magic_canvas", {"config": {}}).status_code == 404
    every = call(sb, "PUT", f"/pals/{pid}/skills/", {"skills": {"memory": {"config": {}}}})
    assert every.status_code == 200 and call(sb, "GET", f"/pals/{pid}/skills").json() == {"data": {"memory": {"config": {}}}}
    assert call(sb, "GET", "/pals/pnope/skills/").status_code == 404


# --- guardrail tags, objective validation, memory stores --------------------------------------------------
def test_guardrail_tags_list_the_flat_guardrails_tags(sb):
    for name, tags in (("a", ["safety", "legal"]), ("b", ["safety"])):
        call(sb, "POST", "/guardrails", {"guardrail_name": name, "guardrail_prompt": "x", "tags": tags})
    resp = call(sb, "GET", "/guardrails/tags")
    assert resp.status_code == 200 and resp.json() == {"tags": ["legal", "safety"], "total_count": 2}


def test_objectives_validate_checks_without_storing(sb):
    good = {"data": [{"objective_name": "greet", "objective_prompt": "Hi", "next_required_objective": "close"},
                     {"objective_name": "close", "objective_prompt": "Bye"}]}
    assert call(sb, "POST", "/objectives/validate", good).json() == {"valid": True, "errors": []}
    bad = {"data": [{"objective_name": "greet", "objective_prompt": "Hi", "next_required_objective": "ghost"}]}
    resp = call(sb, "POST", "/objectives/validate", bad)
    assert resp.status_code == 400 and resp.json()["valid"] is False
    assert resp.json()["message"] == "data[0]: next objective 'ghost' does not exist in this set"
    assert not sb.store.objectives


def test_a_memory_store_named_by_a_conversation_can_be_deleted_once(sb):
    assert call(sb, "DELETE", "/memory-stores/anna_p123").status_code == 404
    call(sb, "POST", "/conversations", {"replica_id": STOCK, "memory_stores": ["anna_p123"], "test_mode": True})
    assert call(sb, "DELETE", "/memory-stores/anna_p123").status_code == 204
    again = call(sb, "DELETE", "/memory-stores/anna_p123")
    assert again.status_code == 404 and "memory_stores" in again.json()["error"]
    call(sb, "POST", "/conversations", {"replica_id": STOCK, "memory_stores": ["anna_p123"], "test_mode": True})
    assert call(sb, "DELETE", "/memory-stores/anna_p123").status_code == 204


# --- item 5: objectives and guardrail sets in the OAS and the CLI shapes ------------------------------------
def test_objective_rows_carry_the_set_name_and_the_first_objective_fields(sb):
    oid = call(sb, "POST", "/objectives", {"name": "intake", "data": [{"objective_name": "ask", "objective_prompt": "Ask."}]}).json()
    assert oid["objective_name"] == "intake" and oid["objectives_name"] == "intake"
    one = call(sb, "GET", f"/objectives/{oid['objectives_id']}").json()
    assert one["objectives_name"] == one["name"] == "intake" and one["objective_name"] == "ask"
    assert one["data"] == [{"objective_name": "ask", "objective_prompt": "Ask.", "confirmation_mode": "auto",
                            "output_variables": [], "modality": "verbal", "callback_url": ""}]
    [row] = call(sb, "GET", "/objectives").json()["data"]
    assert row["objectives_name"] == "intake" and row["objective_prompt"] == "Ask."


def test_objective_patch_paths_at_the_top_name_the_first_objective(sb):
    oid = call(sb, "POST", "/objectives", {"data": [{"objective_name": "ask", "objective_prompt": "Ask.",
                                                     "callback_url": "https://example.com/hook"}]}).json()["objectives_id"]
    ops = [{"op": "replace", "path": "/objective_prompt", "value": "Ask again."},
           {"op": "add", "path": "/output_variables", "value": ["answer"]},
           {"op": "remove", "path": "/callback_url"}]
    assert call(sb, "PATCH", f"/objectives/{oid}", ops).json() == {"message": "Objective updated successfully"}
    [item] = call(sb, "GET", f"/objectives/{oid}").json()["data"]
    assert item["objective_prompt"] == "Ask again." and item["output_variables"] == ["answer"] and "callback_url" not in item


def test_a_guardrail_set_answers_both_names_on_create_and_get(sb):
    made = call(sb, "POST", "/guardrails", {"name": "Safety", "data": [{"guardrail_name": "a", "guardrail_prompt": "b"}]}).json()
    assert made["guardrails_name"] == made["name"] == "Safety"
    got = call(sb, "GET", f"/guardrails/{made['guardrails_id']}").json()
    assert got["guardrails_name"] == got["name"] == "Safety" and got["guardrail_name"] == "a"
    ops = [{"op": "replace", "path": "/guardrail_prompt", "value": "c"}, {"op": "remove", "path": "/data/0/callback_url"}]
    assert call(sb, "PATCH", f"/guardrails/{made['guardrails_id']}", ops).status_code == 200
    assert call(sb, "GET", f"/guardrails/{made['guardrails_id']}").json()["data"] == [
        {"guardrail_name": "a", "guardrail_prompt": "c", "modality": "verbal"}]


# --- item 7: errors a user can act on ---------------------------------------------------------------------
@pytest.mark.parametrize("body, words", [
    ({"data": [{"objective_name": "a", "objective_prompt": "p", "next_required_objective": "b",
                "next_conditional_objectives": {"b": "if"}}, {"objective_name": "b", "objective_prompt": "q"}]},
     "set only one of next_conditional_objectives / next_required_objective, not both"),
    ({"data": [{"objective_name": "has space", "objective_prompt": "p"}]},
     "data[0].objective_name: must use only letters, digits and _ (no spaces)"),
    ({"data": [{"objective_name": "a", "objective_prompt": "p" * 10001}]},
     "data[0].objective_prompt: must be at most 10000 characters (it has 10001)"),
])
def test_schema_errors_are_words_not_python_reprs(sb, body, words):
    resp = call(sb, "POST", "/objectives", body)
    assert resp.status_code == 400 and words in resp.json()["message"]
    assert "{'" not in resp.text and "should not be valid" not in resp.text and len(resp.text) < 300


# --- item 8 and the settings of `tune sandbox` -------------------------------------------------------------
def test_tune_sandbox_takes_the_persona_get_shape_and_pal_editing_settings(tmp_path):
    proc = spawn([str(BIN / "tune"), "sandbox", "--port", "0", "--persona-get-shape", "wrapped", "--pal-editing", "draft"],
                 cwd=tmp_path, env={k: v for k, v in os.environ.items() if not k.startswith("TAVUS_")}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        url = proc.stdout.readline().strip().split("=", 1)[1]
        headers = {"x-api-key": "k"}
        pid = requests.post(f"{url}/pals", json={"system_prompt": "x", "default_face_id": STOCK}, headers=headers,
                            timeout=5).json()["pal_id"]
        assert requests.get(f"{url}/personas/{pid}", headers=headers, timeout=5).json()["data"][0]["persona_id"] == pid
        requests.post(url.replace("/v2", f"/_sandbox/pals/{pid}/dashboard-edit"), headers=headers, timeout=5,
                      json=[{"op": "replace", "path": "/system_prompt", "value": "y"}])
        patched = requests.patch(f"{url}/pals/{pid}", json=[{"op": "replace", "path": "/pal_name", "value": "n"}],
                                 headers=headers, timeout=5)
        assert "publish_url" in patched.json()
    finally:
        interrupt(proc)


def test_an_unknown_sandbox_setting_value_is_one_error_line(project):
    result = run_cli("sandbox", "--port", "0", "--pal-editing", "live")
    assert result.code != 0 and "Traceback" not in result.err
    [line] = result.err.strip().splitlines()
    assert "--pal-editing 'live'" in line and "maker, draft" in line


def test_the_harness_updates_a_persona_whichever_get_shape_the_sandbox_serves(project, monkeypatch):
    """The persona task reads GET /v2/personas/{id} flat or wrapped (CONTRACT §9.2)."""
    config = project / "configs" / "persona" / "shape.json"
    config.write_text(json.dumps({"persona_name": "Shape", "system_prompt": "One."}))
    rel = str(config.relative_to(project))
    for shape in ("flat", "wrapped"):
        with Sandbox(SandboxSettings(time_scale=0.01, persona_get_shape=shape)) as sb:
            monkeypatch.setenv("TAVUS_API_URL", sb.url)
            (project / ".tavus-harness.lock.toml").unlink(missing_ok=True)
            assert run_cli("persona", "--config", rel).code == 0
            (pid,) = sb.store.personas
            result = run_cli("persona", "--config", rel, "--update", "--system-prompt", f"Two {shape}.")
            assert result.code == 0, result.err
            assert sb.store.personas[pid]["system_prompt"] == f"Two {shape}."
