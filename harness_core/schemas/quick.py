"""A small validator for the part of JSON Schema (draft 2020-12) that our request schemas use.

The harness checks every payload before it sends it, dry runs included. Importing jsonschema
costs ~50 ms, a third of the CLI's start-up; this module loads in about a millisecond. The
sandbox keeps jsonschema as its reference engine, and tests/unit/test_schema_engines.py feeds
random bodies to both and requires the same problems. A schema that uses a keyword this module
does not implement is refused when the validator is built, so the two cannot drift silently.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

ANNOTATIONS = {"$schema", "$id", "$comment", "$defs", "title", "description", "examples", "default"}


@dataclass
class SchemaError:
    """One broken rule; the same attributes the checker reads from a jsonschema ValidationError."""

    validator: str
    validator_value: Any
    instance: Any
    schema: dict
    absolute_path: tuple
    message: str


def is_number(value) -> bool:
    """A JSON number: int or float, never a boolean."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: is_number(v) and (isinstance(v, int) or v.is_integer()),
    "number": is_number,
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def equal(one, two) -> bool:
    """JSON equality: true is not 1, false is not 0, containers compared member by member."""
    if isinstance(one, str) or isinstance(two, str):
        return one == two
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(equal(a, b) for a, b in zip(one, two))
    if isinstance(one, dict) and isinstance(two, dict):
        return one.keys() == two.keys() and all(equal(one[k], two[k]) for k in one)
    if isinstance(one, bool) or isinstance(two, bool):
        return type(one) is type(two) and one == two
    return one == two


def _too_many(limit: int) -> str:
    return "is expected to be empty" if limit == 0 else "is too long"


def _too_few(limit: int) -> str:
    return "should be non-empty" if limit == 1 else "is too short"


class QuickValidator:
    """Validates instances against one schema document; `iter_errors` yields SchemaErrors."""

    def __init__(self, schema: dict):
        self.root = schema
        _refuse_unknown_keywords(schema, "#")

    def is_valid(self, instance, schema: dict | None = None) -> bool:
        return next(self._descend(instance, self.root if schema is None else schema, ()), None) is None

    def iter_errors(self, instance) -> Iterator[SchemaError]:
        return self._descend(instance, self.root, ())

    def _descend(self, instance, schema: dict | bool, path: tuple) -> Iterator[SchemaError]:
        if schema is True or schema is False:
            if schema is False:
                yield SchemaError("false", False, instance, {}, path, f"False schema does not allow {instance!r}")
            return
        for keyword, value in schema.items():
            rule = RULES.get(keyword)
            if rule is None:
                continue
            for outcome in rule(self, value, instance, schema, path):
                if isinstance(outcome, SchemaError):
                    yield outcome
                else:
                    yield SchemaError(keyword, value, instance, schema, path, outcome)

    def _resolve(self, ref: str) -> dict:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref is supported, not {ref!r}")
        node = self.root
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node


# Each rule yields a message (an error of its own keyword) or SchemaErrors found further down.
def _type(v, types, instance, schema, path):
    types = [types] if isinstance(types, str) else types
    if not any(TYPES[t](instance) for t in types):
        yield f"{instance!r} is not of type {', '.join(repr(t) for t in types)}"


def _enum(v, choices, instance, schema, path):
    if not any(equal(choice, instance) for choice in choices):
        yield f"{instance!r} is not one of {choices!r}"


def _const(v, const, instance, schema, path):
    if not equal(const, instance):
        yield f"{const!r} was expected"


def _properties(v, properties, instance, schema, path):
    if isinstance(instance, dict):
        for name, subschema in properties.items():
            if name in instance:
                yield from v._descend(instance[name], subschema, (*path, name))


def _additional(v, extra_schema, instance, schema, path):
    if not isinstance(instance, dict):
        return
    extras = [k for k in instance if k not in schema.get("properties", {})]
    if isinstance(extra_schema, dict):
        for name in extras:
            yield from v._descend(instance[name], extra_schema, (*path, name))
    elif extra_schema is False and extras:
        names = sorted(extras, key=str)
        yield (f"Additional properties are not allowed ({', '.join(map(repr, names))} "
               f"{'was' if len(names) == 1 else 'were'} unexpected)")


def _required(v, names, instance, schema, path):
    if isinstance(instance, dict):
        for name in names:
            if name not in instance:
                yield f"{name!r} is a required property"


def _items(v, item_schema, instance, schema, path):
    if isinstance(instance, list):
        for index, item in enumerate(instance):
            yield from v._descend(item, item_schema, (*path, index))


def _size(kind: type, most: bool):
    """minItems/maxItems (kind=list) and minLength/maxLength (kind=str): a rule on len()."""
    def rule(v, limit, instance, schema, path):
        if isinstance(instance, kind) and (len(instance) > limit if most else len(instance) < limit):
            yield f"{instance!r} {_too_many(limit) if most else _too_few(limit)}"
    return rule


def _unique(v, unique, instance, schema, path):
    if unique and isinstance(instance, list):
        if any(equal(a, b) for i, a in enumerate(instance) for b in instance[i + 1:]):
            yield f"{instance!r} has non-unique elements"


def _pattern(v, pattern, instance, schema, path):
    if isinstance(instance, str) and not re.search(pattern, instance):
        yield f"{instance!r} does not match {pattern!r}"


def _minimum(v, limit, instance, schema, path):
    if is_number(instance) and instance < limit:
        yield f"{instance!r} is less than the minimum of {limit!r}"


def _maximum(v, limit, instance, schema, path):
    if is_number(instance) and instance > limit:
        yield f"{instance!r} is greater than the maximum of {limit!r}"


def _ref(v, ref, instance, schema, path):
    yield from v._descend(instance, v._resolve(ref), path)


def _all_of(v, subschemas, instance, schema, path):
    for subschema in subschemas:
        yield from v._descend(instance, subschema, path)


def _if(v, condition, instance, schema, path):
    branch = "then" if v.is_valid(instance, condition) else "else"
    if branch in schema:
        yield from v._descend(instance, schema[branch], path)


def _not(v, forbidden, instance, schema, path):
    if v.is_valid(instance, forbidden):
        yield f"{instance!r} should not be valid under {forbidden!r}"


RULES = {"type": _type, "enum": _enum, "const": _const, "properties": _properties,
         "additionalProperties": _additional, "required": _required, "items": _items,
         "minItems": _size(list, most=False), "maxItems": _size(list, most=True),
         "minLength": _size(str, most=False), "maxLength": _size(str, most=True), "uniqueItems": _unique,
         "pattern": _pattern, "minimum": _minimum, "maximum": _maximum, "$ref": _ref, "allOf": _all_of,
         "if": _if, "not": _not}
KNOWN = set(RULES) | ANNOTATIONS | {"then", "else"}
SUBSCHEMA = {"additionalProperties", "items", "if", "then", "else", "not"}  # keywords holding one schema


def _refuse_unknown_keywords(schema, where: str) -> None:
    if isinstance(schema, bool):
        return
    unknown = set(schema) - KNOWN
    if unknown:
        raise ValueError(f"{where}: keyword(s) {', '.join(sorted(unknown))} not supported by the quick validator")
    for keyword in SUBSCHEMA & set(schema):
        _refuse_unknown_keywords(schema[keyword], f"{where}/{keyword}")
    for keyword in ("properties", "$defs"):
        for name, subschema in schema.get(keyword, {}).items():
            _refuse_unknown_keywords(subschema, f"{where}/{keyword}/{name}")
    for index, subschema in enumerate(schema.get("allOf", [])):
        _refuse_unknown_keywords(subschema, f"{where}/allOf/{index}")
