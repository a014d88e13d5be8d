"""Stock voices (OAS GET /v2/voices): the `voice_name` slugs an image-trained replica may use."""
from __future__ import annotations

from ..http import Family, Reply, error, page
from ..stock import stock_voices


def voice_names() -> set[str]:
    """Every stock voice_name, lower case (Create Replica matches them case-insensitively)."""
    return {v["voice_name"].lower() for v in stock_voices()}


class Voices(Family):
    """/v2/voices: read-only, filtered by `search` (substring of voice_name) and `tag`, sorted asc/desc."""

    def routes(self):
        yield "GET", r"/v2/voices", self.list_voices

    def list_voices(self, req):
        search = (req.arg("search") or "").lower()
        # OAS names the filter `tag`; the official MCP server sends `tags` (comma list): both are read
        wanted = {t.lower() for t in (req.arg("tag") or req.arg("tags") or "").split(",") if t}
        sort = req.arg("sort") or "asc"
        if sort not in ("asc", "desc"):
            raise error(400, "Invalid request: sort must be asc or desc")
        rows = [v for v in stock_voices() if search in v["voice_name"].lower()
                and (not wanted or wanted & {t["tag_name"].lower() for t in v["tags"]})]
        rows.sort(key=lambda v: v["voice_name"], reverse=sort == "desc")
        body = page(rows, req, most=100)  # checks limit (1-100) and page first
        # voices echo page and limit (OAS); page 0 (the MCP server's default) reads as page 1
        body.update(page=max(int(req.arg("page") or 1), 1), limit=int(req.arg("limit") or 10))
        return Reply(200, body)
