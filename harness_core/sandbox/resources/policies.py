"""Objectives and guardrails (flat guardrails and legacy guardrail sets share one store; CONTRACT §2.4, §2.5)."""
from __future__ import annotations

import copy

from ...schemas import check
from ...schemas.objective_graph import link_problem
from ...store import utc_now
from ..http import Family, Reply, apply_patch, error, page
from ..state import new_id



# Item fields Tavus stores with their documented defaults (OAS create schemas, CONTRACT §2.4/§2.5),
# so `remove /data/0/callback_url` and `add /output_variables` work on any set.
ITEM_DEFAULTS = {"objectives": {"confirmation_mode": "auto", "output_variables": [], "modality": "verbal",
                                "callback_url": ""},
                 "guardrails": {"modality": "verbal", "callback_url": ""}}
ITEM_FIELDS = {"objectives": ("objective_name", "objective_prompt", "confirmation_mode", "output_variables", "modality",
                              "next_conditional_objectives", "next_required_objective", "callback_url", "tool_call"),
               "guardrails": ("guardrail_name", "guardrail_prompt", "modality", "callback_url")}
FIXED = ("objectives_id", "guardrails_id", "uuid", "created_at", "updated_at", "status")


class Policies(Family):
    """/v2/objectives and /v2/guardrails."""

    def routes(self):
        yield "POST", r"/v2/objectives/validate", self.validate_objectives
        yield "GET", r"/v2/guardrails/tags", self.guardrail_tags
        for kind in ("objectives", "guardrails"):
            yield "POST", rf"/v2/{kind}", lambda req, kind=kind: self.create_policy(req, kind)
            yield "GET", rf"/v2/{kind}", lambda req, kind=kind: self.list_policies(req, kind)
            yield "GET", rf"/v2/{kind}/(?P<id>[^/]+)", lambda req, id, kind=kind: self.get_policy(id, kind)
            yield "PATCH", rf"/v2/{kind}/(?P<id>[^/]+)", lambda req, id, kind=kind: self.patch_policy(req, id, kind)
            yield "DELETE", rf"/v2/{kind}/(?P<id>[^/]+)", lambda req, id, kind=kind: self.delete_policy(id, kind)

    def objectives_problems(self, body) -> list[str]:
        """Every problem of an objectives set (shape, names, links), in words; empty when valid."""
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) and i.get("objective_name") for i in items):
            return ["objective_name is required"]
        problems = [f"{p.path}: {p.message}" for p in check("objectives", body)]
        broken = objective_problem(body)
        return problems + ([broken] if broken and broken not in problems else [])

    def validate_objectives(self, req):
        """POST /v2/objectives/validate (official CLI): the create rules, nothing stored. Undocumented
        answer, our choice: 200 `{"valid": true, "errors": []}`, or 400 with the message and every problem."""
        problems = self.objectives_problems(req.json_object())
        if problems:
            return Reply(400, {"message": problems[0], "valid": False, "errors": problems})
        return Reply(200, {"valid": True, "errors": []})

    def guardrail_tags(self, req):
        """GET /v2/guardrails/tags: the tags of the flat guardrails, `{tags, total_count}` like the
        document tags (the CLI calls it "KB-shaped"; rows are names, our choice), 1-based pages."""
        with self.sb.state.lock:
            names = sorted({t for g in self.sb.state.guardrails.values() if "uuid" in g for t in g.get("tags") or []})
        body = page(names, req)
        return Reply(200, {"tags": body.pop("data"), **body})

    def create_policy(self, req, kind: str):
        body = req.json_object()
        if kind == "objectives":
            problems, prefix, id_key = self.objectives_problems(body), "o", "objectives_id"
        elif "guardrail_name" in body or "data" not in body:  # flat vs legacy set: top-level guardrail_name
            if not body.get("guardrail_name"):
                raise error(400, "guardrail_name is required", "message")
            problems, prefix, id_key = [f"{p.path}: {p.message}" for p in check("guardrail", body)], "g", "uuid"
        else:
            items = body.get("data")
            if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("guardrail_name") for i in items):
                raise error(400, "guardrail_name is required", "message")
            problems = [f"{p.path}: {p.message}" for p in check("guardrails_set", body)]
            prefix, id_key = "g", "guardrails_id"
        if problems:
            raise error(400, problems[0], "message")
        with self.sb.state.lock:
            pid = new_id(prefix, 12 if id_key == "uuid" else 11)
            stamp = utc_now()
            record = {id_key: pid, **body, "created_at": stamp, "updated_at": stamp}
            if id_key == "uuid":
                record = {"modality": "verbal", "callback_url": "", "tags": [], "app_message": True, **record}
            else:
                record["data"] = [{**copy.deepcopy(ITEM_DEFAULTS[kind]), **item} for item in body["data"]]
                record["status"] = "active"
            getattr(self.sb.state, kind)[pid] = record
        self.sb.save()
        if id_key == "uuid":
            return Reply(200, copy.deepcopy(record))
        name = set_name(record, kind)
        if kind == "objectives":
            return Reply(200, {"objectives_id": pid, "objective_name": name, "objectives_name": name, "name": name,
                               "status": "active", "created_at": stamp})
        return Reply(200, {"guardrails_id": pid, "guardrails_name": name, "name": name, "status": "active",
                           "created_at": stamp})

    def list_policies(self, req, kind):
        with self.sb.state.lock:
            rows = [view(r, kind) for r in getattr(self.sb.state, kind).values()]
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
            return Reply(200, view(self.find_policy(pid, kind), kind))

    def patch_policy(self, req, pid, kind):
        ops = req.json_patch()
        if ops is None:
            raise error(400, "Invalid patch operation: send a JSON array of operations, e.g. "
                             '[{"op": "replace", "path": "/data/0/objective_prompt", "value": "…"}]')
        with self.sb.state.lock:
            current = self.find_policy(pid, kind)
            fixed = {k: current[k] for k in FIXED if k in current}
            document = {k: v for k, v in current.items() if k not in fixed}
            if "uuid" not in current:  # a set: OAS paths name one objective's field (/objective_name)
                ops = [{**op, **{k: item_path(op[k], kind) for k in ("path", "from") if isinstance(op.get(k), str)}}
                       for op in ops]
            patched = apply_patch(document, ops)
            if patched == document:
                return Reply(304)
            schema = "objectives" if kind == "objectives" else ("guardrail" if "uuid" in current else "guardrails_set")
            problems = check(schema, patched)
            if problems:
                raise error(400, f"Invalid patch operation: {problems[0].path}: {problems[0].message}")
            broken = objective_problem(patched) if kind == "objectives" else None
            if broken:
                raise error(400, f"Invalid patch operation: {broken}")
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


def set_name(record: dict, kind: str) -> str:
    """A set's name: the one it was given, else its first item's name (what Tavus answers on create)."""
    return record.get("name") or record["data"][0]["objective_name" if kind == "objectives" else "guardrail_name"]


def view(record: dict, kind: str) -> dict:
    """A stored record as GET one and list rows show it. Flat guardrails as stored. A set as the
    official CLI reads it (`data` a list of items; `name`, and `objectives_name` / `guardrails_name`
    for its name) and, where the OAS documents one objective or guardrail, that item's fields at the
    top level too, taken from the set's first item: both readers find what they read (docs/sandbox.md)."""
    out = copy.deepcopy(record)
    if "uuid" in record or not isinstance(record.get("data"), list) or not record["data"]:
        return out
    name = set_name(record, kind)
    first = {k: v for k, v in record["data"][0].items() if k in ITEM_FIELDS[kind]}
    return {**copy.deepcopy(first), **out, "name": name, f"{kind}_name": name}


def item_path(pointer: str, kind: str) -> str:
    """A PATCH path naming an item field at the top (`/objective_name`, as the OAS examples write it)
    as that field of the set's first item (`/data/0/objective_name`); other paths unchanged."""
    head = pointer[1:].split("/", 1)[0]
    return f"/data/0{pointer}" if head in ITEM_FIELDS[kind] else pointer


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
