"""The sandbox's HTTP surface: routing, auth, validation and Tavus-shaped answers (WSGI).

Every rule here comes from ../shared/tavus-api/CONTRACT.md; where Tavus documents nothing, the
choice is marked "invented" in a comment.
"""
from __future__ import annotations

import copy
import functools
import json
import re
import time
from urllib.parse import parse_qs

import jsonpatch

from ..callbacks.events import SHUTDOWN_REASONS
from ..schemas import MAX_DEPTH, check, too_deep
from ..schemas.objective_graph import link_problem
from ..serving import status_line
from ..schemas.quick import is_number
from ..store import utc_now
from .state import new_id

MAX_BODY = 1024 * 1024  # bytes; a longer body is refused by its Content-Length, unread (413)
# Nesting of lists/objects in a request body and in what a PATCH makes of a stored record
# (schemas.MAX_DEPTH, invented: Tavus documents none), so a deep body is a 400, never a
# RecursionError (500) now or when the stored record is listed later.
MAX_BODY_DEPTH = MAX_DEPTH
SERVER_FIELDS = ("persona_id", "created_at", "updated_at", "persona_type")
CONCURRENCY_MESSAGE = "User has reached maximum concurrent conversations"
PATCH_OPS = {"add": ("value",), "replace": ("value",), "test": ("value",), "remove": (), "move": ("from",), "copy": ("from",)}


class Reply(Exception):
    """An HTTP answer raised from anywhere inside a handler."""

    def __init__(self, status: int, body=None, headers=(), drop: bool = False):
        super().__init__(status)
        self.status, self.body, self.headers, self.drop = status, body, list(headers), drop


def error(status: int, text: str, key: str = "error") -> Reply:
    return Reply(status, {key: text})


class SandboxApp:
    """WSGI callable. `sandbox` gives settings, state, scheduler and deliverer."""

    def __init__(self, sandbox):
        self.sb = sandbox
        self.routes: list[tuple[str, re.Pattern, object]] = []
        r = self._route
        # Personas (legacy names) and PALs (current names) over one store.
        for base, pal in (("personas", False), ("pals", True)):
            r("POST", rf"/v2/{base}", lambda req, pal=pal: self.create_persona(req, pal))
            r("GET", rf"/v2/{base}", lambda req, pal=pal: self.list_personas(req, pal))
            r("GET", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, pal=pal: self.get_persona(req, id, pal))
            r("PATCH", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, pal=pal: self.patch_persona(req, id, pal))
            r("DELETE", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, pal=pal: self.delete_persona(id, pal))
        for base, face in (("replicas", False), ("faces", True)):
            r("GET", rf"/v2/{base}", lambda req, face=face: self.list_replicas(req, face))
            r("GET", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, face=face: self.get_replica(req, id, face))
        r("POST", r"/v2/conversations", self.create_conversation)
        r("GET", r"/v2/conversations", self.list_conversations)
        r("GET", r"/v2/conversations/(?P<cid>[^/]+)", self.get_conversation)
        r("POST", r"/v2/conversations/(?P<cid>[^/]+)/end", self.end_conversation)
        r("DELETE", r"/v2/conversations/(?P<cid>[^/]+)", self.delete_conversation)
        for kind in ("objectives", "guardrails"):
            r("POST", rf"/v2/{kind}", lambda req, kind=kind: self.create_policy(req, kind))
            r("GET", rf"/v2/{kind}", lambda req, kind=kind: self.list_policies(req, kind))
            r("GET", rf"/v2/{kind}/(?P<id>[^/]+)", lambda req, id, kind=kind: self.get_policy(id, kind))
            r("PATCH", rf"/v2/{kind}/(?P<id>[^/]+)", lambda req, id, kind=kind: self.patch_policy(req, id, kind))
            r("DELETE", rf"/v2/{kind}/(?P<id>[^/]+)", lambda req, id, kind=kind: self.delete_policy(id, kind))
        r("GET", r"/v2/documents", self.list_documents)
        r("GET", r"/v2/documents/(?P<did>[^/]+)", self.get_document)
        # Control routes for tests and scenarios (not part of Tavus; same key check).
        r("GET", r"/_sandbox/health", lambda req: Reply(200, {"ok": True, "time_scale": self.sb.settings.time_scale}))
        r("POST", r"/_sandbox/script", self.script)
        r("POST", r"/_sandbox/conversations/(?P<cid>[^/]+)/end", self.control_end)
        r("GET", r"/_sandbox/deliveries", lambda req: Reply(200, list(self.sb.deliveries)))
        r("POST", r"/_sandbox/reset", self.reset)

    def _route(self, method, pattern, handler):
        # Collection routes are served with and without a trailing slash, never redirected (CONTRACT §1).
        self.routes.append((method, re.compile(f"^{pattern}/?$"), handler))

    # -- WSGI ------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        try:
            reply = self.dispatch(environ)
        except Reply as r:
            reply = r
        except Exception as exc:  # noqa: BLE001 - a sandbox bug answers 500 like a server would
            reply = Reply(500, {"error": f"sandbox internal error: {type(exc).__name__}"})
        status, body = reply.status, reply.body
        data = b"" if status in (204, 304) or body is None else json.dumps(body).encode()
        # A dropped connection: promise more bytes than we send; waitress then closes the socket.
        headers = [("Content-Length", str(len(data) + (4096 if reply.drop else 0))), *reply.headers]
        if data:
            headers.append(("Content-Type", "application/json"))
        if status == 405:
            headers.append(("Allow", ", ".join(sorted({m for m, p, _ in self.routes if p.match(environ.get("PATH_INFO", ""))}))))
        start_response(status_line(status), headers)
        return [data]

    def dispatch(self, environ):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/"
        self.sb.record_request(method, path)
        matches = [(m, p.match(path), h) for m, p, h in self.routes]
        matches = [(m, mt, h) for m, mt, h in matches if mt]
        if not matches:
            raise error(404, "Not found")
        key = environ.get("HTTP_X_API_KEY", "")
        if not key or (self.sb.settings.api_key is not None and key != self.sb.settings.api_key):
            raise error(401, "Invalid access token", "message")
        for m, match, handler in matches:
            if m == method:
                req = Request(environ)
                if not path.startswith("/v2/"):
                    return handler(req, **match.groupdict())
                return self.with_faults(lambda: handler(req, **match.groupdict()))
        raise error(405, "Method not allowed")

    def with_faults(self, run):
        """Run a /v2 handler under the configured API faults (see faults.py)."""
        plan = self.sb.faults
        if plan.api.get("latency"):
            time.sleep(plan.api["latency"])
        if plan.api_fault("429"):
            return Reply(429, {"message": "Too many requests"}, headers=[("Retry-After", str(self.sb.settings.retry_after))])
        try:
            reply = run()
        except Reply as r:
            reply = r
        if reply.status < 400 and plan.api_fault("500"):
            return Reply(500, {"error": "Internal server error"})
        if reply.status < 400 and plan.api_fault("reset"):
            reply.drop = True
        return reply

    # -- personas --------------------------------------------------------------------------------
    def create_persona(self, req, pal: bool):
        body = req.json_object()
        problems = check("pal" if pal else "persona", body)
        if problems:
            raise error(400, f"Invalid request: {problems[0].path}: {problems[0].message}")
        doc = from_pal(body) if pal else dict(body)
        self.check_persona_rules(doc)
        with self.sb.state.lock:
            pid = new_id("p")
            stamp = utc_now()
            stored = {"persona_id": pid, **doc, "persona_type": "user", "created_at": stamp, "updated_at": stamp}
            stored.setdefault("pipeline_mode", "full")
            self.sb.state.personas[pid] = stored
        self.sb.save()
        if pal:
            return Reply(200, {"pal_id": pid, "pal_name": stored.get("persona_name"), "created_at": stamp})
        return Reply(200, {"persona_id": pid, "persona_name": stored.get("persona_name"), "created_at": stamp})

    def check_persona_rules(self, doc: dict, before: dict | None = None):
        """Persona rules; on PATCH (`before` given) only the ids the patch changed are looked up."""
        mode = doc.get("pipeline_mode", "full")
        if mode == "full" and not doc.get("system_prompt"):
            raise error(400, "system_prompt is required when pipeline_mode is full")
        state, before = self.sb.state, before or {}
        new = functools.partial(changed, doc, before)
        rid = doc.get("default_replica_id")
        if new("default_replica_id") and rid not in state.replicas:
            raise error(400, "Invalid replica_uuid")
        if new("objectives_id") and doc["objectives_id"] not in state.objectives:
            raise error(400, "Invalid objectives_id")
        # one store, two kinds (CONTRACT §2.5): a legacy set has "guardrails_id", a flat guardrail "uuid"
        if new("guardrails_id") and "guardrails_id" not in state.guardrails.get(doc["guardrails_id"], {}):
            raise error(400, "Invalid guardrails_id")
        for gid in doc.get("guardrail_ids") or []:
            if gid not in (before.get("guardrail_ids") or []) and "uuid" not in state.guardrails.get(gid, {}):
                raise error(400, f"Invalid guardrail_id: {gid}")
        if (doc.get("layers") or {}).get("conferencing") and not rid:
            raise error(400, "layers.conferencing requires default_face_id")

    def list_personas(self, req, pal: bool):
        kind = req.arg("pal_type" if pal else "persona_type")
        with self.sb.state.lock:
            everyone = [*self.sb.state.personas.values(), *self.sb.state.stock_personas.values()]
            rows = [p for p in everyone if not kind or p.get("persona_type") == kind]
            rows = [to_pal(p) if pal else copy.deepcopy(p) for p in rows]
        return Reply(200, page(rows, req))  # the CLI sends page=0 for PALs: read as the first page

    def find_persona(self, pid, *, writable: bool = False, pal: bool = False) -> dict:
        persona = self.sb.state.personas.get(pid) if writable else self.sb.state.persona(pid)
        if persona is None:  # legacy route: 400 as Tavus answers; /v2/pals: 404 (CONTRACT §1)
            raise error(404, "PAL not found") if pal else error(400, "Invalid persona_id")
        return persona

    def get_persona(self, req, pid, pal: bool):
        with self.sb.state.lock:
            persona = copy.deepcopy(self.find_persona(pid, pal=pal))
        if pal:
            return Reply(200, to_pal(persona))
        # CONTRACT §2.1: docs wrap GET one in {"data":[...]}, the official CLI reads it flat: a setting.
        return Reply(200, {"data": [persona]} if self.sb.settings.persona_get_shape == "wrapped" else persona)

    def patch_persona(self, req, pid, pal: bool = False):
        ops = req.json_patch()
        if ops is None:  # not JSON, not an array, or an op without what it needs (CONTRACT §3, A.7)
            raise error(422, "Invalid JSON patch format", "message")
        if pal:  # PAL paths name the same stored fields: /pal_name, /default_face_id
            ops = [{**op, **{k: pal_path(op[k]) for k in ("path", "from") if isinstance(op.get(k), str)}} for op in ops]
        with self.sb.state.lock:
            current = self.find_persona(pid, writable=True, pal=pal)
            document = {k: v for k, v in current.items() if k not in SERVER_FIELDS}
            patched = apply_patch(document, ops)
            if patched == document:
                return Reply(304)
            problems = check("persona", patched)
            if problems:
                raise error(400, f"Invalid request: {problems[0].path}: {problems[0].message}")
            self.check_persona_rules(patched, document)
            self.sb.state.personas[pid] = {"persona_id": pid, **patched, "persona_type": current.get("persona_type", "user"),
                                           "created_at": current["created_at"], "updated_at": utc_now()}
            updated = copy.deepcopy(self.sb.state.personas[pid])
        self.sb.save()
        # body undocumented (CONTRACT §3); we answer with the updated persona, in the route's names
        return Reply(200, to_pal(updated) if pal else updated)

    def delete_persona(self, pid, pal: bool = False):
        with self.sb.state.lock:
            self.find_persona(pid, writable=True, pal=pal)
            del self.sb.state.personas[pid]
        self.sb.save()
        return Reply(204)

    # -- replicas / faces ------------------------------------------------------------------------
    def list_replicas(self, req, face: bool):
        kind = req.arg("face_type" if face else "replica_type")
        ids = set(filter(None, (req.arg("face_ids" if face else "replica_ids") or "").split(",")))
        verbose = req.arg("verbose") in ("true", "1")
        with self.sb.state.lock:
            rows = [r for r in self.sb.state.replicas.values()
                    if (not kind or r.get("replica_type") == kind) and (not ids or r["replica_id"] in ids)
                    and (not req.arg("model_name") or r.get("model_name") == req.arg("model_name"))]
            rows = [shape_replica(r, face, verbose) for r in rows]
        return Reply(200, page(rows, req))

    def get_replica(self, req, rid, face: bool):
        with self.sb.state.lock:
            replica = self.sb.state.replicas.get(rid)
            if replica is None:  # legacy route: 400; /v2/faces: 404 (CONTRACT §1)
                raise error(404, "Face not found") if face else error(400, "Invalid replica_id")
            return Reply(200, shape_replica(replica, face, req.arg("verbose") in ("true", "1")))

    # -- conversations ---------------------------------------------------------------------------
    def create_conversation(self, req):
        body = req.json_object()
        if "callback_url" in body and body["callback_url"] is None:
            raise error(400, "Invalid request: callback_url must be a string; omit it instead of sending null")
        problems = check("conversation", body)
        if problems:
            p = problems[0]
            text = f"Invalid request: unknown field '{p.path}'" if p.message == "unknown field" else \
                f"Invalid request: {p.path}: {p.message}"  # invented wording: Tavus documents no body here
            raise error(400, text)
        body = dict(body)
        if "pal_id" in body:
            body["persona_id"] = body.pop("pal_id")
        if "face_id" in body:
            body["replica_id"] = body.pop("face_id")
        state, settings = self.sb.state, self.sb.settings
        with state.lock:
            persona = None
            if body.get("persona_id"):
                persona = state.persona(body["persona_id"])
                if persona is None:
                    raise error(400, "Invalid persona_id")
            replica_id = body.get("replica_id") or (persona or {}).get("default_replica_id")
            if body.get("replica_id") and body["replica_id"] not in state.replicas:
                raise error(400, "Invalid replica_id")
            if not replica_id:
                raise error(400, "replica_id is required when the persona has no default_replica_id")  # invented text
            test_mode = bool(body.get("test_mode"))
            active = sum(1 for c in state.conversations.values() if c["status"] == "active" and not c.get("test_mode"))
            if not test_mode and active >= settings.max_concurrent:
                raise error(400, CONCURRENCY_MESSAGE, "message")
            cid = new_id("c", 16)
            stamp = utc_now()
            conv = {"conversation_id": cid, "conversation_name": body.get("conversation_name") or f"Conversation {cid}",
                    "conversation_url": f"https://tavus.daily.co/{cid}", "status": "ended" if test_mode else "active",
                    "replica_id": replica_id, "persona_id": body.get("persona_id"), "created_at": stamp,
                    "updated_at": stamp, **{k: v for k, v in body.items() if k not in ("replica_id", "persona_id", "conversation_name")},
                    "events": []}
            if conv.get("require_auth") or (conv.get("properties") or {}).get("require_auth"):
                conv["meeting_token"] = "eyJhbGciOiJIUzI1NiJ9." + new_id("", 32)
            state.conversations[cid] = conv
            response = {k: conv[k] for k in ("conversation_id", "conversation_name", "conversation_url", "status",
                                              "replica_id", "persona_id", "created_at") if conv.get(k) is not None}
            for key in ("callback_url", "meeting_token"):
                if conv.get(key):
                    response[key] = conv[key]
        self.sb.save()
        if test_mode:
            self.sb.test_mode_ended(cid)  # sends nothing unless the test_mode_callbacks setting is on
        else:
            self.sb.schedule_conversation(cid)
        return Reply(200, response)

    def list_conversations(self, req):
        status = req.arg("status")
        with self.sb.state.lock:
            rows = [public_conversation(c) for c in self.sb.state.conversations.values()
                    if not status or c["status"] == status]
        return Reply(200, page(rows, req))

    def find_conversation(self, cid) -> dict:
        conv = self.sb.state.conversations.get(cid)
        if conv is None:
            raise error(400, "Invalid conversation_id")
        return conv

    def get_conversation(self, req, cid):
        with self.sb.state.lock:
            conv = self.find_conversation(cid)
            out = public_conversation(conv)
            if req.arg("verbose") in ("true", "1"):
                out["events"] = copy.deepcopy(conv.get("events", []))
        return Reply(200, out)

    def end_conversation(self, req, cid):
        with self.sb.state.lock:
            self.find_conversation(cid)
        # Ending an ended conversation answers 200 again (undocumented, CONTRACT §9.4: our choice).
        self.sb.finish(cid, "end_conversation_endpoint_hit")
        return Reply(200, {"conversation_id": cid, "status": "ended"})

    def delete_conversation(self, req, cid):
        with self.sb.state.lock:
            self.find_conversation(cid)
        self.sb.finish(cid, "daily_room_has_been_deleted")
        with self.sb.state.lock:
            self.sb.state.conversations.pop(cid, None)
        self.sb.save()
        return Reply(204)

    # -- objectives / guardrails -----------------------------------------------------------------
    def create_policy(self, req, kind: str):
        body = req.json_object()
        if kind == "objectives":
            items = body.get("data")
            if not isinstance(items, list) or not items or not all(isinstance(i, dict) and i.get("objective_name") for i in items):
                raise error(400, "objective_name is required", "message")
            problems, prefix, id_key = check("objectives", body), "o", "objectives_id"
        elif "guardrail_name" in body or "data" not in body:  # flat vs legacy set: top-level guardrail_name
            if not body.get("guardrail_name"):
                raise error(400, "guardrail_name is required", "message")
            problems, prefix, id_key = check("guardrail", body), "g", "uuid"
        else:
            items = body.get("data")
            if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("guardrail_name") for i in items):
                raise error(400, "guardrail_name is required", "message")
            problems, prefix, id_key = check("guardrails_set", body), "g", "guardrails_id"
        if problems:
            raise error(400, f"{problems[0].path}: {problems[0].message}", "message")
        broken = objective_problem(body) if kind == "objectives" else None
        if broken:
            raise error(400, broken, "message")
        with self.sb.state.lock:
            pid = new_id(prefix, 12 if id_key == "uuid" else 11)
            stamp = utc_now()
            record = {id_key: pid, **body, "created_at": stamp, "updated_at": stamp}
            if id_key == "uuid":
                record = {"modality": "verbal", "callback_url": "", "tags": [], "app_message": True, **record}
            else:
                record["status"] = "active"
            getattr(self.sb.state, kind)[pid] = record
        self.sb.save()
        if id_key == "uuid":
            return Reply(200, copy.deepcopy(record))
        first = body["data"][0]
        if kind == "objectives":
            return Reply(200, {"objectives_id": pid, "objective_name": body.get("name") or first["objective_name"],
                               "status": "active", "created_at": stamp})
        return Reply(200, {"guardrails_id": pid, "guardrails_name": body.get("name") or first["guardrail_name"],
                           "status": "active", "created_at": stamp})

    def list_policies(self, req, kind):
        with self.sb.state.lock:
            rows = [copy.deepcopy(r) for r in getattr(self.sb.state, kind).values()]
        if kind == "guardrails" and req.arg("legacy") == "false":
            rows = [r for r in rows if "uuid" in r]
        return Reply(200, page(rows, req))

    def find_policy(self, pid, kind) -> dict:
        record = getattr(self.sb.state, kind).get(pid)
        if record is None:
            raise error(404, "Objective not found" if kind == "objectives" else "Guardrails not found")
        return record

    def get_policy(self, pid, kind):
        with self.sb.state.lock:
            return Reply(200, copy.deepcopy(self.find_policy(pid, kind)))

    def patch_policy(self, req, pid, kind):
        ops = req.json_any()
        if not isinstance(ops, list) or not all(isinstance(o, dict) and "op" in o and "path" in o for o in ops):
            raise error(400, "Invalid patch operation")
        with self.sb.state.lock:
            current = self.find_policy(pid, kind)
            fixed = {k: current[k] for k in ("objectives_id", "guardrails_id", "uuid", "created_at", "updated_at", "status") if k in current}
            document = {k: v for k, v in current.items() if k not in fixed}
            patched = apply_patch(document, ops)
            if patched == document:
                return Reply(304)
            schema = "objectives" if kind == "objectives" else ("guardrail" if "uuid" in current else "guardrails_set")
            problems = check(schema, patched)
            if problems:
                raise error(400, f"{problems[0].path}: {problems[0].message}")
            if kind == "objectives" and objective_problem(patched):
                raise error(400, "Invalid patch operation")
            getattr(self.sb.state, kind)[pid] = {**fixed, **patched, "updated_at": utc_now()}
        self.sb.save()
        return Reply(200, {"message": "Objective updated successfully" if kind == "objectives" else "Guardrails updated successfully"})

    def delete_policy(self, pid, kind):
        with self.sb.state.lock:
            record = self.find_policy(pid, kind)
            del getattr(self.sb.state, kind)[pid]
            for persona in self.sb.state.personas.values():
                detach(persona, pid, record)
        self.sb.save()
        return Reply(204)

    # -- documents -------------------------------------------------------------------------------
    def list_documents(self, req):
        with self.sb.state.lock:
            rows = [copy.deepcopy(d) for d in self.sb.state.documents.values()]
        body = page(rows, req, base=0)  # documents page from 0 and echo page and limit (CONTRACT §1)
        return Reply(200, body)

    def get_document(self, req, did):
        with self.sb.state.lock:
            doc = self.sb.state.documents.get(did)
            if doc is None:
                raise error(404, "Document not found", "message")
            return Reply(200, copy.deepcopy(doc))

    # -- control ---------------------------------------------------------------------------------
    def script(self, req):
        body = req.json_object()
        target = body.get("conversation_id") and f"conversation:{body['conversation_id']}" or \
            body.get("persona_id") and f"persona:{body['persona_id']}" or "default"
        script = {k: body[k] for k in ("transcript", "perception_analysis", "end_after_seconds") if k in body}
        seconds = script.get("end_after_seconds")
        if seconds is not None and not (is_number(seconds) and seconds >= 0):
            raise error(400, "end_after_seconds must be a number of seconds (0 or more)")  # control route: invented
        self.sb.set_script(target, script)
        return Reply(200, {"scripted": target, **script})

    def control_end(self, req, cid):
        body = req.json_object() if req.raw else {}
        reason = body.get("reason") or "end_conversation_endpoint_hit"
        if reason not in SHUTDOWN_REASONS:
            raise error(400, f"unknown reason {reason!r}; use one of: {', '.join(SHUTDOWN_REASONS)}")
        with self.sb.state.lock:
            self.find_conversation(cid)
        self.sb.finish(cid, reason)
        return Reply(200, {"conversation_id": cid, "shutdown_reason": reason})

    def reset(self, req):
        self.sb.reset()
        return Reply(200, {"reset": True})


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


def changed(doc: dict, before: dict, key: str) -> bool:
    """A set id field that differs from its value before the patch (always, on create)."""
    return bool(doc.get(key)) and doc[key] != before.get(key)



def detach(persona: dict, pid: str, record: dict) -> None:
    """Remove a deleted objectives set or guardrail (flat or legacy set) from a persona (CONTRACT §2.5)."""
    if "uuid" in record and pid in (persona.get("guardrail_ids") or []):
        persona["guardrail_ids"] = [g for g in persona["guardrail_ids"] if g != pid]
    for key in ("objectives_id", "guardrails_id"):
        if key in record and persona.get(key) == pid:
            persona[key] = None


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


def page(rows: list, req: Request, base: int = 1) -> dict:
    """The `{data, total_count}` envelope with limit/page (default limit 10)."""
    try:
        limit = max(1, min(int(req.arg("limit") or 10), 1000))
        number = int(req.arg("page") or base)
    except ValueError:
        raise error(400, "limit and page must be integers") from None
    start = max(number - base, 0) * limit
    body = {"data": rows[start:start + limit], "total_count": len(rows)}
    if base == 0:
        body.update(page=number, limit=limit)
    return body


def public_conversation(conv: dict) -> dict:
    keys = ("conversation_id", "conversation_name", "status", "conversation_url", "callback_url", "replica_id",
            "persona_id", "created_at", "updated_at")
    return {k: conv.get(k) for k in keys if k in conv}


def from_pal(body: dict) -> dict:
    doc = dict(body)
    if "pal_name" in doc:
        doc["persona_name"] = doc.pop("pal_name")
    if "default_face_id" in doc:
        doc["default_replica_id"] = doc.pop("default_face_id")
    return doc


PAL_PATHS = {"pal_name": "persona_name", "default_face_id": "default_replica_id"}


def pal_path(pointer: str) -> str:
    """A PATCH path in PAL names (/pal_name) as the stored persona field (/persona_name)."""
    head, sep, rest = pointer[1:].partition("/")
    return "/" + PAL_PATHS.get(head, head) + sep + rest


def to_pal(persona: dict) -> dict:
    out = {("pal_id" if k == "persona_id" else "pal_name" if k == "persona_name" else
            "default_face_id" if k == "default_replica_id" else "pal_type" if k == "persona_type" else k): v
           for k, v in persona.items()}
    return copy.deepcopy(out)


def shape_replica(replica: dict, face: bool, verbose: bool) -> dict:
    out = copy.deepcopy(replica)
    kind = out.pop("replica_type", None)
    if verbose:
        out["face_type" if face else "replica_type"] = kind
    if face:
        out["face_id"] = out.pop("replica_id")
        out["face_name"] = out.pop("replica_name")
    return out


def objective_problem(body: dict) -> str | None:
    """What is wrong with the names or links of the objectives of a set, or None (contract §2.4)."""
    problem = link_problem(body.get("data") or [])
    return f"data[{problem[0]}]: {problem[1]}" if problem else None
