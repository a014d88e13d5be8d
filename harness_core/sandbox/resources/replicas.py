"""Replicas (legacy names) and faces (current names) over one store (CONTRACT §2.2, §10)."""
from __future__ import annotations

import copy

from ..http import Family, Reply, error, page



class Replicas(Family):
    """/v2/replicas and /v2/faces."""

    def routes(self):
        for base, face in (("replicas", False), ("faces", True)):
            yield "GET", rf"/v2/{base}", lambda req, face=face: self.list_replicas(req, face)
            yield "GET", rf"/v2/{base}/(?P<id>[^/]+)", lambda req, id, face=face: self.get_replica(req, id, face)

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

def shape_replica(replica: dict, face: bool, verbose: bool) -> dict:
    out = copy.deepcopy(replica)
    kind = out.pop("replica_type", None)
    if verbose:
        out["face_type" if face else "replica_type"] = kind
    if face:
        out["face_id"] = out.pop("replica_id")
        out["face_name"] = out.pop("replica_name")
    return out
