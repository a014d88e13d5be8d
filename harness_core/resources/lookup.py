"""Find remote resources by their display name (Tavus names are not unique)."""
from __future__ import annotations

from ..api import TavusClient
from ..errors import ConfigError


def personas_named(client: TavusClient, name: str, *, fresh: bool = False) -> list[dict]:
    """Every user persona whose `persona_name` (or `pal_name`) equals `name` exactly.

    The listing is fetched once per command (the client caches it, with this command's creates
    appended); `fresh=True` asks the API again.
    """
    rows = client.list_all("/personas", persona_type="user", cached=not fresh)
    return [r for r in rows if (r.get("persona_name") or r.get("pal_name")) == name]


def persona_id_for(client: TavusClient, name: str, where: str, *,
                   none_hint: str = "create it first with `invoke persona --config ...`, or give persona_id",
                   many_hint: str = "give persona_id instead, or rename the duplicates") -> str:
    """The id of the one persona called `name`; none or several is a ConfigError naming `where`."""
    matches = personas_named(client, name)
    if not matches:
        raise ConfigError(f"{where}: no persona named {name!r} in {client.target.label}", hint=none_hint)
    if len(matches) > 1:
        ids = ", ".join(r.get("persona_id") or r.get("pal_id") or "?" for r in matches)
        raise ConfigError(f"{where}: {len(matches)} personas are named {name!r} ({ids})", hint=many_hint)
    return matches[0].get("persona_id") or matches[0].get("pal_id")
