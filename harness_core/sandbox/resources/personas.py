"""Personas (legacy names) and PALs (current names): one store, two vocabularies (CONTRACT §2.1, §10)."""
from __future__ import annotations

import copy
import functools

from ...store import utc_now
from ..http import Family, Reply, apply_patch, error, invalid, page
from ..state import new_id
from .documents import check_document_ids

SERVER_FIELDS = ("persona_id", "created_at", "updated_at", "persona_type")

# What Tavus stores for a persona whether or not it was sent (CONTRACT §2.1: the documented GET item
# carries these fields): a PATCH can `replace /document_ids` or `add /layers/tts/...` on any persona.
# Values are the documented defaults where there is one; otherwise our choice (marked): an empty
# name and no default replica are empty strings (the OAS documents both as non-nullable strings).
DEFAULT_FIELDS = {"persona_name": "", "default_replica_id": "", "pipeline_mode": "full", "document_ids": [],
                  "document_tags": []}
# A missing layer is stored with its documented default (CONTRACT §4); a layer that was sent is kept
# as sent. `conferencing` has no default: the official CLI reads its absence as "no meeting identity".
DEFAULT_LAYERS = {"llm": {"model": "tavus-gpt-oss"}, "tts": {"tts_engine": "cartesia"},
                  "stt": {"stt_engine": "tavus-auto"}, "perception": {"perception_model": "raven-1"},
                  "conversational_flow": {"turn_detection_model": "sparrow-1"}}



class Personas(Family):
    """/v2/personas and /v2/pals over the same records."""

    def routes(self):
        for base, pal in (("personas", False), ("pals", True)):
            yield "POST", rf"/v2/{base}", lambda req, pal=pal: self.create_persona(req, pal)
            yield "GET", rf"/v2/{base}", lambda req, pal=pal: self.list_personas(req, pal)
            yield "GET", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, pal=pal: self.get_persona(req, id, pal)
            yield "PATCH", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, pal=pal: self.patch_persona(req, id, pal)
            yield "DELETE", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, pal=pal: self.delete_persona(id, pal)
        yield "POST", r"/v2/pals/(?P<pid>[^/]+)/publish", self.publish

    def create_persona(self, req, pal: bool):
        body = hoist_layer_knowledge(req.json_object())
        invalid("pal" if pal else "persona", body)
        doc = with_defaults(from_pal(body) if pal else dict(body))
        self.check_persona_rules(doc)
        with self.sb.state.lock:
            pid = new_id("p")
            stamp = utc_now()
            stored = {"persona_id": pid, **doc, "persona_type": "user", "created_at": stamp, "updated_at": stamp}
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
            persona = self.find_persona(pid, pal=pal)
            if pal and req.arg("source") == "draft":  # the Builder's draft, else the live PAL (CONTRACT §10.5 A)
                persona = self.sb.state.pal_edits.get(pid) or persona
            persona = copy.deepcopy(persona)
        if pal:
            return Reply(200, to_pal(persona))
        # CONTRACT §2.1: docs wrap GET one in {"data":[...]}, the official CLI reads it flat: a setting.
        return Reply(200, {"data": [persona]} if self.sb.settings.persona_get_shape == "wrapped" else persona)

    def patch_persona(self, req, pid, pal: bool = False):
        """JSON Patch on the live persona; with a pending dashboard edit (state.pal_edits), as the
        sandbox's `pal_editing` generation says (CONTRACT §10.5): "draft" edits the draft and answers
        with a `publish_url`; "maker" answers 409 `maker_changes` unless ?force=true. A patch of
        `layers.conferencing` alone always goes to the live PAL."""
        ops = req.json_patch()
        if ops is None:  # not JSON, not an array, or an op without what it needs (CONTRACT §3, A.7)
            raise error(422, "Invalid JSON patch format", "message")
        if pal:  # PAL paths name the same stored fields: /pal_name, /default_face_id
            ops = [{**op, **{k: pal_path(op[k]) for k in ("path", "from") if isinstance(op.get(k), str)}} for op in ops]
        live_only = conferencing_only(ops)
        if pal and not live_only and any(touches_conferencing(op) for op in ops):
            raise error(400, "layers.conferencing is live-owned: send its operations in a PATCH of their own")
        extra = {}
        with self.sb.state.lock:
            current = self.find_persona(pid, writable=True, pal=pal)
            pending = self.sb.state.pal_edits.get(pid)
            draft = pending is not None and not live_only and self.sb.settings.pal_editing == "draft"
            if pending is not None and not live_only and not draft:
                if req.arg("force") != "true":
                    raise Reply(409, {"error": "This PAL has unpublished changes made in PAL Maker; retry with "
                                               "?force=true to discard them", "conflict": "maker_changes"})
                extra["discarded_maker_changes"] = True
            updated = self.patched(pending if draft else current, ops)
            if updated is None:
                return Reply(304)
            if draft:  # generation A (CONTRACT §10.5): the PATCH edits the Builder draft, live stays
                self.sb.state.pal_edits[pid] = updated
                extra["publish_url"] = publish_url(pid)
            else:
                self.sb.state.personas[pid] = updated
                if extra:  # generation B with ?force=true: the Maker changes are gone
                    del self.sb.state.pal_edits[pid]
            updated = copy.deepcopy(updated)
        self.sb.save()
        # body undocumented (CONTRACT §3); we answer with the updated persona (or draft), in the route's names
        return Reply(200, {**(to_pal(updated) if pal else updated), **extra})

    def patched(self, current: dict, ops: list) -> dict | None:
        """The stored record `current` after `ops`, checked; None when nothing changed (caller holds the lock)."""
        document = with_defaults({k: v for k, v in current.items() if k not in SERVER_FIELDS})
        patched = hoist_layer_knowledge(apply_patch(document, ops))
        if patched == document:
            return None
        invalid("persona", patched)
        self.check_persona_rules(patched, document)
        return {"persona_id": current["persona_id"], **patched, "persona_type": current.get("persona_type", "user"),
                "created_at": current["created_at"], "updated_at": utc_now()}

    def publish(self, req, pid):
        """POST /v2/pals/{id}/publish: the pending draft becomes the live PAL, keeping the live
        `layers.conferencing`; without a draft, the live PAL as it is (idempotent)."""
        with self.sb.state.lock:
            live = self.find_persona(pid, writable=True, pal=True)
            draft = self.sb.state.pal_edits.pop(pid, None)
            if draft is not None:
                layers = {k: v for k, v in (draft.get("layers") or {}).items() if k != "conferencing"}
                if "conferencing" in (live.get("layers") or {}):
                    layers["conferencing"] = live["layers"]["conferencing"]
                live = {**draft, "layers": layers, "persona_type": live.get("persona_type", "user"),
                        "created_at": live["created_at"], "updated_at": utc_now()}
                self.sb.state.personas[pid] = live
            answer = {"status": "success", "pal_id": pid, "pal_name": live.get("persona_name"),
                      "system_prompt": live.get("system_prompt"), "updated_at": live["updated_at"]}
        if draft is not None:
            self.sb.save()
        return Reply(200, answer)

    def delete_persona(self, pid, pal: bool = False):
        with self.sb.state.lock:
            self.find_persona(pid, writable=True, pal=pal)
            del self.sb.state.personas[pid]
            self.sb.state.pal_edits.pop(pid, None)
            self.sb.state.pal_skills.pop(pid, None)
        self.sb.save()
        return Reply(204)


def publish_url(pid: str) -> str:
    """Where a draft is reviewed and published: the PAL Maker page the official CLI links to (our
    choice of URL; the docs show the field, not its form)."""
    return f"https://platform.tavus.io/dev/pals/update?pal_id={pid}"


def touches_conferencing(op: dict) -> bool:
    return any(isinstance(op.get(k), str) and (op[k] + "/").startswith("/layers/conferencing/") for k in ("path", "from"))


def conferencing_only(ops: list) -> bool:
    """A patch of `layers.conferencing` alone: live-owned, never held up by a draft or Maker edit."""
    return bool(ops) and all(touches_conferencing(op) and (op.get("from") is None or
                                                            (op["from"] + "/").startswith("/layers/conferencing/"))
                             for op in ops)


def with_defaults(doc: dict) -> dict:
    """`doc` with the fields Tavus stores for every persona filled in (DEFAULT_FIELDS, DEFAULT_LAYERS)."""
    out = {**copy.deepcopy(DEFAULT_FIELDS), **doc}
    layers = out.get("layers") if isinstance(out.get("layers"), dict) else {}
    out["layers"] = {**copy.deepcopy(DEFAULT_LAYERS), **layers}
    return out


def hoist_layer_knowledge(doc: dict) -> dict:
    """`document_ids` / `document_tags` written inside `layers` (as the OAS "Full Customizations"
    persona example does) read as the top-level fields, merged with them, order kept.

    Our choice: Tavus documents both keys at the top level only; the example's nesting is taken as
    meaning the same knowledge, rather than refused or silently dropped (docs/sandbox.md).
    """
    layers = doc.get("layers")
    if not isinstance(layers, dict) or not ({"document_ids", "document_tags"} & set(layers)):
        return doc
    out, layers = dict(doc), dict(layers)
    for key in ("document_ids", "document_tags"):
        if key in layers:
            nested, top = layers.pop(key), out.get(key) or []
            if not all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in (nested, top)):
                raise error(400, f"Invalid request: layers.{key} must be a list of strings (it is read as {key})")
            out[key] = list(dict.fromkeys([*top, *nested]))
    out["layers"] = layers
    return out


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
