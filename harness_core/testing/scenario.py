"""Scenario files (TOML): what to create, what to drive, what to expect.

    [scenario]
    name = "Facilitator smoke"
    persona_config = "configs/persona/facilitator.example.json"   # or persona_id / persona_name
    conversation_config = "configs/conversation/facilitator_kickoff.json"
    end_after_seconds = 5          # the run ends the conversation this long after the replica joined
                                   # (simulated seconds: a sandbox at --time-scale 0.02 takes 0.1 s)
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

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..config import check_keys, load_file
from ..errors import ConfigError
from ..project import find_root

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


MAX_SCENARIO_BYTES = 1024 * 1024


def is_scenario_file(path: Path) -> bool:
    """A `.toml` file whose top level has a `scenario` table.

    A file that is not valid TOML counts too, so that running it reports its error instead of
    skipping it in silence; an unreadable one (or one over 1 MiB) does not.
    """
    if path.suffix != ".toml" or not path.is_file():  # a FIFO or a device named *.toml is never read
        return False
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SCENARIO_BYTES + 1)
    except OSError:
        return False
    if len(raw) > MAX_SCENARIO_BYTES:
        return False
    try:
        return isinstance(tomllib.loads(raw.decode("utf-8")).get("scenario"), dict)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError, ValueError):
        return True


def _is_rule(rule) -> bool:
    if isinstance(rule, str):
        return True
    if not isinstance(rule, dict) or set(rule) - {"text", "regex", "role"} or not ({"text", "regex"} & set(rule)):
        return False
    if not all(isinstance(v, str) for v in rule.values()):
        return False
    if "regex" in rule:
        try:
            re.compile(rule["regex"])
        except re.error:
            return False
    return True


def _is_rules(value) -> bool:
    return _is_rule(value) or (isinstance(value, list) and all(map(_is_rule, value)))


def _is_gap(value) -> bool:
    return (isinstance(value, dict) and set(value) == {"from", "to", "seconds"} and isinstance(value["from"], str)
            and isinstance(value["to"], str) and _is_seconds(value["seconds"]))


def _is_seconds(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# What each built-in expectation kind takes, and how to say it.
SHAPES = {
    "events_in_order": (_str_list, 'a list of event types, e.g. ["system.replica_joined", "system.shutdown"]'),
    "shutdown_reason": (lambda v: isinstance(v, str), 'a reason, e.g. "end_conversation_endpoint_hit"'),
    "transcript_contains": (_is_rules, 'rules like [{ role = "assistant", text = "agenda" }] or { regex = "..." }'),
    "transcript_excludes": (_is_rules, 'rules like [{ role = "user", regex = "(?i)medical" }]'),
    "perception_mentions": (lambda v: isinstance(v, str) or _str_list(v), 'a phrase or a list of phrases'),
    "recording_ready": (lambda v: isinstance(v, bool), "true or false"),
    "max_gap": (_is_gap, '{ from = "system.shutdown", to = "application.transcription_ready", seconds = 5 }'),
    "final_status": (lambda v: v in ("active", "ended"), '"active" or "ended"'),
}


def _table(data: dict, key: str, where: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key}: must be a table", hint=f"write [{key}] with keys under it")
    return value


def load_scenario(path: str | Path, kinds) -> Scenario:
    """Read and check one scenario file; every problem is a ConfigError naming file and field."""
    path = Path(path)
    data = load_file(path, what="scenario")
    where = str(path)
    check_keys(data, TOP_KEYS, where)
    if "scenario" not in data:
        raise ConfigError(f"{where}: scenario: missing [scenario] table", hint="add [scenario] with name and configs")
    head = _table(data, "scenario", where)
    check_keys(head, SCENARIO_KEYS, where, prefix="scenario.")
    for key in ("name", "description", "persona_config", "persona_id", "persona_name", "conversation_config"):
        if key in head and not isinstance(head[key], str):
            raise ConfigError(f"{where}: scenario.{key}: must be a string")
    if "expected_to_fail" in head and not isinstance(head["expected_to_fail"], bool):
        raise ConfigError(f"{where}: scenario.expected_to_fail: must be true or false")
    if not (head.get("persona_config") or head.get("persona_id") or head.get("persona_name")):
        raise ConfigError(f"{where}: scenario.persona_config: no persona given",
                          hint="set persona_config, persona_id or persona_name")
    for key in ("persona_config", "conversation_config"):
        if head.get(key):
            head[key] = project_file(head[key], path)
            if not os.path.lexists(head[key]):
                raise ConfigError(f"{where}: scenario.{key}: {head[key]} not found",
                                  hint="paths are relative to the project root (the folder with tavus-harness.toml)")
            # a directory, a FIFO, a symlink loop, broken JSON: said now, before any run
            load_file(head[key], what=key.replace("_config", " config"))
    for key in ("end_after_seconds", "timeout_seconds"):
        if key in head and not _is_seconds(head[key]):
            raise ConfigError(f"{where}: scenario.{key}: must be a positive number of seconds")
    overrides = _table(data, "conversation", where)
    sandbox = _table(data, "sandbox", where)
    check_keys(sandbox, SANDBOX_KEYS, where, prefix="sandbox.")
    transcript = sandbox.get("transcript", [])
    if not (isinstance(transcript, list) and all(isinstance(t, dict) and isinstance(t.get("content"), str)
                                                 and isinstance(t.get("role", "user"), str) for t in transcript)):
        raise ConfigError(f"{where}: sandbox.transcript: must be a list of {{ role, content }} tables")
    if "perception_analysis" in sandbox and not isinstance(sandbox["perception_analysis"], str):
        raise ConfigError(f"{where}: sandbox.perception_analysis: must be a string")
    expect = dict(_table(data, "expect", where))
    events = expect.get("events") or []
    if not isinstance(events, list) or not all(isinstance(e, dict) and isinstance(e.get("type"), str)
                                               and _is_seconds(e.get("within_seconds", 30)) for e in events):
        raise ConfigError(f"{where}: expect.events: must be a list of tables with a type (and within_seconds)",
                          hint='write [[expect.events]] type = "system.replica_joined"')
    check_keys(expect, ("events", *kinds), where, prefix="expect.")
    for kind, value in expect.items():
        if kind in SHAPES and not SHAPES[kind][0](value):
            raise ConfigError(f"{where}: expect.{kind}: {value!r} is not valid", hint=f"write {SHAPES[kind][1]}")
    return Scenario(path=path, name=str(head.get("name") or path.stem), persona_config=head.get("persona_config"),
                    persona_id=head.get("persona_id"), persona_name=head.get("persona_name"),
                    conversation_config=head.get("conversation_config"), overrides=dict(overrides),
                    sandbox=sandbox, events=events, expect=expect, end_after_seconds=head.get("end_after_seconds"),
                    timeout_seconds=float(head.get("timeout_seconds") or 60), expected_to_fail=bool(head.get("expected_to_fail")))


def project_file(value: str, scenario: Path) -> str:
    """A path a scenario names: as given when it exists from here, else under the scenario's
    project root; spelled relative to the current folder when that is shorter."""
    if Path(value).is_absolute() or Path(value).exists():
        return value
    found = find_root(scenario.resolve().parent) / value
    if not found.exists():
        return value
    return os.path.relpath(found)


def find_scenarios(target: str | Path | None, root: Path | None = None) -> list[Path]:
    """One file, or every scenario file in a folder (sorted); an empty result is an error.

    `target` is looked up from the current folder, then under the project `root` (so `tune run
    scenarios/` works from a sub-folder); no target means the root's `scenarios/`.
    """
    target = Path(target or "scenarios")
    if root is not None and not target.is_absolute() and not target.exists() and (root / target).exists():
        target = Path(os.path.relpath(root / target))
    if target.is_dir():
        found = sorted(p for p in target.glob("*.toml") if is_scenario_file(p))
        if not found:
            raise ConfigError(f"{target}: no scenario files (*.toml with a [scenario] table)")
        return found
    if not os.path.lexists(target):
        raise ConfigError(f"{target}: scenario file not found")
    return [target]  # anything else that is not a regular file is named by load_scenario()
