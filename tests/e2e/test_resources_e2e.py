"""Tools, documents, pronunciation dictionaries and PALs as code, against the real sandbox (issue 15)."""
from __future__ import annotations

import json

import pytest
import requests

from harness_core.resources.lockfile import LOCK_FILE
from tests.helpers import run_cli

KEY = {"x-api-key": "dashboard"}
PAL = "configs/pals/facilitator_pal.json"
WRITES = ("POST", "PATCH", "PUT", "DELETE")


def writes(sandbox, since=0):
    return [(m, p) for m, p in sandbox.requests[since:] if m in WRITES]


def named(store: dict, key: str, name: str) -> str:
    """The id of the one stored resource called `name` (the sandbox also holds stock documents)."""
    (found,) = [rid for rid, r in store.items() if r.get(key) == name]
    return found


def status_of(result, config):
    line = next(line for line in result.out.splitlines() if line.rstrip().endswith(config) or f"{config} " in line)
    return line.split()[0]


def test_a_fresh_apply_creates_everything_in_dependency_order_and_a_second_sends_nothing(project, sandbox):
    result = run_cli("apply")
    assert result.code == 0, result.err
    order = [p.split("/")[2] for m, p in writes(sandbox) if m == "POST" and p.count("/") == 2]
    firsts = [order.index(k) for k in ("documents", "pronunciation-dictionaries", "tools", "objectives", "personas")]
    assert firsts == sorted(firsts), order
    tool_id = named(sandbox.store.tools, "name", "schedule_meeting")
    doc_id = named(sandbox.store.documents, "document_name", "Facilitation handbook")
    dict_id = named(sandbox.store.pronunciation_dictionaries, "name", "Brand names")
    pal = next(p for p in sandbox.store.personas.values() if p["persona_name"] == "Meeting Facilitator PAL")
    assert pal["tool_ids"] == [tool_id] and pal["document_ids"] == [doc_id]
    assert pal["layers"]["tts"]["pronunciation_dictionary_id"] == dict_id
    assert sandbox.store.documents[doc_id]["status"] == "ready", "apply waited for processing"
    assert sandbox.store.tools[tool_id]["delivery"]["api"]["auth"]["secret"] == "test-only-hmac-secret"
    before = len(sandbox.requests)
    again = run_cli("apply")
    assert again.code == 0 and writes(sandbox, before) == [], writes(sandbox, before)
    assert run_cli("plan").code == 0
    seen = result.out + result.err + again.out + (project / LOCK_FILE).read_text() + \
        b"".join(p.read_bytes() for p in (project / "logs").rglob("*") if p.is_file()).decode(errors="replace")
    assert "test-only-hmac-secret" not in seen


@pytest.mark.parametrize("kind, config, edit, path", [
    ("tools", "configs/tools/schedule_meeting.json", lambda d: d.update(description="Book a meeting."), "/description"),
    ("documents", "configs/documents/facilitation_handbook.json", lambda d: d.update(tags=["facilitation", "hr"]), "/tags/1"),
    ("pronunciation", "configs/pronunciation/brand_names.json",
     lambda d: d["rules"][0].update(pronunciation="TAY-vus"), "/rules/0/pronunciation"),
])
def test_each_kind_creates_then_noops_then_updates_with_a_diff_and_guards_remote_changes(project, sandbox, kind, config,
                                                                                         edit, path):
    assert run_cli(kind, "--config", config).code == 0
    before = len(sandbox.requests)
    same = run_cli(kind, "--config", config)
    assert same.code == 0 and "unchanged" in same.out and writes(sandbox, before) == []
    data = json.loads((project / config).read_text())
    edit(data)
    (project / config).write_text(json.dumps(data))
    plan = run_cli("plan", "--only", kind)
    assert plan.code == 6 and status_of(plan, config) == "update" and path in plan.out, plan.out
    assert run_cli("apply", "--only", kind).code == 0
    assert run_cli("plan", "--only", kind).code == 0
    # A change made elsewhere (the dashboard) is detected and never overwritten without --force.
    store, key, name = {"tools": (sandbox.store.tools, "name", "schedule_meeting"),
                        "documents": (sandbox.store.documents, "document_name", "Facilitation handbook"),
                        "pronunciation": (sandbox.store.pronunciation_dictionaries, "name", "Brand names")}[kind]
    rid = named(store, key, name)
    url = {"tools": "tools", "documents": "documents", "pronunciation": "pronunciation-dictionaries"}[kind]
    body = ([{"op": "replace", "path": "/name", "value": "Brand names"},
             {"op": "add", "path": "/rules/-", "value": {"text": "Raven", "pronunciation": "RAY-ven", "type": "alias"}}]
            if kind == "pronunciation" else {"description": "Edited in the dashboard."} if kind == "tools"
            else {"tags": ["dashboard"]})
    assert requests.patch(f"{sandbox.url}/{url}/{rid}", json=body, headers=KEY, timeout=5).ok
    assert status_of(run_cli("plan", "--only", kind), config) == "remote-changed"
    refused = run_cli(kind, "--config", config)
    assert refused.code != 0 and "changed outside the harness" in refused.err and "Traceback" not in refused.err
    assert run_cli("apply", "--only", kind).code != 0
    assert run_cli(kind, "--config", config, "--force").code == 0
    assert run_cli("plan", "--only", kind).code == 0


@pytest.mark.parametrize("change, field", [
    (lambda t: t["parameters"]["properties"].update(tavus_id={"type": "string"}), "parameters.properties.tavus_id"),
    (lambda t: t["delivery"].update(app_message=True), "delivery"),
    (lambda t: t["delivery"]["api"].update(body_template={"a": "b"}), "delivery.api.body_template"),
    (lambda t: t["delivery"]["api"]["auth"].update(secret="inline"), "delivery.api.auth.secret"),
    (lambda t: t["delivery"]["api"].update(url="http://tools.example.com/x"), "delivery.api.url"),
    (lambda t: t.update(name="book meeting"), "name"),
])
def test_a_broken_tool_is_refused_before_anything_is_sent_naming_file_and_field(project, sandbox, change, field):
    path = project / "configs/tools/schedule_meeting.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    before = len(sandbox.requests)
    result = run_cli("tools", "--config", "configs/tools/schedule_meeting.json")
    assert result.code == 2, result.err
    assert f"configs/tools/schedule_meeting.json: {field}:" in result.err and "Traceback" not in result.err
    assert writes(sandbox, before) == []
    assert "inline" not in result.err or field != "delivery.api.auth.secret"


def test_a_broken_reference_is_named_with_its_file(project, sandbox):
    path = project / PAL
    data = json.loads(path.read_text())
    data["tools"] = ["schedule_meeting", "send_invoice"]
    path.write_text(json.dumps(data))
    plan = run_cli("plan")
    assert status_of(plan, PAL) == "blocked"
    assert f"{PAL}: tools: no tool named 'send_invoice' in configs/tools/" in plan.out
    result = run_cli("pal", "--config", PAL)
    assert result.code == 2 and "send_invoice" in result.err and "Traceback" not in result.err


def test_a_pal_config_creates_the_tools_document_and_dictionary_it_names(project, sandbox):
    assert run_cli("apply", "--only", "objectives").code == 0 and run_cli("apply", "--only", "guardrails").code == 0
    result = run_cli("pal", "--config", PAL)
    assert result.code == 0, result.err
    named(sandbox.store.tools, "name", "schedule_meeting")
    named(sandbox.store.documents, "document_name", "Facilitation handbook")
    named(sandbox.store.pronunciation_dictionaries, "name", "Brand names")
    assert "attached    tools" in result.out
    again = run_cli("pal", "--config", PAL, "--update")
    assert again.code == 0 and "unchanged" in again.out


def test_a_document_that_fails_processing_reports_its_documented_code(project, sandbox):
    path = project / "configs/documents/broken.json"
    path.write_text(json.dumps({"document_name": "Broken", "document_url": "https://example.com/a.pdf?sandbox_error=file_empty"}))
    result = run_cli("documents", "--config", "configs/documents/broken.json")
    assert result.code != 0 and "configs/documents/broken.json: document 'Broken'" in result.err
    assert "file_empty" in result.err and "processing" in result.err  # the progress line came first


def test_persona_update_refuses_a_dashboard_change_without_force(project, sandbox):
    cfg = "configs/persona/facilitator.example.json"
    assert run_cli("persona", "--config", cfg).code == 0
    (pid,) = sandbox.store.personas
    ops = [{"op": "replace", "path": "/context", "value": "edited in the dashboard"}]
    assert requests.patch(f"{sandbox.url}/personas/{pid}", json=ops, headers=KEY, timeout=5).ok
    refused = run_cli("persona", "--config", cfg, "--update", "--system-prompt", "Shorter.")
    assert refused.code != 0 and "changed outside the harness" in refused.err
    assert sandbox.store.personas[pid]["context"] == "edited in the dashboard"
    assert run_cli("persona", "--config", cfg, "--update", "--force").code == 0
    assert sandbox.store.personas[pid]["context"] != "edited in the dashboard"


def test_invoke_pal_speaks_pal_and_face(project, sandbox):
    result = run_cli("pal", "--pal-name", "Flags PAL", "--face-id", "r4317e64d25a", "--system-prompt", "Hi.")
    assert result.code == 0, result.err
    (pal,) = sandbox.store.personas.values()
    assert pal["persona_name"] == "Flags PAL" and pal["default_replica_id"] == "r4317e64d25a"
    both = project / "configs/pals/both.json"
    both.write_text(json.dumps({"pal_name": "A", "persona_name": "B", "system_prompt": "p"}))
    clash = run_cli("pal", "--config", "configs/pals/both.json", "--dry-run")
    assert clash.code == 2 and "pal_name and persona_name: both are set" in clash.err


def _pal_id(sandbox, name="Meeting Facilitator PAL"):
    return next(pid for pid, p in sandbox.store.personas.items() if p["persona_name"] == name)


def test_pull_brings_a_pal_and_everything_it_references_into_configs_that_plan_unchanged(project, sandbox):
    assert run_cli("apply").code == 0
    pal_id = _pal_id(sandbox)
    # A fresh checkout that has none of it: no configs of any kind, no state file.
    for folder in ("tools", "documents", "pronunciation", "objectives", "guardrails", "pals", "persona"):
        for path in (project / "configs" / folder).glob("*"):
            path.unlink()
    (project / LOCK_FILE).unlink()
    before = len(sandbox.requests)
    pulled = run_cli("pull", "--persona-id", pal_id, "--to", "configs/pals/pulled.json", "--json")
    assert pulled.code == 0, pulled.err
    assert json.loads(pulled.out) == {"persona_id": pal_id, "path": "configs/pals/pulled.json", "lock_file": LOCK_FILE}
    assert writes(sandbox, before) == [], "a pull only reads"
    pal = json.loads((project / "configs/pals/pulled.json").read_text())
    assert pal["tools"] == ["schedule_meeting"] and pal["tools_as"] == "attached"
    assert pal["documents"] == ["Facilitation handbook"] and "document_ids" not in pal
    assert pal["objectives_name"] == "Facilitator Core Objective" and pal["guardrails_name"] == "Facilitator Safety Policy"
    assert pal["layers"]["tts"]["pronunciation_dictionary"] == "Brand names"
    assert "pronunciation_dictionary_id" not in pal["layers"]["tts"]
    tool = json.loads((project / "configs/tools/schedule_meeting.json").read_text())
    assert tool["delivery"]["api"]["auth"] == {"type": "hmac", "secret": {"$env": "SCHEDULE_MEETING_SECRET"}}
    assert "set SCHEDULE_MEETING_SECRET" in pulled.err
    for folder in ("documents", "pronunciation", "objectives", "guardrails"):
        assert len(list((project / "configs" / folder).glob("*.json"))) == 1, folder
    plan = run_cli("plan")
    assert plan.code == 0, plan.out
    assert {line.split()[0] for line in plan.out.splitlines()[:-1]} == {"unchanged"}
    assert len(plan.out.splitlines()) == 7  # six resources and the summary
    text = run_cli("pull", "--persona-id", pal_id, "--to", "configs/pals/again.json", "--force")
    assert "kept  configs/tools/schedule_meeting.json" in text.out, text.out


def test_pulling_a_persona_another_config_manages_says_which_and_writes_nothing_unless_forced(project, sandbox):
    assert run_cli("apply").code == 0
    pal_id = _pal_id(sandbox)
    files = sorted(p for p in (project / "configs").rglob("*"))
    lock = (project / LOCK_FILE).read_text()
    refused = run_cli("pull", "--persona-id", pal_id, "--to", "configs/pals/copy.json")
    assert refused.code == 2 and f"already managed by {PAL}" in refused.err and "--force" in refused.err, refused.err
    assert sorted(p for p in (project / "configs").rglob("*")) == files and (project / LOCK_FILE).read_text() == lock
    forced = run_cli("pull", "--persona-id", pal_id, "--to", "configs/pals/copy.json", "--force")
    assert forced.code == 0 and (project / "configs/pals/copy.json").is_file()
    assert sorted(p.name for p in (project / "configs/tools").glob("*")) == ["schedule_meeting.json"]


def _deletes(sandbox, since):
    return [p for m, p in sandbox.requests[since:] if m == "DELETE"]


def test_a_resource_whose_config_is_gone_is_deleted_only_with_delete_and_a_named_confirmation(project, sandbox):
    assert run_cli("apply").code == 0
    assert run_cli("pal", "--pal-name", "Flags PAL", "--face-id", "r4317e64d25a", "--system-prompt", "Hi.").code == 0
    pal_id, tool_id = _pal_id(sandbox), named(sandbox.store.tools, "name", "schedule_meeting")
    (project / PAL).unlink()
    (project / "configs/tools/schedule_meeting.json").unlink()
    plan = run_cli("plan")
    assert plan.code == 0, plan.out  # reported, not pending: apply without --delete leaves them alone
    assert status_of(plan, PAL) == "missing-config" and status_of(plan, "configs/tools/schedule_meeting.json") == "missing-config"
    assert "apply --delete --confirm schedule_meeting`" in plan.out and "Flags PAL" not in plan.out
    planned = run_cli("plan", "--delete")
    assert planned.code == 6 and status_of(planned, PAL) == "delete", planned.out
    lines = planned.out.splitlines()
    assert [i for i, line in enumerate(lines) if line.startswith("delete")] == [len(lines) - 3, len(lines) - 2]
    assert "persona" in lines[-3] and "tools" in lines[-2]  # reverse dependency order: the PAL before its tool
    before = len(sandbox.requests)
    kept = run_cli("apply")
    assert kept.code == 0 and "missing-config" in kept.out and _deletes(sandbox, before) == []
    for confirm in ((), ("--confirm", "schedule_meeting"), ("--confirm", "schedule_meeting,Meeting Facilitator PAL,extra")):
        refused = run_cli("apply", "--delete", *confirm)
        assert refused.code == 2 and "Traceback" not in refused.err and len(refused.err.splitlines()) == 1, refused.err
    assert "--confirm 'Meeting Facilitator PAL,schedule_meeting'" in refused.err
    assert _deletes(sandbox, before) == [] and pal_id in sandbox.store.personas
    dry = run_cli("apply", "--delete", "--dry-run")
    assert dry.code == 0 and "would delete" in dry.out and _deletes(sandbox, before) == []
    done = run_cli("apply", "--delete", "--confirm", f"Meeting Facilitator PAL,{tool_id}")
    assert done.code == 0, done.err
    assert _deletes(sandbox, before) == [f"/v2/personas/{pal_id}", f"/v2/tools/{tool_id}"]
    assert pal_id not in sandbox.store.personas and tool_id not in sandbox.store.tools
    lock = (project / LOCK_FILE).read_text()
    assert pal_id not in lock and tool_id not in lock
    after = run_cli("plan", "--delete")
    assert after.code == 0 and "missing-config" not in after.out and "delete " not in after.out


def test_a_tool_a_pal_still_uses_is_not_deleted(project, sandbox):
    assert run_cli("apply").code == 0
    tool_id = named(sandbox.store.tools, "name", "schedule_meeting")
    (project / "configs/tools/schedule_meeting.json").unlink()  # the PAL config still names it (found on the API)
    planned = run_cli("plan", "--delete")
    assert status_of(planned, "configs/tools/schedule_meeting.json") == "blocked"
    assert "still attached to PAL 'Meeting Facilitator PAL'" in planned.out
    before = len(sandbox.requests)
    refused = run_cli("apply", "--delete", "--confirm", "schedule_meeting")
    assert refused.code == 5 and len(refused.err.splitlines()) == 1, refused.err
    assert "cannot delete tools 'schedule_meeting'" in refused.err and "still attached to PAL" in refused.err
    assert writes(sandbox, before) == [] and tool_id in sandbox.store.tools
    data = json.loads((project / PAL).read_text())
    del data["tools"], data["tools_as"]
    (project / PAL).write_text(json.dumps(data))
    assert status_of(run_cli("plan", "--delete"), "configs/tools/schedule_meeting.json") == "delete"
    done = run_cli("apply", "--delete", "--confirm", "schedule_meeting")
    assert done.code == 0, done.err
    assert tool_id not in sandbox.store.tools
    detach = next(i for i, (m, p) in enumerate(sandbox.requests) if m == "DELETE" and p.endswith(f"/tools/{tool_id}") and "/pals/" in p)
    delete = next(i for i, (m, p) in enumerate(sandbox.requests) if m == "DELETE" and p == f"/v2/tools/{tool_id}")
    assert detach < delete  # the PAL update detached it first, then the tool went


def test_explain_says_which_names_the_tool_document_and_dictionary_ids_came_from(project, sandbox):
    assert run_cli("apply").code == 0
    result = run_cli("explain", "--config", PAL, "--json")
    assert result.code == 0, result.err
    rows = {row["path"]: row for row in json.loads(result.out)}
    tool = rows["tool_ids"]
    assert tool["value"] == [named(sandbox.store.tools, "name", "schedule_meeting")]
    assert tool["source"] == f"tools by name: schedule_meeting (configs/tools/schedule_meeting.json), named in {PAL}"
    assert rows["document_ids"]["source"].startswith(
        "documents by name: Facilitation handbook (configs/documents/facilitation_handbook.json)")
    dictionary = rows["layers.tts.pronunciation_dictionary_id"]
    assert dictionary["source"].startswith("pronunciation dictionary by name: Brand names (configs/pronunciation/brand_names.json)")
    assert PAL in dictionary["source"] and PAL in rows["document_ids"]["source"]


# --- PAL editing generations (CONTRACT §10.5): a dashboard change is a conflict until --force ------------
PAL_CONFIG = "configs/pals/facilitator_pal.json"


def _dashboard_edit(sb, pal_id: str, prompt: str) -> None:
    edited = requests.post(f"{sb.url.removesuffix('/v2')}/_sandbox/pals/{pal_id}/dashboard-edit", timeout=5,
                           headers={"x-api-key": "dashboard"},
                           json=[{"op": "replace", "path": "/system_prompt", "value": prompt}])
    assert edited.status_code == 200, edited.text


@pytest.mark.parametrize("editing", ["maker", "draft"])
def test_apply_reports_a_dashboard_edit_as_a_conflict_and_keeps_it_unless_forced(project, monkeypatch, editing):
    from harness_core.sandbox import Sandbox, SandboxSettings
    with Sandbox(SandboxSettings(time_scale=0.01, allow_loopback_tools=True, pal_editing=editing)) as sb:
        monkeypatch.setenv("TAVUS_API_URL", sb.url)
        assert run_cli("apply").code == 0
        pal_id = next(p["persona_id"] for p in sb.store.personas.values() if p["persona_name"] == "Meeting Facilitator PAL")
        _dashboard_edit(sb, pal_id, "Edited in the dashboard.")
        config = json.loads((project / PAL_CONFIG).read_text())
        (project / PAL_CONFIG).write_text(json.dumps({**config, "system_prompt": "Changed in the repo."}))

        refused = run_cli("apply")
        assert refused.code != 0 and "conflict" in refused.err and PAL_CONFIG in refused.err, refused.err
        assert sb.store.personas[pal_id]["system_prompt"] != "Changed in the repo.", "nothing went live"
        assert pal_id in sb.store.pal_edits, "the dashboard's edit is kept"

        forced = run_cli("apply", "--force")
        assert forced.code == 0, forced.err
        assert sb.store.personas[pal_id]["system_prompt"] == "Changed in the repo."
