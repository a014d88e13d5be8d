"""Tools as resources (CONTRACT §10.4, §2.8): `/v2/tools` CRUD and attaching tools to PALs
(`GET|POST /v2/pals/{id}/tools/`, `DELETE /v2/pals/{id}/tools/{tool_id}`).

The rules are the documented ones (DOCS create-tool, llm-tool-delivery, llm-tool-auth; the official
CLI's `sdk/schemas/tool.py` checks the same before sending): a name pattern, no parameter named
`tavus_*`, exactly one delivery channel, an HTTPS public URL with placeholders declared as
parameters, the auth types and their secrets, HMAC without templates. Secrets are stored and
never answered: every response shows them as `********`. Error texts are ours (Tavus documents
the rules, not the messages): `{"error": "Invalid request: <field>: <what is wrong>"}`.
"""
from __future__ import annotations

import copy
import ipaddress
import json
import re
from urllib.parse import urlsplit

from ...store import utc_now
from ..http import Family, Reply, error, page
from ..state import new_id

SCRUBBED = "********"
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
RESERVED = "tavus_"
MAX_SIZE = 10_000        # description + parameters (serialised), characters
MAX_PAL_TOOLS = 50       # per PAL and per attach call
ORIGINS = ("llm", "vision", "audio")
ON_CALL = ("generate_filler", "static_filler", "silent", "passthrough")
ON_RESOLVE = ("generate_response", "response_in_result", "add_to_context", "fire_and_forget")
TRIGGERS = ("in_call", "post_call")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
BODYLESS = ("GET", "HEAD", "DELETE")
# auth type -> (required fields, optional fields); the secret of each type is SECRETS[type]
AUTH = {"none": ((), ()), "bearer": (("token",), ()), "basic": (("username", "password"), ()),
        "api_key": (("name", "value"), ("location",)), "hmac": (("secret",), ()),
        "oauth2_client_credentials": (("token_url", "client_id", "client_secret"), ("scope",))}
SECRETS = {"bearer": "token", "basic": "password", "api_key": "value", "hmac": "secret",
           "oauth2_client_credentials": "client_secret"}
FIELDS = ("name", "description", "parameters", "delivery", "origin", "on_call", "on_resolve", "static_filler",
          "trigger_type", "tags")
API_FIELDS = ("url", "method", "timeout", "headers", "auth", "body_template", "query_params", "content_type")


def bad(field: str, what: str) -> Reply:
    return error(400, f"Invalid request: {field}: {what}")


def scrub(tool: dict) -> dict:
    """A copy of `tool` with every auth secret replaced by `********` (what GET answers)."""
    out = copy.deepcopy(tool)
    auth = ((out.get("delivery") or {}).get("api") or {}).get("auth")
    if isinstance(auth, dict) and auth.get("type") in SECRETS and SECRETS[auth["type"]] in auth:
        auth[SECRETS[auth["type"]]] = SCRUBBED
    return out


def check_tool(tool: dict, allow_loopback: bool = False) -> None:
    """400 naming the first documented rule `tool` (a complete tool body) breaks.

    `allow_loopback` (the sandbox's --allow-loopback-tools) accepts http:// loopback/private URLs.
    """
    for key in tool:
        if key not in FIELDS:
            raise error(400, f"Invalid request: unknown field '{key}'; known: {', '.join(FIELDS)}")
    name = tool.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise bad("name", "must start with a letter or underscore and hold only letters, digits and "
                          "underscores (at most 64 characters)")
    if not isinstance(tool.get("description"), str) or not tool["description"]:
        raise bad("description", "is required (a non-empty string)")
    params = tool.get("parameters", {})
    if not isinstance(params, dict):
        raise bad("parameters", "must be a JSON Schema object")
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    reserved = sorted(p for p in props if p.startswith(RESERVED))
    if reserved:
        raise bad("parameters.properties", f"names starting with '{RESERVED}' are reserved for Tavus: {', '.join(reserved)}")
    size = len(tool["description"]) + len(json.dumps(params, sort_keys=True))
    if size > MAX_SIZE:
        raise bad("description", f"description + parameters are {size} characters; the limit is {MAX_SIZE}")
    origin = tool.get("origin", "llm")
    choice("origin", origin, ORIGINS)
    for key, allowed in (("on_call", ON_CALL), ("on_resolve", ON_RESOLVE), ("trigger_type", TRIGGERS)):
        if tool.get(key) is not None:
            choice(key, tool[key], allowed)
    if origin == "llm" and tool.get("on_call") == "static_filler" and not tool.get("static_filler"):
        raise bad("static_filler", "is required when on_call is static_filler")
    if origin != "llm":
        if tool.get("on_call") is not None:
            raise bad("on_call", f"must be null for {origin} tools")
        if tool.get("on_resolve") not in (None, "fire_and_forget"):
            raise bad("on_resolve", f"must be fire_and_forget for {origin} tools")
        if tool.get("static_filler") is not None:
            raise bad("static_filler", f"must be null for {origin} tools")
    if tool.get("static_filler") is not None and not isinstance(tool["static_filler"], str):
        raise bad("static_filler", "must be a string")
    tags = tool.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise bad("tags", "must be an array of strings")
    check_delivery(tool.get("delivery"), set(props), allow_loopback)
    if tool.get("trigger_type") == "post_call" and not (tool.get("delivery") or {}).get("api"):
        raise bad("delivery", "post_call tools need delivery.api (they run from Tavus after the call)")


def choice(field: str, value, allowed) -> None:
    if value not in allowed:
        raise bad(field, f"must be one of: {', '.join(allowed)}")


def check_delivery(delivery, declared: set, allow_loopback: bool = False) -> None:
    if not isinstance(delivery, dict):
        raise bad("delivery", "is required: {\"app_message\": true} or {\"api\": {...}}")
    unknown = set(delivery) - {"app_message", "api"}
    if unknown:
        raise bad("delivery", f"unknown field '{sorted(unknown)[0]}'; known: app_message, api")
    app, api = delivery.get("app_message") is True, delivery.get("api") is not None
    if app == api:
        raise bad("delivery", "enable exactly one channel: app_message true or api, not both and not neither")
    if api:
        check_api(delivery["api"], declared, allow_loopback)


def check_api(api, declared: set, allow_loopback: bool = False) -> None:
    where = "delivery.api"
    if not isinstance(api, dict):
        raise bad(where, "must be an object")
    unknown = set(api) - set(API_FIELDS)
    if unknown:
        raise bad(where, f"unknown field '{sorted(unknown)[0]}'; known: {', '.join(API_FIELDS)}")
    url = api.get("url")
    if not isinstance(url, str) or not url:
        raise bad(f"{where}.url", "is required")
    check_url(url, f"{where}.url", allow_loopback)
    method = api.get("method", "POST")
    choice(f"{where}.method", method, METHODS)
    timeout = api.get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
        raise bad(f"{where}.timeout", "must be a number of seconds above 0 and at most 60 (default 10)")
    for key in ("headers", "query_params"):
        value = api.get(key)
        if value is not None and (not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())):
            raise bad(f"{where}.{key}", "must be an object of strings")
    template = api.get("body_template")
    if template is not None and not isinstance(template, dict):
        raise bad(f"{where}.body_template", "must be an object")
    if template is not None and method in BODYLESS:
        raise bad(f"{where}.body_template", f"method {method} sends no body; remove body_template or use POST/PUT/PATCH")
    if api.get("content_type") is not None and not isinstance(api["content_type"], str):
        raise bad(f"{where}.content_type", "must be a string")
    auth = api.get("auth")
    if auth is not None:
        check_auth(auth, f"{where}.auth")
    found = set(PLACEHOLDER.findall(url)) | placeholders(template) | placeholders(api.get("query_params"))
    if isinstance(auth, dict) and auth.get("type") == "hmac":
        fixed = [name for name, used in (("body_template", template), ("query_params", api.get("query_params")),
                                         ("url placeholders", PLACEHOLDER.search(url))) if used]
        if fixed:
            raise bad(where, f"auth type hmac sends a fixed Tavus body to a static URL; remove {', '.join(fixed)}")
    missing = sorted(n for n in found if not n.startswith(RESERVED) and n not in declared)
    if missing:
        raise bad(where, f"placeholder(s) {', '.join(missing)} are not declared in parameters.properties")


def check_url(url: str, field: str, allow_loopback: bool = False) -> None:
    """Public HTTPS only; the hostname is fixed (no placeholder) and not private or loopback.

    With `allow_loopback` (a documented sandbox deviation) loopback and private hosts are accepted,
    over http:// too, so a local receiver can stand in for the public tool URL.
    """
    if allow_loopback and url.lower().startswith("http://") and is_local_host(urlsplit(url).hostname or ""):
        return
    if not url.lower().startswith("https://"):
        raise bad(field, "must be an https:// URL")
    host = urlsplit(url).hostname or ""
    if not host or PLACEHOLDER.search(host) or "{" in host:
        raise bad(field, "needs a fixed hostname (placeholders are allowed in the path and query only)")
    if allow_loopback and is_local_host(host):
        return
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        raise bad(field, f"{host} is not a public address")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not address.is_global:
        raise bad(field, f"{host} is a private, loopback or reserved address; Tavus calls public addresses only")


def is_local_host(host: str) -> bool:
    """localhost (and *.localhost/.local/.internal) or a loopback, private or reserved address."""
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False


def check_auth(auth, field: str) -> None:
    if not isinstance(auth, dict) or auth.get("type") not in AUTH:
        raise bad(f"{field}.type", f"must be one of: {', '.join(AUTH)}")
    kind = auth["type"]
    required, optional = AUTH[kind]
    unknown = set(auth) - {"type", *required, *optional}
    if unknown:
        raise bad(field, f"unknown field '{sorted(unknown)[0]}' for type {kind}")
    for key in required:
        if not isinstance(auth.get(key), str) or not auth[key]:
            raise bad(f"{field}.{key}", f"is required for type {kind}")
    secret = SECRETS.get(kind)
    if secret and auth.get(secret) == SCRUBBED:
        raise bad(f"{field}.{secret}", "is the placeholder a GET answers; omit it to keep the stored secret")
    if kind == "api_key" and auth.get("location", "header") not in ("header", "query"):
        raise bad(f"{field}.location", "must be header or query")
    if kind == "oauth2_client_credentials" and not auth["token_url"].lower().startswith("https://"):
        raise bad(f"{field}.token_url", "must be an https:// URL")


def placeholders(value) -> set:
    """Every `{name}` inside the strings of a JSON value."""
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    return set()


def keep_secret(new: dict, old: dict) -> dict:
    """A PATCH may omit an auth secret to keep the stored one (same auth type): put it back."""
    new_auth = ((new.get("delivery") or {}).get("api") or {}).get("auth")
    old_auth = ((old.get("delivery") or {}).get("api") or {}).get("auth")
    if isinstance(new_auth, dict) and isinstance(old_auth, dict) and new_auth.get("type") == old_auth.get("type"):
        secret = SECRETS.get(new_auth.get("type"))
        if secret and secret not in new_auth and secret in old_auth:
            new_auth[secret] = old_auth[secret]
    return new


class Tools(Family):
    """/v2/tools and /v2/pals/{id}/tools."""

    def routes(self):
        yield "POST", r"/v2/tools", self.create_tool
        yield "GET", r"/v2/tools", self.list_tools
        yield "GET", r"/v2/tools/(?P<tid>[^/]+)", self.get_tool
        yield "PATCH", r"/v2/tools/(?P<tid>[^/]+)", self.patch_tool
        yield "DELETE", r"/v2/tools/(?P<tid>[^/]+)", self.delete_tool
        yield "GET", r"/v2/pals/(?P<pid>[^/]+)/tools", self.list_pal_tools
        yield "POST", r"/v2/pals/(?P<pid>[^/]+)/tools", self.attach_tools
        yield "DELETE", r"/v2/pals/(?P<pid>[^/]+)/tools/(?P<tid>[^/]+)", self.detach_tool

    def create_tool(self, req):
        body = req.json_object()
        check_tool(body, self.sb.settings.allow_loopback_tools)
        origin = body.get("origin", "llm")
        with self.sb.state.lock:
            tid, stamp = new_id("t"), utc_now()  # invented id shape: "t" + 11 hex, like the other resources
            tool = {"tool_id": tid, "name": body["name"], "description": body["description"],
                    "parameters": body.get("parameters", {}), "delivery": body["delivery"], "origin": origin,
                    # defaults (DOCS create-tool): generate_filler for LLM tools, fire_and_forget, in_call
                    "on_call": body.get("on_call", "generate_filler" if origin == "llm" else None),
                    "on_resolve": body.get("on_resolve") or "fire_and_forget",
                    "static_filler": body.get("static_filler"), "trigger_type": body.get("trigger_type") or "in_call",
                    "tags": body.get("tags", []), "is_system_tool": False, "created_at": stamp, "updated_at": stamp}
            self.sb.state.tools[tid] = copy.deepcopy(tool)
        self.sb.save()
        return Reply(200, scrub(tool))

    def list_tools(self, req):
        kind, search = req.arg("type") or "user", (req.arg("name_or_uuid") or "").lower()
        choice("type", kind, ("user", "system", "all"))
        sort = req.arg("sort") or "asc"
        choice("sort", sort, ("asc", "desc"))
        with self.sb.state.lock:  # the sandbox has no system tools
            rows = [scrub(t) for t in self.sb.state.tools.values() if kind != "system"
                    and (not search or search in t["name"].lower() or search == t["tool_id"])]
        rows.sort(key=lambda t: t["created_at"], reverse=sort == "desc")
        return Reply(200, page(rows, req, default=25))

    def find_tool(self, tid) -> dict:
        tool = self.sb.state.tools.get(tid)
        if tool is None:  # invented: the CLI treats 404 as missing for the PAL-era routes
            raise error(404, "Tool not found")
        return tool

    def get_tool(self, req, tid):
        with self.sb.state.lock:
            return Reply(200, scrub(self.find_tool(tid)))

    def patch_tool(self, req, tid):
        """A plain JSON object: the fields given replace the stored ones (not JSON Patch)."""
        body = req.json_any()
        if not isinstance(body, dict):
            raise error(400, "Invalid request: PATCH /v2/tools takes a JSON object of the fields to replace, not JSON Patch")
        with self.sb.state.lock:
            current = self.find_tool(tid)
            fixed = {k: current[k] for k in ("tool_id", "is_system_tool", "created_at", "updated_at")}
            fields = {k: v for k, v in current.items() if k not in fixed}
            updated = keep_secret({**fields, **copy.deepcopy(body)}, fields)
            check_tool({k: v for k, v in updated.items() if v is not None or k not in ("on_call", "static_filler")},
                       self.sb.settings.allow_loopback_tools)
            self.sb.state.tools[tid] = {"tool_id": tid, **updated, "is_system_tool": fixed["is_system_tool"],
                                        "created_at": fixed["created_at"], "updated_at": utc_now()}
            out = scrub(self.sb.state.tools[tid])
        self.sb.save()
        return Reply(200, out)

    def delete_tool(self, req, tid):
        with self.sb.state.lock:
            self.find_tool(tid)
            del self.sb.state.tools[tid]
            for persona in self.sb.state.personas.values():  # detached from every PAL
                if tid in (persona.get("tool_ids") or []):
                    persona["tool_ids"] = [t for t in persona["tool_ids"] if t != tid]
        self.sb.save()
        return Reply(204)

    # -- PAL attachments (stored as the PAL's `tool_ids`) -----------------------------------------
    def find_pal(self, pid, writable: bool = False) -> dict:
        pal = self.sb.state.personas.get(pid) if writable else self.sb.state.persona(pid)
        if pal is None:
            raise error(404, "PAL not found")
        return pal

    def attached(self, pal: dict) -> dict:
        rows = [scrub(self.sb.state.tools[t]) for t in pal.get("tool_ids") or [] if t in self.sb.state.tools]
        return {"data": rows, "total_count": len(rows)}

    def list_pal_tools(self, req, pid):
        """The PAL's standalone tools (inline layers.llm.tools are not listed: DOCS pal-tools)."""
        with self.sb.state.lock:
            return Reply(200, self.attached(self.find_pal(pid)))

    def attach_tools(self, req, pid):
        body = req.json_object()
        ids = body.get("tool_ids")
        if set(body) - {"tool_ids"}:
            raise error(400, "Invalid request: the body is {\"tool_ids\": [...]}")
        if not isinstance(ids, list) or not ids or not all(isinstance(t, str) and t for t in ids):
            raise bad("tool_ids", "must be a non-empty array of tool ids")
        if len(ids) > MAX_PAL_TOOLS:
            raise bad("tool_ids", f"at most {MAX_PAL_TOOLS} per call")
        with self.sb.state.lock:
            pal = self.find_pal(pid, writable=True)
            unknown = [t for t in ids if t not in self.sb.state.tools]
            if unknown:
                raise error(400, f"Invalid tool_id: {unknown[0]}")  # invented text, Tavus's "Invalid <x>_id" style
            merged = list(dict.fromkeys([*(pal.get("tool_ids") or []), *ids]))
            if len(merged) > MAX_PAL_TOOLS:
                raise bad("tool_ids", f"a PAL holds at most {MAX_PAL_TOOLS} tools; it would have {len(merged)}")
            pal["tool_ids"], pal["updated_at"] = merged, utc_now()
            out = self.attached(pal)
        self.sb.save()
        return Reply(200, out)

    def detach_tool(self, req, pid, tid):
        with self.sb.state.lock:
            pal = self.find_pal(pid, writable=True)
            if tid not in (pal.get("tool_ids") or []):
                raise error(404, "Tool not attached to this PAL")  # invented
            pal["tool_ids"], pal["updated_at"] = [t for t in pal["tool_ids"] if t != tid], utc_now()
        self.sb.save()
        return Reply(204)
