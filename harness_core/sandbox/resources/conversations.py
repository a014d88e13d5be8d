"""Conversations: create (with the concurrency limit), list, get (verbose events), end, delete (CONTRACT §2.3)."""
from __future__ import annotations

import copy

from ...store import utc_now
from ..http import Family, Reply, error, invalid, page
from ..state import new_id
from .documents import check_document_ids

CONCURRENCY_MESSAGE = "User has reached maximum concurrent conversations"



class Conversations(Family):
    """/v2/conversations; timers and callbacks live in the Sandbox (lifecycle)."""

    def routes(self):
        yield "POST", r"/v2/conversations", self.create_conversation
        yield "GET", r"/v2/conversations", self.list_conversations
        yield "GET", r"/v2/conversations/(?P<cid>[^/]+)", self.get_conversation
        yield "POST", r"/v2/conversations/(?P<cid>[^/]+)/end", self.end_conversation
        yield "DELETE", r"/v2/conversations/(?P<cid>[^/]+)", self.delete_conversation

    def create_conversation(self, req):
        body = req.json_object()
        if "callback_url" in body and body["callback_url"] is None:
            raise error(400, "Invalid request: callback_url must be a string; omit it instead of sending null")
        invalid("conversation", body)  # invented wording: Tavus documents no body here
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
            check_document_ids(state, body.get("document_ids"))
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
        self.sb.delete_conversation(cid)  # an active one is shut down first (lifecycle: our choice)
        return Reply(204)

def public_conversation(conv: dict) -> dict:
    keys = ("conversation_id", "conversation_name", "status", "conversation_url", "callback_url", "replica_id",
            "persona_id", "created_at", "updated_at")
    return {k: conv.get(k) for k in keys if k in conv}
