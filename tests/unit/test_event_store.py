"""The callback store (logs/callbacks.sqlite3): once-only storage, failures never called duplicates,
the one-time import of logs/callbacks/*.jsonl, and the streamed output of `invoke events`."""
from __future__ import annotations

import asyncio
import json
import os
import threading

import pytest

from harness_core.callbacks.eventstore import DB_NAME, EventStore, GroupCommit, StoreError, iter_records
from harness_core.callbacks.events import event_lines


def event(cid="c1", kind="system.replica_joined", stamp="2026-01-01T00:00:00.000001Z", **props):
    return {"conversation_id": cid, "event_type": kind, "timestamp": stamp, "properties": props}


@pytest.fixture
def store(tmp_path):
    s = EventStore(tmp_path / DB_NAME, ["s3cr3t-value-123"]).start()
    yield s
    s.close()


def records(tmp_path, **filters):
    return list(iter_records(tmp_path / DB_NAME, **filters))


def test_an_identical_resend_is_stored_once_and_called_duplicate(store, tmp_path):
    assert store.append(event(n=1)) is not None
    assert store.append(event(n=1)) is None
    assert [r["event"]["properties"] for r in records(tmp_path)] == [{"n": 1}]


def test_two_events_that_differ_only_in_body_are_both_kept(store, tmp_path):
    first = event(kind="application.transcription_ready", transcript=[{"role": "user", "content": "Hi."}])
    second = event(kind="application.transcription_ready", transcript=[{"role": "user", "content": "Bye."}])
    assert store.append(first) is not None and store.append(second) is not None
    assert [r["event"] for r in records(tmp_path)] == [first, second]


def test_a_failed_write_is_never_answered_duplicate_and_a_later_resend_is_stored(tmp_path):
    (tmp_path / DB_NAME).mkdir()  # the database cannot be opened: every batch fails
    store = EventStore(tmp_path / DB_NAME).start()
    try:
        assert store.problem and DB_NAME in store.problem
        outcomes, lock = [], threading.Lock()

        def send():
            try:
                result = store.append(event(n=1))
            except StoreError as exc:
                result = exc
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=send) for _ in range(8)]  # the same callback, sent at once
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(outcomes) == 8 and all(isinstance(o, StoreError) for o in outcomes), outcomes
        (tmp_path / DB_NAME).rmdir()
        assert store.append(event(n=1)) is not None, "the re-send is stored, not called a duplicate"
        assert store.append(event(n=1)) is None
    finally:
        store.close()
    assert len(records(tmp_path)) == 1


def test_records_are_redacted_before_they_are_stored(store, tmp_path):
    store.append({**event(), "webhook_url": "https://x.example/cb?token=s3cr3t-value-123", "api_key": "k-123456789"})
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"s3cr3t-value-123" not in raw and b"k-123456789" not in raw
    [record] = records(tmp_path)
    assert record["event"]["webhook_url"].endswith("token=[redacted]") and record["type"] == "callback"


def test_a_lone_surrogate_is_stored_as_a_json_escape_not_lost(store, tmp_path):
    bad = event(kind="application.transcription_ready", transcript=[{"role": "user", "content": "bad \ud800 text"}])
    assert store.append(bad) is not None
    [record] = records(tmp_path)
    assert record["event"]["properties"]["transcript"][0]["content"] == "bad \ud800 text"


def test_open_descriptors_stay_bounded_however_many_conversations_arrive(store, tmp_path):
    store.append(event(cid="cwarm"))
    before = len(os.listdir("/proc/self/fd"))
    for i in range(800):
        store.append(event(cid=f"c{i}"))
    assert len(os.listdir("/proc/self/fd")) - before <= 2
    assert len(records(tmp_path)) == 801


def test_readers_filter_by_conversation_and_type_group_in_arrival_order(store, tmp_path):
    for cid, kind in [("ca", "system.replica_joined"), ("cb", "system.replica_joined"), ("ca", "system.shutdown"),
                      ("cb", "application.transcription_ready"), ("ca", "systemic.other")]:
        store.append(event(cid=cid, kind=kind))
    assert [r["event"]["event_type"] for r in records(tmp_path, conversation_id="ca")] == \
        ["system.replica_joined", "system.shutdown", "systemic.other"]
    assert len(records(tmp_path, event_type="system")) == 3, "a group is `system.*`, not every prefix"
    assert len(records(tmp_path, event_type="system.shutdown")) == 1
    assert records(tmp_path, conversation_id="cnone") == []


def test_jsonl_files_of_earlier_versions_are_imported_once(tmp_path):
    legacy = tmp_path / "callbacks"
    legacy.mkdir()
    rows = [{"ts": f"2026-01-01T00:00:0{i}.000000Z", "type": "callback", "event": event(stamp=f"t{i}")} for i in range(3)]
    (legacy / "c1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"ts": "torn')
    assert [r["event"]["timestamp"] for r in iter_records(tmp_path / DB_NAME, legacy_dir=legacy)] == ["t0", "t1", "t2"]
    with open(legacy / "c1.jsonl", "a") as fh:  # written after the import: not imported again, nor twice
        fh.write("\n" + json.dumps({**rows[0], "event": event(stamp="late")}) + "\n")
    store = EventStore(tmp_path / DB_NAME, legacy_dir=legacy).start()
    assert store.append(event(stamp="t1")) is None, "an imported callback re-sent is a duplicate"
    store.close()
    assert [r["event"]["timestamp"] for r in iter_records(tmp_path / DB_NAME, legacy_dir=legacy)] == ["t0", "t1", "t2"]


def test_nothing_is_created_when_there_is_nothing_to_read(tmp_path):
    assert records(tmp_path) == [] and not (tmp_path / DB_NAME).exists()


@pytest.mark.parametrize("count", [0, 1, 3])
def test_streamed_json_is_exactly_the_array_invoke_events_json_printed(count):
    recs = [{"ts": f"t{i}", "type": "callback", "event": event(stamp=f"s{i}", text="é")} for i in range(count)]
    assert "\n".join(event_lines(iter(recs), "json", [])) == json.dumps(recs, indent=2, ensure_ascii=False)
    assert [json.loads(line) for line in event_lines(iter(recs), "jsonl", [])] == recs


class _HeldWriteLock:
    """Another connection holding the database's write lock: the store's next commit waits for it."""

    def __init__(self, path):
        import sqlite3
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self):
        self.conn.execute("COMMIT")
        self.conn.close()


def _wait_until(condition, timeout=10.0):
    import time
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def _send_all(store, events):
    """Append each event from its own thread; return the outcomes (record, None or StoreError) and the threads."""
    outcomes, lock = [], threading.Lock()

    def send(e):
        try:
            result = store.append(e)
        except StoreError as exc:
            result = exc
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=send, args=(e,)) for e in events]
    for t in threads:
        t.start()
    return outcomes, threads


def test_copies_committed_in_one_batch_are_stored_once_and_the_others_called_duplicate(store, tmp_path):
    """Group commit on the receiver's loop: callbacks arriving while a commit runs are committed together
    in the next batch; copies of one callback inside that batch are stored once, the rest called duplicate."""
    loop = asyncio.new_event_loop()
    committer = GroupCommit(store, loop)
    outcomes: dict[int, list] = {0: [], 1: [], 2: []}
    held = _HeldWriteLock(tmp_path / DB_NAME)
    try:
        def add(n):
            committer.add(store.prepare(event(n=n)), lambda p: outcomes[n].append(p))

        add(0)  # its commit waits for the held lock
        _wait_until(lambda: store._inflight == 1)
        for n in [1] * 8 + [2]:
            add(n)
        assert len(committer._waiting) == 9, "queued behind the running commit: the next batch"
        held.release()
        loop.run_until_complete(_until(lambda: sum(map(len, outcomes.values())) == 10))
    finally:
        committer.close()
        loop.close()
    assert [p.stored for p in outcomes[0]] == [True] and [p.stored for p in outcomes[2]] == [True]
    assert sorted(p.stored for p in outcomes[1]) == [False] * 7 + [True], "one copy stored, 7 duplicates"
    assert all(p.error is None for ps in outcomes.values() for p in ps)
    assert sorted(r["event"]["properties"]["n"] for r in records(tmp_path)) == [0, 1, 2]


async def _until(condition, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def test_a_batch_whose_commit_fails_is_an_error_for_each_never_a_duplicate(tmp_path):
    (tmp_path / DB_NAME).mkdir()  # the database cannot be opened
    store = EventStore(tmp_path / DB_NAME).start()
    loop = asyncio.new_event_loop()
    committer = GroupCommit(store, loop)
    done = []
    try:
        for _ in range(3):
            committer.add(store.prepare(event(n=1)), done.append)
        loop.run_until_complete(_until(lambda: len(done) == 3))
    finally:
        committer.close()
        loop.close()
        store.close()
    assert all(p.error and not p.stored for p in done), "a failed commit is never a duplicate"
    assert "unable to open database file" in done[0].error and "Traceback" in done[0].detail


def test_close_commits_what_is_in_flight_and_refuses_what_comes_after(store, tmp_path):
    held = _HeldWriteLock(tmp_path / DB_NAME)
    outcomes, threads = _send_all(store, [event(n=i) for i in range(6)])
    _wait_until(lambda: store._inflight == 6)  # one commit waits for the lock, five wait for that one
    closer = threading.Thread(target=store.close)
    closer.start()
    _wait_until(lambda: store._closed)
    with pytest.raises(StoreError, match="closed"):
        store.append(event(n=99))
    held.release()
    closer.join(10)
    for t in threads:
        t.join(10)
    assert not closer.is_alive() and len(outcomes) == 6 and all(isinstance(o, dict) for o in outcomes), outcomes
    assert sorted(r["event"]["properties"]["n"] for r in records(tmp_path)) == list(range(6))


def test_the_store_itself_starts_no_thread(tmp_path):
    before = threading.active_count()
    store = EventStore(tmp_path / DB_NAME).start()
    try:
        assert threading.active_count() == before
        assert store.append(event()) is not None
    finally:
        store.close()
