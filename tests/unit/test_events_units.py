"""Events as pure functions: documented envelopes, shutdown reasons, display, stored-log reading, target URLs."""
from __future__ import annotations

import json

import pytest

from harness_core import ConfigError
from harness_core.context import make_context
from harness_core.callbacks.events import (EVENT_SHAPES, SHUTDOWN_REASONS, build_event, describe_event, format_event_line,
                                 read_events, resolve_shutdown_reason, resolve_target_url)
from harness_core.callbacks.receiver import validate_envelope

ENVELOPE_KEYS = ["properties", "conversation_id", "webhook_url", "event_type", "message_type", "timestamp"]


@pytest.mark.parametrize("event_type", sorted(EVENT_SHAPES))
def test_every_synthetic_event_has_the_documented_envelope(event_type):
    event, _ = build_event(event_type, conversation_id="c0eaa60a267274af", webhook_url="https://x/hook")
    assert list(event) == ENVELOPE_KEYS
    assert event["message_type"] == event_type.split(".")[0]
    assert event["timestamp"].endswith("Z") and event["timestamp"][10] == "T"
    assert validate_envelope(event) == [], "the receiver accepts what trigger sends"


def test_payloads_follow_the_contract():
    props = {t: build_event(t, conversation_id="c1")[0]["properties"] for t in EVENT_SHAPES}
    assert props["system.replica_joined"] == {"replica_id": "r90bbd427f71"}
    assert props["system.shutdown"]["shutdown_reason"] == "end_conversation_endpoint_hit"
    assert [e["role"] for e in props["application.transcription_ready"]["transcript"]] == ["system", "user", "assistant"]
    assert set(props["application.recording_ready"]) == {"bucket_name", "s3_key", "duration"}
    assert set(props["application.perception_analysis"]) == {"analysis"}


def test_documented_reasons_are_sent_unchanged_and_bare_forms_are_noted():
    for reason in SHUTDOWN_REASONS:
        assert resolve_shutdown_reason(reason) == (reason, None)
    value, note = resolve_shutdown_reason("participant_left_timeout")
    assert value == "participant_left_timeout"
    assert "`participant_left_timeout reached`" in note and "sent as typed" in note
    assert resolve_shutdown_reason("internal error occurred at step 3")[0] == "internal error occurred at step 3"
    assert resolve_shutdown_reason(None) == ("end_conversation_endpoint_hit", None)


@pytest.mark.parametrize("reason", ["participant_left", "timeout", "max_call_duration reached!", ""])
def test_undocumented_reasons_are_refused_with_the_list(reason):
    with pytest.raises(ConfigError) as err:
        resolve_shutdown_reason(reason)
    assert "`max_call_duration reached`" in err.value.hint


def test_build_event_checks_its_arguments():
    event, notes = build_event("system.shutdown", reason="participant_left_timeout", conversation_id="cabc")
    assert event["properties"]["shutdown_reason"] == "participant_left_timeout"
    assert any("bare form" in n for n in notes)
    event, notes = build_event("system.replica_joined")
    assert event["conversation_id"].startswith("c") and len(event["conversation_id"]) == 17
    assert any(event["conversation_id"] in n for n in notes)
    with pytest.raises(ConfigError, match="only applies to system.shutdown"):
        build_event("system.replica_joined", reason="max_call_duration reached")
    with pytest.raises(ConfigError, match="unknown event type"):
        build_event("system.exploded")
    with pytest.raises(ConfigError, match="not a conversation id"):
        build_event("system.shutdown", conversation_id="a/b")


@pytest.mark.parametrize("event_type, detail", [
    ("system.shutdown", "reason: end_conversation_endpoint_hit"),
    ("application.transcription_ready", "transcript: 3 entries"),
    ("application.recording_ready", "recording: recordings/synthetic.mp4 (14 s)"),
    ("application.perception_analysis", "perception: Synthetic summary"),
    ("system.replica_joined", "replica: r90bbd427f71"),
])
def test_describe_event_gives_the_key_detail(event_type, detail):
    event, _ = build_event(event_type, conversation_id="c1")
    assert describe_event(event).startswith(detail)


def test_describe_event_survives_odd_payloads():
    assert describe_event({"event_type": "application.transcription_ready", "properties": None}) == "transcript: 0 entries"
    assert describe_event({"event_type": "something.new"}) == ""
    assert describe_event({"event_type": "application.recording_ready",
                           "properties": {"storage_uri": "s3://b/k"}}) == "recording: s3://b/k"


def test_format_event_line_has_time_conversation_type_and_detail():
    record = {"ts": "2026-01-02T03:04:05.678901Z",
              "event": build_event("system.shutdown", conversation_id="c77", reason="max_call_duration reached")[0]}
    line = format_event_line(record)
    assert line.startswith("03:04:05.678  c77 ")
    assert "system.shutdown" in line and line.endswith("reason: max_call_duration reached")
    assert format_event_line(record, with_date=True).startswith("2026-01-02 03:04:05.678  c77")


def _ctx(tmp_path, **env):
    return make_context(tmp_path, {"TAVUS_HARNESS_DOTENV": str(tmp_path / ".env"), **env}, quiet=True)


def _write(folder, cid, *items):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{cid}.jsonl", "a") as fh:
        for ts, kind in items:
            fh.write(json.dumps({"ts": ts, "type": "callback",
                                 "event": {"conversation_id": cid, "event_type": kind}}) + "\n")


def test_read_events_orders_by_arrival_filters_and_skips_torn_lines(tmp_path):
    folder = tmp_path / "logs" / "callbacks"
    _write(folder, "ca", ("2026-01-01T00:00:01.000000Z", "system.replica_joined"),
           ("2026-01-01T00:00:05.000000Z", "system.shutdown"))
    _write(folder, "cb", ("2026-01-01T00:00:03.000000Z", "system.replica_joined"),
           ("2026-01-01T00:00:06.000000Z", "application.transcription_ready"))
    with open(folder / "cb.jsonl", "a") as fh:
        fh.write('{"ts": "2026-01-01T00:00:07')  # torn last line after a crash
    ctx = _ctx(tmp_path)
    got = [(r["event"]["conversation_id"], r["event"]["event_type"]) for r in read_events(ctx)]
    assert got == [("ca", "system.replica_joined"), ("cb", "system.replica_joined"), ("ca", "system.shutdown"),
                   ("cb", "application.transcription_ready")]
    assert [r["event"]["event_type"] for r in read_events(ctx, conversation_id="cb")] == \
        ["system.replica_joined", "application.transcription_ready"]
    assert len(read_events(ctx, event_type="system")) == 3
    assert len(read_events(ctx, event_type="system.shutdown")) == 1
    assert read_events(ctx, conversation_id="cnone") == []
    with pytest.raises(ConfigError):
        read_events(ctx, conversation_id="../logs/api")


def test_read_events_without_a_log_folder_is_empty(tmp_path):
    assert read_events(_ctx(tmp_path)) == []


def test_target_url_adds_the_token_only_for_this_machine(tmp_path):
    ctx = _ctx(tmp_path, WEBHOOK_TOKEN="tok-0123456789")
    assert resolve_target_url(ctx, "http://127.0.0.1:8000/tavus/callback") == \
        "http://127.0.0.1:8000/tavus/callback?token=tok-0123456789"
    assert resolve_target_url(ctx, "http://localhost:9000/hook?a=1") == "http://localhost:9000/hook?a=1&token=tok-0123456789"
    assert resolve_target_url(ctx, "https://my.app/hook") == "https://my.app/hook", "never sent to a third party"
    assert resolve_target_url(ctx, "http://127.0.0.1:8000/cb?token=mine").endswith("token=mine")


def test_target_url_defaults_to_webhook_url_and_reuses_its_token(tmp_path):
    saved = "https://x.ngrok-free.app/tavus/callback?token=tok-0123456789"
    ctx = _ctx(tmp_path, WEBHOOK_TOKEN="tok-0123456789", WEBHOOK_URL=saved)
    assert resolve_target_url(ctx, None) == saved
    assert resolve_target_url(ctx, "https://x.ngrok-free.app/tavus/callback") == saved
    with pytest.raises(ConfigError, match="no --to URL"):
        resolve_target_url(_ctx(tmp_path / "other"), None)
    with pytest.raises(ConfigError, match="not an absolute"):
        resolve_target_url(ctx, "127.0.0.1:8000/tavus/callback")


def test_event_lines_show_control_characters_escaped_never_obeyed():
    from harness_core.callbacks.events import format_event_line
    line = format_event_line({"ts": "2026-11-24T00:00:00.000Z", "event": {
        "conversation_id": "c1", "event_type": "system.shutdown\x1b[2J",
        "properties": {"shutdown_reason": "bye\nerror: fake"}}})
    assert "\x1b" not in line and "\\x1b[2J" in line and "\n" not in line
