"""Knowledge-base documents (CONTRACT §2.6)."""
from __future__ import annotations

import copy

from ..http import Family, Reply, error, page



class Documents(Family):
    """/v2/documents."""

    def routes(self):
        yield "GET", r"/v2/documents", self.list_documents
        yield "GET", r"/v2/documents/(?P<did>[^/]+)", self.get_document

    def list_documents(self, req):
        with self.sb.state.lock:
            rows = [copy.deepcopy(d) for d in self.sb.state.documents.values()]
        body = page(rows, req, base=0)  # documents page from 0 and echo page and limit (CONTRACT §1)
        return Reply(200, body)

    def get_document(self, req, did):
        with self.sb.state.lock:
            doc = self.sb.state.documents.get(did)
            if doc is None:
                raise error(404, "Document not found", "message")
            return Reply(200, copy.deepcopy(doc))
