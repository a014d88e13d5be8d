"""Writing a PAL: attached tools, and the two documented editing generations (CONTRACT §10.5).

(A) A Builder draft exists: a PATCH goes to the draft and answers `publish_url`; `GET
?source=draft` reads it; `POST /v2/pals/{id}/publish` makes it live. (B) No drafts: a PATCH
answers 409 `{"conflict": "maker_changes"}` when the dashboard changed the PAL; `?force=true`
discards those changes (`"discarded_maker_changes": true`).

Either way a change made in the dashboard is a conflict: reported, never discarded without
`force`. A PATCH that lands in a draft of our own is published at once, so the live PAL is what
the config says.
"""
from __future__ import annotations

from ..errors import ApiError, CheckFailed

VOLATILE = ("updated_at", "created_at", "publish_url", "source", "status")


def without_tools(body: dict) -> tuple[dict, list | None]:
    """The body to send (no `tool_ids`: tools are attached through their own route) and the tool ids."""
    if "tool_ids" not in body:
        return body, None
    rest = {k: v for k, v in body.items() if k != "tool_ids"}
    return rest, list(body["tool_ids"] or [])


def sync_tools(ctx, pal_id: str, wanted: list[str]) -> list[str]:
    """Attach the `wanted` tools to the PAL and detach the others; returns lines for the summary."""
    client = ctx.client()
    listed = client.get(f"/pals/{pal_id}/tools") or {}
    current = [t.get("tool_id") for t in (listed.get("data") or []) if isinstance(t, dict)]
    lines = []
    missing = [t for t in wanted if t not in current]
    if missing:
        client.post(f"/pals/{pal_id}/tools", {"tool_ids": missing})
        lines.append(f"tools {', '.join(missing)}")
    for extra in [t for t in current if t not in wanted]:
        client.request("DELETE", f"/pals/{pal_id}/tools/{extra}")
        lines.append(f"detached tool {extra}")
    return lines


def foreign_draft(ctx, pal_id: str) -> bool:
    """True when the PAL has a Builder draft that differs from the live PAL (generation A).

    An API without drafts answers the live PAL (or an error) for `?source=draft`: no draft.
    """
    client = ctx.client()
    try:
        draft = client.get(f"/pals/{pal_id}", source="draft")
        live = client.get(f"/pals/{pal_id}")
    except ApiError:
        return False
    if not isinstance(draft, dict) or not isinstance(live, dict):
        return False
    strip = lambda d: {k: v for k, v in d.items() if k not in VOLATILE}  # noqa: E731
    return strip(draft) != strip(live)


def conflict_of(exc: ApiError) -> str | None:
    """`maker_changes` (or another conflict name) of a 409 answer, else None."""
    body = exc.body if isinstance(exc.body, dict) else {}
    return body.get("conflict") if exc.status == 409 else None


def patch_pal(ctx, pal_id: str, ops: list, where: str, *, force: bool = False):
    """PATCH the PAL with `ops`, treating dashboard changes as a conflict; returns the Reply.

    Without `force`: a foreign draft or a 409 maker_changes raises CheckFailed naming `where`.
    With it: a 409 is retried with `?force=true` (the dashboard's changes are discarded) and a
    draft is published with our change.
    """
    client = ctx.client()
    hint = "review the change in the Tavus dashboard; add --force to apply the config anyway"
    if not force and foreign_draft(ctx, pal_id):
        raise CheckFailed(f"{where}: PAL {pal_id} has an unpublished draft made in the Tavus dashboard (conflict)", hint=hint)
    try:
        reply = client.patch(f"/personas/{pal_id}", ops)
    except ApiError as exc:
        if conflict_of(exc) is None:
            raise
        if not force:
            raise CheckFailed(f"{where}: PAL {pal_id}: the Tavus dashboard changed it since ({conflict_of(exc)}; conflict)",
                              hint=hint) from None
        reply = client.request("PATCH", f"/personas/{pal_id}", json_body=ops, params={"force": "true"})
        ctx.note(f"note: PAL {pal_id}: --force discarded the changes made in the Tavus dashboard")
    body = reply.body if isinstance(reply.body, dict) else {}
    if body.get("publish_url"):
        client.post(f"/pals/{pal_id}/publish")
        ctx.note(f"note: PAL {pal_id}: the update went to a draft; published it")
    return reply
