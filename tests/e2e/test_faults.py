"""Under injected faults: no duplicate resource, every command succeeds or fails with one clear line."""
from __future__ import annotations

import pytest

from harness_core.sandbox import Sandbox, SandboxSettings
from tests.helpers import run_cli


@pytest.fixture
def faulty(monkeypatch):
    settings = SandboxSettings(time_scale=0.01, faults="429:0.15,500:0.2,reset:0.15,latency:5ms", retry_after=0,
                               fault_seed=7)
    with Sandbox(settings) as sb:
        monkeypatch.setenv("TAVUS_API_URL", sb.url)
        yield sb


def test_persona_creates_under_api_faults_never_duplicate(project, faulty):
    outcomes = []
    for i in range(12):
        result = run_cli("persona", "--persona-name", f"Faulty {i}", "--system-prompt", "Stay calm.")
        outcomes.append(result)
        assert "Traceback" not in result.err
        if result.code:
            assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    names = [p["persona_name"] for p in faulty.store.personas.values()]
    assert len(names) == len(set(names)), f"duplicates stored: {sorted(names)}"
    succeeded = [i for i, r in enumerate(outcomes) if r.code == 0]
    assert {f"Faulty {i}" for i in succeeded} <= set(names)
    assert sum(faulty.faults.injected.values()) > 0, "the run must actually have seen faults"
    assert len(succeeded) >= 8, [r.err for r in outcomes if r.code]


def test_reads_are_retried_through_rate_limits_and_server_errors(tmp_path):
    from harness_core.api import TavusClient
    from harness_core.env import Target
    settings = SandboxSettings(faults="429:0.2,500:0.2", retry_after=0, fault_seed=3)
    with Sandbox(settings) as sb:
        client = TavusClient(Target(sb.url, "k", "test", "test"))
        for _ in range(10):
            assert client.get("/replicas", limit=1)["total_count"] >= 1
        assert sb.faults.injected.get("429", 0) + sb.faults.injected.get("500", 0) >= 3
        gets = [r for r in sb.requests if r == ("GET", "/v2/replicas")]
        assert len(gets) > 10, "faulted reads were retried"


def test_fault_spec_errors_are_one_line(project):
    from harness_core.errors import ConfigError
    with pytest.raises(ConfigError, match="sandbox faults: 'boom:1'"):
        Sandbox(SandboxSettings(faults="boom:1"))
    with pytest.raises(ConfigError, match="between 0 and 1"):
        Sandbox(SandboxSettings(faults="500:2"))
