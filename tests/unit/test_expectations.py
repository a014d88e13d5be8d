"""Expectation checkers are pure functions over received events."""
from __future__ import annotations

from harness_core.testing.expectations import (Observed, check_events_in_order, check_max_gap, check_shutdown_reason,
                                       check_transcript_contains, check_transcript_excludes)


def ev(kind, ts="2026-01-01T00:00:00.000000Z", **props):
    return {"event_type": kind, "timestamp": ts, "properties": props, "conversation_id": "c1"}


OBS = Observed([ev("system.replica_joined"), ev("system.shutdown", "2026-01-01T00:00:02.500000Z",
                                                   shutdown_reason="max_call_duration reached"),
                ev("application.transcription_ready", transcript=[{"role": "assistant", "content": "Welcome, Ana"},
                                                                  {"role": "user", "content": "Risk: budget"}])], "ended")


def test_order_allows_gaps_but_not_swaps():
    assert check_events_in_order(["system.replica_joined", "application.transcription_ready"], OBS).passed
    bad = check_events_in_order(["system.shutdown", "system.replica_joined"], OBS)
    assert not bad.passed and "system.replica_joined arrived out of order" in bad.message
    assert "never arrived" in check_events_in_order(["application.recording_ready"], OBS).message


def test_shutdown_reason_matches_the_bare_and_the_reached_forms():
    assert check_shutdown_reason("max_call_duration", OBS).passed
    assert check_shutdown_reason("max_call_duration reached", OBS).passed
    assert not check_shutdown_reason("participant_left_timeout", OBS).passed
    assert not check_shutdown_reason("max_call", OBS).passed, "a cut-short reason is not a match"
    empty = Observed([{"event_type": "system.shutdown", "properties": {"shutdown_reason": ""}}], "ended")
    assert not check_shutdown_reason("max_call_duration", empty).passed


def test_transcript_rules_by_role_text_and_regex():
    assert check_transcript_contains([{"role": "assistant", "text": "welcome"}], OBS).passed
    assert not check_transcript_contains([{"role": "user", "text": "welcome"}], OBS).passed
    assert check_transcript_contains([{"regex": r"Risk:\s+\w+"}], OBS).passed
    assert not check_transcript_excludes(["budget"], OBS).passed
    assert check_transcript_excludes([{"role": "assistant", "text": "budget"}], OBS).passed


def test_max_gap_uses_event_timestamps():
    v = check_max_gap({"from": "system.replica_joined", "to": "system.shutdown", "seconds": 2}, OBS)
    assert not v.passed and v.observed == 2.5
    assert check_max_gap({"from": "system.replica_joined", "to": "system.shutdown", "seconds": 3}, OBS).passed


def test_report_tells_an_ended_a_kept_and_a_leaked_conversation_apart():
    from pathlib import Path

    from harness_core.testing.report import text_lines
    from harness_core.testing.runner import RunResult
    from harness_core.testing.scenario import Scenario

    sc = Scenario(path=Path("scenarios/s.toml"), name="s")
    ended = RunResult(sc, "logs/runs/x", "c1", cleaned_up=True)
    kept = RunResult(sc, "logs/runs/x", "c2", kept=True)
    leaked = RunResult(sc, "logs/runs/x", "c3", error="could not end conversation c3")
    assert "cleanup: conversation ended" in text_lines(ended)[-1] and ended.passed
    assert "left as it is (--keep)" in text_lines(kept)[-1]
    assert "FAIL: conversation NOT ended" in text_lines(leaked)[-1] and not leaked.passed


def test_a_scenario_marked_expected_to_fail_that_passes_fails_the_run(tmp_path):
    import xml.etree.ElementTree as ET
    from pathlib import Path

    from harness_core.testing.report import ok, summary, text_lines, write_junit
    from harness_core.testing.runner import RunResult
    from harness_core.testing.scenario import Scenario

    marked = Scenario(path=Path("scenarios/x.toml"), name="x", expected_to_fail=True)
    passed = RunResult(marked, "logs/runs/x", "c1", cleaned_up=True)
    assert not ok([passed]) and text_lines(passed)[0].startswith("XPASS")
    assert "1 passed though marked expected_to_fail" in summary([passed])
    suite = ET.parse(write_junit([passed], tmp_path / "j.xml")).getroot()
    assert suite.get("failures") == "1"
    leaked = RunResult(Scenario(path=Path("s.toml"), name="s"), "d", "c2", error="token=abc123secret in a URL")
    suite = ET.parse(write_junit([leaked], tmp_path / "k.xml", ["abc123secret"])).getroot()
    assert "abc123secret" not in (tmp_path / "k.xml").read_text() and suite.get("errors") == "1"
