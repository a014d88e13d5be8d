"""No secret in any artifact of a full run: logs/, run reports, JUnit, console output, .env mode."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
API_KEY = "tk-live-7f3c9a1b2d4e5f60"
ROLE_ARN = "arn:aws:iam::123456789012:role/tavus-secret-recorder"
TOKEN = "whk-token-5a6b7c8d9e0f1a2b"


def tune(project, *args, **env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_"))}
    env.update(env_extra)
    return subprocess.run([str(BIN / "tune"), *args], cwd=project, env=env, capture_output=True, text=True, timeout=120)


SECRETS_ENV = {"TAVUS_API_KEY": API_KEY, "TAVUS_RECORDING_ROLE_ARN": ROLE_ARN, "WEBHOOK_TOKEN": TOKEN,
               "TAVUS_RECORDING_S3_BUCKET": "rec-bucket", "TAVUS_RECORDING_S3_REGION": "eu-west-1"}


def assert_nothing_leaked(project, outputs) -> dict:
    """No command failed unexpectedly or printed a traceback, and no secret is on the console or in logs/."""
    assert all(o.returncode in (0, 5) for o in outputs), [o.stderr for o in outputs if o.returncode not in (0, 5)]
    assert all("Traceback" not in o.stderr for o in outputs)
    console = "".join(o.stdout + o.stderr for o in outputs)
    artifacts = {p: p.read_bytes() for p in (project / "logs").rglob("*") if p.is_file()}
    for secret in (API_KEY, ROLE_ARN, TOKEN):
        assert secret not in console, f"{secret} printed"
        leaked = [str(p) for p, data in artifacts.items() if secret.encode() in data]
        assert leaked == [], f"{secret} in {leaked}"
    return artifacts


def test_the_demo_leaks_no_secret(project, sandbox):
    artifacts = assert_nothing_leaked(project, [tune(project, "demo", **SECRETS_ENV)])
    assert artifacts, "the demo wrote logs that were checked"


def test_a_scenario_and_conversation_run_leaks_no_secret(project, sandbox):
    # The same key against a sandbox that requires it: every request carries it.
    from harness_core.sandbox import Sandbox, SandboxSettings
    outputs = []
    with Sandbox(SandboxSettings(api_key=API_KEY, time_scale=0.01)) as keyed:
        env = {**SECRETS_ENV, "TAVUS_API_URL": keyed.url}
        outputs.append(tune(project, "run", "scenarios/", "--junit", "logs/junit.xml", "--json", **env))
        outputs.append(tune(project, "persona", "--config", "configs/persona/facilitator.example.json", "--update", **env))
        outputs.append(tune(project, "conversation", "--config", "configs/conversation/facilitator_recorded.json", "--json", **env))
        outputs.append(tune(project, "conversation", "--config", "configs/conversation/facilitator_kickoff.json",
                            "--callback-url", f"http://127.0.0.1:9/hook?token={TOKEN}", "--dry-run", **env))
        outputs.append(tune(project, "doctor", **env))
        outputs.append(tune(project, "end", "--all-mine", **env))
        outputs.append(tune(project, "events", "--json", **env))
        assert any(c.get("properties", {}).get("recording_storage", {}).get("assume_role_arn") == ROLE_ARN
                   for c in keyed.store.conversations.values()), "the ARN did reach the API"
    artifacts = assert_nothing_leaked(project, outputs)
    assert len(artifacts) > 10 and any(p.name == "junit.xml" for p in artifacts)


def test_dotenv_written_by_the_harness_is_private(project):
    result = tune(project, "set-webhook-url", "https://example.ngrok-free.app/tavus/callback",
                  TAVUS_HARNESS_DOTENV=str(project / ".env"))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((project / ".env").stat().st_mode) == 0o600


def test_a_custom_llm_key_from_the_environment_stays_out_of_every_view(project, sandbox):
    import json
    llm_key = "sk-custom-llm-0a1b2c3d4e5f"
    cfg = project / "configs" / "persona" / "custom_llm.json"
    cfg.write_text(json.dumps({"persona_name": "Custom LLM", "system_prompt": "p", "layers": {"llm": {
        "model": "my-model", "base_url": "http://127.0.0.1:9/v1", "api_key": {"$env": "MY_LLM_API_KEY"},
        "extra_body": {"max_tokens": 256}}}}))
    rel = str(cfg.relative_to(project))
    env = {"TAVUS_API_URL": sandbox.url, "MY_LLM_API_KEY": llm_key, "TAVUS_HARNESS_DOTENV": str(project / ".env")}
    runs = [tune(project, "explain", "--config", rel, **env), tune(project, "persona", "--config", rel, "--dry-run", **env),
            tune(project, "persona", "--config", rel, **env), tune(project, "plan", **env),
            tune(project, "apply", "--dry-run", **env)]
    cfg.write_text(cfg.read_text().replace("MY_LLM_API_KEY", "MY_OTHER_LLM_KEY"))
    other = {**env, "MY_OTHER_LLM_KEY": "sk-custom-llm-9z8y7x6w5v4u"}
    runs += [tune(project, "persona", "--config", rel, "--update", "--dry-run", **other),
             tune(project, "persona", "--config", rel, "--update", **other), tune(project, "plan", **other)]
    assert runs[2].returncode == 0, runs[2].stderr
    assert '"max_tokens": 256' in runs[1].stdout, "a look-alike key is not redacted"
    artifacts = "".join(p.read_text(errors="replace") for p in (project / "logs").rglob("*") if p.is_file())
    artifacts += (project / "tavus-harness.lock.toml").read_text()
    for secret in (llm_key, "sk-custom-llm-9z8y7x6w5v4u"):
        assert secret not in artifacts
        assert not [r.args for r in runs if secret in r.stdout + r.stderr]


def test_a_value_from_env_is_a_secret_under_any_key_and_any_variable_name(project, sandbox):
    """LLMCRED looks like no secret and extra_body.auth like no secret key: it came from $env, so it is one."""
    import json
    first, second = "cred-first-81f2e3d4c5b6", "cred-second-1a9b8c7d6e5f"
    cfg = project / "configs" / "persona" / "cred.json"
    cfg.write_text(json.dumps({"persona_name": "Cred", "system_prompt": "p", "layers": {"llm": {
        "model": "my-model", "base_url": "http://127.0.0.1:9/v1", "extra_body": {"auth": {"$env": "LLMCRED"}}}}}))
    rel = str(cfg.relative_to(project))
    env = {"TAVUS_API_URL": sandbox.url, "LLMCRED": first, "TAVUS_HARNESS_DOTENV": str(project / ".env")}
    runs = [tune(project, "persona", "--config", rel, **env), tune(project, "explain", "--config", rel, **env),
            tune(project, "persona", "--config", rel, "--update", "--dry-run", **env)]
    assert runs[0].returncode == 0, runs[0].stderr
    [stored] = [p for p in sandbox.store.personas.values() if p.get("persona_name") == "Cred"]
    assert stored["layers"]["llm"]["extra_body"]["auth"] == first, "the real value is sent"
    changed = {**env, "LLMCRED": second}  # each command is a fresh process: it knows only the new value
    runs += [tune(project, "plan", **changed), tune(project, "plan", "--json", **changed),
             tune(project, "apply", "--dry-run", **changed)]
    assert runs[3].returncode == 6, runs[3].stderr
    assert "/layers/llm/extra_body/auth = \"[redacted]\"  (was \"[redacted]\")" in runs[3].stdout, runs[3].stdout
    assert "layers.llm.extra_body.auth" in runs[1].stdout and "[redacted]" in runs[1].stdout
    logs = "".join(p.read_text(errors="replace") for p in (project / "logs").rglob("*") if p.is_file())
    assert "api.jsonl" in " ".join(str(p) for p in (project / "logs").rglob("*")), "the API log was written"
    for secret in (first, second):
        assert secret not in logs
        assert not [r.args for r in runs if secret in r.stdout + r.stderr], secret
