"""The sandbox's real callbacks for a created conversation land in logs/callbacks/ and reach every plugin."""
from __future__ import annotations


import requests

from harness_core import hookimpl
from harness_core.context import make_context
from harness_core.callbacks.receiver import Receiver
from tests.helpers import interrupt, logs_bytes, run_cli, spawn, stored_callbacks

T = 10
HEADERS = {"x-api-key": "anything"}
STOCK_REPLICA = "r4317e64d25a"


class Seen:
    def __init__(self):
        self.events = []

    @hookimpl
    def harness_handle_callback(self, event):
        self.events.append(event)


def has(events, cid, kind):
    return any(e.get("conversation_id") == cid and e.get("event_type") == kind for e in events)


def create_conversation(sandbox, callback_url: str) -> str:
    resp = requests.post(f"{sandbox.url}/conversations", headers=HEADERS, timeout=T,
                         json={"replica_id": STOCK_REPLICA, "callback_url": callback_url})
    assert resp.status_code == 200, resp.text
    return resp.json()["conversation_id"]


def test_sandbox_callbacks_are_stored_in_order_and_seen_by_a_plugin(sandbox, project):
    ctx = make_context(project, quiet=True)
    ctx.hook
    seen = Seen()
    ctx.pm.register(seen)
    with Receiver(ctx, path="/tavus/callback") as rx:
        cid = create_conversation(sandbox, rx.callback_url)
        rx.wait_for(lambda evs: has(evs, cid, "system.replica_joined"), T)
        sandbox.end_conversation(cid, reason="participant_left_timeout reached")
        rx.wait_for(lambda evs: has(evs, cid, "application.transcription_ready"), T)
        sandbox.wait_idle(T)
        # every callback the sandbox delivered has also been handed over by the receiver's worker
        delivered = len([d for d in sandbox.deliveries if d["conversation_id"] == cid])
        received = [e for e in rx.wait_for(lambda evs: len([e for e in evs if e["conversation_id"] == cid]) >= delivered, T)
                    if e["conversation_id"] == cid]
    kinds = [e["event_type"] for e in received]
    assert kinds[0] == "system.replica_joined" and "system.shutdown" in kinds
    assert kinds.index("system.shutdown") < kinds.index("application.transcription_ready")
    shutdown = next(e for e in received if e["event_type"] == "system.shutdown")
    assert shutdown["properties"]["shutdown_reason"] == "participant_left_timeout reached"
    stored = [r["event"] for r in stored_callbacks(project, cid)]
    assert [e["event_type"] for e in stored] == kinds, "each callback stored once, in arrival order"
    sent = [d for d in sandbox.deliveries if d["conversation_id"] == cid]
    assert [d["event_type"] for d in sent] == kinds and {d.get("status") for d in sent} == {200}, sent
    assert [e for e in seen.events if e["conversation_id"] == cid] == received, "the plugin saw every event"
    assert rx.token.encode() not in logs_bytes(project)
    listing = run_cli("events", "--conversation-id", cid)
    assert listing.code == 0 and "reason: participant_left_timeout reached" in listing.out


def test_replaying_sandbox_events_to_your_app_keeps_their_order(sandbox, project, collector):
    ctx = make_context(project, quiet=True)
    with Receiver(ctx) as rx:
        cid = create_conversation(sandbox, rx.callback_url)
        rx.wait_for(lambda evs: has(evs, cid, "system.replica_joined"), T)
        sandbox.end_conversation(cid, reason="end_conversation_endpoint_hit")
        rx.wait_for(lambda evs: has(evs, cid, "application.transcription_ready"), T)
        sandbox.wait_idle(T)
    result = run_cli("replay", "--conversation-id", cid, "--to", collector.url)
    assert result.code == 0, result.err
    stored = [r["event"] for r in stored_callbacks(project, cid)]
    assert collector.wait_for(lambda bodies: len(bodies) == len(stored), T) == stored


def test_three_terminal_flow_receiver_then_set_webhook_url_then_a_conversation(sandbox, project):
    """T1 `invoke webhook --port P`; T2 a tunnel (here: loopback, as the sandbox is local);
    T3 `invoke set-webhook-url URL`, then a conversation created with callback_url = WEBHOOK_URL."""
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    from dotenv import dotenv_values

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_")}
    proc = spawn([str(Path(sys.executable).parent / "tune"), "webhook", "--port", str(port)],
                            cwd=project, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        saved = run_cli("set-webhook-url", f"http://127.0.0.1:{port}/tavus/callback")
        assert saved.code == 0, saved.err
        callback_url = dotenv_values(project / ".env")["WEBHOOK_URL"]  # what `invoke conversation` picks up
        cid = create_conversation(sandbox, callback_url)
        while not any(d["conversation_id"] == cid for d in sandbox.deliveries) and time.monotonic() < deadline:
            time.sleep(0.05)
        sandbox.end_conversation(cid, reason="end_conversation_endpoint_hit")
        while time.monotonic() < deadline and not any(
                d["event_type"] == "application.transcription_ready" for d in sandbox.deliveries):
            time.sleep(0.05)
        assert sandbox.wait_idle(T)
    finally:
        out, err = interrupt(proc)
    sent = [d for d in sandbox.deliveries if d["conversation_id"] == cid]
    assert sent and {d.get("status") for d in sent} == {200}, (sent, err)
    assert f"{cid}" in out and "system.shutdown" in out and "reason: end_conversation_endpoint_hit" in out
    assert f"transcript of {cid}" in err, "the built-in transcript plugin printed it"
    stored = stored_callbacks(project, cid)
    assert len(stored) == len(sent)
    token = dotenv_values(project / ".env")["WEBHOOK_TOKEN"]
    assert token not in out + err
