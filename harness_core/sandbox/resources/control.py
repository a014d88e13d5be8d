"""Control routes for tests and scenarios under /_sandbox (not part of Tavus; the same key check)."""
from __future__ import annotations

from ...callbacks.events import SHUTDOWN_REASONS
from ...schemas.quick import is_number
from ..http import Family, Reply, error



class Control(Family):
    """Health, scripts, forced ends, recorded deliveries, reset."""

    def routes(self):
        yield "GET", r"/_sandbox/health", lambda req: Reply(200, {"ok": True, "time_scale": self.sb.settings.time_scale})
        yield "POST", r"/_sandbox/script", self.script
        yield "POST", r"/_sandbox/conversations/(?P<cid>[^/]+)/end", self.control_end
        yield "GET", r"/_sandbox/deliveries", lambda req: Reply(200, list(self.sb.deliveries))
        yield "POST", r"/_sandbox/reset", self.reset

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
