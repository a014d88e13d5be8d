"""Knowledge-base documents as code: `configs/documents/*.json|toml` (CONTRACT §2.6).

A file holds `document_name` (the key the harness finds it by), `document_url`, and optionally
`tags`, `crawl` ({depth, max_pages}) and `callback_url`. Tavus processes a document
asynchronously; a create waits for `ready` (or `error` with one of the documented codes),
printing a progress line while it waits. Only `document_name` and `tags` can change in place
(PATCH); another URL or crawl is a new document.
"""
from __future__ import annotations

import copy
import time

from ..config import check_keys
from ..errors import CheckFailed, ConfigError

FIELDS = ("document_name", "document_url", "tags", "crawl", "callback_url")
MUTABLE = ("document_name", "tags")
ERROR_HINTS = {
    "file_download_failed": "check that the URL is public and answers",
    "file_format_unsupported": "use pdf, txt, docx, doc, png, jpg, pptx, csv or xlsx, or a web page",
    "file_size_too_large": "split the file",
    "file_empty": "the file has no text",
    "invalid_file_url": "give an http(s) URL to a file or a web page",
    "website_processing_failed": "check the site answers without a login",
}
DONE = ("ready", "error")


def build_document(data: dict, where: str) -> dict:
    """Check one document config and return the create body."""
    check_keys(data, FIELDS, where)
    for key in ("document_name", "document_url"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ConfigError(f"{where}: {key}: required, a non-empty string",
                              hint='e.g. "document_url": "https://example.com/handbook.pdf"')
    if not data["document_url"].startswith(("https://", "http://")):
        raise ConfigError(f"{where}: document_url: must be an http(s) URL", hint="Tavus downloads the document from it")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise ConfigError(f"{where}: tags: must be a list of strings", hint='e.g. "tags": ["facilitation"]')
    crawl = data.get("crawl")
    if crawl is not None:
        if not isinstance(crawl, dict) or set(crawl) - {"depth", "max_pages"}:
            raise ConfigError(f"{where}: crawl: an object with depth (1-10) and max_pages (1-100)",
                              hint='e.g. "crawl": {"depth": 2, "max_pages": 10}')
        for key, most in (("depth", 10), ("max_pages", 100)):
            value = crawl.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most):
                raise ConfigError(f"{where}: crawl.{key}: a whole number from 1 to {most}", hint=f'e.g. "{key}": 2')
    return copy.deepcopy(data)


def as_seen(remote: dict) -> dict:
    """A remote document in config names (the API answers the crawl settings as `crawl_config`)."""
    out = dict(remote)
    if "crawl" not in out and out.get("crawl_config") is not None:
        out["crawl"] = out["crawl_config"]
    return out


def as_config(remote: dict) -> dict:
    """A remote document as a config file."""
    seen = as_seen(remote)
    return {k: copy.deepcopy(seen[k]) for k in FIELDS if seen.get(k) not in (None, "", [], {})}


def wait_ready(ctx, document_id: str, name: str, where: str, *, timeout: float = 900.0) -> dict:
    """Poll the document until `ready` or `error` (bounded); one progress line per change.

    An `error` is a CheckFailed naming the file and the documented error code.
    """
    client = ctx.client()
    deadline, delay, said = time.monotonic() + timeout, 0.05, None
    while True:
        doc = client.get(f"/documents/{document_id}")
        status, progress = doc.get("status"), doc.get("progress")
        line = f"document {name!r} ({document_id}): {status}" + (f" {progress}%" if progress is not None else "")
        if line != said and status not in DONE:
            ctx.note(line)
            said = line
        if status == "ready":
            return doc
        if status == "error":
            code = doc.get("error_message") or "unknown"
            raise CheckFailed(f"{where}: document {name!r} ({document_id}) failed to process: {code}",
                              hint=ERROR_HINTS.get(code, "see the document in the Tavus dashboard"))
        if time.monotonic() > deadline:
            raise CheckFailed(f"{where}: document {name!r} ({document_id}) still {status} after {timeout:.0f} s",
                              hint="run `invoke apply` again later; it waits for the same document")
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)
