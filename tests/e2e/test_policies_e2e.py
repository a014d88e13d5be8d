"""`invoke objectives` / `invoke guardrails` against the real local sandbox: create, or update by name."""
from __future__ import annotations

import json

from tests.helpers import run_cli

OBJECTIVES = "configs/objectives/facilitator_core.json"
GUARDRAILS = "configs/guardrails/facilitator_safety.json"


def non_get(sb, start=0):
    return [(m, p) for m, p in sb.requests[start:] if m.upper() != "GET"]


def test_objectives_created_then_unchanged_then_patched_by_name(project, sandbox):
    result = run_cli("objectives", "--config", OBJECTIVES)
    assert result.code == 0, result.err
    (oid,) = sandbox.store.objectives
    stored = sandbox.store.objectives[oid]
    sent = json.loads((project / OBJECTIVES).read_text())
    assert stored["name"] == "Facilitator Core Objective"
    assert [i["objective_name"] for i in stored["data"]] == [i["objective_name"] for i in sent["data"]]
    assert oid in result.out and "--objectives-id " + oid in result.out

    before = len(sandbox.requests)
    again = run_cli("objectives", "--config", OBJECTIVES)
    assert again.code == 0 and "unchanged" in again.out
    assert non_get(sandbox, before) == [] and len(sandbox.store.objectives) == 1

    sent["data"][2]["objective_prompt"] = "Reach at most three decisions, each with an owner."
    (project / OBJECTIVES).write_text(json.dumps(sent))
    before = len(sandbox.requests)
    changed = run_cli("objectives", "--config", OBJECTIVES)
    assert changed.code == 0, changed.err
    assert [m for m, _ in non_get(sandbox, before)] == ["PATCH"]
    assert sandbox.store.objectives[oid]["data"][2]["objective_prompt"] == "Reach at most three decisions, each with an owner."
    patch = [json.loads(x) for x in (project / "logs" / "api.jsonl").read_text().splitlines()
             if json.loads(x)["method"] == "PATCH"][-1]["payload"]
    assert patch == [{"op": "replace", "path": "/data/2/objective_prompt",
                      "value": "Reach at most three decisions, each with an owner."}]


def test_a_field_the_config_drops_is_removed_on_update(project, sandbox):
    assert run_cli("objectives", "--config", OBJECTIVES).code == 0
    (oid,) = sandbox.store.objectives
    sent = json.loads((project / OBJECTIVES).read_text())
    sent["data"] = sent["data"][:3]  # drop the last objective and the link to it
    del sent["data"][2]["next_required_objective"]
    (project / OBJECTIVES).write_text(json.dumps(sent))
    changed = run_cli("objectives", "--config", OBJECTIVES)
    assert changed.code == 0, changed.err
    stored = sandbox.store.objectives[oid]["data"]
    assert len(stored) == 3 and "next_required_objective" not in stored[2]
    assert "unchanged" in run_cli("objectives", "--config", OBJECTIVES).out


def test_guardrails_set_created_once(project, sandbox):
    result = run_cli("guardrails", "--config", GUARDRAILS)
    assert result.code == 0, result.err
    (gid,) = sandbox.store.guardrails
    stored = sandbox.store.guardrails[gid]
    assert stored["name"] == "Facilitator Safety Policy" and len(stored["data"]) == 4
    assert run_cli("guardrails", "--config", GUARDRAILS).code == 0
    assert len(sandbox.store.guardrails) == 1


def test_dry_run_prints_the_payload_and_sends_nothing(project, sandbox):
    result = run_cli("guardrails", "--config", GUARDRAILS, "--dry-run", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["body"]["name"] == "Facilitator Safety Policy"
    assert sandbox.store.guardrails == {} and non_get(sandbox) == []


def test_bad_policy_config_is_one_line_and_nothing_is_sent(project, sandbox):
    bad = project / "configs" / "guardrails" / "bad.json"
    bad.write_text(json.dumps({"name": "X", "data": [{"guardrail_name": "no spaces allowed", "guardrail_prompt": "p"}]}))
    result = run_cli("guardrails", "--config", "configs/guardrails/bad.json")
    assert result.code == 2
    assert result.err.startswith("error: configs/guardrails/bad.json: data[0].guardrail_name:")
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    missing = run_cli("objectives")
    assert missing.code == 2 and missing.err.startswith("error: --config: required")
    links = project / "configs" / "objectives" / "links.json"
    for field, value in (("next_conditional_objectives", ["b"]), ("next_required_objective", ["b"])):
        links.write_text(json.dumps({"name": "L", "data": [{"objective_name": "a", "objective_prompt": "p", field: value},
                                                          {"objective_name": "b", "objective_prompt": "q"}]}))
        wrong = run_cli("objectives", "--config", "configs/objectives/links.json")
        assert wrong.code == 2 and wrong.err.startswith(f"error: configs/objectives/links.json: data[0].{field}:")
    assert non_get(sandbox) == []
