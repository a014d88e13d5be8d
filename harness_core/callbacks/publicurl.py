"""Where Tavus posts callbacks: the callback path and token, WEBHOOK_URL in .env, the tunnel's
public URL, and the /healthz pings that prove which receiver answers there.
"""
from __future__ import annotations

import secrets as _secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from ..context import RunContext
from ..env import is_loopback, write_dotenv
from ..errors import ConfigError, PluginError

DEFAULT_PATH = "/tavus/callback"
DEFAULT_PORT = 8000
PING_TIMEOUT = (3.0, 5.0)


def normalise_path(path: str | None) -> str:
    """The callback path: starts with `/`, no trailing `/`, no query; `/healthz` is reserved."""
    path = DEFAULT_PATH if path is None else path.strip()
    if not path.startswith("/") or "?" in path or "#" in path or " " in path:
        raise ConfigError(f"--path: {path!r} is not a URL path", hint="use e.g. --path /tavus/callback")
    path = "/" + path.strip("/")
    if path == "/" or path.endswith("/healthz"):
        raise ConfigError(f"--path: {path!r} cannot be the callback path",
                          hint="use a path of its own, e.g. --path /tavus/callback")
    return path


def compose_callback_url(base_url: str, path: str, token: str) -> str:
    """`base_url` + `path` + `?token=...`: what goes into callback_url / WEBHOOK_URL."""
    return f"{base_url.rstrip('/')}{path}?{urlencode({'token': token})}"


def ensure_webhook_token(ctx: RunContext) -> tuple[str, bool]:
    """WEBHOOK_TOKEN from env/.env, or a new one saved to .env (mode 0600); returns (token, generated)."""
    token = ctx.env.get("WEBHOOK_TOKEN")
    if token:
        return token, False
    token = _secrets.token_urlsafe(24)
    write_dotenv(ctx.env, "WEBHOOK_TOKEN", token)
    ctx.store.secrets.append(token)
    return token, True


@dataclass
class SavedUrl:
    url: str
    path: Path
    notes: list[str] = field(default_factory=list)


def set_webhook_url(ctx: RunContext, url: str, *, as_is: bool = False) -> SavedUrl:
    """Check `url` (absolute http(s) with a path) and save it as WEBHOOK_URL in .env, keeping the rest.

    Unless `as_is`, the receiver's `?token=` (WEBHOOK_TOKEN, generated when absent) is added
    when the URL carries none, so the receiver accepts what Tavus posts there.
    """
    text = (url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{url!r} is not an absolute http(s) URL",
                          hint='give the full URL, e.g. "https://example.ngrok-free.app/tavus/callback"')
    if parts.path in ("", "/"):
        raise ConfigError(f"{url!r} has no path",
                          hint=f'add the callback path, e.g. "{parts.scheme}://{parts.netloc}{DEFAULT_PATH}"')
    if parts.fragment:
        raise ConfigError(f"{url!r} has a #fragment, which is never sent to a server", hint="remove it")
    notes = []
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if not as_is:
        token, generated = ensure_webhook_token(ctx)
        if generated:
            notes.append("generated WEBHOOK_TOKEN and saved it to .env")
        if "token" not in query:
            query["token"] = token
            notes.append("added ?token= from WEBHOOK_TOKEN (the receiver refuses callbacks without it)")
        elif query["token"] != token:
            notes.append("the URL's token differs from WEBHOOK_TOKEN: `invoke webhook` will refuse its callbacks")
    if is_loopback(text):
        notes.append("this URL is on this machine: only the local sandbox can reach it, Tavus cannot")
    final = urlunsplit(parts._replace(query=urlencode(query)))
    path = write_dotenv(ctx.env, "WEBHOOK_URL", final)
    return SavedUrl(final, path, notes)


# -- tunnel ----------------------------------------------------------------------------------------
def public_url(ctx: RunContext, port: int, path: str) -> str:
    """The public base URL (scheme + host) forwarding to local `port`, from the harness_public_url hook."""
    url = ctx.hook.harness_public_url(port=port, path=path, context=ctx)
    if not url:
        raise PluginError("no plugin could provide a public URL for --tunnel",
                          hint="unblock the built-in `tunnel` plugin (TAVUS_HARNESS_DISABLE_PLUGINS), or run "
                               f"`ngrok http {port}` and `invoke set-webhook-url URL`")
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PluginError(f"the tunnel plugin returned {url!r}, which is not an http(s) URL",
                          hint="fix or block the plugin that implements harness_public_url")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Ping:
    """What answered GET <base>/healthz: its status (None: nothing did) and a receiver's instance id."""

    url: str
    status: int | None
    receiver: str | None = None
    error: str = ""


def ping_healthz(base_url: str) -> Ping:
    """One GET of `base_url`/healthz (through a tunnel too); never raises."""
    url = base_url.rstrip("/") + "/healthz"
    try:
        resp = requests.get(url, timeout=PING_TIMEOUT, headers={"ngrok-skip-browser-warning": "1"})
    except requests.RequestException as exc:
        return Ping(url, None, error=type(exc).__name__)
    try:
        answer = resp.json()
    except ValueError:
        answer = None
    return Ping(url, resp.status_code, answer.get("receiver") if isinstance(answer, dict) else None)


def check_reachable(base_url: str, instance: str) -> tuple[bool, str]:
    """Ping `base_url`/healthz and check that this very receiver (by instance id) answered."""
    ping = ping_healthz(base_url)
    if ping.status is None:
        return False, f"nothing answered at {ping.url} ({ping.error})"
    if ping.receiver == instance:
        return True, f"a ping through {ping.url} reached this receiver"
    if ping.receiver:
        return False, f"{ping.url} reached a different receiver (another `invoke webhook` on that port?)"
    return False, f"{ping.url} answered {ping.status}, but not from this receiver"


def receiver_answers(webhook_url: str) -> tuple[bool, str]:
    """Whether some `invoke webhook` receiver answers /healthz at the origin of `webhook_url`."""
    parts = urlsplit(webhook_url)
    ping = ping_healthz(f"{parts.scheme}://{parts.netloc}")
    if ping.status is None:
        return False, f"nothing that looks like a receiver answered at {ping.url} ({ping.error})"
    if ping.receiver:
        return True, f"a receiver answered at {ping.url}"
    return False, f"{ping.url} answered {ping.status}, but not as a callback receiver"


# -- the running receiver --------------------------------------------------------------------------
RUNNING_FILE = "webhook-receiver.json"  # under logs/: where the project's `invoke webhook` listens now


def note_running(ctx: RunContext, host: str, port: int, path: str, instance: str) -> Path:
    """Record where this project's receiver listens (no token), for `--print-url` in another terminal."""
    import json
    import os

    target = ctx.store.logs_dir / RUNNING_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"host": host, "port": port, "path": path, "instance": instance,
                                  "pid": os.getpid()}) + "\n", encoding="utf-8")
    return target


def forget_running(ctx: RunContext, instance: str) -> None:
    """Remove the record of the receiver `instance`, if it is still the one recorded."""
    if (running_receiver(ctx, check=False) or {}).get("instance") == instance:
        (ctx.store.logs_dir / RUNNING_FILE).unlink(missing_ok=True)


def running_receiver(ctx: RunContext, *, check: bool = True) -> dict | None:
    """The project's receiver as recorded by `invoke webhook` ({host, port, path, instance}), or None.

    With `check`, only when that very receiver (by instance id) answers /healthz now.
    """
    import json

    try:
        data = json.loads((ctx.store.logs_dir / RUNNING_FILE).read_text(encoding="utf-8"))
        host, port = str(data["host"]), int(data["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if check:
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
        if ping_healthz(f"http://{shown}:{port}").receiver != data.get("instance"):
            return None
    return data


def resolve_callback_url(ctx: RunContext, *, host: str | None = None, port: int | None = None, path: str | None = None,
              tunnel: bool = False) -> str:
    """The callback URL `invoke webhook` would use, token included, without serving (`--print-url`).

    Without `port`: the port (and path) of this project's receiver when one runs now, else the port
    of a loopback WEBHOOK_URL, else DEFAULT_PORT.
    """
    if port is None:
        running = running_receiver(ctx)
        if running:
            port, host = int(running["port"]), host or running["host"]
            path = running["path"] if path is None else path
        elif ctx.env.get("WEBHOOK_URL") and is_loopback(ctx.env.get("WEBHOOK_URL")):
            configured = urlsplit(ctx.env.get("WEBHOOK_URL"))
            port = configured.port or DEFAULT_PORT
            path = configured.path if path is None and configured.path not in ("", "/") else path
    path = normalise_path(path)
    token, _ = ensure_webhook_token(ctx)
    port = DEFAULT_PORT if port is None else int(port)
    if tunnel:
        return compose_callback_url(public_url(ctx, port, path), path, token)
    shown = "127.0.0.1" if host in (None, "", "0.0.0.0") else host
    return compose_callback_url(f"http://{shown}:{port}", path, token)
