"""An example tool backend for a Tavus agent: a small WSGI app served by waitress.

    POST /tools/schedule_meeting      {"title", "start_time", "attendees", "duration_minutes"}  (or "attendee")
    POST /tools/lookup_order_status   {"order_id", "email"?}

The body is the tool's arguments, or, when Tavus signs the call with HMAC, its envelope
`{"conversation_id", "tool_call_id", "tool_name", "arguments": "<JSON string>"}`. With
TOOL_HMAC_SECRET set, every call must carry `X-Tavus-Signature` = hex HMAC-SHA256(secret, raw body)
(401 otherwise). Answers are JSON; a call that cannot be done answers 4xx with `{"error": ...}`.

    python examples/tool_backend.py --port 9000          # then [tools.NAME] url = "http://127.0.0.1:9000/tools/NAME"

Scenarios can also name it as `tool_backend = "examples/tool_backend.py"`: the run serves it on a
free loopback port and `{tool_backend}` in a tool URL stands for that address.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os

ORDERS = {"A-10023": "shipped", "A-10024": "processing", "A-10025": "delivered"}


def schedule_meeting(args: dict) -> tuple[int, dict]:
    """Book a meeting (deterministically: the same request gets the same id)."""
    attendees = args.get("attendees") or ([args["attendee"]] if args.get("attendee") else [])
    if not attendees:
        return 422, {"error": "at least one attendee is required"}
    booked = {"title": args.get("title") or "Meeting", "start_time": args.get("start_time") or "unspecified",
              "attendees": attendees, "duration_minutes": args.get("duration_minutes", 30)}
    meeting_id = "m-" + hashlib.sha256(json.dumps(booked, sort_keys=True).encode()).hexdigest()[:8]
    return 200, {"status": "booked", "meeting_id": meeting_id, **booked}


def lookup_order_status(args: dict) -> tuple[int, dict]:
    """The shipping status of a known order; 404 for an unknown one."""
    order = str(args.get("order_id") or "").strip().upper()
    if order not in ORDERS:
        return 404, {"error": f"no order {order or '(none given)'}"}
    return 200, {"order_id": order, "status": ORDERS[order]}


TOOLS = {"schedule_meeting": schedule_meeting, "lookup_order_status": lookup_order_status}


def arguments_of(body) -> dict:
    """The tool's arguments from a plain body or from Tavus's HMAC envelope."""
    if isinstance(body, dict) and "tool_call_id" in body and "arguments" in body:
        args = body["arguments"]
        return json.loads(args) if isinstance(args, str) else args
    return body if isinstance(body, dict) else {}


def make_app(secret: str | None = None):
    """The WSGI app; with `secret`, calls must be HMAC-signed (X-Tavus-Signature)."""
    def app(environ, start_response):
        def answer(status: int, body: dict):
            data = json.dumps(body).encode()
            reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
                      400: "Bad Request", 422: "Unprocessable Entity"}.get(status, "Error")
            start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]

        path = environ.get("PATH_INFO", "")
        name = path.removeprefix("/tools/").strip("/")
        if not path.startswith("/tools/") or name not in TOOLS:
            return answer(404, {"error": f"no tool at {path}"})
        if environ.get("REQUEST_METHOD") != "POST":
            return answer(405, {"error": "tools are called with POST"})
        length = environ.get("CONTENT_LENGTH") or "0"
        raw = environ["wsgi.input"].read(int(length) if length.isdigit() else 0)
        if secret:
            given = (environ.get("HTTP_X_TAVUS_SIGNATURE") or "").removeprefix("sha256=")
            wanted = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(given.encode(), wanted.encode()):
                return answer(401, {"error": "X-Tavus-Signature does not match the body"})
        try:
            args = arguments_of(json.loads(raw or b"{}"))
        except ValueError:
            return answer(400, {"error": "the body is not JSON"})
        return answer(*TOOLS[name](args))
    return app


app = make_app(os.environ.get("TOOL_HMAC_SECRET"))


def main() -> None:
    """Serve the example backend with waitress until Ctrl-C."""
    from waitress import serve
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    options = parser.parse_args()
    print(f"tool backend on http://{options.host}:{options.port}/tools/ "
          f"({'HMAC required' if os.environ.get('TOOL_HMAC_SECRET') else 'no HMAC'}); Ctrl-C to stop", flush=True)
    try:
        serve(app, host=options.host, port=options.port, threads=8)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
