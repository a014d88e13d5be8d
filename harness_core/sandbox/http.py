"""HTTP plumbing shared by every resource family: answers, requests, paging, JSON Patch, limits.

Every rule comes from ../shared/tavus-api/CONTRACT.md; where Tavus documents nothing, the choice
is marked "invented" in a comment.
"""
from __future__ import annotations

import json
from urllib.parse import parse_qs

import jsonpatch

from ..schemas import MAX_DEPTH, check, too_deep

MAX_BODY = 1024 * 1024  # bytes; a longer body is refused by its Content-Length, unread (413)
# Nesting of lists/objects in a request body and in what a PATCH makes of a stored record
# (schemas.MAX_DEPTH, invented: Tavus documents none), so a deep body is a 400, never a
# RecursionError (500) now or when the stored record is listed later.
MAX_BODY_DEPTH = MAX_DEPTH
PATCH_OPS = {"add": ("value",), "replace": ("value",), "test": ("value",), "remove": (), "move": ("from",), "copy": ("from",)}


class Reply(Exception):
    """An HTTP answer raised from anywhere inside a handler."""

    def __init__(self, status: int, body=None, headers=(), drop: bool = False):
        super().__init__(status)
        self.status, self.body, self.headers, self.drop = status, body, list(headers), drop


def error(status: int, text: str, key: str = "error") -> Reply:
    return Reply(status, {key: text})



class Family:
    """A resource family: a set of routes over the sandbox's one store (`self.sb.state`)."""

    def __init__(self, sandbox):
        self.sb = sandbox

    def routes(self):
        """Yield (method, path regex, handler(req, **groups)) for the router."""
        return ()


def invalid(schema: str, body, key: str = "error", prefix: str = "Invalid request: ") -> None:
    """400 naming the first problem of `body` against `schema` (field path and what is wrong)."""
    problems = check(schema, body)
    if problems:
        p = problems[0]
        text = f"unknown field '{p.path}'" if p.message == "unknown field" else f"{p.path}: {p.message}"
        raise error(400, prefix + text, key)


class Request:
    """The bits of a WSGI request the handlers need."""

    def __init__(self, environ):
        self.query = parse_qs(environ.get("QUERY_STRING", ""))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY:
            raise error(413, "Request body too large")
        self.raw = environ["wsgi.input"].read(length) if length else b""

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json_any(self):
        """The decoded body; 400 when it is not JSON or nests deeper than MAX_BODY_DEPTH."""
        try:
            data = json.loads(self.raw or b"null")
        except RecursionError:
            raise error(400, f"Invalid JSON body: nested deeper than {MAX_BODY_DEPTH} levels") from None
        except ValueError:
            raise error(400, "Invalid JSON body") from None
        check_depth(data)
        return data

    def json_patch(self) -> list | None:
        """The body as a list of well-formed RFC 6902 operations, or None when it is not one."""
        try:
            ops = json.loads(self.raw or b"null")
        except (ValueError, RecursionError):
            return None
        check_depth(ops)
        if not isinstance(ops, list) or not all(well_formed(op) for op in ops):
            return None
        return ops

    def json_object(self) -> dict:
        data = self.json_any()
        if not isinstance(data, dict):
            raise error(400, "Invalid JSON body: expected an object")
        return data


def check_depth(data, where: str = "Invalid JSON body") -> None:
    """400 when `data` nests deeper than MAX_BODY_DEPTH (see there)."""
    deep = too_deep(data, MAX_BODY_DEPTH)
    if deep is not None:
        raise error(400, f"{where}: nested deeper than {MAX_BODY_DEPTH} levels at {deep[:80]}")


def well_formed(op) -> bool:
    """One JSON Patch operation with a known op, a path and what the op needs (value / from)."""
    if not isinstance(op, dict) or op.get("op") not in PATCH_OPS or not isinstance(op.get("path"), str):
        return False
    return all(key in op for key in PATCH_OPS[op["op"]]) and isinstance(op.get("from", ""), str)


def apply_patch(document: dict, ops: list) -> dict:
    """RFC 6902, atomically; a missing path or a failed test is 400 Invalid patch operation.

    Patches that nest values inside each other past MAX_BODY_DEPTH are refused the same way.
    """
    try:
        patched = jsonpatch.JsonPatch(ops).apply(document, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, IndexError, TypeError):
        raise error(400, "Invalid patch operation") from None
    check_depth(patched, "Invalid patch operation")
    return patched


def page(rows: list, req: Request, base: int = 1, default: int = 10, most: int | None = None) -> dict:
    """The `{data, total_count}` envelope with limit/page (default limit 10).

    A limit below 1 (or above `most`, where Tavus documents a range) and a negative page are a 400
    naming the parameter; page 0 on a 1-based list reads as the first page (the official CLI sends
    page=0 for PALs and voices). Without `most`, a limit is capped at 1000 (invented: undocumented).
    """
    try:
        limit = int(req.arg("limit") or default)
        number = int(req.arg("page") or base)
    except ValueError:
        raise error(400, "limit and page must be integers") from None
    if limit < 1 or (most is not None and limit > most):
        raise error(400, f"Invalid request: limit must be between 1 and {most or 1000}")
    if number < 0:
        raise error(400, f"Invalid request: page must be {base} or more")
    limit = min(limit, most or 1000)
    start = max(number - base, 0) * limit
    body = {"data": rows[start:start + limit], "total_count": len(rows)}
    if base == 0:
        body.update(page=number, limit=limit)
    return body
