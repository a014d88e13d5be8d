"""Skills: the registry of built-in PAL skills (`/v2/skills`) and the skills attached to a PAL
(`/v2/pals/{id}/skills/…`), stored as given. Paths and bodies from the official CLI (CONTRACT §10;
tavus-cli 0.11.0 `PalResource`): the docs describe neither, so the shapes below are our choices.
"""
from __future__ import annotations

import copy

from ..http import Family, Reply, error, page

# The registry (invented rows): the four skills the official CLI maps its PAL Maker capabilities to.
SKILLS = [
    {"skill_id": "internet_search", "display_name": "Web Search",
     "description": "Look up current information on the web during a call.", "tool_names": ["internet_search"]},
    {"skill_id": "magic_canvas", "display_name": "Magic Canvas",
     "description": "Show questions, forms, calendars, charts and media beside the PAL.", "tool_names": ["show_canvas"]},
    {"skill_id": "memory", "display_name": "Memory",
     "description": "Carry user-specific context across conversations.", "tool_names": ["remember", "recall"]},
    {"skill_id": "presentation", "display_name": "Slide Presenter",
     "description": "Walk participants through uploaded display-ready Knowledge documents.",
     "tool_names": ["show_slide"]},
]
SKILL_IDS = {s["skill_id"] for s in SKILLS}


class Skills(Family):
    """/v2/skills and /v2/pals/{id}/skills/."""

    def routes(self):
        yield "GET", r"/v2/skills", lambda req: Reply(200, page(copy.deepcopy(SKILLS), req, most=100))
        yield "GET", r"/v2/skills/(?P<sid>[^/]+)", lambda req, sid: Reply(200, copy.deepcopy(self.skill(sid)))
        pal_skills = r"/v2/pals/(?P<pid>[^/]+)/skills"
        yield "GET", pal_skills, self.list_attached
        yield "PUT", pal_skills, self.replace_all
        yield "GET", pal_skills + r"/(?P<sid>[^/]+)", self.get_attached
        yield "PUT", pal_skills + r"/(?P<sid>[^/]+)", self.attach
        yield "PATCH", pal_skills + r"/(?P<sid>[^/]+)", self.merge
        yield "DELETE", pal_skills + r"/(?P<sid>[^/]+)", self.detach

    @staticmethod
    def skill(sid: str) -> dict:
        for row in SKILLS:
            if row["skill_id"] == sid:
                return row
        raise error(404, f"Skill not found: {sid} (GET /v2/skills lists the skills)")

    def attached(self, pid: str) -> dict:
        """The skills attached to PAL `pid` (caller holds the lock); 404 for an unknown PAL."""
        if self.sb.state.persona(pid) is None:
            raise error(404, "PAL not found")
        return self.sb.state.pal_skills.setdefault(pid, {})

    def list_attached(self, req, pid):
        """`{"data": {skill_id: attachment}}`: the map the official CLI reads (our choice of envelope)."""
        with self.sb.state.lock:
            return Reply(200, {"data": copy.deepcopy(self.attached(pid))})

    def get_attached(self, req, pid, sid):
        with self.sb.state.lock:
            skills = self.attached(pid)
            if sid not in skills:
                raise error(404, f"Skill {sid} is not attached to this PAL")
            return Reply(200, copy.deepcopy(skills[sid]))

    def attach(self, req, pid, sid):
        """PUT one skill: the body (the CLI sends `{"config": {…}}`) is stored as given, replacing any."""
        body = self.body(req)
        self.skill(sid)
        with self.sb.state.lock:
            self.attached(pid)[sid] = body
        self.sb.save()
        return Reply(200, copy.deepcopy(body))

    def merge(self, req, pid, sid):
        """PATCH one attached skill: the body's `config` merged into the stored one, key by key."""
        body = self.body(req)
        with self.sb.state.lock:
            skills = self.attached(pid)
            if sid not in skills:
                raise error(404, f"Skill {sid} is not attached to this PAL: attach it with PUT first")
            current = skills[sid]
            config = body.get("config", {})
            if not isinstance(config, dict):
                raise error(400, "Invalid request: config must be a JSON object")
            merged = {**current, **{k: v for k, v in body.items() if k != "config"},
                      "config": {**(current.get("config") or {}), **config}}
            skills[sid] = merged
        self.sb.save()
        return Reply(200, copy.deepcopy(merged))

    def detach(self, req, pid, sid):
        with self.sb.state.lock:
            skills = self.attached(pid)
            if sid not in skills:
                raise error(404, f"Skill {sid} is not attached to this PAL")
            del skills[sid]
        self.sb.save()
        return Reply(204)

    def replace_all(self, req, pid):
        """PUT the whole set: `{"skills": {skill_id: attachment}}` replaces every attachment."""
        body = self.body(req)
        skills = body.get("skills")
        if not isinstance(skills, dict) or not all(isinstance(v, dict) for v in skills.values()):
            raise error(400, 'Invalid request: send {"skills": {"<skill_id>": {"config": {…}}, …}}')
        for sid in skills:
            self.skill(sid)
        with self.sb.state.lock:
            self.attached(pid)
            self.sb.state.pal_skills[pid] = copy.deepcopy(skills)
        self.sb.save()
        return Reply(200, {"data": copy.deepcopy(skills)})

    @staticmethod
    def body(req) -> dict:
        return req.json_object() if req.raw else {}
