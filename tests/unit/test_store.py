"""logs/*.jsonl: one whole line per record, whoever writes at the same time."""
from __future__ import annotations

import json
import subprocess
import sys
import threading

from harness_core.store import Store

WRITER = """
import sys
from harness_core.store import Store
store = Store(sys.argv[1])
for i in range(200):
    store.append("shared", {"type": "p", "who": sys.argv[2], "i": i, "pad": "x" * 20000})
"""


def test_threads_and_processes_appending_to_one_file_never_split_a_line(tmp_path):
    store = Store(tmp_path / "logs")
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "logs"), f"proc{n}"]) for n in range(2)]

    def write(who):
        for i in range(200):
            store.append("shared", {"type": "t", "who": who, "i": i, "pad": "y" * 20000})
    threads = [threading.Thread(target=write, args=(f"thread{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in processes:
        assert p.wait(timeout=60) == 0
    lines = (tmp_path / "logs" / "shared.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # a torn or interleaved line would not parse
    assert sorted((r["who"], r["i"]) for r in records) == sorted(
        (who, i) for who in ("proc0", "proc1", "thread0", "thread1", "thread2", "thread3") for i in range(200))


def test_a_lone_surrogate_is_kept_as_a_json_escape_not_an_error(tmp_path):
    """An API answer may hold "\\ud800" (valid JSON, not encodable as UTF-8): the record is still written."""
    store = Store(tmp_path / "logs")
    store.append("api", {"type": "api", "response": json.loads('{"name": "a\\ud800b"}')})
    line = (tmp_path / "logs" / "api.jsonl").read_text(encoding="utf-8")
    assert "\\ud800" in line and json.loads(line)["response"]["name"] == "a\ud800b"
