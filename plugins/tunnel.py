"""Built-in plugin `tunnel`: the public URL for `invoke webhook --tunnel`, from an ngrok agent.

Asks a running ngrok agent's local API (NGROK_API_URL, default http://127.0.0.1:4040/api/tunnels)
for the tunnel that forwards to the receiver's port, preferring https. When no agent answers
and pyngrok happens to be installed, pyngrok starts one; otherwise a PluginError says how to
start ngrok. pyngrok is optional and never a dependency.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import requests

from harness_core import PluginError, hookimpl

DEFAULT_API_URL = "http://127.0.0.1:4040/api/tunnels"
TIMEOUT = (2.0, 5.0)


def forwarded_port(addr) -> int | None:
    """The local port of an ngrok tunnel's `config.addr` ("http://localhost:8000", "localhost:8000", "8000")."""
    text = str(addr or "").strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if "://" not in text:
        text = "tcp://" + text
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        return None
    if port is None:
        return {"http": 80, "https": 443}.get(parts.scheme)
    return port


def pick_tunnel(tunnels: list, port: int) -> dict | None:
    """The tunnel forwarding to `port`, https preferred; None when there is none."""
    ours = [t for t in tunnels if isinstance(t, dict) and t.get("public_url")
            and forwarded_port((t.get("config") or {}).get("addr")) == port]
    https = [t for t in ours if t.get("proto") == "https" or str(t["public_url"]).startswith("https://")]
    return (https or ours or [None])[0]


def pyngrok_settings(env) -> dict:
    """Keyword arguments for pyngrok's PyngrokConfig: NGROK_AUTHTOKEN (environment or .env) when set.

    pyngrok only reads its own config file, never the project's .env, so the token is passed here.
    """
    token = env.get("NGROK_AUTHTOKEN")
    return {"auth_token": token.strip()} if token and token.strip() else {}


def _start_with_pyngrok(port: int, env) -> str | None:
    try:
        from pyngrok import conf, ngrok  # optional
    except ImportError:
        return None
    settings = pyngrok_settings(env)
    try:
        options = {"pyngrok_config": conf.PyngrokConfig(**settings)} if settings else {}
        return ngrok.connect(port, "http", **options).public_url
    except Exception as exc:  # noqa: BLE001 - pyngrok raises its own types; all mean "no tunnel"
        raise PluginError(f"pyngrok could not start an ngrok tunnel to port {port}: {exc}",
                          hint="set NGROK_AUTHTOKEN in .env (or run `ngrok config add-authtoken <token>` once), "
                               f"or start `ngrok http {port}` yourself") from None


@hookimpl(trylast=True)
def harness_public_url(port, path, context):
    """The https URL of the running ngrok agent's tunnel to `port` (or one pyngrok starts)."""
    port = int(port)
    api = context.env.get("NGROK_API_URL") or DEFAULT_API_URL
    try:
        resp = requests.get(api, timeout=TIMEOUT, headers={"Accept": "application/json"})
    except requests.RequestException:
        started = _start_with_pyngrok(port, context.env)
        if started:
            context.note(f"started an ngrok tunnel with pyngrok: {started} -> port {port}")
            return started
        raise PluginError(f"no ngrok agent answers at {api}",
                          hint=f"start one in another terminal with `ngrok http {port}` "
                               "(install: https://ngrok.com/download, then `ngrok config add-authtoken <token>`), "
                               "or `pip install pyngrok` to let the harness start it; "
                               "set NGROK_API_URL if its local API is not on port 4040") from None
    try:
        tunnels = resp.json().get("tunnels") if resp.status_code == 200 else None
    except (ValueError, AttributeError):
        tunnels = None
    if not isinstance(tunnels, list):
        raise PluginError(f"{api} answered {resp.status_code} without a tunnel list",
                          hint="point NGROK_API_URL at the ngrok agent's /api/tunnels")
    chosen = pick_tunnel(tunnels, port)
    if chosen is None:
        elsewhere = sorted({f"{t.get('public_url')} -> {(t.get('config') or {}).get('addr')}"
                            for t in tunnels if isinstance(t, dict)})
        raise PluginError(f"the ngrok agent at {api} has no tunnel to port {port}"
                          + (f" (it has: {', '.join(elsewhere)})" if elsewhere else ""),
                          hint=f"start one with `ngrok http {port}`, or run the receiver on the port ngrok forwards to")
    return chosen["public_url"]
