"""Scenario files (TOML): what to create, what to drive, what to expect.

    [scenario]
    name = "Facilitator smoke"
    persona_config = "configs/persona/facilitator.example.json"   # or persona_id / persona_name
    conversation_config = "configs/conversation/facilitator_kickoff.json"
    end_after_seconds = 5          # the run ends the conversation itself after this long
    timeout_seconds = 30           # the whole run's bound

    [conversation]                 # overrides of the conversation config (API field names)
    custom_greeting = "Hi all"

    [sandbox]                      # only against a sandbox: scripted content
    transcript = [{ role = "user", content = "Let's discuss risks." }]
    perception_analysis = "The participant nodded."

    [[expect.events]]              # each expected callback, with its own timeout
    type = "system.replica_joined"
    within_seconds = 10

    [expect]
    events_in_order = ["system.replica_joined", "system.shutdown"]
    shutdown_reason = "end_conversation_endpoint_hit"
    transcript_contains = [{ role = "assistant", text = "agenda" }, { regex = "(?i)risk" }]
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import check_keys, load_file
from .errors import ConfigError

SCENARIO_KEYS = ("name", "persona_config", "persona_id", "persona_name", "conversation_config",
                 "end_after_seconds", "timeout_seconds", "expected_to_fail", "description")
TOP_KEYS = ("scenario", "conversation", "sandbox", "expect")
SANDBOX_KEYS = ("transcript", "perception_analysis")


@dataclass
class Scenario:
    path: Path
    name: str
    persona_config: str | None = None
    persona_id: str | None = None
    persona_name: str | None = None
    conversation_config: str | None = None
    overrides: dict = field(default_factory=dict)
    sandbox: dict = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)  # [{type, within_seconds}]
    expect: dict = field(default_factory=dict)
    end_after_seconds: float | None = None
    timeout_seconds: float = 60.0
    expected_to_fail: bool = False

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "scenario"


def is_scenario_file(path: Path) -> bool:
    """A .toml file with a [scenario] table (cheap text check; used by the pytest plugin)."""
    try:
        return path.suffix == ".toml" and "[scenario]" in path.read_text(encoding="utf-8", errors="ignore")[:20000]
    except OSError:
        return False


def load_scenario(path: str | Path, kinds) -> Scenario:
    """Read and check one scenario file; every problem is a ConfigError naming file and field."""
    path = Path(path)
    data = load_file(path, what="scenario")
    where = str(path)
    check_keys(data, TOP_KEYS, where)
    head = data.get("scenario")
    if not isinstance(head, dict):
        raise ConfigError(f"{where}: scenario: missing [scenario] table", hint="add [scenario] with name and configs")
    check_keys(head, SCENARIO_KEYS, where, prefix="scenario.")
    if not (head.get("persona_config") or head.get("persona_id") or head.get("persona_name")):
        raise ConfigError(f"{where}: scenario.persona_config: no persona given",
                          hint="set persona_config, persona_id or persona_name")
    for key in ("persona_config", "conversation_config"):
        if head.get(key) and not Path(head[key]).is_file():
            raise ConfigError(f"{where}: scenario.{key}: {head[key]} not found", hint="paths are relative to the project")
    sandbox = data.get("sandbox") or {}
    check_keys(sandbox, SANDBOX_KEYS, where, prefix="sandbox.")
    expect = dict(data.get("expect") or {})
    events = expect.get("events") or []
    if not isinstance(events, list) or not all(isinstance(e, dict) and isinstance(e.get("type"), str) for e in events):
        raise ConfigError(f"{where}: expect.events: must be a list of tables with a type",
                          hint='write [[expect.events]] type = "system.replica_joined"')
    check_keys(expect, ("events", *kinds), where, prefix="expect.")
    for key in ("end_after_seconds", "timeout_seconds"):
        if key in head and (not isinstance(head[key], (int, float)) or isinstance(head[key], bool) or head[key] <= 0):
            raise ConfigError(f"{where}: scenario.{key}: must be a positive number of seconds")
    return Scenario(path=path, name=str(head.get("name") or path.stem), persona_config=head.get("persona_config"),
                    persona_id=head.get("persona_id"), persona_name=head.get("persona_name"),
                    conversation_config=head.get("conversation_config"), overrides=dict(data.get("conversation") or {}),
                    sandbox=sandbox, events=events, expect=expect, end_after_seconds=head.get("end_after_seconds"),
                    timeout_seconds=float(head.get("timeout_seconds") or 60), expected_to_fail=bool(head.get("expected_to_fail")))


def find_scenarios(target: str | Path) -> list[Path]:
    """One file, or every scenario file in a folder (sorted); an empty result is an error."""
    target = Path(target)
    if target.is_dir():
        found = sorted(p for p in target.glob("*.toml") if is_scenario_file(p))
        if not found:
            raise ConfigError(f"{target}: no scenario files (*.toml with a [scenario] table)")
        return found
    if not target.is_file():
        raise ConfigError(f"{target}: scenario file not found")
    return [target]
