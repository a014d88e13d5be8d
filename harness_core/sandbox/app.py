"""The sandbox's router: one WSGI app over the resource families in `resources/`.

Order of checks for every request (as Tavus answers): the API key first (401 for any path under
/v2 or /_sandbox, known or not), then the route (404 / 405 with Allow), then the injected faults,
then the family's handler. A literal path segment wins over an id segment, so
`/v2/guardrails/tags` is never read as a guardrail named "tags".
"""
from __future__ import annotations

import json
import re
import time

from ..serving import status_line
from .http import MAX_BODY, Reply, Request, error
from .resources.control import Control
from .resources.conversations import Conversations
from .resources.documents import Documents
from .resources.personas import Personas
from .resources.policies import Policies
from .resources.pronunciation import PronunciationDictionaries
from .resources.replicas import Replicas
from .resources.room import Room
from .resources.tools import Tools
from .resources.voices import Voices

__all__ = ["FAMILIES", "MAX_BODY", "SandboxApp"]

# Every resource family the sandbox serves; a new family is one module and one entry here.
FAMILIES = (Personas, Replicas, Conversations, Policies, Documents, Tools, PronunciationDictionaries, Voices, Control,
            Room)


class SandboxApp:
    """WSGI callable. `sandbox` gives settings, state, scheduler and deliverer."""

    def __init__(self, sandbox):
        self.sb = sandbox
        self.routes: list[tuple[str, re.Pattern, object]] = []
        for family in FAMILIES:
            for method, pattern, handler in family(sandbox).routes():
                # Collection routes are served with and without a trailing slash, never redirected (CONTRACT §1).
                self.routes.append((method, re.compile(f"^{pattern}/?$"), handler))
        # literal segments before id segments: fewer capture groups first, then registration order
        self.routes.sort(key=lambda route: route[1].groups)

    def __call__(self, environ, start_response):
        try:
            reply = self.dispatch(environ)
        except Reply as r:
            reply = r
        except Exception as exc:  # noqa: BLE001 - a sandbox bug answers 500 like a server would
            reply = Reply(500, {"error": f"sandbox internal error: {type(exc).__name__}"})
        status, body = reply.status, reply.body
        data = b"" if status in (204, 304) or body is None else json.dumps(body).encode()
        # A dropped connection: promise more bytes than we send; waitress then closes the socket.
        headers = [("Content-Length", str(len(data) + (4096 if reply.drop else 0))), *reply.headers]
        if data:
            headers.append(("Content-Type", "application/json"))
        if status == 405:
            headers.append(("Allow", ", ".join(sorted(self.methods(environ.get("PATH_INFO", ""))))))
        start_response(status_line(status), headers)
        return [data]

    def methods(self, path: str) -> set[str]:
        """The methods served at `path`."""
        return {m for m, p, _ in self.routes if p.match(path)}

    def dispatch(self, environ):
        """Key, route, faults, handler; raises or returns a Reply."""
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/"
        self.sb.record_request(method, path)
        key = environ.get("HTTP_X_API_KEY", "")
        if path.startswith(("/v2/", "/_sandbox/")) and (
                not key or (self.sb.settings.api_key is not None and key != self.sb.settings.api_key)):
            raise error(401, "Invalid access token", "message")
        matches = [(m, p.match(path), h) for m, p, h in self.routes]
        matches = [(m, mt, h) for m, mt, h in matches if mt]
        if not matches:
            raise error(404, "Not found")
        for m, match, handler in matches:
            if m == method:
                req = Request(environ)
                if not path.startswith("/v2/"):
                    return handler(req, **match.groupdict())
                return self.with_faults(lambda: handler(req, **match.groupdict()))
        raise error(405, "Method not allowed")

    def with_faults(self, run):
        """Run a /v2 handler under the configured API faults (see faults.py)."""
        plan = self.sb.faults
        if plan.api.get("latency"):
            time.sleep(plan.api["latency"])
        if plan.api_fault("429"):
            return Reply(429, {"message": "Too many requests"}, headers=[("Retry-After", str(self.sb.settings.retry_after))])
        try:
            reply = run()
        except Reply as r:
            reply = r
        if reply.status < 400 and plan.api_fault("500"):
            return Reply(500, {"error": "Internal server error"})
        if reply.status < 400 and plan.api_fault("reset"):
            reply.drop = True
        return reply
