"""Shared fixtures. An autouse guard makes sure no test can ever reach the real Tavus API.

Hypothesis budgets come from a profile: `ci` (the default, bounded so the suite stays fast) or
`thorough` (HYPOTHESIS_PROFILE=thorough, for a long hunt before a release).
"""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

from tests.helpers import Collector

REPO = Path(__file__).resolve().parent.parent
HARNESS_VARS = ("TAVUS_API_KEY", "TAVUS_API_URL", "TAVUS_PUBLIC_API_BASE_URL", "WEBHOOK_URL", "WEBHOOK_TOKEN",
                "TUNE_AUTO_RECORDING", "TAVUS_RECORDING_S3_BUCKET", "TAVUS_RECORDING_S3_REGION",
                "TAVUS_RECORDING_ROLE_ARN", "TAVUS_HARNESS_DISABLE_PLUGINS", "TAVUS_HARNESS_TRACE_PLUGINS",
                "NGROK_API_URL", "TAVUS_HARNESS_DOTENV", "TAVUS_HARNESS_MODEL_URL", "TAVUS_HARNESS_MODEL",
                "TAVUS_HARNESS_MODEL_API_KEY", "TAVUS_SANDBOX_LLM_URL", "TAVUS_SANDBOX_LLM_MODEL", "TAVUS_SANDBOX_LLM_API_KEY")


def closed_port_url() -> str:
    """A loopback URL on a port that was just free and is now closed: requests fail fast."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v2"


@pytest.fixture(autouse=True)
def _no_real_api(monkeypatch, tmp_path):
    """Unset every harness variable and point the API at a closed localhost port."""
    for name in HARNESS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TAVUS_API_URL", closed_port_url())
    monkeypatch.setenv("TAVUS_HARNESS_DOTENV", str(tmp_path / "guard.env"))


@pytest.fixture(autouse=True)
def _forget_env_secrets(monkeypatch):
    """Each test starts as a fresh process would: no value remembered from `{"$env": ...}`."""
    from harness_core import redact
    monkeypatch.setattr(redact, "_remembered", frozenset(), raising=False)
    monkeypatch.setattr(redact, "_remembered_keys", frozenset(), raising=False)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A scratch project: copies of configs/, presets/ and scenarios/, as the current directory."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("configs", "presets", "scenarios", "examples"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, root / name)
    (root / "logs").mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("TAVUS_HARNESS_DOTENV", str(root / ".env"))
    monkeypatch.setenv("TOOL_HMAC_SECRET", "test-only-hmac-secret")  # configs/tools/schedule_meeting.json reads it
    return root


@pytest.fixture
def sandbox(monkeypatch):
    """A fresh local Tavus sandbox on 127.0.0.1 (fast clock); TAVUS_API_URL points at it."""
    from harness_core.sandbox import Sandbox, SandboxSettings

    sb = Sandbox(SandboxSettings(time_scale=0.01, allow_loopback_tools=True))  # the example tool backend is on 127.0.0.1
    sb.start(host="127.0.0.1", port=0)
    monkeypatch.setenv("TAVUS_API_URL", sb.url)
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def collector():
    """A loopback HTTP server that records every JSON POST (a stand-in for any webhook consumer)."""
    with Collector() as c:
        yield c
