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
    participant_joins = true       # someone joins the call: the replica greets them (custom_greeting)
    transcript = [{ role = "user", content = "Let's discuss risks." }]   # replaces the transcript
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
import tomli
from dataclasses import dataclass, field
from pathlib import Path

from ..config import check_keys, load_file, suggest
from ..errors import ConfigError
from ..project import find_root

SCENARIO_KEYS = ("name", "persona_config", "persona_id", "persona_name", "conversation_config",
                 "end_after_seconds", "timeout_seconds", "expected_to_fail", "description", "mode", "tool_backend",
                 "turn_timeout_seconds", "policies")
TOP_KEYS = ("scenario", "conversation", "sandbox", "expect", "turns", "tools", "simulated_user")
SANDBOX_KEYS = ("transcript", "perception_analysis", "rules", "participant_joins")
TURN_KEYS = ("user", "expect", "within_seconds")
TOOL_KEYS = ("url", "headers", "timeout_seconds", "auth")
RULE_KEYS = ("when", "reply", "tool_call", "objective_completed", "guardrail_triggered")
SIMULATED_USER_KEYS = ("goal", "persona", "max_turns")
AUTH_FIELDS = {"none": (), "hmac": ("secret",), "bearer": ("token",), "api_key": ("name", "value", "location"),
               "basic": ("username", "password")}
MAX_USER_TEXT = 60_000  # a respond's whole body must stay under send-app-message's 65,536 bytes


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
    mode: str = "video"  # "chat": a text-only conversation (`"chat": true`)
    turns: list[dict] = field(default_factory=list)  # [{user, expect, within_seconds}]
    tools: dict = field(default_factory=dict)  # name -> {url, headers, timeout_seconds, auth}
    simulated_user: dict = field(default_factory=dict)  # {goal, persona, max_turns}
    tool_backend: str | None = None  # a WSGI app file the run serves on a loopback port ({tool_backend})
    policies: list[str] = field(default_factory=list)  # objectives/guardrails configs applied before the persona
    turn_timeout_seconds: float = 30.0

    @property
    def is_dialogue(self) -> bool:
        """The scenario drives the conversation turn by turn (scripted or simulated user)."""
        return bool(self.turns or self.simulated_user)

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
        return isinstance(tomli.loads(raw.decode("utf-8")).get("scenario"), dict)
    except (tomli.TOMLDecodeError, UnicodeDecodeError, RecursionError, ValueError):
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


def _is_str_or_list(value) -> bool:
    return (isinstance(value, str) and bool(value)) or (isinstance(value, list) and bool(value) and _str_list(value))


def _is_regexes(value) -> bool:
    if not _is_str_or_list(value):
        return False
    try:
        [re.compile(v) for v in (value if isinstance(value, list) else [value])]
    except re.error:
        return False
    return True


def _is_named(value, extra: str) -> bool:
    """"name" or { name = "...", <extra> = { ... } }."""
    if isinstance(value, str):
        return bool(value)
    return (isinstance(value, dict) and isinstance(value.get("name"), str) and not set(value) - {"name", extra}
            and isinstance(value.get(extra, {}), dict))


def _is_named_list(extra: str):
    return lambda v: _is_named(v, extra) or (isinstance(v, list) and bool(v) and all(_is_named(i, extra) for i in v))


def _is_status(value) -> bool:
    if isinstance(value, dict):
        return set(value) <= {"name", "status"} and value.get("status") in ("success", "error") \
            and isinstance(value.get("name", ""), str)
    return value in ("success", "error")


SHAPES.update({
    "reply_contains": (_is_str_or_list, 'a phrase or a list of phrases, e.g. "booked"'),
    "reply_regex": (_is_regexes, 'a regular expression or a list of them, e.g. "(?i)book(ed)?"'),
    "reply_excludes": (_is_str_or_list, 'a phrase or a list of phrases, e.g. "diagnosis"'),
    "tool_called": (_is_named_list("args"), '{ name = "schedule_meeting", args = { attendee = "Ana" } } (args optional)'),
    "no_tool_called": (lambda v: isinstance(v, bool) or _is_str_or_list(v), 'true, or a tool name or list of names'),
    "tool_result_status": (_is_status, '"success" or "error", or { name = "schedule_meeting", status = "success" }'),
    "objective_completed": (_is_named_list("output_variables"),
                            '{ name = "confirm_details", output_variables = { x = "y" } } (output_variables optional)'),
    "objectives_completed_in_order": (lambda v: _str_list(v) and bool(v), 'a list of objective names'),
    "guardrail_triggered": (_is_str_or_list, 'a guardrail name or a list of names'),
    "guardrail_not_triggered": (_is_str_or_list, 'a guardrail name or a list of names'),
    "tools_called_in_order": (lambda v: _str_list(v) and bool(v), 'a list of tool names, e.g. ["schedule_meeting"]'),
    "judge": (lambda v: isinstance(v, str) and bool(v.strip()), 'a rubric, e.g. "The agent confirmed the time."'),
})
# Kinds that only make sense over the whole conversation, or only over the callbacks of a call.
CONVERSATION_ONLY = ("objectives_completed_in_order", "tools_called_in_order")


def _check_value(kind: str, value, where: str, at: str) -> None:
    if kind in SHAPES and not SHAPES[kind][0](value):
        raise ConfigError(f"{where}: {at}{kind}: {value!r} is not valid", hint=f"write {SHAPES[kind][1]}")


def _tools_named(expect: dict) -> list[str]:
    """The tool names an expectation table mentions."""
    names = []
    for kind in ("tool_called", "tools_called_in_order"):
        for item in (expect.get(kind) if isinstance(expect.get(kind), list) else [expect.get(kind)]):
            name = item.get("name") if isinstance(item, dict) else item
            if isinstance(name, str):
                names.append(name)
    status = expect.get("tool_result_status")
    if isinstance(status, dict) and isinstance(status.get("name"), str):
        names.append(status["name"])
    banned = expect.get("no_tool_called")
    names += [banned] if isinstance(banned, str) else banned if isinstance(banned, list) else []
    return names


def _check_turns(turns, where: str, kinds, turn_kinds) -> list[dict]:
    if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
        raise ConfigError(f"{where}: turns: must be a list of tables", hint='write [[turns]] user = "Hello"')
    out = []
    for number, turn in enumerate(turns, 1):
        at = f"turn {number}"
        unknown = sorted(set(turn) - set(TURN_KEYS))
        if unknown:
            raise ConfigError(f"{where}: {at}: unknown key {unknown[0]!r}", hint=f"a turn takes {', '.join(TURN_KEYS)}")
        user = turn.get("user")
        if not isinstance(user, str) or not user.strip():
            raise ConfigError(f"{where}: {at}: no user text", hint='write user = "what the user says"')
        if len(user.encode()) > MAX_USER_TEXT:
            raise ConfigError(f"{where}: {at}: user text is {len(user.encode())} bytes",
                              hint=f"send-app-message takes at most 65,536 bytes; keep a turn under {MAX_USER_TEXT}")
        if "within_seconds" in turn and not _is_seconds(turn["within_seconds"]):
            raise ConfigError(f"{where}: {at}: within_seconds: must be a positive number of seconds")
        expect = turn.get("expect", {})
        if not isinstance(expect, dict):
            raise ConfigError(f"{where}: {at}: expect: must be a table", hint='write expect.reply_contains = "..."')
        for kind, value in expect.items():
            if kind not in turn_kinds:
                close = suggest(kind, turn_kinds)
                hint = f"did you mean {close!r}?" if close else f"a turn takes: {', '.join(sorted(turn_kinds))}"
                raise ConfigError(f"{where}: {at}: unknown expectation kind {kind!r}", hint=hint)
            _check_value(kind, value, where, f"{at}: expect.")
        out.append({"user": user, "expect": dict(expect), **({"within_seconds": turn["within_seconds"]}
                                                             if "within_seconds" in turn else {})})
    return out


def _check_auth(auth, where: str, at: str) -> None:
    if not isinstance(auth, dict) or auth.get("type") not in AUTH_FIELDS:
        raise ConfigError(f"{where}: {at}auth: must be a table with type = one of {', '.join(AUTH_FIELDS)}",
                          hint='write auth = { type = "hmac", secret = { "$env" = "TOOL_HMAC_SECRET" } }')
    needed = AUTH_FIELDS[auth["type"]]
    for key in needed:
        if key == "location" and key not in auth:
            continue
        if not (isinstance(auth.get(key), str) and auth[key]) and not isinstance(auth.get(key), dict):
            raise ConfigError(f"{where}: {at}auth.{key}: required for type {auth['type']!r}",
                              hint=f'write {key} = {{ "$env" = "NAME" }} to read it from the environment')
    extra = sorted(set(auth) - {"type", *needed})
    if extra:
        raise ConfigError(f"{where}: {at}auth: unknown key {extra[0]!r}", hint=f"type {auth['type']!r} takes {list(needed)}")


def _check_tools(tools, where: str, backend: bool) -> dict:
    if not isinstance(tools, dict):
        raise ConfigError(f"{where}: tools: must be a table of tools", hint='write [tools.schedule_meeting] url = "..."')
    for name, spec in tools.items():
        at = f"tools.{name}."
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: tools.{name}: must be a table", hint='write url = "http://127.0.0.1:9000/tools/NAME"')
        check_keys(spec, TOOL_KEYS, where, prefix=at)
        url = spec.get("url")
        if url is not None and not (isinstance(url, str) and re.match(r"^(https?://|\{tool_backend\})", url)):
            raise ConfigError(f"{where}: {at}url: {url!r} is not an http(s) URL",
                              hint='write url = "http://127.0.0.1:9000/tools/NAME" or "{tool_backend}/tools/NAME"')
        if isinstance(url, str) and "{tool_backend}" in url and not backend:
            raise ConfigError(f"{where}: {at}url: uses {{tool_backend}} but [scenario] names no tool_backend",
                              hint='add tool_backend = "examples/tool_backend.py" under [scenario]')
        if "timeout_seconds" in spec and not _is_seconds(spec["timeout_seconds"]):
            raise ConfigError(f"{where}: {at}timeout_seconds: must be a positive number of seconds")
        if "headers" in spec and not (isinstance(spec["headers"], dict)
                                      and all(isinstance(v, (str, dict)) for v in spec["headers"].values())):
            raise ConfigError(f"{where}: {at}headers: must be a table of strings")
        if "auth" in spec:
            _check_auth(spec["auth"], where, at)
    return {name: dict(spec) for name, spec in tools.items()}


def _check_rules(rules, where: str) -> list[dict]:
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise ConfigError(f"{where}: sandbox.rules: must be a list of tables", hint='write [[sandbox.rules]] when = "book"')
    for number, rule in enumerate(rules, 1):
        at = f"sandbox.rules[{number}]"
        unknown = sorted(set(rule) - set(RULE_KEYS))
        if unknown:
            raise ConfigError(f"{where}: {at}: unknown key {unknown[0]!r}", hint=f"a rule takes {', '.join(RULE_KEYS)}")
        try:
            re.compile(rule.get("when") if isinstance(rule.get("when"), str) else "(")
        except re.error:
            raise ConfigError(f"{where}: {at}.when: must be a regular expression (searched in the user's words)",
                              hint='write when = "(?i)book"') from None
        if "reply" in rule and not isinstance(rule["reply"], str):
            raise ConfigError(f"{where}: {at}.reply: must be a string")
        call = rule.get("tool_call")
        if call is not None and not (isinstance(call, dict) and isinstance(call.get("name"), str)
                                     and set(call) <= {"name", "arguments"} and isinstance(call.get("arguments", {}), dict)):
            raise ConfigError(f"{where}: {at}.tool_call: must be {{ name = \"...\", arguments = {{ ... }} }}")
        done = rule.get("objective_completed")
        if done is not None and not _is_named(done, "output_variables"):
            raise ConfigError(f"{where}: {at}.objective_completed: must be {{ name = \"...\", output_variables = {{ ... }} }}")
        if "guardrail_triggered" in rule and not isinstance(rule["guardrail_triggered"], str):
            raise ConfigError(f"{where}: {at}.guardrail_triggered: must be a guardrail name")
    return [dict(r) for r in rules]


def _check_simulated_user(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: simulated_user: must be a table", hint='write [simulated_user] goal = "..."')
    check_keys(value, SIMULATED_USER_KEYS, where, prefix="simulated_user.")
    if not (isinstance(value.get("goal"), str) and value["goal"].strip()):
        raise ConfigError(f"{where}: simulated_user.goal: required", hint='write goal = "book a meeting for tomorrow"')
    if "persona" in value and not isinstance(value["persona"], str):
        raise ConfigError(f"{where}: simulated_user.persona: must be a string")
    turns = value.get("max_turns", 6)
    if not (isinstance(turns, int) and not isinstance(turns, bool) and 1 <= turns <= 50):
        raise ConfigError(f"{where}: simulated_user.max_turns: must be a whole number from 1 to 50")
    return {"goal": value["goal"], "persona": value.get("persona", ""), "max_turns": turns}


def _table(data: dict, key: str, where: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key}: must be a table", hint=f"write [{key}] with keys under it")
    return value


def load_scenario(path: str | Path, kinds, persona_tools=None) -> Scenario:
    """Read and check one scenario file; every problem is a ConfigError naming file and field (and turn).

    `persona_tools(persona_config) -> set of tool names | None` lets a tool the persona lacks be
    refused now (in a turn's expectations, a sandbox rule or [tools]); None skips that check.
    """
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
    for key in ("mode", "tool_backend"):
        if key in head and not isinstance(head[key], str):
            raise ConfigError(f"{where}: scenario.{key}: must be a string")
    if head.get("mode", "video") not in ("chat", "video"):
        raise ConfigError(f"{where}: scenario.mode: {head['mode']!r} is not a mode", hint='write "chat" or "video"')
    if "turn_timeout_seconds" in head and not _is_seconds(head["turn_timeout_seconds"]):
        raise ConfigError(f"{where}: scenario.turn_timeout_seconds: must be a positive number of seconds")
    if head.get("tool_backend"):
        head["tool_backend"] = project_file(head["tool_backend"], path)
        if not Path(head["tool_backend"]).is_file():
            raise ConfigError(f"{where}: scenario.tool_backend: {head['tool_backend']} not found",
                              hint="name a Python file with a WSGI `app`, e.g. examples/tool_backend.py")
    policies = head.get("policies", [])
    if not _str_list(policies):
        raise ConfigError(f"{where}: scenario.policies: must be a list of objectives/guardrails config files",
                          hint='write policies = ["configs/objectives/facilitator_core.json"]')
    policies = [project_file(p, path) for p in policies]
    for policy in policies:
        if not Path(policy).is_file():
            raise ConfigError(f"{where}: scenario.policies: {policy} not found",
                              hint="paths are relative to the project root (the folder with tavus-harness.toml)")
        load_file(policy, what="policy config")
    from .expectations import BUILTIN_KINDS, TURN_KINDS
    turn_kinds = [k for k in kinds if k in TURN_KINDS or k not in BUILTIN_KINDS]
    turns = _check_turns(data.get("turns", []), where, kinds, turn_kinds)
    tools = _check_tools(data.get("tools", {}), where, bool(head.get("tool_backend")))
    simulated = _check_simulated_user(data["simulated_user"], where) if "simulated_user" in data else {}
    if "rules" in sandbox:
        sandbox = {**sandbox, "rules": _check_rules(sandbox["rules"], where)}
    transcript = sandbox.get("transcript", [])
    if not (isinstance(transcript, list) and all(isinstance(t, dict) and isinstance(t.get("content"), str)
                                                 and isinstance(t.get("role", "user"), str) for t in transcript)):
        raise ConfigError(f"{where}: sandbox.transcript: must be a list of {{ role, content }} tables")
    if "participant_joins" in sandbox and not isinstance(sandbox["participant_joins"], bool):
        raise ConfigError(f"{where}: sandbox.participant_joins: must be true or false",
                          hint="write participant_joins = true (a participant joins: the replica greets them)")
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
        _check_value(kind, value, where, "expect.")
    known = persona_tools(head["persona_config"]) if persona_tools and head.get("persona_config") else None
    if known is not None:
        _check_tool_names(known, where, turns, expect, tools, sandbox.get("rules") or [])
    return Scenario(mode=head.get("mode", "video"), policies=policies, turns=turns, tools=tools, simulated_user=simulated,
                    tool_backend=head.get("tool_backend"), turn_timeout_seconds=float(head.get("turn_timeout_seconds", 30)),
                    path=path, name=str(head.get("name") or path.stem), persona_config=head.get("persona_config"),
                    persona_id=head.get("persona_id"), persona_name=head.get("persona_name"),
                    conversation_config=head.get("conversation_config"), overrides=dict(overrides),
                    sandbox=sandbox, events=events, expect=expect, end_after_seconds=head.get("end_after_seconds"),
                    timeout_seconds=float(head.get("timeout_seconds") or 60), expected_to_fail=bool(head.get("expected_to_fail")))


def _check_tool_names(known: set, where: str, turns, expect, tools, rules) -> None:
    """Refuse a tool the persona does not have, naming where the scenario names it."""
    def refuse(at: str, name: str):
        hint = f"the persona's tools: {', '.join(sorted(known))}" if known else "the persona has no tools"
        raise ConfigError(f"{where}: {at}: unknown tool {name!r}", hint=hint)
    for number, turn in enumerate(turns, 1):
        for name in _tools_named(turn["expect"]):
            if name not in known:
                refuse(f"turn {number}", name)
    for name in _tools_named(expect):
        if name not in known:
            refuse("expect", name)
    for name in tools:
        if name not in known:
            refuse(f"tools.{name}", name)
    for number, rule in enumerate(rules, 1):
        name = (rule.get("tool_call") or {}).get("name")
        if name and name not in known:
            refuse(f"sandbox.rules[{number}].tool_call", name)


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
