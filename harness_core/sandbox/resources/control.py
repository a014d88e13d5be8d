"""Control routes for tests and scenarios under /_sandbox (not part of Tavus; the same key check)."""
from __future__ import annotations

from ...callbacks.events import SHUTDOWN_REASONS
from ...schemas.quick import is_number
from ...store import utc_now
from ..http import Family, Reply, apply_patch, error, invalid
from .personas import SERVER_FIELDS, hoist_layer_knowledge, pal_path, to_pal, with_defaults



class Control(Family):
    """Health, scripts, forced ends, recorded deliveries, reset."""

    def routes(self):
        yield "GET", r"/_sandbox/health", lambda req: Reply(200, {"ok": True, "time_scale": self.sb.settings.time_scale})
        yield "POST", r"/_sandbox/script", self.script
        yield "POST", r"/_sandbox/conversations/(?P<cid>[^/]+)/end", self.control_end
        yield "GET", r"/_sandbox/deliveries", lambda req: Reply(200, list(self.sb.deliveries))
        yield "POST", r"/_sandbox/reset", self.reset
        yield "POST", r"/_sandbox/pals/(?P<pid>[^/]+)/dashboard-edit", self.dashboard_edit

    def script(self, req):
        body = req.json_object()
        target = body.get("conversation_id") and f"conversation:{body['conversation_id']}" or \
            body.get("persona_id") and f"persona:{body['persona_id']}" or "default"
        script = {k: body[k] for k in ("transcript", "perception_analysis", "end_after_seconds", "participant_joins")
                  if k in body}
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
            if cid not in self.sb.state.conversations:
                raise error(400, "Invalid conversation_id")
        self.sb.finish(cid, reason)
        return Reply(200, {"conversation_id": cid, "shutdown_reason": reason})

    def reset(self, req):
        self.sb.reset()
        return Reply(200, {"reset": True})

    def dashboard_edit(self, req, pid):
        """An edit made in the Tavus dashboard (PAL Builder / PAL Maker), not yet live: a JSON Patch in
        PAL names applied to the PAL's pending edit (or, without one, to the live PAL) and kept as
        the pending edit. What a later API PATCH meets depends on the `pal_editing` setting."""
        ops = req.json_patch()
        if ops is None:
            raise error(400, "send a JSON Patch array, e.g. "
                             '[{"op": "replace", "path": "/system_prompt", "value": "Edited in the dashboard."}]')
        ops = [{**op, **{k: pal_path(op[k]) for k in ("path", "from") if isinstance(op.get(k), str)}} for op in ops]
        with self.sb.state.lock:
            live = self.sb.state.personas.get(pid)
            if live is None:
                raise error(404, f"no PAL {pid} in the sandbox (stock PALs cannot be edited)")
            base = self.sb.state.pal_edits.get(pid) or live
            document = with_defaults({k: v for k, v in base.items() if k not in SERVER_FIELDS})
            edited = hoist_layer_knowledge(apply_patch(document, ops))
            invalid("persona", edited)
            pending = {"persona_id": pid, **edited, "persona_type": live.get("persona_type", "user"),
                       "created_at": live["created_at"], "updated_at": utc_now()}
            self.sb.state.pal_edits[pid] = pending
        self.sb.save()
        return Reply(200, {"pal_editing": self.sb.settings.pal_editing, "pending": to_pal(pending)})
