"""`invoke run` against the real sandbox: verdicts, stalls, cleanup, concurrency, reports."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest

from harness_core import hookimpl
from harness_core.testing.expectations import Verdict
from tests.helpers import interrupt, run_cli, spawn

HEAD = """[scenario]
name = "{name}"
persona_config = "configs/persona/facilitator.example.json"
conversation_config = "configs/conversation/facilitator_kickoff.json"
end_after_seconds = {end}
timeout_seconds = 20
"""


def write(project: Path, name: str, body: str, end: float = 30) -> Path:
    """A scenario file; `end` is simulated seconds (the sandbox fixture runs at 0.01: 30 -> 0.3 s)."""
    path = project / "scenarios" / f"{name}.toml"
    path.write_text(HEAD.format(name=name, end=end) + body)
    return path


def without_dialogue_scenarios(project: Path) -> None:
    """Leave out the shipped turn-by-turn scenarios (tests/e2e/test_conversation_turns.py runs them)."""
    for name in ("assistant_books_meeting", "facilitator_objectives", "simulated_user"):
        (project / "scenarios" / f"{name}.toml").unlink()


def active(sb) -> list[str]:
    return [c for c, v in sb.store.conversations.items() if v["status"] == "active"]


def test_shipped_smoke_scenario_passes_and_cleans_up(project, sandbox):
    result = run_cli("run", "scenarios/facilitator_smoke.toml")
    assert result.code == 0, result.out + result.err
    assert result.out.startswith("PASS Facilitator smoke") and "1 passed, 0 failed" in result.out
    assert "ok   transcript_contains" in result.out and active(sandbox) == []
    run_dirs = list((project / "logs" / "runs").glob("*/facilitator-smoke"))
    assert len(run_dirs) == 1
    assert {p.name for p in run_dirs[0].iterdir()} == {"scenario.json", "payload.json", "response.json", "events.json", "verdicts.json"}


@pytest.mark.parametrize("expect, needle", [
    ('events_in_order = ["system.shutdown", "system.replica_joined"]', "system.replica_joined arrived out of order"),
    ('shutdown_reason = "participant_left_timeout"', "shutdown_reason 'end_conversation_endpoint_hit', expected 'participant_left_timeout'"),
    ('transcript_contains = [{ role = "user", text = "quarterly revenue" }]', "no user-role entry matches"),
    ('transcript_excludes = [{ regex = "(?i)facilitator" }]', "which matches {'regex': '(?i)facilitator'}"),
    ('perception_mentions = ["a purple hat"]', "missing ['a purple hat'] in the analysis"),
    ("recording_ready = true", "recording_ready did not arrive, expected True"),
    ('max_gap = { from = "system.replica_joined", to = "system.shutdown", seconds = 0.01 }', "from system.replica_joined to system.shutdown (max 0.01s)"),
    ('final_status = "active"', "status 'ended', expected 'active'"),
])
def test_each_expectation_kind_fails_with_a_precise_message(project, sandbox, expect, needle):
    # the analysis comes minutes (scaled: about 2 s) after the end, as on Tavus: a scenario that checks it waits for it
    wait = '[[expect.events]]\ntype = "application.perception_analysis"\nwithin_seconds = 10\n' if "perception" in expect else ""
    write(project, "kind", '[[expect.events]]\ntype = "system.shutdown"\nwithin_seconds = 10\n' + wait + '\n[expect]\n' + expect + "\n")
    result = run_cli("run", "scenarios/kind.toml")
    assert result.code == 5
    fails = [line for line in result.out.splitlines() if line.startswith("  FAIL")]
    assert len(fails) == 1 and needle in fails[0], result.out
    assert active(sandbox) == [], "ended after a failure"


def test_a_stalled_event_says_what_and_how_long(project, sandbox):
    write(project, "stall", '[[expect.events]]\ntype = "application.recording_ready"\nwithin_seconds = 1\n', end=3000)
    result = run_cli("run", "scenarios/stall.toml")
    assert result.code == 5
    # how long it waited beyond the limit depends on the machine's load; what and the limit do not
    assert re.search(r"stalled: waited 1\.\ds for application\.recording_ready \(limit 1s\); "
                     r"received \['system\.replica_joined'", result.out), result.out
    assert active(sandbox) == [], "ended after a timeout"


def test_a_stalled_event_ends_the_run_early_even_with_other_checks_to_make(project, sandbox):
    # end_after_seconds = 30,000 simulated = 300 s real; timeout_seconds = 20: without the early end the run
    # would wait for the shutdown until the timeout, with the conversation up (billed on Tavus).
    write(project, "stall2", '[[expect.events]]\ntype = "application.recording_ready"\nwithin_seconds = 0.5\n'
                             '[expect]\nfinal_status = "ended"\n', end=30000)
    result = run_cli("run", "scenarios/stall2.toml")
    assert result.code == 5 and "stalled: waited" in result.out, result.out
    [conv] = sandbox.store.conversations.values()
    shutdown = [e for e in conv["events"] if e["event_type"] == "system.shutdown"]
    assert shutdown[0]["properties"]["shutdown_reason"] == "end_conversation_endpoint_hit", "the run ended it"
    lifetime = conv["ended_at"] - datetime.fromisoformat(conv["created_at"].replace("Z", "+00:00")).timestamp()
    assert lifetime < 20, f"ended at the stall, not at timeout_seconds (20 s): it lived {lifetime:.1f} s"
    assert active(sandbox) == []


def test_a_scenario_costs_three_calls_on_its_conversation(project, sandbox):
    """create, end, one status read: the end is not preceded by a look (the read after it decides), and
    final_status reuses that read ("ended" is final). Each call is a request to Tavus, on a rate limit."""
    write(project, "calls", '[[expect.events]]\ntype = "system.shutdown"\nwithin_seconds = 10\n'
                            '[expect]\nfinal_status = "ended"\n', end=30)
    result = run_cli("run", "scenarios/calls.toml")
    assert result.code == 0, result.out + result.err
    [cid] = list(sandbox.store.conversations)
    calls = [(r["method"], r["url"].split("/v2", 1)[1]) for r in map(json.loads, (project / "logs" / "api.jsonl")
             .read_text().splitlines()) if cid in r["url"] or (r["method"] == "POST" and r["url"].endswith("/v2/conversations"))]
    assert calls == [("POST", "/conversations"), ("POST", f"/conversations/{cid}/end"), ("GET", f"/conversations/{cid}")]


def test_run_does_not_mention_a_persona_id_flag_nobody_gave(project, sandbox):
    result = run_cli("run", "scenarios/facilitator_smoke.toml")
    assert result.code == 0, result.out + result.err
    assert "not looked up" not in result.err and "--persona-id" not in result.err, result.err


def test_keep_with_end_after_seconds_says_that_the_scenario_ended_it(project, sandbox):
    write(project, "kept", '[[expect.events]]\ntype = "system.shutdown"\nwithin_seconds = 10\n', end=5)
    result = run_cli("run", "scenarios/kept.toml", "--keep")
    assert result.code == 0, result.out + result.err
    assert "--keep: conversation" in result.err and "ended by the scenario's end_after_seconds" in result.err
    assert "cleanup: conversation ended" in result.out and "left as it is" not in result.out, result.out
    assert active(sandbox) == []


def test_scripted_transcript_makes_content_assertions_meaningful(project, sandbox):
    write(project, "scripted", '[sandbox]\ntranscript = [{ role = "user", content = "We must cut scope." }]\n'
                               'perception_analysis = "The participant wore a purple hat."\n'
                               '[[expect.events]]\ntype = "application.perception_analysis"\nwithin_seconds = 10\n'
                               '[expect]\ntranscript_contains = [{ role = "user", regex = "cut\\\\s+scope" }]\n'
                               'perception_mentions = ["purple hat"]\n')
    result = run_cli("run", "scenarios/scripted.toml")
    assert result.code == 0, result.out


def test_keep_leaves_the_conversation_running(project, sandbox):
    write(project, "keep", '[[expect.events]]\ntype = "system.replica_joined"\nwithin_seconds = 10\n', end=3000)
    result = run_cli("run", "scenarios/keep.toml", "--keep")
    assert result.code == 0 and len(active(sandbox)) == 1 and "left as it is (--keep)" in result.out


def test_folder_runs_concurrently_and_junit_counts(project, sandbox):
    without_dialogue_scenarios(project)
    for i in range(3):
        write(project, f"ok{i}", '[[expect.events]]\ntype = "system.shutdown"\nwithin_seconds = 10\n', end=80)
    write(project, "bad", '[[expect.events]]\ntype = "system.shutdown"\nwithin_seconds = 10\n[expect]\nrecording_ready = true\n')
    result = run_cli("run", "scenarios/", "--junit", "logs/junit.xml", "--json", "--max-concurrent", "3")
    assert result.code == 5
    report = json.loads(result.out)
    assert report["summary"] == "4 passed, 1 failed"  # the 3 written, the shipped smoke, and "bad"
    created = sorted(sandbox.store.conversations.values(), key=lambda c: c["created_at"])
    assert len(created) == 5 and len(sandbox.store.personas) == 1, "one persona, upserted, for all five"
    spans = sorted((datetime.fromisoformat(c["created_at"].replace("Z", "+00:00")).timestamp(), c["ended_at"])
                   for c in created)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])), \
        "they ran one by one instead of overlapping"
    suite = ET.parse(project / "logs" / "junit.xml").getroot()
    cases = suite.findall("testcase")
    assert int(suite.get("tests")) == len(cases) and int(suite.get("failures")) == 1
    assert [c.get("name") for c in cases if c.find("failure") is not None] == ["recording_ready"]
    assert abs(sum(float(c.get("time")) for c in cases) - float(suite.get("time"))) < 0.01, "case times add up"
    assert active(sandbox) == []


def test_bad_scenario_files_are_one_line_errors(project, sandbox):
    (project / "scenarios" / "broken.toml").write_text("[scenario]\nname = \n")
    result = run_cli("run", "scenarios/broken.toml")
    assert result.code == 2 and result.err.startswith("error: scenarios/broken.toml: invalid TOML")
    write(project, "typo", "[expect]\nshutdown_reasn = \"x\"\n")
    result = run_cli("run", "scenarios/typo.toml")
    assert result.code == 2 and "expect.shutdown_reasn: unknown key" in result.err and "shutdown_reason" in result.err
    assert sandbox.store.conversations == {}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_or_sigterm_still_ends_the_conversation(project, sandbox, sig):
    write(project, "long", '[[expect.events]]\ntype = "application.recording_ready"\nwithin_seconds = 60\n', end=6000)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env["TAVUS_API_URL"] = sandbox.url
    proc = spawn([str(Path(sys.executable).parent / "tune"), "run", "scenarios/long.toml"], cwd=project,
                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not active(sandbox) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert active(sandbox), "the run created its conversation"
    interrupt(proc, sig, timeout=20)
    assert proc.returncode == 130, "interrupted has an exit code of its own"
    assert active(sandbox) == [], "Ctrl-C / a cancelled CI job ended it"


def test_hook_harness_expectation_kinds(project, sandbox):
    from harness_core import plugins

    class Kinds:
        @hookimpl
        def harness_expectation_kinds(self):
            return {"event_count_at_least": lambda n, obs: Verdict("event_count_at_least", len(obs.events) >= n,
                                                                   len(obs.events), f"{len(obs.events)} events")}

    write(project, "plugin", "[expect]\nevent_count_at_least = 3\n", end=30)
    original = plugins.get_plugin_manager
    plugins_with_kind = lambda env=None, extra=(): original(env, (*extra, Kinds()))
    context_module_pm = plugins.get_plugin_manager
    try:
        plugins.get_plugin_manager = plugins_with_kind
        result = run_cli("run", "scenarios/plugin.toml")
    finally:
        plugins.get_plugin_manager = context_module_pm
    assert result.code == 0, result.out + result.err
    assert "ok   event_count_at_least" in result.out


def test_a_conversation_is_never_reported_ended_when_the_api_cannot_be_asked(project):
    from harness_core.context import make_context
    from harness_core.testing.runner import _quiet_end
    from tests.conftest import closed_port_url
    ctx = make_context(project, {"TAVUS_API_URL": closed_port_url()}, quiet=True)
    assert _quiet_end(ctx, "c123") is False


def test_runs_queue_when_the_account_is_at_its_concurrency_limit(project, monkeypatch):
    """A sandbox allowing 2 live conversations, 5 scenarios at once: the others wait for a slot, none fails."""
    from harness_core.sandbox import Sandbox, SandboxSettings
    with Sandbox(SandboxSettings(time_scale=0.01, max_concurrent=2)) as sb:
        monkeypatch.setenv("TAVUS_API_URL", sb.url)
        without_dialogue_scenarios(project)
        for i in range(5):
            write(project, f"q{i}", '[[expect.events]]\ntype = "system.shutdown"\nwithin_seconds = 10\n', end=20)
        (project / "scenarios" / "facilitator_smoke.toml").unlink()
        result = run_cli("run", "scenarios/", "--max-concurrent", "5")
        assert result.code == 0, result.out + result.err
        assert "5 passed, 0 failed" in result.out
        assert "at its limit of concurrent conversations; waiting" in result.err
        creates = [r for r in sb.requests if r == ("POST", "/v2/conversations")]
        assert len(creates) > 5, "some creates met the limit and were tried again"
        assert len(sb.store.conversations) == 5, "a refused create made nothing: no duplicate"
        assert active(sb) == []


def test_a_scenario_gives_its_conversation_slot_back_once_its_conversation_is_over(project, monkeypatch):
    """--max-concurrent 1, two scenarios: the second one's conversation is created while the first one still
    runs its checks (its call is over), so a check of the first that waits for it passes."""
    from harness_core import plugins
    from harness_core.sandbox import Sandbox, SandboxSettings

    with Sandbox(SandboxSettings(time_scale=0.01, max_concurrent=1)) as sb:
        def both_created(wanted, observed):
            deadline = time.monotonic() + 10
            while len(sb.store.conversations) < 2 and time.monotonic() < deadline:
                threading.Event().wait(0.02)
            count = len(sb.store.conversations)
            return Verdict("both_created", count == 2, count, f"{count} conversations created")

        class Kinds:
            @hookimpl
            def harness_expectation_kinds(self):
                return {"both_created": both_created}

        monkeypatch.setenv("TAVUS_API_URL", sb.url)
        (project / "scenarios" / "pair").mkdir()
        for name in ("first", "second"):
            write(project, f"pair/{name}", "[expect]\nboth_created = true\n", end=30)
        original = plugins.get_plugin_manager
        monkeypatch.setattr(plugins, "get_plugin_manager", lambda env=None, extra=(): original(env, (*extra, Kinds())))
        result = run_cli("run", "scenarios/pair/", "--max-concurrent", "1")
        assert result.code == 0, result.out + result.err
        assert result.out.count("ok   both_created") == 2


def test_the_embedded_sandbox_allows_what_the_run_asks_for(project, monkeypatch):
    monkeypatch.delenv("TAVUS_API_URL")  # neither key nor URL: the embedded sandbox
    for i in range(11):
        write(project, f"e{i}", '[[expect.events]]\ntype = "system.shutdown"\nwithin_seconds = 10\n', end=30)
    result = run_cli("run", "scenarios/", "--max-concurrent", "12")
    assert result.code == 0, result.out + result.err
    # 11 written, the smoke and two dialogue scenarios; the simulated user is skipped without a model
    assert "14 passed, 0 failed, 1 skipped" in result.out and "embedded local sandbox" in result.out
    api_log = [json.loads(line) for line in (project / "logs" / "api.jsonl").read_text().splitlines()]
    assert "maximum concurrent conversations" not in json.dumps(api_log)
    creates = [r for r in api_log if r.get("method") == "POST" and r["url"].endswith("/v2/conversations")]
    listings = [r for r in api_log if r.get("listing") and r["url"].endswith("/v2/conversations")]
    assert len(creates) == 14 and len(listings) == 1, "one listing of the account per run, not one per create"
    assert not (project / "logs" / "conversations.jsonl").exists(), "no ledger rows for a sandbox that died with the run"


def test_end_after_seconds_follows_the_sandbox_clock(project, sandbox):
    """end_after_seconds is simulated time: 150 s at the fixture's 0.01 ends after 1.5 real seconds, not 150."""
    write(project, "clock", '[[expect.events]]\ntype = "system.shutdown"\nwithin_seconds = 15\n', end=150)
    started = time.monotonic()
    result = run_cli("run", "scenarios/clock.toml")
    assert result.code == 0, result.out
    assert 1.2 < time.monotonic() - started < 10
    [conv] = sandbox.store.conversations.values()
    shutdown = [e for e in conv["events"] if e["event_type"] == "system.shutdown"]
    assert shutdown[0]["properties"]["shutdown_reason"] == "end_conversation_endpoint_hit", "the run ended it"
