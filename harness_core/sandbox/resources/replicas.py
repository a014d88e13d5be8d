"""Replicas (legacy names) and faces (current names) over one store (CONTRACT §2.2, §10, OAS
/v2/replicas*): list, get, train (POST), rename, JSON Merge Patch on a face, delete.

Training runs on the sandbox scheduler in simulated seconds (times `time_scale`): `started` with
`training_progress` stepping up to `100/100`, then `completed` (or `error`), and the documented
replica-training callback `{"replica_id", "status": "ready"}` / `{…, "status": "error", "error_message"}`
to the `callback_url`.
"""
from __future__ import annotations

import copy
from urllib.parse import parse_qs, urlsplit

from ...store import utc_now
from ..http import Family, Reply, error, page
from ..state import new_id
from .voices import voice_names

# Invented: real training takes hours; the sandbox trains in TRAINING_SECONDS simulated seconds,
# in TRAINING_STEPS progress steps, so a scaled test sees the whole sequence.
TRAINING_SECONDS, TRAINING_STEPS = 600.0, 4
MODELS = ("phoenix-3", "phoenix-4", "phoenix-4.5")  # phoenix-4 is the default (OAS); faces also 4.5
TRAIN_FIELDS = {"train_video_url": str, "train_image_url": str, "consent_video_url": str, "voice_name": str,
                "callback_url": str, "model_name": str, "auto_fix_training_image": bool, "properties": dict}
TRAINING_ERROR = "There was an issue processing your training video. Please check the training requirements."


def training_failure(body: dict) -> str | None:
    """The error_message training ends with, or None. Invented, for tests: a training URL with a query
    parameter `sandbox_error=<text>` fails with that text (an empty value: the documented sample)."""
    url = body.get("train_video_url") or body.get("train_image_url") or ""
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    if "sandbox_error" in query:
        return query["sandbox_error"][0] or TRAINING_ERROR
    return None


class Replicas(Family):
    """/v2/replicas and /v2/faces."""

    def __init__(self, sandbox):
        super().__init__(sandbox)
        with self.sb.state.lock:  # training in a loaded state file carries on from the start
            training = [rid for rid, r in self.sb.state.replicas.items() if r.get("status") == "started"]
        for rid in training:
            self.schedule(rid)

    def routes(self):
        for base, face in (("replicas", False), ("faces", True)):
            yield "GET", rf"/v2/{base}", lambda req, face=face: self.list_replicas(req, face)
            yield "POST", rf"/v2/{base}", lambda req, face=face: self.create_replica(req, face)
            yield "GET", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, face=face: self.get_replica(req, id, face)
            yield "DELETE", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, face=face: self.delete_replica(req, id, face)
            yield "PATCH", rf"/v2/{base}/(?P<id>[^/]+)/name", lambda req, id, face=face: self.rename(req, id, face)
        yield "PATCH", r"/v2/faces/(?P<id>[^/]+)", lambda req, id: self.merge_face(req, id)

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

    def find(self, rid, face: bool, own: bool = False) -> dict:
        """The replica `rid`; with `own`, only the account's (stock ones are read-only)."""
        replica = self.sb.state.replicas.get(rid)
        if replica is None or (own and replica.get("replica_type") == "system"):
            # legacy route: 400 as Tavus answers; /v2/faces: 404 (CONTRACT §1). Invented: a stock
            # replica cannot be renamed or deleted and answers as an unknown one.
            raise error(404, "Face not found") if face else error(400, "Invalid replica_id")
        return replica

    def get_replica(self, req, rid, face: bool):
        with self.sb.state.lock:
            return Reply(200, shape_replica(self.find(rid, face), face, req.arg("verbose") in ("true", "1")))

    # -- training --------------------------------------------------------------------------------
    def create_replica(self, req, face: bool):
        body = dict(req.json_object())
        name_key = "face_name" if face else "replica_name"
        fields = {**TRAIN_FIELDS, name_key: str}
        for key, value in body.items():
            if key not in fields:
                raise error(400, f"Invalid request: unknown field '{key}'; known: {', '.join(fields)}")
            if not isinstance(value, fields[key]):
                raise error(400, f"Invalid request: {key} has the wrong type")
        video, image = body.get("train_video_url"), body.get("train_image_url")
        if not video and not image:
            raise error(400, "Either train_video_url or train_image_url must be provided.")
        if video and image:  # invented text: the OAS says not to send both
            raise error(400, "Send either train_video_url or train_image_url, not both.")
        voice = body.get("voice_name")
        if image and not voice:
            raise error(400, "voice_name is required with train_image_url; see GET /v2/voices")  # invented text
        if voice and voice.lower() not in voice_names():
            raise error(400, f"Invalid voice_name: {voice}; see GET /v2/voices")  # invented text
        model = body.get("model_name") or "phoenix-4"
        if model not in MODELS:
            raise error(400, f"Invalid request: model_name must be one of: {', '.join(MODELS)}")
        extra = set(body.get("properties") or {}) - {"background_green_screen"}
        if extra:
            raise error(400, f"Invalid request: unknown field 'properties.{sorted(extra)[0]}'; known: background_green_screen")
        with self.sb.state.lock:
            rid, stamp = new_id("r"), utc_now()
            self.sb.state.replicas[rid] = {
                "replica_id": rid, "replica_name": body.get(name_key) or f"Replica {rid}",
                # our choice: where the thumbnail will be, from the start (the OAS documents a string, never null)
                "thumbnail_video_url": f"https://cdn.replica.tavus.io/{rid}.mp4",
                "training_progress": "0/100", "status": "started", "created_at": stamp, "updated_at": stamp,
                "error_message": None, "replica_type": "user", "model_name": model, "default_voice_id": None,
                "original_voice_id": None, "callback_url": body.get("callback_url"),
                "_failure": training_failure(body)}
        self.sb.save()
        self.schedule(rid)
        return Reply(200, {"face_id" if face else "replica_id": rid, "status": "started"})

    def schedule(self, rid: str) -> None:
        scale = self.sb.settings.time_scale
        for step in range(1, TRAINING_STEPS + 1):
            self.sb.scheduler.at(TRAINING_SECONDS * step / TRAINING_STEPS * scale, f"{rid}:training-{step}",
                                 lambda step=step: self.train(rid, step))

    def train(self, rid: str, step: int) -> None:
        with self.sb.state.lock:
            replica = self.sb.state.replicas.get(rid)
            if replica is None or replica["status"] != "started":
                return
            replica["updated_at"] = utc_now()
            failure = replica.get("_failure")
            if step < TRAINING_STEPS:
                replica["training_progress"] = f"{100 * step // TRAINING_STEPS}/100"
            elif failure:
                replica.update(status="error", error_message=failure)
                self.notify(replica, {"replica_id": rid, "status": "error", "error_message": failure})
            else:
                replica.update(status="completed", training_progress="100/100",
                               thumbnail_video_url=f"https://cdn.replica.tavus.io/{rid}.mp4")
                self.notify(replica, {"replica_id": rid, "status": "ready"})
        self.sb.save()

    def notify(self, replica: dict, payload: dict) -> None:
        """The replica-training callback (CONTRACT §6.3: no envelope; `ready`, not `completed`)."""
        if replica.get("callback_url"):
            self.sb.deliverer.send(replica["callback_url"], payload)

    # -- rename, merge patch, delete -------------------------------------------------------------
    def rename(self, req, rid, face: bool):
        """PATCH …/name `{"replica_name"}` / `{"face_name"}`: 200 with no body (OAS "OK")."""
        key = "face_name" if face else "replica_name"
        body = req.json_object()
        if not isinstance(body.get(key), str) or not body[key].strip() or set(body) != {key}:
            raise error(400, f"Invalid request: the body is {{\"{key}\": \"<new name>\"}}")  # invented text
        with self.sb.state.lock:
            self.find(rid, face, own=True).update(replica_name=body[key], updated_at=utc_now())
        self.sb.save()
        return Reply(200)

    def merge_face(self, req, rid):
        """PATCH /v2/faces/{id}: JSON Merge Patch of `face_name` and `default_voice_id` (DOCS update-face);
        answers the updated face (invented: the body is undocumented)."""
        body = req.json_any()
        if not isinstance(body, dict) or not body or set(body) - {"face_name", "default_voice_id"}:
            raise error(400, "Invalid request: send a JSON object with face_name and/or default_voice_id")
        if "face_name" in body and (not isinstance(body["face_name"], str) or not body["face_name"].strip()):
            raise error(400, "Invalid request: face_name must be a non-empty string")
        if "default_voice_id" in body and not isinstance(body["default_voice_id"], (str, type(None))):
            raise error(400, "Invalid request: default_voice_id must be a string or null")
        with self.sb.state.lock:
            replica = self.find(rid, True, own=True)
            if "face_name" in body:
                replica["replica_name"] = body["face_name"]
            if "default_voice_id" in body:
                replica["default_voice_id"] = body["default_voice_id"]
            replica["updated_at"] = utc_now()
            out = shape_replica(replica, True, False)
        self.sb.save()
        return Reply(200, out)

    def delete_replica(self, req, rid, face: bool):
        """200 with no body (OAS: replicas answer 200, not 204); `?hard=true` is accepted alike.
        Personas naming it keep the id; conversations then refuse it as an unknown replica."""
        with self.sb.state.lock:
            self.find(rid, face, own=True)
            del self.sb.state.replicas[rid]
        self.sb.scheduler.cancel_prefix(f"{rid}:")
        self.sb.save()
        return Reply(200)


def shape_replica(replica: dict, face: bool, verbose: bool) -> dict:
    out = {k: copy.deepcopy(v) for k, v in replica.items() if not k.startswith("_") and k != "callback_url"}
    kind = out.pop("replica_type", None)
    if verbose:
        out["face_type" if face else "replica_type"] = kind
    if face:
        out["face_id"] = out.pop("replica_id")
        out["face_name"] = out.pop("replica_name")
    return out
