"""Remote writes and what comes back: field-level JSON Patches limited to what a config manages,
the read-back after a write, and GET-one of a managed resource.

Shared by every resource kind (personas, objectives, guardrails) and by plan/apply.
"""
from __future__ import annotations

import copy

from jsonpointer import escape

from ..api import unwrap_one, unwrap_policy
from ..context import RunContext
from ..errors import ApiError, HarnessError


def project(remote, desired, sent=None, *, top=None):
    """`remote` cut down to the shape of `desired`: keys the write does not set are dropped, so
    the patch never removes fields set elsewhere. Keys in `sent` (what the harness sent to this
    resource before, from any source: see lockfile.sent_before) are kept too, so one the write
    no longer sets is removed: inside an object the write sets, always (`--tts cartesia` after
    `--tts elevenlabs` drops ElevenLabs' voice_settings); at the top level only when `top`
    (the same config file sent them: a flag-only update never removes the config's fields)."""
    sent = sent if isinstance(sent, dict) else {}
    if isinstance(remote, dict) and isinstance(desired, dict):
        roots = sent if top is None or top else {}
        return {k: project(v, desired.get(k), sent.get(k)) for k, v in remote.items()
                if k in desired or (k in roots and k in sent)}
    if isinstance(remote, list) and isinstance(desired, list):
        return ([project(r, d, sent.get(str(i))) for i, (r, d) in enumerate(zip(remote, desired))]
                + copy.deepcopy(remote[len(desired):]))
    return copy.deepcopy(remote)


def diff_managed(remote: dict, desired: dict, sent: dict | None = None, *, top: bool | None = None) -> list[dict]:
    """RFC 6902 operations turning `remote` into `desired` on managed fields (add/remove/replace only).

    `sent`: the shape the harness sent before; fields it sent then and no longer sets are removed
    (top-level ones only when `top` is not False, see project()).
    """
    return json_diff(project(remote, desired, sent, top=top), desired)


def json_diff(before, after, pointer: str = "") -> list[dict]:
    """The smallest add/remove/replace patch from `before` to `after`.

    Objects are compared key by key and lists index by index (extra items removed from the end,
    new ones added), so a patch never moves or copies and never touches what did not change.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        ops = [{"op": "remove", "path": f"{pointer}/{escape(str(k))}"} for k in before if k not in after]
        for key, value in after.items():
            here = f"{pointer}/{escape(str(key))}"
            ops += (json_diff(before[key], value, here) if key in before
                    else [{"op": "add", "path": here, "value": copy.deepcopy(value)}])
        return ops
    if isinstance(before, list) and isinstance(after, list):
        ops = [op for i, (b, a) in enumerate(zip(before, after)) for op in json_diff(b, a, f"{pointer}/{i}")]
        ops += [{"op": "remove", "path": f"{pointer}/{i}"} for i in range(len(before) - 1, len(after) - 1, -1)]
        ops += [{"op": "add", "path": f"{pointer}/{i}", "value": copy.deepcopy(after[i])}
                for i in range(len(before), len(after))]
        return ops
    if before == after and isinstance(before, bool) == isinstance(after, bool):
        return []
    return [{"op": "replace", "path": pointer, "value": copy.deepcopy(after)}]


# The API collection of each kind the state file records.
COLLECTIONS = {"persona": "/personas", "objectives": "/objectives", "guardrails": "/guardrails", "tools": "/tools",
               "documents": "/documents", "pronunciation": "/pronunciation-dictionaries"}


def fetch_remote(ctx: RunContext, kind: str, remote_id: str) -> dict | None:
    """The remote resource a state entry points at, or None when the API no longer has it.

    Documents are returned in config names (`crawl` for the API's `crawl_config`).
    """
    try:
        body = ctx.client().get(f"{COLLECTIONS[kind]}/{remote_id}")
    except ApiError as exc:
        if exc.not_found:
            return None
        raise
    if kind == "persona":
        return unwrap_one(body)
    if kind == "documents":
        from .documents import as_seen
        return as_seen(body)
    return unwrap_policy(body) if kind in ("objectives", "guardrails") else body


def read_back(ctx: RunContext, what: str, fetch, sent: dict) -> dict:
    """The resource as the API returns it after a write, with a warning for fields it did not keep.

    If it cannot be read, say so and go on with what was sent: the write happened, and the
    state file must remember it (or the next run would create a duplicate).
    """
    try:
        remote = fetch()
    except HarnessError as exc:
        ctx.note(f"warning: {what} was written but could not be read back ({exc.render()}); "
                 "recording what was sent")
        return copy.deepcopy(sent)
    warn_not_kept(ctx, what, remote, sent)
    return remote


def warn_not_kept(ctx: RunContext, what: str, remote: dict, sent: dict) -> None:
    """After a write: one warning naming every sent field the API dropped or changed (values unshown)."""
    paths = sorted({op["path"] for op in diff_managed(remote, sent)})
    if paths:
        shown = ", ".join(paths[:6]) + (f" and {len(paths) - 6} more" if len(paths) > 6 else "")
        ctx.note(f"warning: {what}: the API did not keep what was sent at {shown}")
