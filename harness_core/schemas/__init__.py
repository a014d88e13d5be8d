"""The Tavus request rules, written once as JSON Schemas (draft 2020-12).

Derived from ../shared/tavus-api/CONTRACT.md (§2 resources, §4 layers, §5 properties, §3 PATCH).
The sandbox validates strictly with jsonschema; the harness validates before sending with
`strict=False`, where an unknown enum value (a new model or engine name) is only reported as
`is_enum=True`, because the real catalogue moves faster than ours, and with engine="quick"
(see quick.py), which gives the same problems without jsonschema's import cost.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
KINDS = ("persona", "pal", "conversation", "objectives", "guardrail", "guardrails_set", "json_patch")
ENGINES = ("jsonschema", "quick")


# Lists/objects inside lists/objects, the most a config file, a request body or a stored record may
# have. Invented: Tavus documents no limit. A persona's deepest field (a tool's JSON Schema
# `parameters`) needs about a dozen; 64 leaves room and keeps every walk (merge, redaction, copy,
# validation) far from Python's recursion limit: deeper data is refused before anything recurses.
MAX_DEPTH = 64


def too_deep(data, limit: int = MAX_DEPTH) -> str | None:
    """The dotted path of the first value nested deeper than `limit` lists/objects, or None.

    Iterative, so it can measure what would make a recursive walker fail.
    """
    stack = [(data, "", 1)]
    while stack:
        value, where, depth = stack.pop()
        if not isinstance(value, (dict, list)):
            continue
        if depth > limit:
            return where or "(top)"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            child_path = f"{where}[{key}]" if isinstance(value, list) else (f"{where}.{key}" if where else str(key))
            stack.append((child, child_path, depth + 1))
    return None


@dataclass(frozen=True)
class Problem:
    """One broken rule: the dotted path of the field, a short message, and whether it is an enum miss."""

    path: str
    message: str
    is_enum: bool = False


@lru_cache(maxsize=None)
def _layers() -> dict:
    return json.loads((HERE / "layers.json").read_text())


@lru_cache(maxsize=None)
def schema(kind: str) -> dict:
    """The JSON Schema of a request body kind (see KINDS), with the shared layer definitions."""
    if kind not in KINDS:
        raise KeyError(f"unknown schema kind {kind!r}; known: {', '.join(KINDS)}")
    doc = json.loads((HERE / f"{kind}.json").read_text())
    doc.setdefault("$defs", {}).update(_layers()["$defs"])
    return doc


@lru_cache(maxsize=None)
def _validator(kind: str, engine: str):
    if engine == "quick":
        from .quick import QuickValidator
        return QuickValidator(schema(kind))
    if engine != "jsonschema":
        raise KeyError(f"unknown validation engine {engine!r}; known: {', '.join(ENGINES)}")
    from jsonschema import Draft202012Validator
    return Draft202012Validator(schema(kind))


def check(kind: str, body, *, strict: bool = True, engine: str = "jsonschema") -> list[Problem]:
    """Every rule of `kind` that `body` breaks, as Problems (empty list when it is valid).

    With strict=False enum misses are still returned, marked is_enum=True, so the caller can
    treat them as warnings. Both engines give the same Problems; "quick" loads faster.
    """
    problems: list[Problem] = []
    for error in sorted(_validator(kind, engine).iter_errors(body), key=lambda e: list(e.absolute_path)):
        problems.extend(_problems(error))
    if strict:  # the sandbox: an enum miss is an error like any other
        problems = [Problem(p.path, p.message, False) for p in problems]
    return problems


@lru_cache(maxsize=None)
def _schema_rules():
    from .quick import QuickValidator
    return QuickValidator(json.loads((HERE / "tool_parameters.json").read_text()))


def schema_problems(candidate) -> list[Problem]:
    """What makes `candidate` an invalid JSON Schema (e.g. a tool's `parameters`), by the quick validator.

    The rules are tool_parameters.json, the meta-schema's types for the keywords tools use; jsonschema
    is not imported (tests/unit/test_schema_engines.py checks it agrees with jsonschema's check_schema).
    """
    return [p for e in sorted(_schema_rules().iter_errors(candidate), key=lambda e: list(e.absolute_path))
            for p in _problems(e)]


def _dotted(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problems(error) -> list[Problem]:
    path = _dotted(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        return [Problem(_dotted([*error.absolute_path, key]), "unknown field")
                for key in error.instance if key not in known]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [Problem(_dotted([*error.absolute_path, missing]), "is required")]
    if error.validator == "enum":
        choices = ", ".join(map(str, error.validator_value))
        return [Problem(path or "(body)", f"{error.instance!r} is not one of: {choices}", is_enum=True)]
    if error.validator == "type":
        return [Problem(path or "(body)", f"must be {_article(error.validator_value)}, not {_json_type(error.instance)}")]
    words = _in_words(error.validator, error.validator_value, error.instance)
    return [Problem(path or "(body)", words or error.message)]


def _in_words(keyword: str, rule, value) -> str | None:
    """What a broken `keyword` rule asks for, in words a user can act on (never a repr of the schema
    or a long value); None for a keyword without words here (its validator's message is used)."""
    if keyword == "not" and isinstance(rule, dict) and list(rule) == ["required"]:
        return f"set only one of {' / '.join(rule['required'])}, not both"
    if keyword == "pattern":
        return ("must use only letters, digits and _ (no spaces)" if rule == "^[A-Za-z0-9_]+$"
                else f"must match the pattern {rule}")
    counted = {"maxLength": ("must be at most", "character"), "minLength": ("must be at least", "character"),
               "maxItems": ("must have at most", "item"), "minItems": ("must have at least", "item")}
    if keyword in counted:
        says, unit = counted[keyword]
        return f"{says} {rule} {unit}{'' if rule == 1 else 's'} (it has {len(value)})"
    if keyword == "uniqueItems":
        return "must not repeat an item"
    if keyword in ("minimum", "maximum"):
        return f"must be {'at least' if keyword == 'minimum' else 'at most'} {rule}, not {value}"
    if keyword == "const":
        return f"must be {rule!r}"
    return None


def _article(types) -> str:
    names = {"string": "a string", "integer": "an integer", "boolean": "a boolean (true/false)",
             "array": "a list", "object": "an object", "number": "a number", "null": "null"}
    if isinstance(types, list):
        return " or ".join(names.get(t, t) for t in types)
    return names.get(types, types)


def _json_type(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)
