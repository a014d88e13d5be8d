"""Built-in: resolve an objectives set or guardrail by its exact name."""
from __future__ import annotations

from harness_core import ConfigError, hookimpl, policy_id, policy_name


@hookimpl(trylast=True)
def harness_resolve_policy(kind, name, candidates):
    """Exactly one row whose name equals `name`; none or several is a ConfigError."""
    matches = [row for row in candidates if policy_name(kind, row) == name]
    flag = f"--{kind}-name"
    if not matches:
        known = sorted({n for n in (policy_name(kind, r) for r in candidates) if n})
        raise ConfigError(f"{flag} {name!r}: no {kind} with that exact name",
                          hint=f"create it with `invoke {kind} --config ...`, or use one of: {', '.join(known) or 'none exist'}")
    if len(matches) > 1:
        ids = ", ".join(policy_id(kind, r) or "?" for r in matches)
        raise ConfigError(f"{flag} {name!r}: {len(matches)} {kind} share that name ({ids})",
                          hint=f"attach one by id with --{kind}-id")
    return matches[0]
