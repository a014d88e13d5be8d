"""Tools as resources: `configs/tools/*.json|toml`, one tool per file (CONTRACT §10.4).

A file holds the body of `POST /v2/tools`: name, description, parameters, delivery
(`{"app_message": true}` or `{"api": {url, method, auth, ...}}`), origin, on_call, on_resolve,
trigger_type, static_filler, tags. It is checked here before anything is sent, with one-line
errors naming the file and the field (the documented rules: name pattern, no `tavus_*`
parameters, exactly one delivery, the auth types, HMAC without templates, public HTTPS URLs).

Auth secrets come only from the environment: `"secret": {"$env": "TOOL_HMAC_SECRET"}`. The API
never answers them (GET shows `********`), so a plan compares the tool with its secret shown as
`********` on both sides and needs no secret at all; only a write reads the variable.
"""
from __future__ import annotations

import copy
import ipaddress
import json
import re
from urllib.parse import urlsplit

from ..config import expand_env_refs
from ..errors import ConfigError

SCRUBBED = "********"  # what the API answers for a stored secret
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
RESERVED = "tavus_"
MAX_SIZE = 10_000
FIELDS = ("name", "description", "parameters", "delivery", "origin", "on_call", "on_resolve", "static_filler",
          "trigger_type", "tags")
API_FIELDS = ("url", "method", "timeout", "headers", "auth", "body_template", "query_params", "content_type")
CHOICES = {"origin": ("llm", "vision", "audio"),
           "on_call": ("generate_filler", "static_filler", "silent", "passthrough"),
           "on_resolve": ("generate_response", "response_in_result", "add_to_context", "fire_and_forget"),
           "trigger_type": ("in_call", "post_call")}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
AUTH = {"none": ((), ()), "bearer": (("token",), ()), "basic": (("username", "password"), ()),
        "api_key": (("name", "value"), ("location",)), "hmac": (("secret",), ()),
        "oauth2_client_credentials": (("token_url", "client_id", "client_secret"), ("scope",))}
SECRETS = {"bearer": "token", "basic": "password", "api_key": "value", "hmac": "secret",
           "oauth2_client_credentials": "client_secret"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
HINT = "see configs/tools/schedule_meeting.json for the shape"


def _bad(where: str, field: str, what: str, hint: str = HINT) -> ConfigError:
    return ConfigError(f"{where}: {field}: {what}", hint=hint)


def secret_path(tool: dict) -> tuple[dict, str] | None:
    """(the auth object, its secret key) of a tool with an auth secret, else None."""
    auth = ((tool.get("delivery") or {}).get("api") or {}).get("auth") if isinstance(tool.get("delivery"), dict) else None
    if isinstance(auth, dict) and auth.get("type") in SECRETS:
        return auth, SECRETS[auth["type"]]
    return None


def shown(data: dict) -> dict:
    """The tool as a plan compares it: the auth secret (an `$env` reference or a value) as `********`."""
    out = copy.deepcopy(data)
    found = secret_path(out)
    if found and found[1] in found[0]:
        found[0][found[1]] = SCRUBBED
    return out


def build_tool(data: dict, where: str, *, env_get=None, local_target: bool = False) -> dict:
    """Check one tool config; return the body to send (secrets read from the environment when
    `env_get` is given) or, without `env_get`, the body as a plan compares it (secret `********`).

    `local_target`: the API is a local sandbox, where a tool URL on 127.0.0.1 is allowed.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a tool file holds one tool object", hint=HINT)
    for key in data:
        if key not in FIELDS:
            from ..config import suggest
            close = suggest(key, FIELDS)
            raise _bad(where, key, "unknown field", f"did you mean {close!r}?" if close else f"known: {', '.join(FIELDS)}")
    name = data.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise _bad(where, "name", f"{name!r} must start with a letter or _ and hold only letters, digits and _ "
                                  "(at most 64)", 'e.g. "schedule_meeting"')
    if not isinstance(data.get("description"), str) or not data["description"].strip():
        raise _bad(where, "description", "required: say when the model should call this tool")
    params = data.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(params, dict) or params.get("type", "object") != "object":
        raise _bad(where, "parameters", 'must be a JSON Schema object ({"type": "object", "properties": {...}})')
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    reserved = sorted(p for p in props if p.startswith(RESERVED))
    if reserved:
        raise _bad(where, f"parameters.properties.{reserved[0]}", f"names starting with {RESERVED!r} are reserved for Tavus",
                   "rename the parameter")
    from ..schemas import schema_problems
    problems = schema_problems(params)
    if problems:
        path = "" if problems[0].path == "(body)" else "." + problems[0].path
        raise _bad(where, f"parameters{path}", f"not a valid JSON Schema: {problems[0].message}", "fix the schema")
    size = len(data["description"]) + len(json.dumps(params, sort_keys=True))
    if size > MAX_SIZE:
        raise _bad(where, "description", f"description + parameters are {size} characters, over {MAX_SIZE}", "shorten them")
    for key, allowed in CHOICES.items():
        if data.get(key) is not None and data[key] not in allowed:
            raise _bad(where, key, f"{data[key]!r} is not one of {', '.join(allowed)}", f'e.g. "{key}": "{allowed[0]}"')
    origin = data.get("origin", "llm")
    if data.get("on_call") == "static_filler" and not isinstance(data.get("static_filler"), str):
        raise _bad(where, "static_filler", "required (a sentence) when on_call is static_filler")
    if origin != "llm" and data.get("on_call") is not None:
        raise _bad(where, "on_call", f"must be left out for {origin} tools")
    if origin != "llm" and data.get("on_resolve") not in (None, "fire_and_forget"):
        raise _bad(where, "on_resolve", f"must be fire_and_forget for {origin} tools")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise _bad(where, "tags", "must be a list of strings")
    _check_delivery(data.get("delivery"), set(props), where, local_target)
    if data.get("trigger_type") == "post_call" and not data["delivery"].get("api"):
        raise _bad(where, "delivery", "post_call tools need delivery.api (Tavus calls them after the call)")
    if env_get is None:
        return shown(data)
    return expand_env_refs(copy.deepcopy(data), env_get, where)


def _check_delivery(delivery, declared: set, where: str, local_target: bool) -> None:
    if not isinstance(delivery, dict):
        raise _bad(where, "delivery", 'required: {"app_message": true} or {"api": {"url": ...}}')
    unknown = sorted(set(delivery) - {"app_message", "api"})
    if unknown:
        raise _bad(where, f"delivery.{unknown[0]}", "unknown field (known: app_message, api)")
    app, api = delivery.get("app_message") is True, delivery.get("api") is not None
    if app == api:
        raise _bad(where, "delivery", "enable exactly one channel: app_message true, or api",
                   'write {"app_message": true} or {"api": {...}}, not both')
    if not api:
        return
    api, at = delivery["api"], "delivery.api"
    if not isinstance(api, dict):
        raise _bad(where, at, "must be an object")
    unknown = sorted(set(api) - set(API_FIELDS))
    if unknown:
        raise _bad(where, f"{at}.{unknown[0]}", f"unknown field (known: {', '.join(API_FIELDS)})")
    url = api.get("url")
    if not isinstance(url, str) or not url:
        raise _bad(where, f"{at}.url", "required")
    check_url(url, where, f"{at}.url", local_target)
    method = api.get("method", "POST")
    if method not in METHODS:
        raise _bad(where, f"{at}.method", f"{method!r} is not one of {', '.join(METHODS)}")
    timeout = api.get("timeout", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 60:
        raise _bad(where, f"{at}.timeout", "seconds above 0 and at most 60 (default 10)")
    template, query = api.get("body_template"), api.get("query_params")
    if template is not None and method in ("GET", "HEAD", "DELETE"):
        raise _bad(where, f"{at}.body_template", f"method {method} sends no body", "remove it or use POST")
    auth = api.get("auth")
    if auth is not None:
        _check_auth(auth, where, f"{at}.auth")
    if isinstance(auth, dict) and auth.get("type") == "hmac":
        for field, used in (("body_template", template), ("query_params", query), ("url", PLACEHOLDER.search(url))):
            if used:
                raise _bad(where, f"{at}.{field}", "not allowed with auth type hmac (Tavus signs a fixed body "
                                                   "sent to a static URL)", "remove it, or use another auth type")
    found = set(PLACEHOLDER.findall(url)) | _placeholders(template) | _placeholders(query)
    missing = sorted(n for n in found if not n.startswith(RESERVED) and n not in declared)
    if missing:
        raise _bad(where, at, f"placeholder {{{missing[0]}}} is not declared in parameters.properties",
                   f"add {missing[0]!r} to parameters.properties")


def check_url(url: str, where: str, field: str, local_target: bool) -> None:
    """https:// with a fixed, public host; http(s) on 127.0.0.1/localhost only against a local sandbox."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in LOOPBACK and parts.scheme in ("http", "https"):
        if local_target:
            return
        raise _bad(where, field, f"{host} is this machine: Tavus cannot call it",
                   "use a public https:// URL (a tunnel), or apply to a local sandbox started with --allow-loopback-tools")
    if parts.scheme != "https":
        raise _bad(where, field, "must be an https:// URL", "Tavus calls tools over HTTPS only")
    if not host or "{" in host:
        raise _bad(where, field, "needs a fixed hostname", "placeholders go in the path or query only")
    try:
        private = not ipaddress.ip_address(host).is_global
    except ValueError:
        private = host.endswith((".localhost", ".local", ".internal"))
    if private:
        raise _bad(where, field, f"{host} is not a public address", "use a public https:// URL")


def _check_auth(auth, where: str, at: str) -> None:
    if not isinstance(auth, dict) or auth.get("type") not in AUTH:
        raise _bad(where, f"{at}.type", f"must be one of {', '.join(AUTH)}")
    kind = auth["type"]
    required, optional = AUTH[kind]
    unknown = sorted(set(auth) - {"type", *required, *optional})
    if unknown:
        raise _bad(where, f"{at}.{unknown[0]}", f"unknown field for type {kind}")
    for key in required:
        if auth.get(key) in (None, ""):
            raise _bad(where, f"{at}.{key}", f"required for type {kind}")
    secret = SECRETS.get(kind)
    if secret and not (isinstance(auth.get(secret), dict) and set(auth[secret]) == {"$env"}):
        raise _bad(where, f"{at}.{secret}", "secrets do not belong in config files",
                   f'put it in .env and write "{secret}": {{"$env": "NAME"}}')
    if kind == "api_key" and auth.get("location", "header") not in ("header", "query"):
        raise _bad(where, f"{at}.location", "must be header or query")


def _placeholders(value) -> set:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(set(), *(_placeholders(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(set(), *(_placeholders(v) for v in value))
    return set()


def as_config(remote: dict) -> dict:
    """A remote tool as a config file would write it (server fields dropped; a secret becomes an `$env` reference)."""
    out = {k: copy.deepcopy(remote[k]) for k in FIELDS if remote.get(k) not in (None, [], {})}
    found = secret_path(out)
    if found and found[1] in found[0]:
        found[0][found[1]] = {"$env": f"{out['name'].upper()}_{found[1].upper()}"}
    return out
