"""The inspector over real HTTP: pagination and filters on a sizeable store, the CLI entry points, state, secrets."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from harness_core.callbacks import eventstore
from tests.helpers import interrupt, logs_bytes, run_cli, spawn

TUNE = str(Path(sys.executable).parent / "tune")


def fill_store(project: Path, count: int, conversations: int = 10) -> None:
    """`count` callbacks straight into logs/callbacks.sqlite3, spread over conversations and types."""
    kinds = ("system.replica_joined", "application.perception_analysis", "system.shutdown")
    conn = eventstore.connect(project / "logs" / eventstore.DB_NAME)
    rows = []
    for i in range(count):
        event = {"conversation_id": f"c{i % conversations:04d}", "event_type": kinds[i % 3], "message_type": "system",
                 "timestamp": f"2026-12-01T10:{i // 600 % 60:02d}:{i // 10 % 60:02d}.{i:06d}Z", "properties": {"n": i}}
        record = {"ts": f"2026-12-01T10:{i // 600 % 60:02d}:{i // 10 % 60:02d}.{i:06d}Z", "run_id": "t",
                  "type": "callback", "event": event}
        rows.append(eventstore._row(record, eventstore._encode(record)))
    conn.execute("BEGIN")
    conn.executemany(eventstore._INSERT, rows)
    conn.execute("COMMIT")
    conn.close()


@pytest.fixture
def ui(project):
    from harness_core.context import make_context
    from harness_core.ui.server import Inspector

    with Inspector(make_context(quiet=True), 0) as inspector:
        yield inspector


def ids_on(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li class="event" data-id="(\d+)"', html)]


def test_events_are_paged_newest_first_and_filtered_by_indexed_queries(project, ui):
    fill_store(project, 1200)
    seen, url, pages = [], ui.url + "events", 0
    while url:
        html = requests.get(url, timeout=10).text
        seen += ids_on(html)
        pages += 1
        older = re.search(r'<a class="older" href="([^"]+)"', html)
        url = ui.url.rstrip("/") + older.group(1).replace("&amp;", "&") if older else None
    assert seen == list(range(1200, 0, -1)) and pages == 24, "every row once, 50 a page, newest first"
    html = requests.get(ui.url + "events", params={"conversation_id": "c0003", "type": "system"}, timeout=10).text
    rows = ids_on(html)
    assert len(rows) == 50 and all((i - 1) % 10 == 3 and (i - 1) % 3 != 1 for i in rows)
    html = requests.get(ui.url + "events", params={"since": "2026-12-01T10:01", "until": "2026-12-01T10:01:01"},
                        timeout=10).text
    assert ids_on(html) == list(range(610, 600, -1)), "received from 10:01:00 to before 10:01:01"
    conn = eventstore.connect(project / "logs" / eventstore.DB_NAME)
    plan = " ".join(r[-1] for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT id, record FROM events WHERE conversation_id = ? AND id < ? ORDER BY id DESC LIMIT 51",
        ("c0003", 500)))
    conn.close()
    assert "events_by_conversation" in plan and "SCAN events" not in plan, plan


def plans(project: Path, sql: str, *args) -> str:
    conn = eventstore.connect(project / "logs" / eventstore.DB_NAME)
    try:
        return " ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
    finally:
        conn.close()


def test_conversations_are_paged_by_last_activity_without_scanning_the_store(project, ui):
    fill_store(project, 1200, conversations=120)  # conversation c{i % 120}: the last rows touch c0119 ... c0000
    shown, url, pages = [], ui.url + "conversations", 0
    while url:
        html = requests.get(url, timeout=10).text
        shown += re.findall(r'<a href="/conversations/(c\d{4})">', html)
        counts = [int(n) for n in re.findall(r'</a></td><td>(\d+)</td>', html)]
        assert set(counts) == {10}, "each conversation's own count of callbacks"
        pages += 1
        older = re.search(r'<a class="older" href="([^"]+)"', html)
        url = ui.url.rstrip("/") + older.group(1) if older else None
    assert shown == [f"c{i:04d}" for i in range(119, -1, -1)] and pages == 3, "each once, most recently active first"
    # A conversation active again is listed first, and not again on an older page (keyset by its last row).
    conn = eventstore.connect(project / "logs" / eventstore.DB_NAME)
    record = {"ts": "2026-12-01T11:00:00.000000Z", "run_id": "t", "type": "callback",
              "event": {"conversation_id": "c0100", "event_type": "system.shutdown", "timestamp": "late"}}
    conn.execute(eventstore._INSERT, eventstore._row(record, eventstore._encode(record)))
    conn.close()
    first = requests.get(ui.url + "conversations", timeout=10).text
    listed = re.findall(r'<a href="/conversations/(c\d{4})">', first)
    assert listed[0] == "c0100" and listed.count("c0100") == 1
    older = re.search(r'<a class="older" href="([^"]+)"', first).group(1)
    rest = re.findall(r'<a href="/conversations/(c\d{4})">', requests.get(ui.url.rstrip("/") + older, timeout=10).text)
    assert "c0100" not in rest and len(listed) + len(rest) >= 100


def test_type_filters_merge_the_types_of_a_group_newest_first(project, ui):
    fill_store(project, 600)
    html = requests.get(ui.url + "events", params={"type": "system", "before": "300"}, timeout=10).text
    assert ids_on(html) == [i for i in range(299, 0, -1) if (i - 1) % 3 != 1][:50], "system.* merged, newest first"
    html = requests.get(ui.url + "events", params={"type": "system.shutdown"}, timeout=10).text
    assert ids_on(html) == [i for i in range(600, 0, -1) if (i - 1) % 3 == 2][:50]


def sqlite_steps(monkeypatch) -> list[int]:
    """Count SQLite's virtual-machine steps (in thousands) on every store connection opened from now on."""
    counter = [0]
    opened = eventstore.connect

    def counting(*args, **kwargs):
        conn = opened(*args, **kwargs)
        conn.set_progress_handler(lambda: counter.__setitem__(0, counter[0] + 1) or 0, 1000)
        return conn

    monkeypatch.setattr(eventstore, "connect", counting)
    return counter


@pytest.mark.parametrize("path", ["events", "events?type=system.shutdown", "events?type=system&before={half}",
                                  "events?conversation_id=c0007", "conversations", "{older conversations}",
                                  "conversations/c0007"])
def test_a_page_costs_the_same_over_ten_times_more_stored_events(tmp_path, monkeypatch, path):
    """Deterministic work, not time: SQLite's steps to serve a page over 6,000 events vs over 600
    (10 per conversation in both), so a page that scans the store fails whatever the machine's load."""
    from harness_core.context import make_context
    from harness_core.ui.server import Inspector

    steps, counter = {}, sqlite_steps(monkeypatch)
    for count in (600, 6000):
        project = tmp_path / f"p{count}"
        (project / "logs").mkdir(parents=True)
        (project / "tavus-harness.toml").write_text("")
        monkeypatch.chdir(project)
        monkeypatch.setenv("TAVUS_HARNESS_DOTENV", str(project / ".env"))
        fill_store(project, count, conversations=count // 10)
        with Inspector(make_context(quiet=True), 0) as inspector:
            wanted = path.format(half=count // 2, **{"older conversations": "conversations"})
            if path == "{older conversations}":  # the page the first one links to, as a reader follows it
                first = requests.get(inspector.url + wanted, timeout=30).text
                wanted = re.search(r'<a class="older" href="/([^"]+)"', first).group(1)
            counter[0] = 0
            answer = requests.get(inspector.url + wanted, timeout=30)
            assert answer.status_code == 200, answer.text[:300]
            steps[count] = counter[0]
    assert steps[6000] <= 2 * steps[600] + 5, f"{path}: {steps} thousand SQLite steps (600 vs 6,000 events)"


def test_the_live_stream_sends_only_new_matching_rows(project, ui):
    fill_store(project, 30)
    with requests.get(ui.url + "events/stream", params={"after": 25, "type": "system.shutdown"}, stream=True,
                      timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        ids = []
        for line in resp.iter_lines():
            if line.startswith(b"data: "):
                ids.append(json.loads(line[6:])["id"])
                if len(ids) == 2:
                    break
    assert ids == [27, 30]


def test_tune_ui_serves_until_ctrl_c(project):
    proc = spawn([TUNE, "ui", "--port", "0"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        assert requests.get(url + "events", timeout=5).status_code == 200
        assert requests.get(url + "state", timeout=5).status_code == 200
    finally:
        out, err = interrupt(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_tune_ui_on_a_taken_port_is_one_line_error(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli("ui", "--port", str(taken.getsockname()[1]))
    assert result.code == 2 and result.err.startswith("error: --port") and "--port N" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_webhook_ui_serves_the_inspector_beside_the_receiver(project):
    proc = spawn([TUNE, "webhook", "--port", "0", "--ui", "--ui-port", "0"], cwd=project,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines, deadline = [], time.monotonic() + 10
        while not any("Listening on" in x for x in lines) and time.monotonic() < deadline:
            lines.append(proc.stdout.readline())
        ui_url = re.search(r"Inspector at (http://127\.0\.0\.1:\d+/)", "".join(lines)).group(1)
        receiver = re.search(r"Listening on (http://127\.0\.0\.1:\d+/tavus/callback)", "".join(lines)).group(1)
        token = re.search(r"WEBHOOK_TOKEN=(\S+)", (project / ".env").read_text()).group(1)
        event = {"conversation_id": "cBeside01", "event_type": "system.replica_joined", "timestamp": "2026-12-01T10:00:00Z"}
        assert requests.post(receiver, params={"token": token}, json=event, timeout=5).status_code == 200
        html = requests.get(ui_url + "events", timeout=5).text
        assert "cBeside01" in html and token not in html
    finally:
        out, err = interrupt(proc)
    assert proc.returncode == 0, err


def test_state_page_says_when_no_api_is_configured(project, monkeypatch):
    monkeypatch.delenv("TAVUS_API_URL")
    from harness_core.context import make_context
    from harness_core.ui.server import Inspector

    with Inspector(make_context(quiet=True), 0) as ui:
        html = requests.get(ui.url + "state", timeout=5).text
    assert 'id="no-api"' in html and "No API is configured" in html


def test_state_page_shows_plan_classes_and_diffs(project, sandbox, ui):
    assert run_cli("apply").code == 0
    html = requests.get(ui.url + "state", timeout=30).text
    assert "plan-unchanged" in html and "Resources in the lock file" in html and "plan-update" not in html
    config = project / "configs" / "persona" / "facilitator.example.json"
    data = json.loads(config.read_text())
    data["system_prompt"] = "Changed <b>prompt</b>"
    config.write_text(json.dumps(data))
    html = requests.get(ui.url + "state", timeout=30).text
    assert "plan-update" in html and "/system_prompt" in html and "Changed &lt;b&gt;prompt&lt;/b&gt;" in html


def test_no_secret_reaches_a_page(project, ui):
    secret = "whsec-tok-123456789"
    (project / ".env").write_text(f"WEBHOOK_TOKEN={secret}\nWEBHOOK_URL=http://127.0.0.1:9/tavus/callback?token={secret}\n")
    from harness_core.callbacks.receiver import Receiver
    from harness_core.context import make_context

    with Receiver(make_context(quiet=True), path="/tavus/callback", token=secret) as rx:
        event = {"conversation_id": "cSecret01", "event_type": "system.replica_joined",
                 "properties": {"api_key": "k-should-not-show", "note": f"token={secret}"}}
        assert requests.post(rx.callback_url, json=event, timeout=5).status_code == 200
    pages = [requests.get(ui.url + p, timeout=10).text for p in ("events", "conversations/cSecret01", "conversations")]
    with requests.get(ui.url + "events/stream", params={"after": 0}, stream=True, timeout=5) as resp:
        pages.append(next(line for line in resp.iter_lines() if line.startswith(b"data")).decode())
    for text in pages:
        assert secret not in text and "k-should-not-show" not in text
    assert "curl -X POST" in pages[0] and "[redacted]" in pages[0]
    assert secret.encode() not in logs_bytes(project)
