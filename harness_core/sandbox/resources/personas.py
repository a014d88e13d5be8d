"""Personas (legacy names) and PALs (current names): one store, two vocabularies (CONTRACT §2.1, §10)."""
from __future__ import annotations

import copy
import functools

from ...store import utc_now
from ..http import Family, Reply, apply_patch, error, invalid, page
from ..state import new_id
from .documents import check_document_ids

SERVER_FIELDS = ("persona_id", "created_at", "updated_at", "persona_type")



class Personas(Family):
    """/v2/personas and /v2/pals over the same records."""

    def routes(self):
        for base, pal in (("personas", False), ("pals", True)):
            yield "POST", rf"/v2/{base}", lambda req, pal=pal: self.create_persona(req, pal)
            yield "GET", rf"/v2/{base}", lambda req, pal=pal: self.list_personas(req, pal)
            yield "GET", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, pal=pal: self.get_persona(req, id, pal)
            yield "PATCH", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, pal=pal: self.patch_persona(req, id, pal)
            yield "DELETE", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, pal=pal: self.delete_persona(id, pal)

    def create_persona(self, req, pal: bool):
        body = req.json_object()
        invalid("pal" if pal else "persona", body)
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
        check_document_ids(state, doc.get("document_ids"), before.get("document_ids") or ())
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
            invalid("persona", patched)
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

def changed(doc: dict, before: dict, key: str) -> bool:
    """A set id field that differs from its value before the patch (always, on create)."""
    return bool(doc.get(key)) and doc[key] != before.get(key)



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
