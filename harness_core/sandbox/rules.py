"""The deterministic rule engine of a sandbox conversation (`PUT /_sandbox/conversations/{id}/rules`).

A rule: `{"when": regex, "reply": text, "tool_call": {"name", "arguments"}, "objective_completed":
{"name", "output_variables"}, "guardrail_triggered": name}`; `when` is searched case-insensitively
in the user's words and the first matching rule wins. Without a match the replica gives the plain
acknowledgement `Got it: <the user's words>` (our wording).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

KEYS = ("when", "reply", "tool_call", "objective_completed", "guardrail_triggered")
MAX_RULES = 200  # our limit: a rule list is a test's script, not a knowledge base


class RuleError(ValueError):
    """A rule that cannot be used; the message names the rule and the field."""


@dataclass
class Rule:
    """One parsed rule (see the module docstring)."""

    when: re.Pattern
    reply: str | None = None
    tool_call: dict | None = None
    objective_completed: dict | None = None
    guardrail_triggered: str | None = None
    source: dict = field(default_factory=dict)


def acknowledgement(text: str) -> str:
    """What the replica says to words no rule matched."""
    return f"Got it: {text}"


def parse_rules(rules, tools: set[str], objectives: set[str], guardrails: set[str]) -> list[Rule]:
    """Check and compile `rules` against what the persona has; RuleError names the first problem."""
    if not isinstance(rules, list):
        raise RuleError('rules: must be an array of rules, e.g. [{"when": "book", "reply": "Booked."}]')
    if len(rules) > MAX_RULES:
        raise RuleError(f"rules: at most {MAX_RULES} rules; got {len(rules)}")
    return [parse_rule(rule, f"rules[{i}]", tools, objectives, guardrails) for i, rule in enumerate(rules)]


def parse_rule(rule, where: str, tools: set[str], objectives: set[str], guardrails: set[str]) -> Rule:
    if not isinstance(rule, dict):
        raise RuleError(f"{where}: must be an object with keys among {', '.join(KEYS)}")
    unknown = sorted(set(rule) - set(KEYS))
    if unknown:
        raise RuleError(f"{where}: unknown key '{unknown[0]}'; known: {', '.join(KEYS)}")
    when = rule.get("when")
    if not isinstance(when, str) or not when:
        raise RuleError(f"{where}.when: required, a regular expression searched in the user's words")
    try:
        pattern = re.compile(when, re.IGNORECASE)
    except re.error as exc:
        raise RuleError(f"{where}.when: not a valid regular expression ({exc})") from None
    reply = rule.get("reply")
    if reply is not None and not isinstance(reply, str):
        raise RuleError(f"{where}.reply: must be a string")
    tool_call = rule.get("tool_call")
    if tool_call is not None:
        named(tool_call, f"{where}.tool_call", "arguments", tools, "tool")
    done = rule.get("objective_completed")
    if done is not None:
        named(done, f"{where}.objective_completed", "output_variables", objectives, "objective")
    guardrail = rule.get("guardrail_triggered")
    if guardrail is not None:
        if not isinstance(guardrail, str) or not guardrail:
            raise RuleError(f"{where}.guardrail_triggered: must be a guardrail's name")
        known(guardrail, guardrails, f"{where}.guardrail_triggered", "guardrail")
    return Rule(pattern, reply, tool_call, done, guardrail, rule)


def named(value, where: str, extra: str, names: set[str], kind: str) -> None:
    """`{"name": …, extra: {…}}` naming one of `names`."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise RuleError(f'{where}: must be {{"name": "...", "{extra}": {{...}}}}')
    unknown = sorted(set(value) - {"name", extra})
    if unknown:
        raise RuleError(f"{where}: unknown key '{unknown[0]}'; known: name, {extra}")
    if not isinstance(value.get(extra, {}), dict):
        raise RuleError(f"{where}.{extra}: must be an object")
    known(value["name"], names, f"{where}.name", kind)


def known(name: str, names: set[str], where: str, kind: str) -> None:
    if name not in names:
        have = ", ".join(sorted(names)) or "none"
        raise RuleError(f"{where}: the persona has no {kind} '{name}' (it has: {have})")


def first_match(rules: list[Rule], text: str) -> Rule | None:
    """The first rule whose `when` is found in `text`."""
    return next((rule for rule in rules if rule.when.search(text or "")), None)
