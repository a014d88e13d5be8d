"""`--json` on every reporting task: what it prints parses, in the one shape docs/output.md gives it."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
PERSONA = "configs/persona/facilitator.example.json"


def document(*argv, codes=(0,)):
    result = run_cli(*argv, "--json")
    assert result.code in codes, f"{argv}: {result.err}"
    return json.loads(result.out)


def lines(*argv):
    result = run_cli(*argv, "--json")
    assert result.code == 0, f"{argv}: {result.err}"
    return [json.loads(line) for line in result.out.splitlines()]


def test_every_reporting_task_takes_json_and_docs_output_lists_it():
    from harness_core.cli import ns
    documented = (REPO / "docs" / "output.md").read_text(encoding="utf-8")
    long_running = {"sandbox", "ui"}  # servers: their lines are for people
    for name in ns.task_names:
        if name in long_running:
            continue
        flags = {flag for arg in ns[name].get_arguments() for flag in arg.names}
        assert "json" in flags, f"`{name}` has no --json"
        assert re.search(rf"`{re.escape(name)}`", documented), f"docs/output.md does not give `{name} --json` a shape"


def test_resource_tasks_print_one_document_each(project, sandbox):
    dry = document("persona", "--config", PERSONA, "--dry-run")
    assert set(dry) == {"dry_run", "action", "method", "path", "body"} and dry["method"] == "POST"
    assert dry["body"]["persona_name"] == "Meeting Facilitator"
    assert document("objectives", "--config", "configs/objectives/facilitator_core.json")["objectives_id"]
    created = document("persona", "--config", PERSONA)
    pid = created["persona_id"]
    update = document("persona", "--config", PERSONA, "--update", "--context", "New.", "--dry-run")
    assert update["method"] == "PATCH" and update["path"] == f"/personas/{pid}" and isinstance(update["body"], list)
    conv_dry = document("conversation", "--replica-id", "r4317e64d25a", "--dry-run")
    assert conv_dry["path"] == "/conversations" and conv_dry["body"]["replica_id"] == "r4317e64d25a"
    conv = document("conversation", "--replica-id", "r4317e64d25a")
    listed = document("conversations")
    assert any(row["conversation_id"] == conv["conversation_id"] and "status" in row for row in listed)
    ended = document("end", "--conversation-id", conv["conversation_id"])
    assert [row["conversation_id"] for row in ended] == [conv["conversation_id"]] and "status" in ended[0]
    explained = document("explain", "--config", PERSONA)
    assert explained and all(set(row) == {"path", "value", "source"} for row in explained)
    assert {"persona_name", "system_prompt"} <= {row["path"] for row in explained}
    # --force: the persona is already managed by PERSONA (a pull says so and writes nothing without it)
    pulled = document("pull", "--persona-id", pid, "--to", "configs/persona/pulled.json", "--force")
    assert set(pulled) == {"persona_id", "path", "lock_file"} and pulled["persona_id"] == pid
    assert pulled["path"] == "configs/persona/pulled.json"  # relative to the project root, like `config` elsewhere


def test_state_tasks_share_the_item_keys(project, sandbox):
    items = document("plan", codes=(6,))
    assert items and all({"kind", "name", "config", "status", "remote_id"} <= set(i) for i in items)
    status = document("status")
    assert [{k: i[k] for k in ("kind", "name", "config", "status")} for i in items] == \
        [{k: i[k] for k in ("kind", "name", "config", "status")} for i in status]
    dry = document("apply", "--dry-run")
    assert dry["dry_run"] is True and dry["lock_file"] == "tavus-harness.lock.toml"
    assert {s["config"] for s in dry["steps"]} == {i["config"] for i in items}
    assert all({"kind", "name", "config", "status", "remote_id", "action", "diff"} == set(s) for s in dry["steps"])
    done = document("apply")
    assert done["dry_run"] is False and any(s["action"] == "create" for s in done["steps"])
    assert all(i["status"] in ("unchanged", "duplicate-config") for i in document("status"))


def test_project_tasks_print_one_document_each(project, sandbox):
    assert all(set(f) == {"ok", "topic", "detail", "fix"} for f in document("doctor"))
    assert all({"name", "builtin", "hooks"} <= set(p) for p in document("plugins"))
    assert all(set(p) == {"kind", "name", "source", "path"} for p in document("presets"))


def test_webhook_tasks_use_the_same_keys_and_never_show_the_token(project, sandbox, collector):
    from harness_core.callbacks.receiver import Receiver
    from harness_core.context import make_context

    token = "tok-json-0123456789abcdef"
    (project / ".env").write_text(f"WEBHOOK_TOKEN={token}\n")
    saved = document("set-webhook-url", "https://example.ngrok-free.app/tavus/callback")
    assert set(saved) == {"webhook_url", "path", "notes"} and saved["webhook_url"].endswith("token=[redacted]")
    with Receiver(make_context(project, quiet=True), token=token) as rx:
        sent = document("trigger", "system.replica_joined", "--conversation-id", "cjson", "--to", rx.callback_url)
        assert {k: sent[k] for k in ("conversation_id", "event_type", "status", "ok", "duplicate")} == \
            {"conversation_id": "cjson", "event_type": "system.replica_joined", "status": 200, "ok": True, "duplicate": False}
        rx.wait_for(lambda events: len(events) == 1, 10)
    [record] = lines("events", "--conversation-id", "cjson")
    assert set(record) == {"ts", "run_id", "type", "event"} and record["event"]["conversation_id"] == "cjson"
    [delivery] = lines("replay", "--conversation-id", "cjson", "--to", collector.url)
    assert delivery == {"conversation_id": "cjson", "event_type": "system.replica_joined", "status": 200, "ok": True,
                        "duplicate": False}


@pytest.mark.parametrize("argv", [("init", "fresh"), ("run", "scenarios/facilitator_smoke.toml")])
def test_init_and_run_print_one_document(project, sandbox, argv):
    data = document(*argv)
    assert isinstance(data, dict)
    if argv[0] == "run":
        assert {"target", "summary", "ok", "scenarios"} <= set(data) and data["scenarios"][0]["conversation_id"]
    else:
        assert {"root", "written", "extended", "kept", "next"} == set(data)
