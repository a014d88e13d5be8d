"""Built-in: resolve an objectives set or guardrail by its exact name."""
from __future__ import annotations

from harness_core import ConfigError, hookimpl

NAME_KEYS = {
    "objectives": ("name", "objective_name", "objectives_name"),
    "guardrails": ("guardrail_name", "name", "guardrails_name"),
}
ID_KEYS = {"objectives": ("objectives_id", "uuid"), "guardrails": ("uuid", "guardrails_id", "guardrail_id")}


def row_name(kind: str, row: dict) -> str | None:
    """The display name of a list row, whichever key the API used."""
    for key in NAME_KEYS[kind]:
        if isinstance(row.get(key), str):
            return row[key]
    return None


def row_id(kind: str, row: dict) -> str | None:
    """The id of a list row, whichever key the API used."""
    for key in ID_KEYS[kind]:
        if isinstance(row.get(key), str):
            return row[key]
    return None


@hookimpl(trylast=True)
def harness_resolve_policy(kind, name, candidates):
    """Exactly one row whose name equals `name`; none or several is a ConfigError."""
    matches = [row for row in candidates if row_name(kind, row) == name]
    flag = f"--{kind}-name"
    if not matches:
        known = sorted({n for n in (row_name(kind, r) for r in candidates) if n})
        raise ConfigError(f"{flag} {name!r}: no {kind} with that exact name",
                          hint=f"create it with `invoke {kind} --config ...`, or use one of: {', '.join(known) or 'none exist'}")
    if len(matches) > 1:
        ids = ", ".join(row_id(kind, r) or "?" for r in matches)
        raise ConfigError(f"{flag} {name!r}: {len(matches)} {kind} share that name ({ids})",
                          hint=f"attach one by id with --{kind}-id")
    return matches[0]
