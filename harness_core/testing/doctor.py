"""`invoke doctor`: what the harness would talk to, and whether it works."""
from __future__ import annotations

from dataclasses import dataclass

from ..api import TavusClient
from ..context import RunContext
from ..env import is_loopback, resolve_target
from ..errors import HarnessError
from ..plugins import describe_plugins


@dataclass
class Finding:
    ok: bool
    topic: str
    detail: str
    fix: str = ""


def diagnose(ctx: RunContext) -> list[Finding]:
    """Check target API, key source, API reachability, WEBHOOK_URL and plugins; never raises for these."""
    found: list[Finding] = []
    try:
        target = resolve_target(ctx.env)
    except HarnessError as exc:
        found.append(Finding(False, "api", exc.message, exc.hint or ""))
        target = None
    if target:
        kind = "local sandbox" if target.is_sandbox else "real Tavus API"
        found.append(Finding(True, "api", f"{kind} at {target.base_url} (from {target.url_source})"))
        found.append(Finding(True, "key", f"API key from {target.key_source}"))
        try:
            client = TavusClient(target, retries=0, timeout=(3, 5))
            client.get("/replicas", limit=1)
            found.append(Finding(True, "reachable", "the API answered GET /replicas"))
        except HarnessError as exc:
            found.append(Finding(False, "reachable", exc.message, exc.hint or "check the URL and key"))
    hook_url = ctx.env.get("WEBHOOK_URL")
    if not hook_url:
        found.append(Finding(True, "webhook", "WEBHOOK_URL not set (conversations get no callback_url)"))
    else:
        found.append(_check_webhook(hook_url, target))
    try:
        rows = describe_plugins(_pm(ctx))
        names = ", ".join(r["name"] for r in rows)
        found.append(Finding(True, "plugins", f"{len(rows)} loaded: {names}"))
    except HarnessError as exc:
        found.append(Finding(False, "plugins", exc.message, exc.hint or ""))
    return found


def _pm(ctx: RunContext):
    ctx.hook  # builds the manager
    return ctx.pm


def _check_webhook(url: str, target) -> Finding:
    if target and not target.is_sandbox and is_loopback(url):
        return Finding(False, "webhook", "WEBHOOK_URL points at this machine, which the real Tavus API cannot reach",
                       "start a tunnel with `invoke webhook --tunnel`")
    from ..callbacks.publicurl import receiver_answers

    up, detail = receiver_answers(url)  # only a real `invoke webhook` receiver passes, not any web server
    if up:
        return Finding(True, "webhook", f"WEBHOOK_URL reaches a callback receiver ({detail})")
    return Finding(False, "webhook", f"WEBHOOK_URL: {detail}",
                   "start the receiver with `invoke webhook` (and a tunnel for the real API)")
