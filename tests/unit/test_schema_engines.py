"""The quick validator (used before every send) and jsonschema (the sandbox's) find the same problems."""
from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harness_core.schemas import KINDS, check, schema
from harness_core.schemas.quick import QuickValidator, equal

junk = st.recursive(st.none() | st.booleans() | st.integers(-3, 5000) | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=5), inner, max_size=2),
                    max_leaves=5)


def shaped(node: dict, root: dict, depth: int = 0):
    """Bodies that mostly follow the schema, with junk and unknown keys mixed in at every level."""
    if depth > 6 or not isinstance(node, dict):
        return junk
    if "$ref" in node:
        target = root
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        return shaped(target, root, depth + 1)
    if "enum" in node:
        return st.sampled_from(node["enum"]) | junk
    if "const" in node:
        return st.just(node["const"]) | junk
    kind = node.get("type")
    if isinstance(kind, list):
        return st.sampled_from(kind).flatmap(lambda one: shaped({**node, "type": one}, root, depth + 1))
    if kind == "object" or "properties" in node:
        fields = {name: shaped(sub, root, depth + 1) for name, sub in node.get("properties", {}).items()}
        needed = {name: fields.get(name, junk) for name in node.get("required", [])}
        extra = st.dictionaries(st.sampled_from(["zz_unknown", "language", "name"]), junk, max_size=1)
        some = st.fixed_dictionaries({}, optional=fields)
        complete = st.fixed_dictionaries(needed, optional={k: v for k, v in fields.items() if k not in needed})
        return st.builds(lambda known, more: {**known, **more}, complete | some, extra) | junk
    if kind == "array":
        item = shaped(node.get("items", {}), root, depth + 1)
        edges = st.tuples(item, st.sampled_from(around(node, "minItems", "maxItems") or [2]))
        return st.lists(item, max_size=3) | edges.map(lambda pair: [pair[0]] * pair[1]) | junk
    if "allOf" in node:
        return shaped(node["allOf"][0], root, depth + 1) | junk
    if kind == "string":
        lengths = around(node, "minLength", "maxLength")
        return (st.text(max_size=8) | st.sampled_from(["abc_1", "a-b.c", "9"])
                | (st.sampled_from(lengths).map("x".__mul__) if lengths else st.nothing()))
    if kind in ("integer", "number"):
        edges = around(node, "minimum", "maximum")
        return st.integers(-2, 100) | st.floats(-5, 1e4) | (st.sampled_from(edges) if edges else st.nothing())
    return st.booleans() if kind == "boolean" else junk


def around(node: dict, *limits: str) -> list:
    """Values on and just beside each limit the node sets, where off-by-one mistakes would show."""
    return sorted({max(node[k] + d, 0) for k in limits if k in node for d in (-1, 0, 1)})


@pytest.mark.parametrize("kind", KINDS)
def test_every_schema_uses_only_keywords_the_quick_validator_knows(kind):
    QuickValidator(schema(kind))


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_both_engines_report_the_same_problems(kind, data):
    body = data.draw(shaped(schema(kind), schema(kind)))
    quick = check(kind, body, strict=False, engine="quick")
    reference = check(kind, body, strict=False, engine="jsonschema")
    assert quick == reference, json.dumps(body, default=str)[:500]


def test_a_known_bad_persona_gives_named_problems_in_both_engines():
    body = {"persona_name": 5, "system_prompt": "x", "pipeline_mode": "fulll", "colour": "red",
            "layers": {"llm": {"model": "tavus-gpt-oss", "speculative_inference": "yes"}}}
    for engine in ("quick", "jsonschema"):
        problems = {(p.path, p.is_enum) for p in check("persona", body, strict=False, engine=engine)}
        assert {("persona_name", False), ("pipeline_mode", True), ("colour", False),
                ("layers.llm.speculative_inference", False)} <= problems


def test_a_schema_with_an_unsupported_keyword_is_refused():
    with pytest.raises(ValueError, match="oneOf"):
        QuickValidator({"type": "object", "properties": {"a": {"oneOf": [{"type": "string"}]}}})


def test_json_equality_keeps_booleans_apart_from_numbers():
    assert equal([1, {"a": 2.0}], [1.0, {"a": 2}])
    assert not equal(True, 1) and not equal([0], [False]) and not equal({"a": 1}, {"a": 1, "b": 2})


# --- tool parameters: the quick validator's schema rules agree with jsonschema's meta-schema --------------
TYPE_NAMES = ["array", "boolean", "integer", "null", "number", "object", "string"]
ODD = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.booleans(), st.none(), st.lists(st.integers(), max_size=2))
TOOL_SCHEMAS = st.recursive(
    st.fixed_dictionaries({}, optional={
        "type": st.one_of(st.sampled_from(TYPE_NAMES), st.lists(st.sampled_from(TYPE_NAMES), max_size=2), ODD),
        "description": st.one_of(st.text(max_size=5), ODD),
        "required": st.one_of(st.lists(st.text(max_size=3), max_size=2), ODD),
        "enum": st.one_of(st.lists(st.integers(), max_size=2), ODD),
        "minLength": st.one_of(st.integers(0, 5), ODD),
        "maximum": st.one_of(st.floats(allow_nan=False, allow_infinity=False), ODD)}),
    lambda inner: st.one_of(
        st.builds(lambda p: {"type": "object", "properties": p}, st.dictionaries(st.text(max_size=3), inner, max_size=2)),
        st.builds(lambda i: {"type": "array", "items": i}, st.one_of(inner, ODD)),
        st.builds(lambda a: {"additionalProperties": a}, st.one_of(inner, st.booleans(), ODD))),
    max_leaves=4)


@given(TOOL_SCHEMAS)
@example({"type": []})                      # the meta-schema asks for at least one type
@example({"type": ["string", "string"]})    # ... and no type twice
@example({"required": ["", ""]})            # required names are unique
def test_tool_parameter_schemas_are_judged_as_jsonschema_judges_them(candidate):
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    from harness_core.schemas import schema_problems
    try:
        Draft202012Validator.check_schema(candidate)
        valid = True
    except SchemaError:
        valid = False
    assert (schema_problems(candidate) == []) is valid, candidate


def test_checking_a_persona_with_tools_imports_neither_jsonschema_nor_sqlite(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    code = ("import sys\nfrom harness_core.cli import program\n"
            "try:\n    program.run(['tune', 'persona', '--dry-run', '--json', '--config', sys.argv[1]])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "print('JSONSCHEMA', 'jsonschema' in sys.modules, file=sys.stderr)\n"
            "print('SQLITE', 'sqlite3' in sys.modules, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(repo / "configs/persona/assistant_modular.json")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert "JSONSCHEMA False" in proc.stderr, proc.stderr
    assert "SQLITE False" in proc.stderr, "a dry run has no use for the event store (3 ms of start-up)"
    assert json.loads(proc.stdout)["body"]["layers"]["llm"]["tools"], "the tools were there to be checked"
