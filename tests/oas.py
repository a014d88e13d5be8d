"""The official Tavus OpenAPI file (../shared/tavus-api/openapi.official-2026-05.yaml beside the
checkout, as in CI: the 2026-05 mirror that CONTRACT.md cites as OAS) as test data: its request examples and a check of a response against the
documented schema (field names, JSON types, nullability, envelope).

    for name, body in request_examples("/v2/documents", "post"): ...
    assert conforms(response_schema("/v2/documents", "post", 200), resp.json()) == []
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

OAS_FILE = Path(__file__).resolve().parents[2] / "shared" / "tavus-api" / "openapi.official-2026-05.yaml"
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}


@lru_cache(maxsize=1)
def spec() -> dict:
    """The parsed OpenAPI document."""
    import yaml

    return yaml.safe_load(OAS_FILE.read_text(encoding="utf-8"))


def operation(path: str, method: str) -> dict:
    """The operation object of `method` on `path` (as written in the file, e.g. "/v2/replicas/{replica_id}")."""
    return spec()["paths"][path][method.lower()]


def request_examples(path: str, method: str) -> list[tuple[str, object]]:
    """Every named request example of an operation, as (name, body), in file order."""
    body = operation(path, method).get("requestBody") or {}
    media = (body.get("content") or {}).get("application/json") or {}
    examples = [(name, ex["value"]) for name, ex in (media.get("examples") or {}).items() if "value" in ex]
    if not examples and "example" in media:
        examples = [("example", media["example"])]
    props = (media.get("schema") or {}).get("properties") or {}
    if not examples and any("example" in sub for sub in props.values()):
        # no named example: the body the field-level examples make (what the docs page shows)
        examples = [("field examples", {key: sub["example"] for key, sub in props.items() if "example" in sub})]
    return examples


def response_statuses(path: str, method: str) -> list[int]:
    """The documented status codes of an operation."""
    return [int(code) for code in operation(path, method)["responses"]]


def response_schema(path: str, method: str, status: int) -> dict | None:
    """The JSON schema of a documented response, or None when the response has no JSON body."""
    response = operation(path, method)["responses"][str(status)]
    return (((response.get("content") or {}).get("application/json") or {}).get("schema"))


def conforms(schema: dict | None, value, where: str = "", complete: bool = False) -> list[str]:
    """What in `value` differs from the documented `schema`: a wrong JSON type, null where the field
    is not nullable, and (with `complete`) a documented top-level field that is missing. Fields the
    schema does not list are allowed (the docs list what a response at least carries)."""
    if schema is None:
        return []
    problems = []
    if value is None:
        return [] if schema.get("nullable") else [f"{where or '(top)'}: null, not nullable"]
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    if kind and not (isinstance(value, TYPES[kind]) and not (kind in ("integer", "number") and isinstance(value, bool))):
        return [f"{where or '(top)'}: {type(value).__name__}, documented {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where or '(top)'}: {value!r} not in {schema['enum']}")
    if kind == "object":
        props = schema.get("properties") or {}
        if complete:
            problems += [f"{where}.{key}".lstrip(".") + ": missing" for key in props if key not in value]
        for key, sub in props.items():
            if key in value:
                problems += conforms(sub, value[key], f"{where}.{key}".lstrip("."))
    if kind == "array" and schema.get("items"):
        for i, item in enumerate(value):
            problems += conforms(schema["items"], item, f"{where}[{i}]")
    return problems


# Video generation and its relatives are out of the sandbox's scope (docs/sandbox.md).
OUT_OF_SCOPE = ("/v2/videos", "/v2/lipsync", "/v2/replacements", "/v2/transcriptions")


def in_scope_operations() -> list[tuple[str, str]]:
    """(path, method) of every documented operation the sandbox emulates, in file order."""
    return [(path, method) for path, ops in spec()["paths"].items() if not path.startswith(OUT_OF_SCOPE)
            for method in ops if method in ("get", "post", "put", "patch", "delete")]


def field_example(schema: dict, skip: tuple[str, ...] = ()) -> dict:
    """An object made of the field-level `example`s of an object schema (keys in `skip` left out):
    what a docs page shows when an operation has no named example."""
    return {key: sub["example"] for key, sub in (schema.get("properties") or {}).items()
            if "example" in sub and key not in skip}


def request_schema(path: str, method: str) -> dict:
    """The JSON schema of an operation's request body."""
    return operation(path, method)["requestBody"]["content"]["application/json"]["schema"]
