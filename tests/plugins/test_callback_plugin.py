"""The receiver's two hooks with throwaway plugins on a fresh manager, plus the built-ins behind them."""
from __future__ import annotations

import pytest
import requests

from harness_core import PluginError, hookimpl
from harness_core.context import make_context
from harness_core.plugins import get_plugin_manager
from harness_core.callbacks.publicurl import public_url
from harness_core.callbacks.receiver import Receiver, dispatch

EVENT = {"properties": {"replica_id": "r90bbd427f71", "transcript": [{"role": "user", "content": "Hi."}]},
         "conversation_id": "c0eaa60a267274af", "webhook_url": "https://yourwebsite.com/webhook",
         "event_type": "application.transcription_ready", "message_type": "application",
         "timestamp": "2025-07-11T06:48:37.566057Z"}


@pytest.fixture
def ctx(tmp_path):
    c = make_context(tmp_path, {"TAVUS_HARNESS_DOTENV": str(tmp_path / ".env")}, quiet=True)
    c.pm = get_plugin_manager(c.env)
    return c


def test_hook_harness_handle_callback(ctx):
    calls = []

    class Recorder:
        @hookimpl
        def harness_handle_callback(self, event, context):
            calls.append((event["event_type"], context is ctx))

    class Failing:
        @hookimpl(tryfirst=True)
        def harness_handle_callback(self, event):
            raise ValueError("boom")

    ctx.pm.register(Recorder())
    ctx.pm.register(Failing(), name="failing")
    failures = dispatch(ctx, EVENT)
    assert calls == [("application.transcription_ready", True)], "the recorder ran although another plugin raised"
    assert [(name, str(exc)) for name, exc in failures] == [("failing", "boom")]
    assert any(note.startswith("transcript of c0eaa60a267274af (1 entries)") for note in ctx.notes), \
        "the built-in transcript plugin ran too"


def test_hook_harness_handle_callback_sees_every_event_through_a_real_receiver(ctx):
    seen = []

    class Recorder:
        @hookimpl
        def harness_handle_callback(self, event):
            seen.append(event["properties"]["n"])

    ctx.pm.register(Recorder())
    with Receiver(ctx) as rx:
        for n in range(20):
            body = {**EVENT, "event_type": "system.replica_joined", "properties": {"n": n},
                    "timestamp": f"2025-07-11T06:48:37.{n:06d}Z"}
            assert requests.post(rx.callback_url, json=body, timeout=5).status_code == 200
        rx.wait_for(lambda evs: len(evs) == 20, 5)
    assert seen == list(range(20)), "one call per event, in arrival order (sequential posts)"


def test_transcript_plugin_can_be_blocked(tmp_path):
    c = make_context(tmp_path, {"TAVUS_HARNESS_DOTENV": str(tmp_path / ".env"),
                                "TAVUS_HARNESS_DISABLE_PLUGINS": "transcript"}, quiet=True)
    c.pm = get_plugin_manager(c.env)
    assert dispatch(c, EVENT) == [] and list(c.notes) == []


def test_hook_harness_public_url(ctx):
    class FixedTunnel:
        @hookimpl(tryfirst=True)
        def harness_public_url(self, port, path):
            return f"https://fixed.example/{port}{path}"

    ctx.env.values["NGROK_API_URL"] = "http://127.0.0.1:9/api/tunnels"  # nothing listens there
    with pytest.raises(PluginError, match="no ngrok agent answers"):
        public_url(ctx, 8000, "/tavus/callback")  # only the built-in: its error reaches the caller
    ctx.pm.register(FixedTunnel())
    assert public_url(ctx, 8000, "/tavus/callback") == "https://fixed.example", \
        "firstresult: a third party wins over the trylast built-in; only scheme + host are kept"


def test_public_url_from_a_plugin_must_be_http(ctx):
    class Odd:
        @hookimpl(tryfirst=True)
        def harness_public_url(self):
            return "ftp://nope"

    ctx.pm.register(Odd())
    with pytest.raises(PluginError, match="not an http"):
        public_url(ctx, 8000, "/x")


def test_tunnel_blocked_means_no_public_url(tmp_path):
    c = make_context(tmp_path, {"TAVUS_HARNESS_DOTENV": str(tmp_path / ".env"),
                                "TAVUS_HARNESS_DISABLE_PLUGINS": "tunnel"}, quiet=True)
    c.pm = get_plugin_manager(c.env)
    with pytest.raises(PluginError, match="no plugin could provide a public URL") as err:
        public_url(c, 8000, "/tavus/callback")
    assert "ngrok http 8000" in err.value.hint
