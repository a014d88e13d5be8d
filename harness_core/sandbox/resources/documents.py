"""Knowledge-base documents (CONTRACT §2.6, OAS /v2/documents*): create with asynchronous processing,
list, get, plain-object PATCH, delete, recrawl, tags and chunks.

Processing runs on the sandbox scheduler in simulated seconds (times `time_scale`): `started` at
create, `processing` after PROCESSING_AT, `ready` (or `error` with a documented code) after
FINISHED_AT; every status change is POSTed to the document's `callback_url`.
"""
from __future__ import annotations

import copy
import time
from posixpath import splitext
from urllib.parse import parse_qs, urlsplit

from ...store import utc_now
from ..http import Family, Reply, error, page
from ..state import new_id

# Simulated seconds from create (or recrawl) to each step. Invented: Tavus says "a few minutes
# depending on file size"; a sandbox keeps it short so a scaled test sees the whole sequence.
PROCESSING_AT, HALFWAY_AT, FINISHED_AT = 5.0, 15.0, 30.0
RECRAWL_COOLDOWN = 3600.0   # simulated seconds between recrawls of one document (OAS: 1 hour)
MAX_CRAWL_DOCUMENTS = 100   # per account (OAS)
MAX_CONCURRENT_CRAWLS = 5   # per account (OAS)
BUSY = ("started", "processing", "recrawling")
ERROR_CODES = ("file_download_failed", "file_format_unsupported", "file_size_too_large", "file_empty",
               "invalid_file_url", "document_processing_failed", "website_processing_failed", "chunking_failed",
               "embedding_failed", "vector_store_failed", "contact_support")
# OAS formats, plus .md .json .jpeg the official CLI also uploads
FILE_TYPES = (".pdf", ".txt", ".docx", ".doc", ".png", ".jpg", ".jpeg", ".pptx", ".csv", ".xlsx", ".md", ".json")
# Extensions that name a file of a kind Tavus does not read (so not a web page): invented list.
OTHER_FILES = (".exe", ".zip", ".gz", ".tar", ".mp3", ".mp4", ".mov", ".wav", ".bin", ".dmg", ".iso", ".rtf", ".odt")
CREATE_FIELDS = {"document_url": str, "document_name": str, "callback_url": str, "tags": list, "crawl": dict,
                 # sent by the official CLI (DocumentResource.create_from_url), stored as given
                 "participant_tags": list, "custom_description": str, "is_customer_support_document": bool,
                 "font_size_aware_extraction": bool}
PATCH_FIELDS = {"document_name": str, "tags": list}
CHUNK_COLLECTIONS = ("regular", "customer_support")


def check_document_ids(state, ids, before=()) -> None:
    """400 `Invalid document_id: <id>` for the first of `ids` (not already in `before`) that names no
    document in the sandbox. Called for `document_ids` on personas/PALs and conversations.

    Invented: Tavus documents no answer for an unknown document id; this follows its
    `Invalid <x>_id` convention for unknown ids (CONTRACT §1). A document still processing is
    accepted (the docs advise, not require, waiting for `ready`).
    """
    if not isinstance(ids, list):
        return  # the schema check reports the wrong type
    with state.lock:
        for did in ids:
            if did not in before and did not in state.documents:
                raise error(400, f"Invalid document_id: {did}")


def public(doc: dict) -> dict:
    """A stored document without the sandbox's private bookkeeping (keys starting with `_`)."""
    return {k: copy.deepcopy(v) for k, v in doc.items() if not k.startswith("_")}


def outcome(url: str) -> str | None:
    """The error code processing `url` ends with, or None for `ready`.

    A URL that is not http(s) fails with `invalid_file_url`, a file of an unreadable kind with
    `file_format_unsupported`. Invented, for tests: a query parameter `sandbox_error=<code>` (one of
    the documented codes) makes processing fail with that code.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "invalid_file_url"
    wanted = (parse_qs(parts.query).get("sandbox_error") or [None])[0]
    if wanted in ERROR_CODES:
        return wanted
    if splitext(parts.path)[1].lower() in OTHER_FILES:
        return "file_format_unsupported"
    return None


def crawled_urls(doc: dict) -> list[str]:
    """The pages a crawl "found": the start URL and up to max_pages-1 invented sub-pages."""
    start = doc["document_url"]
    most = int((doc.get("crawl_config") or {}).get("max_pages") or 1)
    base = start.rstrip("/")
    return [start] + [f"{base}/page-{i}" for i in range(1, min(most, 5))]


class Documents(Family):
    """/v2/documents and its sub-routes."""

    def __init__(self, sandbox):
        super().__init__(sandbox)
        with self.sb.state.lock:  # documents still processing in a loaded state file carry on
            busy = [did for did, d in self.sb.state.documents.items() if d.get("status") in BUSY]
        for did in busy:
            self.schedule(did)

    def routes(self):
        yield "POST", r"/v2/documents", self.create_document
        yield "GET", r"/v2/documents", self.list_documents
        yield "GET", r"/v2/documents/tags", self.list_tags
        yield "GET", r"/v2/documents/(?P<did>[^/]+)", self.get_document
        yield "PATCH", r"/v2/documents/(?P<did>[^/]+)", self.patch_document
        yield "DELETE", r"/v2/documents/(?P<did>[^/]+)", self.delete_document
        yield "POST", r"/v2/documents/(?P<did>[^/]+)/recrawl", self.recrawl_document
        yield "GET", r"/v2/documents/(?P<did>[^/]+)/chunks", self.list_chunks

    # -- create and processing -----------------------------------------------------------------
    def create_document(self, req):
        body = req.json_object()
        if not body.get("document_url"):
            raise error(400, "Invalid request: document_url is required")
        check_fields(body, CREATE_FIELDS)
        crawl = body.get("crawl")
        if crawl is not None:
            check_crawl(crawl)
        url = body["document_url"]
        state = self.sb.state
        with state.lock:
            crawls = [d for d in state.documents.values() if d.get("crawl_config")]
            if crawl is not None and len(crawls) >= MAX_CRAWL_DOCUMENTS:
                raise error(429, f"Crawl document limit reached ({MAX_CRAWL_DOCUMENTS}). "
                                 "Contact support@tavus.io to increase your limit.")
            if crawl is not None and sum(d["status"] in BUSY for d in crawls) >= MAX_CONCURRENT_CRAWLS:
                # invented text: the OAS names the limit (5 concurrent crawls), not its message
                raise error(429, f"Concurrent crawl limit reached ({MAX_CONCURRENT_CRAWLS}). "
                                 "Wait for a crawl to finish, then try again.")
            did, stamp = new_id("d"), utc_now()
            doc = {"document_id": did, "document_name": body.get("document_name") or default_name(url),
                   "document_url": url, "status": "started", "progress": None, "error_message": None,
                   "created_at": stamp, "updated_at": stamp, "callback_url": body.get("callback_url") or "",
                   "tags": list(body.get("tags") or []), "crawl_config": copy.deepcopy(crawl),
                   "crawled_urls": None, "last_crawled_at": None, "crawl_count": None,
                   **{k: copy.deepcopy(body[k]) for k in CREATE_FIELDS if k not in OWN_KEYS and k in body}}
            state.documents[did] = doc
            self.notify(doc)
            out = public(doc)
        self.sb.save()
        self.schedule(did)
        return Reply(200, out)

    def schedule(self, did: str) -> None:
        """Timers that take a document from started/recrawling to ready or error."""
        scale = self.sb.settings.time_scale
        self.sb.scheduler.at(PROCESSING_AT * scale, f"{did}:processing", lambda: self.advance(did, "processing", 0))
        self.sb.scheduler.at(HALFWAY_AT * scale, f"{did}:halfway", lambda: self.advance(did, "processing", 50))
        self.sb.scheduler.at(FINISHED_AT * scale, f"{did}:finished", lambda: self.finish(did))

    def advance(self, did: str, status: str, progress: int) -> None:
        with self.sb.state.lock:
            doc = self.sb.state.documents.get(did)
            if doc is None or doc["status"] not in BUSY:
                return
            changed = doc["status"] != status and doc["status"] != "recrawling"
            if changed:
                doc["status"] = status
            doc["progress"], doc["updated_at"] = progress, utc_now()
            if changed:
                self.notify(doc)
        self.sb.save()

    def finish(self, did: str) -> None:
        with self.sb.state.lock:
            doc = self.sb.state.documents.get(did)
            if doc is None or doc["status"] not in BUSY:
                return
            failure = outcome(doc["document_url"])
            stamp = utc_now()
            doc.update(status="error" if failure else "ready", progress=None, error_message=failure, updated_at=stamp)
            if doc.get("crawl_config") and not failure:
                doc.update(crawled_urls=crawled_urls(doc), last_crawled_at=stamp, crawl_count=(doc.get("crawl_count") or 0) + 1)
            self.notify(doc)
        self.sb.save()

    def notify(self, doc: dict) -> None:
        """POST the document as it now is to its callback_url (caller holds the lock).

        Invented: Tavus documents that status updates go there, not their body; we send the
        document object as GET returns it.
        """
        if doc.get("callback_url"):
            self.sb.deliverer.send(doc["callback_url"], public(doc))

    # -- read ------------------------------------------------------------------------------------
    def list_documents(self, req):
        status, search = req.arg("status"), (req.arg("name_or_uuid") or "").lower()
        tags = set(filter(None, (req.arg("tags") or "").split(",")))
        with self.sb.state.lock:
            rows = [public(d) for d in self.sb.state.documents.values()
                    if (not status or d["status"] == status)
                    and (not search or search in d["document_name"].lower() or search == d["document_id"])
                    and (not tags or tags & set(d.get("tags") or []))]
        sort = req.arg("sort") or "ascending"
        if sort not in ("ascending", "descending", "asc", "desc"):  # the CLI sends asc/desc
            raise error(400, "Invalid request: sort must be ascending or descending")
        rows.sort(key=lambda d: d["created_at"], reverse=sort in ("descending", "desc"))
        return Reply(200, page(rows, req, base=0))  # documents page from 0 and echo page and limit (CONTRACT §1)

    def find_document(self, did) -> dict:
        doc = self.sb.state.documents.get(did)
        if doc is None:
            raise error(404, "Document not found", "message")
        return doc

    def get_document(self, req, did):
        with self.sb.state.lock:
            return Reply(200, public(self.find_document(did)))

    def list_tags(self, req):
        """GET /v2/documents/tags (official CLI). Invented shape: `{tags: [names], total_count, page,
        limit}` (the CLI calls the guardrail tags answer "KB-shaped {tags, total_count}"), 0-based."""
        search = (req.arg("search") or "").lower()
        with self.sb.state.lock:
            names = sorted({t for d in self.sb.state.documents.values() for t in d.get("tags") or []})
        names = [t for t in names if search in t.lower()]
        body = page(names, req, base=0)
        return Reply(200, {"tags": body.pop("data"), **body})

    def list_chunks(self, req, did):
        """GET /v2/documents/{id}/chunks (official CLI; shape invented): the indexed chunks of a ready
        document, `{data: [{chunk_id, document_id, chunk_index, text, source_url}], total_count,
        next_offset}`; `offset` is the index the page starts at, as a string."""
        collection = req.arg("collection") or "regular"
        if collection not in CHUNK_COLLECTIONS:
            raise error(400, f"Invalid request: collection must be one of: {', '.join(CHUNK_COLLECTIONS)}")
        try:
            limit, offset = int(req.arg("limit") or 100), int(req.arg("offset") or 0)
        except ValueError:
            raise error(400, "Invalid request: limit must be an integer and offset a chunk offset") from None
        if limit < 1 or offset < 0:
            raise error(400, "Invalid request: limit must be 1 or more and offset 0 or more")
        with self.sb.state.lock:
            doc = public(self.find_document(did))
        chunks = []
        if doc["status"] == "ready" and (collection == "regular") != bool(doc.get("is_customer_support_document")):
            for i, source in enumerate(doc.get("crawled_urls") or [doc["document_url"]] * 3):
                chunks.append({"chunk_id": f"{did}-{i}", "document_id": did, "chunk_index": i, "source_url": source,
                               "text": f"Sandbox text {i + 1} of {doc['document_name']} ({source})."})
        rows = chunks[offset:offset + limit]
        more = offset + limit < len(chunks)
        return Reply(200, {"data": rows, "total_count": len(chunks), "next_offset": str(offset + limit) if more else None})

    # -- write -----------------------------------------------------------------------------------
    def patch_document(self, req, did):
        """Plain JSON object: `document_name` and/or `tags` (tags overwrite). Not JSON Patch (OAS)."""
        body = req.json_any()
        if not isinstance(body, dict):
            raise error(400, "Invalid request: send a JSON object with document_name and/or tags (not JSON Patch)")
        check_fields(body, PATCH_FIELDS)
        with self.sb.state.lock:
            doc = self.find_document(did)
            doc.update(copy.deepcopy(body), updated_at=utc_now())
            out = public(doc)
        self.sb.save()
        return Reply(200, out)

    def delete_document(self, req, did):
        """204. Personas/PALs keep naming a deleted document (the official CLI reports such ids as
        `missing_document_ids` after a 404, so Tavus does not remove them): our reading."""
        with self.sb.state.lock:
            self.find_document(did)
            del self.sb.state.documents[did]
        self.sb.scheduler.cancel_prefix(f"{did}:")
        self.sb.save()
        return Reply(204)

    def recrawl_document(self, req, did):
        """202 `recrawling` (OAS; CONTRACT §1 says 200: the OAS response list wins), 400 without a
        crawl configuration, 409 unless ready/error, 429 within the cooldown (simulated hour)."""
        body = req.json_object() if req.raw else {}
        check_fields(body, {"crawl": dict})
        if body.get("crawl") is not None:
            check_crawl(body["crawl"])
        scale = self.sb.settings.time_scale
        with self.sb.state.lock:
            doc = self.find_document(did)
            if not doc.get("crawl_config") and not body.get("crawl"):
                raise error(400, "Document was not created with crawl configuration")
            if doc["status"] not in ("ready", "error"):
                raise error(409, f"Document must be in 'ready' or 'error' state to recrawl, current status: {doc['status']}")
            waited = (time.time() - doc.get("_recrawl_requested", 0.0)) / max(scale, 1e-9)
            if waited < RECRAWL_COOLDOWN:
                minutes = max(1, int((RECRAWL_COOLDOWN - waited + 59) // 60))
                raise error(429, f"Recrawl cooldown: please wait {minutes} minutes before recrawling this document.")
            busy = sum(d["status"] in BUSY and bool(d.get("crawl_config")) for d in self.sb.state.documents.values())
            if busy >= MAX_CONCURRENT_CRAWLS:
                raise error(429, f"Concurrent crawl limit reached ({MAX_CONCURRENT_CRAWLS}). "
                                 "Wait for a crawl to finish, then try again.")  # invented text, as on create
            if body.get("crawl"):
                doc["crawl_config"] = copy.deepcopy(body["crawl"])  # invented: kept for later recrawls too
            doc.update(status="recrawling", progress=None, error_message=None, updated_at=utc_now(),
                       _recrawl_requested=time.time())
            self.notify(doc)
            out = public(doc)
        self.sb.save()
        self.schedule(did)
        return Reply(202, out)


OWN_KEYS = ("document_url", "document_name", "callback_url", "tags", "crawl")


def default_name(url: str) -> str:
    """A name from the URL when none is given (the OAS: "a default name will be generated")."""
    parts = urlsplit(url)
    return parts.path.rstrip("/").rsplit("/", 1)[-1] or parts.hostname or "Document"


def check_fields(body: dict, fields: dict) -> None:
    """400 for an unknown field or a field of the wrong JSON type (texts follow the OAS examples)."""
    names = {str: "a string", list: "an array of strings", dict: "an object", bool: "a boolean"}
    for key, value in body.items():
        if key not in fields:
            raise error(400, f"Invalid request: unknown field '{key}'; known: {', '.join(fields)}")
        kind = fields[key]
        if value is None and key not in ("document_url",):
            continue
        if not isinstance(value, kind) or (kind is list and not all(isinstance(v, str) for v in value)):
            raise error(400, f"Invalid request: {key} must be {names[kind]}")


def check_crawl(crawl) -> None:
    """`crawl.depth` 1-10 and `crawl.max_pages` 1-100 (OAS)."""
    if not isinstance(crawl, dict):
        raise error(400, "Invalid request: crawl must be an object")
    for key, most in (("depth", 10), ("max_pages", 100)):
        value = crawl.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most):
            raise error(400, f"Invalid request: crawl.{key} must be an integer from 1 to {most}")
    unknown = set(crawl) - {"depth", "max_pages"}
    if unknown:
        raise error(400, f"Invalid request: unknown field 'crawl.{sorted(unknown)[0]}'; known: depth, max_pages")
