"""The embedded sandbox of a run: forked beside it on Linux, in-process elsewhere; never left behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.helpers import interrupt, spawn

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is forked only on Linux")

SCENARIO = """[scenario]
name = "Long"
persona_config = "configs/persona/facilitator.example.json"
conversation_config = "configs/conversation/facilitator_kickoff.json"
end_after_seconds = 60000
timeout_seconds = 60

[[expect.events]]
type = "application.recording_ready"
within_seconds = 60
"""


def answers(url: str) -> bool:
    """Whether a sandbox answers at `url` (its /_sandbox/health)."""
    try:
        return requests.get(url.rsplit("/v2", 1)[0] + "/_sandbox/health", headers={"x-api-key": "k"}, timeout=2).ok
    except requests.RequestException:
        return False


def wait_until(condition, timeout: float, what: str):
    """Poll `condition` (bounded) until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        threading.Event().wait(0.02)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def children(pid: int) -> list[int]:
    """The child processes of `pid` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def gone(pid: int) -> bool:
    """True when `pid` no longer runs (exited, or a zombie nobody reaped)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def created_conversation(project: Path):
    """(sandbox API URL, conversation id) once the run logged its create, else None."""
    log = project / "logs" / "api.jsonl"
    if not log.exists():
        return None
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if record.get("method") == "POST" and record["url"].endswith("/conversations") and record.get("status") == 200:
            return record["url"].rsplit("/conversations", 1)[0], record["response"]["conversation_id"]
    return None


def start_embedded_run(project: Path) -> subprocess.Popen:
    """`tune run` of one long scenario on the embedded sandbox, in a session of its own (a terminal's Ctrl-C
    reaches its whole process group)."""
    (project / "scenarios" / "long.toml").write_text(SCENARIO)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env["TAVUS_HARNESS_DOTENV"] = str(project / ".env")
    return spawn([str(Path(sys.executable).parent / "tune"), "run", "scenarios/long.toml"], cwd=project, env=env,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


@linux_only
def test_ctrl_c_at_the_terminal_still_ends_the_conversation_through_the_forked_sandbox(project):
    proc = start_embedded_run(project)
    url, cid = wait_until(lambda: created_conversation(project), 30, "the run's conversation")
    [child] = children(proc.pid)
    assert answers(url), "the sandbox answers from a process of its own"
    out, err = interrupt(proc, signal.SIGINT, timeout=20, group=True)  # a terminal's Ctrl-C: the whole group
    assert proc.returncode == 130, err
    ends = [json.loads(line) for line in (project / "logs" / "api.jsonl").read_text().splitlines()
            if f"/conversations/{cid}/end" in line]
    assert [e["status"] for e in ends] == [200], "the sandbox outlived the Ctrl-C and took the end"
    assert "Traceback" not in err
    assert gone(child) and not answers(url), "the run stopped its sandbox before it exited"


@linux_only
def test_a_killed_run_leaves_no_sandbox_behind(project):
    proc = start_embedded_run(project)
    url, _ = wait_until(lambda: created_conversation(project), 30, "the run's conversation")
    [child] = children(proc.pid)
    proc.kill()  # SIGKILL: no cleanup runs in the run itself
    proc.communicate(timeout=10)
    wait_until(lambda: gone(child), 20, "the orphaned sandbox to stop by itself")
    assert not answers(url)


CHILD_SCRIPT = textwrap.dedent("""
    import json, os, sys, threading
    from harness_core.errors import HarnessError
    from harness_core.sandbox import SandboxSettings
    from harness_core.sandbox.embedded import embedded_sandbox
    if sys.argv[1] == "thread":  # another thread alive: no fork
        threading.Thread(target=threading.Event().wait, daemon=True).start()
    if sys.argv[1] == "no-fork":  # the system has no room for another process
        def refuse():
            raise BlockingIOError(11, "Resource temporarily unavailable")
        os.fork = refuse
    settings = SandboxSettings(persona_get_shape=sys.argv[2])
    try:
        with embedded_sandbox(settings) as sb:
            import requests
            ok = requests.get(sb.url + "/personas", headers={"x-api-key": "k"}, timeout=5).ok
            print(json.dumps({"pid": sb.pid, "me": os.getpid(), "ok": ok}))
    except HarnessError as exc:
        print(json.dumps({"error": exc.render()}))
""")


def run_child_script(mode: str, shape: str = "flat") -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD_SCRIPT, mode, shape], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@linux_only
def test_the_sandbox_is_forked_only_from_a_process_without_other_threads():
    forked = run_child_script("alone")
    assert forked["ok"] and forked["pid"] not in (None, forked["me"])
    in_process = run_child_script("thread")
    assert in_process["ok"] and in_process["pid"] is None


@linux_only
def test_a_fork_the_system_refuses_leaves_the_sandbox_in_process():
    said = run_child_script("no-fork")
    assert said["ok"] and said["pid"] is None


@linux_only
def test_a_sandbox_that_cannot_start_in_its_child_is_one_line_in_the_parent():
    said = run_child_script("alone", shape="sideways")
    assert said["error"] == ("the embedded sandbox did not start: sandbox --persona-get-shape 'sideways': not one of "
                             "flat, wrapped. write e.g. --persona-get-shape flat")
