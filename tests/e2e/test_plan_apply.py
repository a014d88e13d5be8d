"""State file, plan, drift and idempotent apply, against the real sandbox."""
from __future__ import annotations

import json

import requests

from harness_core.resources.lockfile import LOCK_FILE
from tests.helpers import run_cli

KEY = {"x-api-key": "dashboard"}
FACILITATOR = "configs/persona/facilitator.example.json"


def classes(result) -> dict:
    out = {}
    for line in result.out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("create", "update", "unchanged", "remote-changed", "both-changed",
                                  "missing-remote", "blocked", "duplicate-config"):
            out[line.split("configs/")[-1].split()[0]] = parts[0]
    return out


def persona_named(sb, name):
    return next(pid for pid, p in sb.store.personas.items() if p["persona_name"] == name)


def test_a_second_create_is_refused_and_upsert_updates(project, sandbox):
    assert run_cli("persona", "--config", FACILITATOR).code == 0
    again = run_cli("persona", "--config", FACILITATOR)
    assert again.code == 2 and "already created" in again.err and "--upsert" in again.err
    assert len(sandbox.store.personas) == 1
    upsert = run_cli("persona", "--config", FACILITATOR, "--upsert", "--context", "new context")
    assert upsert.code == 0, upsert.err
    assert len(sandbox.store.personas) == 1 and next(iter(sandbox.store.personas.values()))["context"] == "new context"
    lock = (project / LOCK_FILE).read_text()
    assert sandbox.url in lock and "Meeting Facilitator" in lock and "sha256:" in lock


def test_a_lock_entry_whose_persona_was_deleted_does_not_block_a_new_create(project, sandbox):
    assert run_cli("persona", "--config", FACILITATOR).code == 0
    old = persona_named(sandbox, "Meeting Facilitator")
    assert requests.delete(f"{sandbox.url}/personas/{old}", headers=KEY, timeout=5).status_code == 204
    again = run_cli("persona", "--config", FACILITATOR)
    assert again.code == 0, again.err
    assert "no longer exists" in again.err and old in again.err
    new = persona_named(sandbox, "Meeting Facilitator")
    lock = (project / LOCK_FILE).read_text()
    assert new != old and new in lock and old not in lock


def test_apply_in_dependency_order_then_noop_is_byte_identical(project, sandbox):
    plan = run_cli("plan")
    assert plan.code == 6
    assert classes(plan)["objectives/facilitator_core.json"] == "create"
    assert classes(plan)["persona/facilitator.with_policies.json"] == "blocked", "names a policy not created yet"
    result = run_cli("apply")
    assert result.code == 0, result.err
    posts = [path for method, path in sandbox.requests if method == "POST"]
    assert posts.index("/v2/objectives") < posts.index("/v2/personas")
    assert posts.index("/v2/guardrails") < posts.index("/v2/personas")
    before = (project / LOCK_FILE).read_bytes()
    writes = [r for r in sandbox.requests if r[0] != "GET"]
    assert run_cli("apply").code == 0
    assert (project / LOCK_FILE).read_bytes() == before, "a no-op apply leaves the state file byte-identical"
    assert [r for r in sandbox.requests if r[0] != "GET"] == writes, "and sends no write"
    settled = run_cli("plan")
    assert settled.code == 0 and set(classes(settled).values()) <= {"unchanged", "duplicate-config"}


def test_plan_shows_update_remote_changed_both_changed_and_missing_remote(project, sandbox):
    assert run_cli("apply").code == 0
    modular = persona_named(sandbox, "Assistant modular (from config)")
    # update: our config changed
    cfg = project / FACILITATOR
    data = json.loads(cfg.read_text())
    data["context"] = "Edited in the repo."
    cfg.write_text(json.dumps(data))
    # remote-changed: a dashboard edit
    requests.patch(f"{sandbox.url}/personas/{modular}", json=[{"op": "replace", "path": "/system_prompt", "value": "Edited in the dashboard."}],
                   headers=KEY, timeout=10).raise_for_status()
    # missing-remote: deleted elsewhere
    objectives = next(iter(sandbox.store.objectives))
    requests.delete(f"{sandbox.url}/objectives/{objectives}", headers=KEY, timeout=10)
    plan = run_cli("plan")
    got = classes(plan)
    assert got["persona/facilitator.example.json"] == "update"
    assert got["persona/assistant_modular.json"] == "remote-changed"
    assert got["objectives/facilitator_core.json"] == "missing-remote"
    assert "replace  /context = \"Edited in the repo.\"" in plan.out, "field-level diff"
    assert '(was "Edited in the dashboard.")' in plan.out, "a remote-changed diff shows the dashboard's value"
    # both-changed
    mcfg = project / "configs/persona/assistant_modular.json"
    mdata = json.loads(mcfg.read_text())
    mdata["context"] = "repo side too"
    mcfg.write_text(json.dumps(mdata))
    assert classes(run_cli("status"))["persona/assistant_modular.json"] == "both-changed"
    # apply refuses the remote-changed one without --force, after creating what it can before it
    refused = run_cli("apply")
    assert refused.code == 5 and "changed outside the harness" in refused.err and "--force" in refused.err
    assert sandbox.store.personas[modular]["system_prompt"] == "Edited in the dashboard."
    assert len(sandbox.store.objectives) == 1, "missing-remote was re-created before the refusal"
    forced = run_cli("apply", "--force")
    assert forced.code == 0, forced.err
    assert sandbox.store.personas[modular]["context"] == "repo side too"
    assert run_cli("plan").code == 0


def test_apply_attaches_policies_created_in_the_same_run_to_the_persona_that_names_them(project, sandbox):
    coach = json.loads((project / "configs/persona/facilitator.with_policies.json").read_text())
    coach["persona_name"] = "Policy Coach"  # its own persona, so it is not an overlay of another config
    (project / "configs/persona/policy_coach.json").write_text(json.dumps(coach))
    assert classes(run_cli("plan"))["persona/policy_coach.json"] == "blocked"
    result = run_cli("apply")
    assert result.code == 0, result.err
    stored = sandbox.store.personas[persona_named(sandbox, "Policy Coach")]
    assert stored["objectives_id"] in sandbox.store.objectives
    assert stored["guardrails_id"] in sandbox.store.guardrails or stored.get("guardrail_ids")
    assert classes(run_cli("plan"))["persona/policy_coach.json"] == "unchanged"


def test_pull_then_apply_is_unchanged(project, sandbox):
    made = requests.post(f"{sandbox.url}/personas", headers=KEY, timeout=10, json={
        "persona_name": "Dashboard Persona", "system_prompt": "Made in the dashboard.", "default_replica_id": "r4317e64d25a",
        "layers": {"llm": {"model": "tavus-gpt-oss"}, "tts": {"tts_engine": "cartesia"}}}).json()["persona_id"]
    pulled = run_cli("pull", "--persona-id", made, "--to", "configs/persona/pulled.json")
    assert pulled.code == 0, pulled.err
    assert json.loads((project / "configs/persona/pulled.json").read_text())["persona_name"] == "Dashboard Persona"
    assert classes(run_cli("plan", "--only", "personas"))["persona/pulled.json"] == "unchanged"
    again = run_cli("pull", "--persona-id", made, "--to", "configs/persona/pulled.json")
    assert again.code == 2 and "already exists" in again.err and "--force" in again.err
    assert run_cli("pull", "--to", "configs/persona/x.json").err.startswith("error: pull: --persona-id is required")
    assert "is a directory" in run_cli("pull", "--persona-id", made, "--to", "configs").err
    again = run_cli("pull", "--persona-id", made, "--to", "configs/persona/pulled.json")
    assert again.code == 2 and "already exists" in again.err and "--force" in again.err
    assert run_cli("pull", "--to", "configs/persona/x.json").err.startswith("error: pull: --persona-id is required")
    assert "is a directory" in run_cli("pull", "--persona-id", made, "--to", "configs").err
    writes = [r for r in sandbox.requests if r[0] != "GET"]
    assert run_cli("apply").code == 0
    assert [r for r in sandbox.requests if r[0] != "GET" and r[1].startswith(f"/v2/personas/{made}")] == \
        [r for r in writes if r[1].startswith(f"/v2/personas/{made}")]


def test_plan_exit_codes_tell_pending_changes_from_errors(project, sandbox):
    assert run_cli("plan").code == 6, "changes pending has a code of its own"
    assert run_cli("apply").code == 0 and run_cli("plan").code == 0, "nothing to do"
    broken = run_cli("plan", "--only", "widgets")
    assert broken.code == 2 and broken.err.startswith("error: "), "a bad flag is a configuration error, not 'pending'"


def test_a_failure_half_way_leaves_a_state_that_matches_reality(project, sandbox):
    bad = project / "configs/persona/zz_broken.json"
    bad.write_text(json.dumps({"persona_name": "Broken", "system_prompt": "x", "default_replica_id": "rdoesnotexist"}))
    failed = run_cli("apply")
    assert failed.code == 3 and "Invalid replica_uuid" in failed.err and "check default_replica_id" in failed.err
    lock = (project / LOCK_FILE).read_text()
    for name, pid in ((p["persona_name"], i) for i, p in sandbox.store.personas.items()):
        assert pid in lock, f"{name} was created and is recorded"
    assert "Broken" not in lock
    bad.unlink()
    assert run_cli("apply").code == 0 and run_cli("plan").code == 0


def test_explain_names_the_source_of_every_field(project, sandbox, monkeypatch):
    monkeypatch.setenv("TAVUS_DEFAULT_REPLICA_ID", "r90bbd427f71")
    cfg = project / "configs/persona/no_replica.json"
    cfg.write_text(json.dumps({"persona_name": "Explained", "system_prompt": "Hi.", "llm": "tavus_gpt_oss"}))
    result = run_cli("explain", "--config", "configs/persona/no_replica.json")
    assert result.code == 0, result.err
    rows = {line.split()[0]: line for line in result.out.splitlines()}
    assert rows["persona_name"].endswith("configs/persona/no_replica.json")
    assert rows["default_replica_id"].endswith("env TAVUS_DEFAULT_REPLICA_ID")
    assert "preset file presets/layers/llm/tavus_gpt_oss.json" in rows["layers.llm.model"]
    flagged = run_cli("explain", "--config", "configs/persona/no_replica.json", "--system-prompt", "From a flag.",
                      "--document-tags", "a,b")
    assert flagged.code == 0, flagged.err
    rows = {line.split()[0]: line for line in flagged.out.splitlines()}
    assert rows["system_prompt"].endswith("flag --system-prompt") and '"From a flag."' in rows["system_prompt"]
    assert rows["document_tags"].endswith("flag --document-tags")
