"""Objectives and guardrails (flat guardrails and legacy guardrail sets share one store; CONTRACT §2.4, §2.5)."""
from __future__ import annotations

import copy

from ...schemas import check
from ...schemas.objective_graph import link_problem
from ...store import utc_now
from ..http import Family, Reply, apply_patch, error, page
from ..state import new_id



class Policies(Family):
    """/v2/objectives and /v2/guardrails."""

    def routes(self):
        for kind in ("objectives", "guardrails"):
            yield "POST", rf"/v2/{kind}", lambda req, kind=kind: self.create_policy(req, kind)
            yield "GET", rf"/v2/{kind}", lambda req, kind=kind: self.list_policies(req, kind)
            yield "GET", rf"/v2/{kind}/(?P<id>[^/]+)", lambda req, id, kind=kind: self.get_policy(id, kind)
            yield "PATCH", rf"/v2/{kind}/(?P<id>[^/]+)", lambda req, id, kind=kind: self.patch_policy(req, id, kind)
            yield "DELETE", rf"/v2/{kind}/(?P<id>[^/]+)", lambda req, id, kind=kind: self.delete_policy(id, kind)

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

def detach(persona: dict, pid: str, record: dict) -> None:
    """Remove a deleted objectives set or guardrail (flat or legacy set) from a persona (CONTRACT §2.5)."""
    if "uuid" in record and pid in (persona.get("guardrail_ids") or []):
        persona["guardrail_ids"] = [g for g in persona["guardrail_ids"] if g != pid]
    for key in ("objectives_id", "guardrails_id"):
        if key in record and persona.get(key) == pid:
            persona[key] = None


def objective_problem(body: dict) -> str | None:
    """What is wrong with the names or links of the objectives of a set, or None (contract §2.4)."""
    problem = link_problem(body.get("data") or [])
    return f"data[{problem[0]}]: {problem[1]}" if problem else None
