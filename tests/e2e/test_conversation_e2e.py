"""`invoke conversation`, `end` and `conversations` against the real sandbox over HTTP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.helpers import run_cli

KICKOFF = "configs/conversation/facilitator_kickoff.json"
ARN = "arn:aws:iam::123456789012:role/tavus-recording-writer"


@pytest.fixture
def facilitator(project, sandbox):
    result = run_cli("persona", "--config", "configs/persona/facilitator.example.json")
    assert result.code == 0, result.err
    return next(iter(sandbox.store.personas))


def stored_conversations(sb) -> list[dict]:
    return list(sb.store.conversations.values())


def posts(sb) -> list:
    return [r for r in sb.requests if r == ("POST", "/v2/conversations")]


def test_kickoff_config_creates_the_conversation_as_configured(facilitator, sandbox):
    result = run_cli("conversation", "--config", KICKOFF)
    assert result.code == 0, result.err
    [conv] = stored_conversations(sandbox)
    assert conv["persona_id"] == facilitator
    assert conv["conversation_name"] == "Facilitator kickoff", "derived from the file name"
    assert "callback_url" not in conv, "no WEBHOOK_URL: the key is left out, never null"
    assert conv["properties"] == {"max_call_duration": 1800, "participant_left_timeout": 60, "language": "english"}
    context = conv["conversational_context"]
    assert context.startswith("This is the kickoff of the Q3 planning cycle")
    assert "- Title: Q3 kickoff" in context and "  2. Risks" in context and "Ana, Ben, Chen" in context
    assert conv["conversation_url"] in result.out.splitlines(), "the URL stands alone on a line"


def test_callback_url_comes_from_webhook_url_and_a_flag_beats_it(facilitator, sandbox, monkeypatch, collector):
    monkeypatch.setenv("WEBHOOK_URL", collector.url)
    assert run_cli("conversation", "--config", KICKOFF).code == 0
    assert run_cli("conversation", "--config", KICKOFF, "--callback-url", collector.url + "?flag=1").code == 0
    urls = [c["callback_url"] for c in sorted(stored_conversations(sandbox), key=lambda c: c["created_at"])]
    assert urls == [collector.url, collector.url + "?flag=1"]
    events = collector.wait_for(lambda evs: sum(e["event_type"] == "system.replica_joined" for e in evs) == 2)
    assert {e["conversation_id"] for e in events} == {c["conversation_id"] for c in stored_conversations(sandbox)}


def test_webhook_url_from_dotenv_is_used(facilitator, sandbox, project, collector):
    (project / ".env").write_text(f"WEBHOOK_URL={collector.url}\n")
    assert run_cli("conversation", "--config", KICKOFF).code == 0
    assert stored_conversations(sandbox)[0]["callback_url"] == collector.url


def test_meeting_flags_and_persona_name(facilitator, sandbox):
    result = run_cli("conversation", "--persona-name", "Meeting Facilitator", "--meeting-title", "Q3 kickoff",
                     "--agenda", "Goals;Risks;Owners", "--participants", "Ana,Ben,Chen", "--duration-minutes", "30")
    assert result.code == 0, result.err
    [conv] = stored_conversations(sandbox)
    assert conv["persona_id"] == facilitator
    assert conv["conversational_context"] == ("Meeting details:\n- Title: Q3 kickoff\n- Duration: 30 minutes; keep to time\n"
                                              "- Participants: Ana, Ben, Chen\n- Agenda:\n  1. Goals\n  2. Risks\n  3. Owners")


def test_language_code_is_translated_into_properties(facilitator, sandbox):
    result = run_cli("conversation", "--config", KICKOFF, "--language", "fr")
    assert result.code == 0
    assert stored_conversations(sandbox)[0]["properties"]["language"] == "french"
    assert "language 'fr' sent as properties.language 'french'" in result.err


def test_test_mode_passes_through_and_says_what_it_means(facilitator, sandbox, collector, monkeypatch):
    monkeypatch.setenv("WEBHOOK_URL", collector.url)
    result = run_cli("conversation", "--config", KICKOFF, "--test-mode")
    assert result.code == 0
    [conv] = stored_conversations(sandbox)
    assert conv["test_mode"] is True and conv["status"] == "ended"
    assert "no replica will join and no callbacks will arrive" in result.err
    assert "join at" not in result.out and "nothing to join" in result.out


def test_recording_uses_the_s3_settings_and_keeps_the_arn_out_of_output_and_logs(facilitator, sandbox, project, monkeypatch):
    monkeypatch.setenv("TAVUS_RECORDING_S3_BUCKET", "team-recordings")
    monkeypatch.setenv("TAVUS_RECORDING_S3_REGION", "eu-west-1")
    monkeypatch.setenv("TAVUS_RECORDING_ROLE_ARN", ARN)
    result = run_cli("conversation", "--config", "configs/conversation/facilitator_recorded.json", "--json")
    assert result.code == 0, result.err
    [conv] = stored_conversations(sandbox)
    assert conv["properties"]["enable_recording"] is True
    assert conv["properties"]["recording_storage"] == {"provider": "s3", "bucket_name": "team-recordings",
                                                       "bucket_region": "eu-west-1", "assume_role_arn": ARN}
    logs = "".join(p.read_text() for p in (project / "logs").rglob("*.jsonl"))
    assert ARN not in result.out + result.err + logs and "team-recordings" in logs


def test_auto_recording_with_flat_storage_setting(facilitator, sandbox, monkeypatch):
    for name, value in (("TUNE_AUTO_RECORDING", "true"), ("TAVUS_RECORDING_STORAGE", "flat"),
                        ("TAVUS_RECORDING_S3_BUCKET", "b"), ("TAVUS_RECORDING_S3_REGION", "us-east-1"),
                        ("TAVUS_RECORDING_ROLE_ARN", ARN)):
        monkeypatch.setenv(name, value)
    assert run_cli("conversation", "--config", KICKOFF).code == 0
    props = stored_conversations(sandbox)[0]["properties"]
    assert props["recording_s3_bucket_name"] == "b" and props["aws_assume_role_arn"] == ARN


def test_stock_replica_is_picked_deterministically_and_said(project, sandbox):
    first = run_cli("conversation", "--conversation-name", "no persona")
    second = run_cli("conversation", "--conversation-name", "no persona again")
    assert first.code == second.code == 0
    replicas = {c["replica_id"] for c in stored_conversations(sandbox)}
    stock = sorted(r for r, v in sandbox.store.replicas.items() if v["status"] == "completed")
    assert replicas == {stock[0]}
    assert f"using stock replica {stock[0]}" in first.err


def test_dry_run_prints_the_payload_and_sends_nothing(facilitator, sandbox):
    result = run_cli("conversation", "--config", KICKOFF, "--dry-run", "--json")
    assert result.code == 0
    assert json.loads(result.out)["body"]["conversation_name"] == "Facilitator kickoff"
    assert posts(sandbox) == []


@pytest.mark.parametrize("args, needle", [
    (["--config", "bad.json"], "bad.json: invalid JSON at line 1 column 2"),
    (["--config", "unknown_prop.json"], "unknown_prop.json: properties.max_call_duraton: unknown key"),
    (["--config", "recording_no.json"], "recording_no.json: properties.enable_recording: 'no' is not true or false"),
    (["--config", "meeting_typo.json"], "meeting_typo.json: meeting.titel: unknown key. did you mean 'title'?"),
    (["--config", "two_languages.json"], "'klingon' is not a language"),
    (["--config", "languages_disagree.json"], "properties.language: 'french' disagrees with language 'english'"),
    (["--config", "unknown_key.json"], "unknown_key.json: langauge: unknown key"),
    (["--persona-name", "Nobody Here"], "no persona named 'Nobody Here'"),
    (["--config", "recorded.json"], "recording is on (enable_recording) but TAVUS_RECORDING_S3_BUCKET"),
    (["--replica-id", "r4317e64d25a", "--language", "klingon"], "'klingon' is not a language"),
])
def test_bad_input_is_one_line_nonzero_and_nothing_sent(facilitator, sandbox, project, args, needle):
    (project / "bad.json").write_text("{'single quotes': 1}")
    (project / "unknown_prop.json").write_text(json.dumps({"replica_id": "r4317e64d25a", "properties": {"max_call_duraton": 60}}))
    (project / "unknown_key.json").write_text(json.dumps({"replica_id": "r4317e64d25a", "langauge": "en"}))
    (project / "recorded.json").write_text(json.dumps({"replica_id": "r4317e64d25a", "enable_recording": True}))
    (project / "meeting_typo.json").write_text(json.dumps({"replica_id": "r4317e64d25a", "meeting": {"titel": "Q3"}}))
    (project / "recording_no.json").write_text(json.dumps({"replica_id": "r4317e64d25a", "properties": {"enable_recording": "no"}}))
    (project / "two_languages.json").write_text(json.dumps({"replica_id": "r4317e64d25a", "language": "french",
                                                            "properties": {"language": "klingon"}}))
    (project / "languages_disagree.json").write_text(json.dumps({"replica_id": "r4317e64d25a", "language": "en",
                                                                 "properties": {"language": "french"}}))
    result = run_cli("conversation", *args)
    assert result.code != 0
    assert result.err.startswith("error: ") and result.err.count("\n") == 1 and needle in result.err, result.err
    if "unknown key" in needle and "properties" in needle:
        assert "max_call_duration" in result.err, "did-you-mean suggestion"
    assert posts(sandbox) == []


def test_the_recording_error_says_what_turned_it_on_and_names_the_dotenv_file_in_use(project, sandbox, monkeypatch):
    other = project / "secrets" / "team.env"
    other.parent.mkdir()
    other.write_text("TUNE_AUTO_RECORDING=true\n")
    monkeypatch.setenv("TAVUS_HARNESS_DOTENV", str(other))
    result = run_cli("conversation", "--replica-id", "r4317e64d25a", "--dry-run")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "recording is on (.env TUNE_AUTO_RECORDING=true)" in result.err and f"add them to {other}" in result.err


def test_explicit_recording_false_beats_tune_auto_recording_and_language_flag_beats_config(project, sandbox, monkeypatch):
    monkeypatch.setenv("TUNE_AUTO_RECORDING", "true")
    (project / "quiet.json").write_text(json.dumps({"replica_id": "r4317e64d25a", "properties": {
        "enable_recording": False, "language": "french"}}))
    result = run_cli("conversation", "--config", "quiet.json", "--language", "de", "--dry-run", "--json")
    assert result.code == 0, result.err
    properties = json.loads(result.out)["body"]["properties"]
    assert properties["enable_recording"] is False and "recording_storage" not in properties
    assert properties["language"] == "german" and "replaces properties.language 'french'" in result.err


def test_properties_flag_merges_over_the_config_per_key(project, sandbox):
    (project / "timed.json").write_text(json.dumps({"replica_id": "r4317e64d25a", "properties": {
        "max_call_duration": 60, "enable_closed_captions": True}}))
    result = run_cli("conversation", "--config", "timed.json", "--properties", '{"max_call_duration": 600}')
    assert result.code == 0, result.err
    sent = sandbox.store.conversations[next(iter(sandbox.store.conversations))]["properties"]
    assert sent["max_call_duration"] == 600 and sent["enable_closed_captions"] is True
    bad = run_cli("conversation", "--config", "timed.json", "--properties", "[600]")
    assert bad.code == 2 and bad.err.startswith("error: --properties: must be a JSON object")


def test_no_stock_replica_available_is_a_clear_error(project, sandbox):
    sandbox.store.replicas.clear()
    result = run_cli("conversation")
    assert result.code == 2 and "lists no completed stock replica" in result.err and posts(sandbox) == []


def test_end_one_and_end_all_mine_never_touch_others(facilitator, sandbox):
    foreign = requests.post(f"{sandbox.url}/conversations", json={"replica_id": "r4317e64d25a"},
                            headers={"x-api-key": "someone-else"}, timeout=10).json()["conversation_id"]
    assert run_cli("conversation", "--config", KICKOFF).code == 0
    assert run_cli("conversation", "--config", KICKOFF).code == 0
    assert run_cli("end", "--conversation-id", sorted(sandbox.store.conversations, key=lambda c: sandbox.store.conversations[c]["created_at"])[1]).code == 0
    assert run_cli("conversation", "--config", KICKOFF).code == 0, "a slot was freed"
    mine = [c for c in sorted(sandbox.store.conversations, key=lambda c: sandbox.store.conversations[c]["created_at"]) if c != foreign]
    assert sandbox.store.conversations[mine[0]]["status"] == "ended"
    listing = run_cli("conversations", "--json")
    assert {r["conversation_id"]: r["status"] for r in json.loads(listing.out)} == {
        mine[0]: "ended", mine[1]: "active", mine[2]: "active"}
    result = run_cli("end", "--all-mine")
    assert result.code == 0 and result.out.count("ended ") == 2
    assert all(sandbox.store.conversations[c]["status"] == "ended" for c in mine)
    assert sandbox.store.conversations[foreign]["status"] == "active", "not ours: never ended"
    ends = [r for r in sandbox.requests if r[0] == "POST" and r[1].endswith("/end")]
    assert len(ends) == 3
    again = run_cli("end", "--conversation-id", mine[0])
    assert again.code == 0 and again.out.startswith(f"already ended {mine[0]}")
    assert len([r for r in sandbox.requests if r[0] == "POST" and r[1].endswith("/end")]) == 3


def test_end_needs_exactly_one_target_and_reports_unknown_ids(project, sandbox):
    assert run_cli("end").code == 2
    result = run_cli("end", "--conversation-id", "cnope")
    assert result.code == 2 and "Invalid conversation_id" in result.err


def test_tune_binary_runs_the_same_conversation_command(facilitator, sandbox, project):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env["TAVUS_API_URL"] = sandbox.url
    proc = subprocess.run([str(Path(sys.executable).parent / "tune"), "conversation", "--config", KICKOFF, "--json"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["conversation_id"] in sandbox.store.conversations


def test_persona_name_next_to_a_persona_id_is_not_looked_up_and_says_so(facilitator, sandbox):
    result = run_cli("conversation", "--persona-id", facilitator, "--persona-name", "Nobody", "--dry-run", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["body"]["persona_id"] == facilitator
    assert "persona_name 'Nobody' (flag --persona-name) not looked up" in result.err
