"""trigger, replay and events through the real CLI, against a real receiver and a real loopback collector."""
from __future__ import annotations

import json

import pytest
import requests

from harness_core.context import make_context
from harness_core.callbacks.receiver import Receiver
from tests.helpers import run_cli, stored_callbacks

TOKEN = "tok-events-0123456789abcd"


@pytest.fixture
def rx(project):
    """A receiver in this project whose token is the project's WEBHOOK_TOKEN (as `invoke webhook` would use)."""
    (project / ".env").write_text(f"WEBHOOK_TOKEN={TOKEN}\n")
    with Receiver(make_context(project, quiet=True), token=TOKEN) as receiver:
        yield receiver


def local_url(rx):
    return f"{rx.base_url}/tavus/callback"  # no token: trigger/replay add it for a loopback URL


def test_trigger_posts_the_documented_shutdown_with_the_bare_reason_and_says_so(rx, project):
    result = run_cli("trigger", "system.shutdown", "--reason", "participant_left_timeout",
                     "--conversation-id", "c0eaa60a267274af", "--to", local_url(rx))
    assert result.code == 0, result.err
    assert "bare form of the documented `participant_left_timeout reached`" in result.err
    assert "ok  200" in result.out and "reason: participant_left_timeout" in result.out
    [event] = rx.wait_for(lambda evs: len(evs) == 1, 5)
    assert list(event) == ["properties", "conversation_id", "webhook_url", "event_type", "message_type", "timestamp"]
    assert event["properties"] == {"replica_id": "r90bbd427f71", "shutdown_reason": "participant_left_timeout"}
    assert (event["conversation_id"], event["event_type"], event["message_type"]) == \
        ("c0eaa60a267274af", "system.shutdown", "system")
    assert event["webhook_url"] == local_url(rx), "the token is not copied into the envelope"
    assert TOKEN not in result.out + result.err


def test_trigger_with_a_documented_reason_sends_it_unchanged(rx):
    result = run_cli("trigger", "system.shutdown", "--reason", "max_call_duration reached",
                     "--conversation-id", "cmax", "--to", local_url(rx))
    assert result.code == 0 and "note:" not in result.err
    [event] = rx.wait_for(lambda evs: len(evs) == 1, 5)
    assert event["properties"]["shutdown_reason"] == "max_call_duration reached"


@pytest.mark.parametrize("kind", ["system.replica_joined", "application.transcription_ready",
                                  "application.recording_ready", "application.perception_analysis"])
def test_trigger_each_event_type_is_accepted_by_the_receiver(rx, project, kind):
    result = run_cli("trigger", kind, "--conversation-id", "ckinds", "--to", local_url(rx))
    assert result.code == 0, result.err
    rx.wait_for(lambda evs: [e["event_type"] for e in evs] == [kind], 5)
    assert [r["event"]["event_type"] for r in stored_callbacks(project, "ckinds")] == [kind]


def test_trigger_refused_by_the_target_is_an_error_with_the_fix(rx, project):
    (project / ".env").write_text("WEBHOOK_TOKEN=some-other-token-value\n")
    result = run_cli("trigger", "system.replica_joined", "--to", local_url(rx))
    assert result.code == 3
    assert "answered 403" in result.err and "WEBHOOK_TOKEN" in result.err
    assert "some-other-token-value" not in result.err


def test_trigger_with_nothing_listening_says_how_to_start_the_receiver(project):
    result = run_cli("trigger", "system.replica_joined", "--to", "http://127.0.0.1:9/tavus/callback")
    assert result.code == 3 and "could not post to http://127.0.0.1:9/tavus/callback" in result.err
    assert "is anything listening there" in result.err and "`tune webhook --port 8000`" in result.err


def test_trigger_refuses_bad_arguments_before_posting(project, collector):
    bad_reason = run_cli("trigger", "system.shutdown", "--reason", "bored", "--to", collector.url)
    assert bad_reason.code == 2 and "not a documented shutdown_reason" in bad_reason.err
    wrong_type = run_cli("trigger", "system.replica_joined", "--reason", "max_call_duration", "--to", collector.url)
    assert wrong_type.code == 2 and "only applies to system.shutdown" in wrong_type.err
    assert collector.events == []


def seed_events(rx):
    """Three callbacks of two conversations, via trigger, as stored records."""
    for args in (("system.replica_joined", "--conversation-id", "cfirst"),
                 ("system.replica_joined", "--conversation-id", "csecond"),
                 ("system.shutdown", "--conversation-id", "cfirst", "--reason", "end_conversation_endpoint_hit"),
                 ("application.transcription_ready", "--conversation-id", "cfirst")):
        assert run_cli("trigger", *args, "--to", local_url(rx)).code == 0
    rx.wait_for(lambda evs: len(evs) == 4, 5)


def test_events_lists_filters_and_prints_json(rx, project):
    empty = run_cli("events")
    assert empty.code == 0 and "no stored events match" in empty.out
    seed_events(rx)
    listing = run_cli("events")
    lines = listing.out.splitlines()
    assert len(lines) == 4 and "cfirst" in lines[0] and "csecond" in lines[1]
    assert "system.shutdown" in lines[2] and "reason: end_conversation_endpoint_hit" in lines[2]
    assert "transcript: 3 entries" in lines[3]
    mine = run_cli("events", "--conversation-id", "cfirst", "--json")
    records = [json.loads(line) for line in mine.out.splitlines()]  # JSON lines, as `webhook --json`
    assert [r["event"]["event_type"] for r in records] == \
        ["system.replica_joined", "system.shutdown", "application.transcription_ready"]
    assert all(r["type"] == "callback" and r["ts"] for r in records)
    shutdowns = run_cli("events", "--type", "system.shutdown")
    assert len(shutdowns.out.splitlines()) == 1
    assert TOKEN not in listing.out + mine.out


def test_replay_reposts_one_conversation_in_order_to_another_url(rx, project, collector):
    seed_events(rx)
    result = run_cli("replay", "--conversation-id", "cfirst", "--to", collector.url)
    assert result.code == 0, result.err
    bodies = collector.wait_for(lambda b: len(b) == 3, 5)
    stored = [r["event"] for r in stored_callbacks(project, "cfirst")]
    assert bodies == stored, "the stored envelopes, byte for byte, in arrival order"
    assert collector.events[0]["query"].startswith("token="), "a loopback target gets the receiver's token"
    assert len(result.out.splitlines()) == 3 and all(line.startswith("ok  200") for line in result.out.splitlines())


def test_replayed_bodies_carry_the_users_own_webhook_url_but_the_console_never_shows_the_token(rx, project, collector,
                                                                                                monkeypatch):
    own = f"{local_url(rx)}?token={TOKEN}"
    event = {"conversation_id": "cown", "event_type": "system.replica_joined", "message_type": "system",
             "properties": {}, "timestamp": "2026-01-01T00:00:00Z", "webhook_url": own}
    assert requests.post(own, json=event, timeout=5).status_code == 200
    rx.wait_for(lambda evs: len(evs) == 1, 5)
    assert stored_callbacks(project, "cown")[0]["event"]["webhook_url"].endswith("token=[redacted]"), "logs hold no token"
    result = run_cli("replay", "--conversation-id", "cown", "--to", collector.url, "--json")
    assert result.code == 0, result.err
    [body] = collector.wait_for(lambda b: len(b) == 1, 5)
    assert body["webhook_url"] == own, "the original value, not token=[redacted]"
    assert [json.loads(line) for line in result.out.splitlines()] == [
        {"conversation_id": "cown", "event_type": "system.replica_joined", "status": 200, "ok": True, "duplicate": False}]
    assert TOKEN not in result.out + result.err


def test_a_foreign_webhook_url_keeps_its_redacted_token_when_replayed(rx, project, collector):
    foreign = "https://someone-else.example/hook?token=" + TOKEN  # same token value, but not WEBHOOK_URL, not loopback
    event = {"conversation_id": "cfor", "event_type": "system.replica_joined", "message_type": "system",
             "properties": {}, "timestamp": "2026-01-01T00:00:00Z", "webhook_url": foreign}
    assert requests.post(f"{local_url(rx)}?token={TOKEN}", json=event, timeout=5).status_code == 200
    rx.wait_for(lambda evs: len(evs) == 1, 5)
    assert run_cli("replay", "--conversation-id", "cfor", "--to", collector.url).code == 0
    [body] = collector.wait_for(lambda b: len(b) == 1, 5)
    assert body["webhook_url"].endswith("token=%5Bredacted%5D") or body["webhook_url"].endswith("token=[redacted]")


def test_replay_into_a_receiver_stores_the_events_again(rx, project):
    seed_events(rx)
    elsewhere = project / "another-project"  # a receiver with its own logs/: the events are new to it
    elsewhere.mkdir()
    with Receiver(make_context(elsewhere, quiet=True), token=TOKEN) as other:
        result = run_cli("replay", "--to", f"{other.base_url}/tavus/callback")
        assert result.code == 0, result.err
        replayed = other.wait_for(lambda evs: len(evs) == 4, 5)
    assert [e["conversation_id"] for e in replayed] == ["cfirst", "csecond", "cfirst", "cfirst"]


def test_replay_into_the_same_receiver_is_acknowledged_but_stored_once(rx, project):
    seed_events(rx)
    before = stored_callbacks(project)
    result = run_cli("replay", "--to", local_url(rx))
    assert result.code == 0 and result.out.startswith("dup 200")
    assert "already stored by that receiver" in result.err and "--to URL" in result.err
    assert stored_callbacks(project) == before and len(before) == 4


def test_replay_counts_refusals_and_unknown_conversations(rx, project):
    seed_events(rx)
    refused = run_cli("replay", "--conversation-id", "csecond", "--to", f"{rx.base_url}/wrong/path")
    assert refused.code == 5 and "1 of 1 replayed events were refused" in refused.err
    assert refused.out.startswith("BAD 404")
    nothing = run_cli("replay", "--conversation-id", "cnothing", "--to", local_url(rx))
    assert nothing.code == 2 and "no stored events match conversation cnothing" in nothing.err


def test_set_webhook_url_cli_writes_dotenv_and_hides_the_token(project):
    (project / ".env").write_text(f"TAVUS_API_URL=http://127.0.0.1:8800/v2\nWEBHOOK_TOKEN={TOKEN}\n")
    result = run_cli("set-webhook-url", "https://example.ngrok-free.app/tavus/callback")
    assert result.code == 0, result.err
    assert "WEBHOOK_URL=https://example.ngrok-free.app/tavus/callback?token=[redacted] saved in" in result.out
    text = (project / ".env").read_text()
    assert f"WEBHOOK_URL=https://example.ngrok-free.app/tavus/callback?token={TOKEN}\n" in text
    assert text.startswith("TAVUS_API_URL=http://127.0.0.1:8800/v2\n")
    assert TOKEN not in result.out + result.err
    bad = run_cli("set-webhook-url", "https://example.ngrok-free.app")
    assert bad.code == 2 and "has no path" in bad.err


def test_output_cut_short_by_head_is_a_quiet_exit_not_a_traceback(project):
    import subprocess
    import sys
    from pathlib import Path

    (project / "logs" / "callbacks").mkdir(parents=True, exist_ok=True)
    with open(project / "logs" / "callbacks" / "c1.jsonl", "w") as f:
        for i in range(3000):
            event = {"conversation_id": "c1", "event_type": "system.replica_joined", "message_type": "system",
                     "timestamp": f"2026-11-24T00:00:00.{i:06d}Z", "properties": {"replica_id": "r1"}}
            f.write(json.dumps({"ts": "2026-11-24T00:00:00Z", "type": "callback", "event": event}) + "\n")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "tune"), "events"], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip()
    proc.stdout.close()  # what `| head -1` does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(30) == 141 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_events_with_a_type_tavus_does_not_document_says_so(project):
    result = run_cli("events", "--type", "system.shutdwon")
    assert result.code == 0 and "is not an event type Tavus documents" in result.err and "system.shutdown" in result.err
