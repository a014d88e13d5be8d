"""The sandbox keeps to the contract in the corners: patch format, defaults, id kinds, control routes, saving."""
from __future__ import annotations

import json
import sys
import threading

import pytest
import requests

from harness_core.sandbox import Sandbox, SandboxSettings
from harness_core.schemas import check

KEY = {"x-api-key": "any-key"}
STOCK = "r4317e64d25a"


def call(sb, method, path, body=None, **params):
    return requests.request(method, sb.url + path, json=body, headers=KEY, params=params, timeout=10)


def control(sb, path, body=None):
    return requests.post(sb.url.replace("/v2", "/_sandbox") + path, json=body, headers=KEY, timeout=10)


def make_persona(sb, **extra):
    body = {"persona_name": "Tester", "system_prompt": "Be helpful.", "default_replica_id": STOCK, **extra}
    resp = call(sb, "POST", "/personas", body)
    assert resp.status_code == 200, resp.text
    return resp.json()["persona_id"]


def objectives(sb, *names):
    body = {"name": "Set", "data": [{"objective_name": n, "objective_prompt": "Do it"} for n in names]}
    return call(sb, "POST", "/objectives", body)


@pytest.fixture
def sb():
    with Sandbox(SandboxSettings(time_scale=0.01, max_concurrent=50)) as sandbox:
        yield sandbox


# --- callbacks ------------------------------------------------------------------------------
def test_a_held_back_callback_is_delivered_even_when_the_next_one_comes_late(collector):
    settings = SandboxSettings(time_scale=0.01, max_concurrent=50, callback_faults="late:0.5,reorder:0.5", fault_seed=2)
    with Sandbox(settings) as sb:
        for _ in range(8):
            cid = call(sb, "POST", "/conversations", {"replica_id": STOCK, "callback_url": collector.url}).json()["conversation_id"]
            collector.wait_for(lambda evs, cid=cid: any(e["conversation_id"] == cid for e in evs), 5)
            call(sb, "POST", f"/conversations/{cid}/end")
        assert sb.wait_idle(5), "every queued callback was delivered"
        assert sb.faults.injected.get("late", 0) and sb.faults.injected.get("reorder", 0)
        emitted = sum(len(c["events"]) for c in sb.store.conversations.values())
        assert len(collector.wait_for(lambda evs: len(evs) == emitted, 5)) == emitted == 8 * 5  # replica_joined, pal_joined, shutdown, transcript, analysis


def test_a_persona_without_a_perception_layer_gets_the_raven_1_analysis(sb, collector):
    for layers, expected in (({}, True), ({"perception": {"perception_model": "off"}}, False)):
        pid = make_persona(sb, layers=layers)
        cid = call(sb, "POST", "/conversations", {"persona_id": pid, "callback_url": collector.url}).json()["conversation_id"]
        call(sb, "POST", f"/conversations/{cid}/end")
        assert sb.wait_idle(5)
        events = collector.wait_for(lambda evs, cid=cid: any(
            e["conversation_id"] == cid and e["event_type"] == "application.transcription_ready" for e in evs))
        kinds = [e["event_type"] for e in events if e["conversation_id"] == cid]
        assert ("application.perception_analysis" in kinds) is expected, (layers, kinds)


def test_test_mode_callbacks_setting_reports_the_end_of_a_test_mode_conversation(collector):
    with Sandbox(SandboxSettings(time_scale=0.01, max_concurrent=1, test_mode_callbacks=True)) as sb:
        body = call(sb, "POST", "/conversations", {"replica_id": STOCK, "test_mode": True, "callback_url": collector.url}).json()
        assert body["status"] == "ended"
        events = collector.wait_for(lambda evs: any(e["event_type"] == "application.transcription_ready" for e in evs))
        assert [e["event_type"] for e in events][:2] == ["system.shutdown", "application.transcription_ready"]
        assert "system.replica_joined" not in [e["event_type"] for e in events]
        assert call(sb, "POST", "/conversations", {"replica_id": STOCK}).status_code == 200, "test mode counts for nothing"


# --- personas and PALs ----------------------------------------------------------------------
@pytest.mark.parametrize("route", ["personas", "pals"])
@pytest.mark.parametrize("raw", [b"{not json", b"", b'[{"op": "replace", "path": "/persona_name"}]',
                                 b'[{"op": "add", "path": "/context"}]', b'[{"op": "move", "path": "/context"}]',
                                 b'[{"op": "frobnicate", "path": "/context", "value": 1}]', b'[{"op": "remove"}]'])
def test_a_malformed_persona_patch_is_422_invalid_json_patch_format(sb, route, raw):
    pid = make_persona(sb)
    resp = requests.patch(f"{sb.url}/{route}/{pid}", data=raw, headers={**KEY, "Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 422 and resp.json() == {"message": "Invalid JSON patch format"}


@pytest.mark.parametrize("route, base", [("pals", {"pal_name": "P", "default_face_id": STOCK}),
                                         ("personas", {"persona_name": "P", "default_replica_id": STOCK})])
def test_documented_pal_fields_are_accepted_and_their_enums_checked(sb, route, base):
    fields = {"languages": ["en", "fr"], "emotion_recognition": "limited", "disclosure_type": "always",
              "verbal_disclosure": "auto", "visual_disclosure": "auto"}
    body = {**base, "system_prompt": "x", **fields}
    assert call(sb, "POST", f"/{route}", body).status_code == 200
    assert check(route[:-1], body, engine="quick") == [] == check(route[:-1], body)
    for key, bad in (("emotion_recognition", "some"), ("disclosure_type", "never"), ("languages", "en")):
        assert call(sb, "POST", f"/{route}", {**body, key: bad}).status_code == 400, key


def test_deleting_an_attached_objectives_set_or_guardrails_set_detaches_it(sb):
    oid = objectives(sb, "agenda").json()["objectives_id"]
    legacy = call(sb, "POST", "/guardrails", {"name": "S", "data": [{"guardrail_name": "a", "guardrail_prompt": "b"}]}).json()
    pid = make_persona(sb, objectives_id=oid, guardrails_id=legacy["guardrails_id"])
    assert call(sb, "DELETE", f"/objectives/{oid}").status_code == 204
    assert call(sb, "DELETE", f"/guardrails/{legacy['guardrails_id']}").status_code == 204
    stored = sb.store.personas[pid]
    assert stored["objectives_id"] is None and stored["guardrails_id"] is None
    assert call(sb, "PATCH", f"/personas/{pid}", [{"op": "replace", "path": "/persona_name", "value": "Renamed"}]).status_code == 200


def test_a_dangling_id_from_an_old_state_file_does_not_block_other_patches(tmp_path):
    path = tmp_path / "state.json"
    persona = {"persona_id": "p0123456789", "persona_name": "Old", "system_prompt": "x", "objectives_id": "ogone",
               "guardrail_ids": ["ggone"], "persona_type": "user", "created_at": "x", "updated_at": "x"}
    path.write_text(json.dumps({"personas": {persona["persona_id"]: persona}}))
    with Sandbox(SandboxSettings(state_file=str(path))) as sb:
        rename = [{"op": "replace", "path": "/persona_name", "value": "New"}]
        assert call(sb, "PATCH", "/personas/p0123456789", rename).status_code == 200
        relink = [{"op": "replace", "path": "/objectives_id", "value": "oother"}]
        assert call(sb, "PATCH", "/personas/p0123456789", relink).json() == {"error": "Invalid objectives_id"}


def test_guardrail_ids_take_flat_guardrails_and_guardrails_id_takes_legacy_sets(sb):
    flat = call(sb, "POST", "/guardrails", {"guardrail_name": "no_advice", "guardrail_prompt": "No advice."}).json()["uuid"]
    legacy = call(sb, "POST", "/guardrails", {"name": "S", "data": [{"guardrail_name": "a", "guardrail_prompt": "b"}]}).json()
    body = {"system_prompt": "x", "default_replica_id": STOCK}
    wrong_set = call(sb, "POST", "/personas", {**body, "guardrail_ids": [legacy["guardrails_id"]]})
    assert wrong_set.status_code == 400 and wrong_set.json() == {"error": f"Invalid guardrail_id: {legacy['guardrails_id']}"}
    wrong_flat = call(sb, "POST", "/personas", {**body, "guardrails_id": flat})
    assert wrong_flat.status_code == 400 and wrong_flat.json() == {"error": "Invalid guardrails_id"}
    assert call(sb, "POST", "/personas", {**body, "guardrail_ids": [flat], "guardrails_id": legacy["guardrails_id"]}).status_code == 200


# --- objectives -----------------------------------------------------------------------------
def test_objective_names_are_unique_within_a_set_on_create_and_patch(sb):
    dup = objectives(sb, "agenda", "wrap", "agenda")
    assert dup.status_code == 400 and dup.json() == {"message": "data[2]: objective_name 'agenda' is already used in this set"}
    oid = objectives(sb, "agenda", "wrap").json()["objectives_id"]
    patch = [{"op": "replace", "path": "/data/1/objective_name", "value": "agenda"}]
    resp = call(sb, "PATCH", f"/objectives/{oid}", patch)
    assert resp.status_code == 400 and resp.json() == {"error": "Invalid patch operation"}
    assert [o["objective_name"] for o in call(sb, "GET", f"/objectives/{oid}").json()["data"]] == ["agenda", "wrap"]


# --- control routes -------------------------------------------------------------------------
@pytest.mark.parametrize("seconds", ["soon", True, [5], -1])
def test_a_script_with_a_bad_end_after_seconds_is_400(sb, seconds):
    resp = control(sb, "/script", {"end_after_seconds": seconds})
    assert resp.status_code == 400 and "end_after_seconds" in resp.json()["error"]
    assert control(sb, "/script", {"end_after_seconds": 2.5}).status_code == 200


def test_control_end_takes_only_documented_shutdown_reasons(sb, collector):
    cid = call(sb, "POST", "/conversations", {"replica_id": STOCK, "callback_url": collector.url}).json()["conversation_id"]
    refused = control(sb, f"/conversations/{cid}/end", {"reason": "bored"})
    assert refused.status_code == 400 and "bored" in refused.json()["error"]
    assert call(sb, "GET", f"/conversations/{cid}").json()["status"] == "active"
    ok = control(sb, f"/conversations/{cid}/end", {"reason": "participant_left_timeout reached"})
    assert ok.status_code == 200
    events = collector.wait_for(lambda evs: any(e["event_type"] == "system.shutdown" for e in evs))
    assert [e for e in events if e["event_type"] == "system.shutdown"][0]["properties"]["shutdown_reason"] == \
        "participant_left_timeout reached"


def test_reset_starts_fresh_in_place_and_saves(tmp_path, collector):
    path = tmp_path / "state.json"
    with Sandbox(SandboxSettings(time_scale=0.01, state_file=str(path))) as sb:
        lock = sb.store.lock
        pid = make_persona(sb)
        cid = call(sb, "POST", "/conversations", {"persona_id": pid, "callback_url": collector.url}).json()["conversation_id"]
        call(sb, "POST", f"/conversations/{cid}/end")
        assert sb.wait_idle(5) and sb.deliveries
        assert control(sb, "/reset").status_code == 200
        assert sb.store.lock is lock, "the lock other threads wait on is kept"
        assert not sb.store.personas and not sb.store.conversations and sb.store.stock_personas and sb.store.replicas
        assert requests.get(sb.url.replace("/v2", "/_sandbox/deliveries"), headers=KEY, timeout=10).json() == []
        assert sb.requests == [("GET", "/_sandbox/deliveries")]
        assert json.loads(path.read_text())["personas"] == {}, "the seeded state is what a restart loads"
        assert call(sb, "GET", f"/personas/{pid}").status_code == 400


# --- saving the state file ------------------------------------------------------------------
def test_a_failed_save_leaves_no_temp_file_and_the_request_still_succeeds(tmp_path):
    path = tmp_path / "state.json"
    with Sandbox(SandboxSettings(state_file=str(path))) as sb:
        path.unlink(missing_ok=True)
        path.mkdir()  # the replace now fails: a file cannot replace a directory
        (path / "keep").write_text("x")
        make_persona(sb)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_concurrent_saves_leave_the_newest_state_on_disk(tmp_path):
    path = tmp_path / "state.json"
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads switch often, so overlapping saves really interleave
    try:
        with Sandbox(SandboxSettings(state_file=str(path))) as sb:
            for _ in range(20):  # each round ends in overlapping saves: the one left on disk must be the newest
                threads = [threading.Thread(target=lambda: [make_persona(sb) for _ in range(2)]) for _ in range(8)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                assert set(json.loads(path.read_text())["personas"]) == set(sb.store.personas)
    finally:
        sys.setswitchinterval(before)
    assert len(sb.store.personas) == 320
