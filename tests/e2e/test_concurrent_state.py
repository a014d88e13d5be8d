"""Several commands at once on one project: no duplicate remote resource, no lost state entry
(issue 13, defect 2); and `invoke conversations` costs what is still open, not all history."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

import pytest
import requests

from harness_core.resources.lockfile import LOCK_FILE
from tests.helpers import run_cli, spawn

TUNE = str(Path(sys.executable).parent / "tune")
FACILITATOR = "configs/persona/facilitator.example.json"
KICKOFF = "configs/conversation/facilitator_kickoff.json"


def run_together(project: Path, argvs: list[list[str]], timeout: float = 60) -> list[tuple[int, str, str]]:
    """Start every command at once (real processes, the console script), wait for all (bounded)."""
    procs = [spawn([TUNE, *argv], cwd=project, env=dict(os.environ), stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True) for argv in argvs]
    deadline = time.monotonic() + timeout
    results = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        results.append((proc.returncode, out, err))
    return results


def state_entries(project: Path, api_url: str) -> dict:
    """{kind: {name: id}} recorded in the state file for this API."""
    data = tomllib.loads((project / LOCK_FILE).read_text(encoding="utf-8"))
    kinds = data.get("api", {}).get(api_url, {})
    return {kind: {name: e["id"] for name, e in entries.items()} for kind, entries in kinds.items()}


def test_eight_concurrent_persona_creates_make_eight_personas_and_eight_state_entries(project, sandbox):
    names = [f"Parallel {i}" for i in range(8)]
    results = run_together(project, [["persona", "--config", FACILITATOR, "--persona-name", n] for n in names])
    for code, out, err in results:
        assert code == 0, err
        assert "Traceback" not in err
    remote = {p["persona_name"]: pid for pid, p in sandbox.store.personas.items()}
    assert sorted(remote) == sorted(names), "one persona per command, none twice"
    assert state_entries(project, sandbox.url)["persona"] == remote, "every create is in the state file"
    assert not list(project.glob(f".{LOCK_FILE}.*.tmp")), "no temp file left behind"


def test_the_same_persona_from_concurrent_commands_is_created_once(project, sandbox):
    results = run_together(project, [["persona", "--config", FACILITATOR, "--upsert"] for _ in range(8)])
    assert [code for code, _, _ in results] == [0] * 8, [err for _, _, err in results]
    assert [p["persona_name"] for p in sandbox.store.personas.values()] == ["Meeting Facilitator"]
    assert sum("created persona" in out for _, out, _ in results) == 1
    refused = run_together(project, [["persona", "--config", FACILITATOR] for _ in range(2)])
    assert all(code == 2 and "already created" in err and "Traceback" not in err for code, _, err in refused)
    assert len(sandbox.store.personas) == 1


APPLIERS = 8  # issue 13: eight commands at once


@pytest.mark.load  # eight processes, one round: several seconds, more beside other tests
def test_eight_concurrent_applies_from_an_empty_sandbox_never_duplicate_and_record_everything(project, sandbox):
    for round_ in range(1):  # one round already failed on every try without the inter-process lock
        sandbox.reset()
        (project / LOCK_FILE).unlink(missing_ok=True)
        results = run_together(project, [["apply"]] * APPLIERS)
        assert len(results) == APPLIERS
        for code, out, err in results:
            assert code == 0, f"round {round_}: {err}"
            assert "Traceback" not in err
        store = sandbox.store
        names = {"persona": Counter(p["persona_name"] for p in store.personas.values()),
                 "objectives": Counter(o.get("name") for o in store.objectives.values()),
                 "guardrails": Counter(g.get("name") or g.get("guardrail_name") for g in store.guardrails.values()),
                 "tools": Counter(t["name"] for t in store.tools.values()),
                 "documents": Counter(d["document_name"] for d in store.documents.values()),
                 "pronunciation": Counter(d.get("name") for d in store.pronunciation_dictionaries.values())}
        for kind, counts in names.items():
            assert counts and set(counts.values()) == {1}, f"round {round_}: duplicate {kind}: {counts}"
        recorded = state_entries(project, sandbox.url)
        assert set(recorded["persona"].values()) == set(store.personas), f"round {round_}: a persona is missing"
        assert set(recorded["objectives"].values()) == set(store.objectives)
        assert set(recorded["guardrails"].values()) == set(store.guardrails)
        settled = run_cli("plan")
        assert settled.code == 0, settled.out + settled.err


def test_invoke_conversations_asks_only_about_conversations_not_known_to_be_over(project, sandbox):
    assert run_cli("persona", "--config", FACILITATOR).code == 0
    for _ in range(4):  # 12 conversations ended by the harness (the fixture's sandbox allows 3 at once)
        for _ in range(3):
            assert run_cli("conversation", "--config", KICKOFF).code == 0
        assert run_cli("end", "--all-mine").code == 0
    for _ in range(4):  # born ended
        assert run_cli("conversation", "--config", KICKOFF, "--test-mode").code == 0
    outside = []
    for _ in range(2):  # ended elsewhere (the dashboard): the ledger cannot know yet
        assert run_cli("conversation", "--config", KICKOFF).code == 0
        outside.append(next(cid for cid, c in sandbox.store.conversations.items()
                            if c["status"] == "active"))
        requests.post(f"{sandbox.url}/conversations/{outside[-1]}/end", headers={"x-api-key": "dashboard"}, timeout=5)
    assert len(sandbox.store.conversations) == 18

    def reads_of_one_conversation():
        return [path for method, path in sandbox.requests
                if method == "GET" and path.startswith("/v2/conversations/")]

    sandbox.requests.clear()
    first = run_cli("conversations")
    assert first.code == 0, first.err
    assert sorted(reads_of_one_conversation()) == sorted(f"/v2/conversations/{cid}" for cid in outside)
    assert first.out.count("ended") == 18, first.out
    sandbox.requests.clear()
    again = run_cli("conversations")
    assert again.code == 0 and again.out.count("ended") == 18
    assert reads_of_one_conversation() == [], "what the API said was over is not asked again"


def test_a_command_lists_personas_once_and_logs_one_line_per_listing(project, sandbox):
    with requests.Session() as http:  # 250 personas made elsewhere: a listing is 3 pages of 100
        for i in range(250):
            made = http.post(f"{sandbox.url}/personas", json={"persona_name": f"filler {i}", "system_prompt": "x"},
                             headers={"x-api-key": "dashboard"}, timeout=5)
            assert made.status_code == 200
    sandbox.requests.clear()
    result = run_cli("apply")  # three personas created, two policies looked up by name
    assert result.code == 0, result.err
    assert [p for m, p in sandbox.requests if m == "GET" and p == "/v2/personas"] == ["/v2/personas"] * 3
    logged = [json.loads(line) for line in (project / "logs" / "api.jsonl").read_text().splitlines()]
    listings = [r for r in logged if r.get("method") == "GET" and r["url"].endswith("/v2/personas")]
    assert len(listings) == 1 and listings[0]["pages"] == 3 and listings[0]["rows"] >= 250


def test_apply_lists_tools_once_however_many_it_creates(project, sandbox):
    folder = project / "configs" / "tools"
    for i in range(6):
        (folder / f"extra_{i}.json").write_text(json.dumps(
            {"name": f"extra_tool_{i}", "description": "An extra tool.", "delivery": {"app_message": True}}))
    sandbox.requests.clear()
    result = run_cli("apply")
    assert result.code == 0, result.err
    created = [p for m, p in sandbox.requests if m == "POST" and p == "/v2/tools"]
    assert len(created) == 7, "the six extra tools and the example's schedule_meeting"
    listings = [p for m, p in sandbox.requests if m == "GET" and p == "/v2/tools"]
    assert listings == ["/v2/tools"], f"one listing for the whole command, not one per create: {len(listings)}"
