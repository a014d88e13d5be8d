"""Receiver rules as pure functions: envelope validation, paths, URLs, WEBHOOK_URL, tunnel choice, transcript."""
from __future__ import annotations

import os
import stat

import pytest
from dotenv import dotenv_values

from harness_core import ConfigError
from harness_core.context import make_context
from harness_core.callbacks.publicurl import compose_callback_url, normalise_path, set_webhook_url
from harness_core.callbacks.receiver import validate_envelope
from harness_core.callbacks.toolforward import credentials, verify
from harness_plugins.transcript import transcript_lines
from harness_plugins.tunnel import forwarded_port, pick_tunnel

GOOD = {"properties": {"replica_id": "r90bbd427f71"}, "conversation_id": "c0eaa60a267274af",
        "webhook_url": "https://yourwebsite.com/webhook", "event_type": "system.replica_joined",
        "message_type": "system", "timestamp": "2025-07-11T06:45:47.472000Z"}


def test_documented_envelope_is_valid():
    assert validate_envelope(GOOD) == []
    assert validate_envelope({"conversation_id": "c1", "event_type": "x"}) == [], "only id and type are required"


@pytest.mark.parametrize("body, fragment", [
    ([GOOD], "JSON list, not an object"),
    ("text", "JSON str"),
    ({k: v for k, v in GOOD.items() if k != "conversation_id"}, "missing required field `conversation_id`"),
    ({k: v for k, v in GOOD.items() if k != "event_type"}, "missing required field `event_type`"),
    ({**GOOD, "event_type": 7}, "`event_type` must be a non-empty string"),
    ({**GOOD, "conversation_id": "../../etc/passwd"}, "`conversation_id` may only hold"),
    ({**GOOD, "conversation_id": "c" * 129}, "at most 128"),
    ({**GOOD, "properties": ["x"]}, "`properties` must be an object"),
    ({**GOOD, "timestamp": 1720680347.4}, "`timestamp` must be a string"),
])
def test_bad_envelopes_name_the_problem(body, fragment):
    problems = validate_envelope(body)
    assert any(fragment in p for p in problems), problems


def test_paths_are_normalised_and_healthz_is_reserved():
    assert normalise_path(None) == "/tavus/callback"
    assert normalise_path("/hooks/tavus/") == "/hooks/tavus"
    for bad in ("tavus", "/", "/healthz", "/a/healthz", "/x?token=1", "/a b"):
        with pytest.raises(ConfigError):
            normalise_path(bad)


def test_callback_url_carries_the_token_url_encoded():
    assert compose_callback_url("https://x.ngrok-free.app/", "/tavus/callback", "a+b/c") == \
        "https://x.ngrok-free.app/tavus/callback?token=a%2Bb%2Fc"


@pytest.fixture
def ctx(tmp_path):
    return make_context(tmp_path, {"TAVUS_HARNESS_DOTENV": str(tmp_path / ".env")}, quiet=True)


def test_set_webhook_url_keeps_the_rest_of_dotenv_and_adds_the_token(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("# my settings\nTAVUS_API_KEY=abc123\nWEBHOOK_TOKEN=tok-0123456789\nOTHER=1\n")
    ctx = make_context(tmp_path, {"TAVUS_HARNESS_DOTENV": str(env_file)}, quiet=True)
    saved = set_webhook_url(ctx, "https://example.ngrok-free.app/tavus/callback")
    assert saved.url == "https://example.ngrok-free.app/tavus/callback?token=tok-0123456789"
    values = dotenv_values(env_file)
    assert values == {"TAVUS_API_KEY": "abc123", "WEBHOOK_TOKEN": "tok-0123456789", "OTHER": "1",
                      "WEBHOOK_URL": saved.url}
    assert env_file.read_text().startswith("# my settings\n"), "comments are kept"
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600


def test_set_webhook_url_generates_a_token_when_absent_and_as_is_adds_none(ctx, tmp_path):
    saved = set_webhook_url(ctx, "https://example.ngrok-free.app/tavus/callback")
    token = dotenv_values(tmp_path / ".env")["WEBHOOK_TOKEN"]
    assert len(token) >= 24 and saved.url.endswith(f"?token={token}")
    assert any("generated WEBHOOK_TOKEN" in n for n in saved.notes)
    raw = set_webhook_url(ctx, "https://my.app/hook?x=1", as_is=True)
    assert raw.url == "https://my.app/hook?x=1" and dotenv_values(tmp_path / ".env")["WEBHOOK_URL"] == raw.url


@pytest.mark.parametrize("url, fragment", [
    ("example.ngrok-free.app/tavus/callback", "not an absolute http(s) URL"),
    ("ftp://example.com/tavus", "not an absolute http(s) URL"),
    ("https:///tavus", "not an absolute http(s) URL"),
    ("https://example.ngrok-free.app", "has no path"),
    ("https://example.ngrok-free.app/", "has no path"),
    ("https://example.ngrok-free.app/cb#x", "#fragment"),
])
def test_set_webhook_url_refuses_bad_urls_and_writes_nothing(ctx, tmp_path, url, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        set_webhook_url(ctx, url)
    assert not (tmp_path / ".env").exists()


def test_set_webhook_url_warns_about_loopback_and_foreign_tokens(tmp_path):
    (tmp_path / ".env").write_text("WEBHOOK_TOKEN=tok-0123456789\n")
    ctx = make_context(tmp_path, {"TAVUS_HARNESS_DOTENV": str(tmp_path / ".env")}, quiet=True)
    saved = set_webhook_url(ctx, "http://127.0.0.1:8000/tavus/callback?token=other")
    assert saved.url.endswith("token=other")
    assert any("differs from WEBHOOK_TOKEN" in n for n in saved.notes)
    assert any("only the local sandbox can reach it" in n for n in saved.notes)


@pytest.mark.parametrize("addr, port", [
    ("http://localhost:8000", 8000), ("localhost:8000", 8000), ("8000", 8000), ("127.0.0.1:9001", 9001),
    ("https://localhost", 443), ("http://localhost", 80), ("", None), (None, None), ("host:notaport", None),
])
def test_forwarded_port_reads_every_ngrok_addr_spelling(addr, port):
    assert forwarded_port(addr) == port


def test_pick_tunnel_prefers_https_for_our_port():
    tunnels = [
        {"public_url": "https://other.ngrok-free.app", "proto": "https", "config": {"addr": "http://localhost:9000"}},
        {"public_url": "http://ours.ngrok-free.app", "proto": "http", "config": {"addr": "http://localhost:8000"}},
        {"public_url": "https://ours.ngrok-free.app", "proto": "https", "config": {"addr": "http://localhost:8000"}},
    ]
    assert pick_tunnel(tunnels, 8000)["public_url"] == "https://ours.ngrok-free.app"
    assert pick_tunnel(tunnels[:2], 8000)["public_url"] == "http://ours.ngrok-free.app"
    assert pick_tunnel(tunnels, 7000) is None
    assert pick_tunnel(["junk", {"config": {"addr": "8000"}}], 8000) is None


def test_transcript_lines_shorten_the_system_prompt_and_skip_other_events():
    event = {"event_type": "application.transcription_ready", "conversation_id": "c1",
             "properties": {"transcript": [{"role": "system", "content": "You are " + "very " * 40 + "long."},
                                           {"role": "user", "content": "Hi."},
                                           {"role": "assistant", "content": "How's\nit going?"}]}}
    lines = transcript_lines(event)
    assert lines[0] == "transcript of c1 (3 entries):"
    assert "(213 chars)" in lines[1] and len(lines[1]) < 100
    assert lines[2].endswith("user: Hi.") and lines[3].endswith("assistant: How's it going?")
    assert transcript_lines({**event, "event_type": "system.shutdown"}) == []
    assert transcript_lines({"event_type": "application.transcription_ready", "properties": "x"}) == \
        ["transcript of ? (0 entries):"]


# --- tool calls: what the harness sends as the app is what the receiver accepts -------------------------

AUTHS = [{"type": "hmac", "secret": "s3"}, {"type": "bearer", "token": "t0k"},
         {"type": "api_key", "location": "header", "name": "X-Key", "value": "k1"},
         {"type": "api_key", "location": "query", "name": "key", "value": "k2"},
         {"type": "basic", "username": "u", "password": "p"}]


@pytest.mark.parametrize("auth", AUTHS, ids=lambda a: f"{a['type']}-{a.get('location', '')}")
def test_credentials_carry_each_auth_the_way_verify_checks_it(auth):
    raw = b'{"attendee": "Ana"}'
    headers, params = credentials(auth, raw)
    environ = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    query = {k: [v] for k, v in params.items()}
    assert verify(auth, environ, query, raw, token="unused") is None
    assert verify(auth, {}, {}, raw, token="unused") is not None, "without the credentials the call is refused"
    if auth["type"] == "hmac":  # the signature covers the body
        assert verify(auth, environ, query, raw + b" ", token="unused") is not None
