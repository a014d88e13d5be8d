"""What we print or store is made safe here: secrets removed (`redact`), control characters escaped (`printable`)."""
from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable

REDACTED = "[redacted]"

# Key names whose values are secrets wherever they appear (case-insensitive). A name is split
# at `_`, `-` and `.`; it is secret when one of its words is in SECRET_WORDS, or when it holds
# one of SECRET_PHRASES, so `WEBHOOK_TOKEN`, `X-Api-Key` and `recording_aws_assume_role_arn` are
# caught and `max_tokens` is not.
SECRET_WORDS = ("token", "secret", "password", "authorization", "apikey", "passphrase", "credentials")
SECRET_PHRASES = ("api_key", "role_arn", "access_key", "private_key")

_ARN = re.compile(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+")
_TOKEN_QUERY = re.compile(r"([?&](?:token|key|api_key)=)[^&#\s\"']+", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True when values stored under `key` must never be shown."""
    k = str(key).lower().replace("-", "_").replace(".", "_")
    return any(word in SECRET_WORDS for word in k.split("_")) or any(phrase in k for phrase in SECRET_PHRASES)


# Values this process read through `{"$env": "NAME"}` (config.expand_env_refs): secrets whatever
# the variable's name and wherever they land, so every redact() call knows them without being
# handed them. Replaced whole on each addition (copy on write), so readers never see it change.
# The key each one was put under is remembered too: a value under that key name is redacted
# whole, so an older value of the same field (the remote side of a plan, an API answer) goes too.
_remembered: frozenset[str] = frozenset()
_remembered_keys: frozenset[str] = frozenset()
_remember_lock = threading.Lock()


def remember_secret(value, key: str | None = None) -> None:
    """Treat `value` (and any value under `key`) as a secret in every later redaction of this process.

    Called for the values read through `{"$env": ...}`.
    """
    global _remembered, _remembered_keys
    with _remember_lock:
        if isinstance(value, str) and value:
            _remembered = _remembered | {value}
        if isinstance(key, str) and key:
            _remembered_keys = _remembered_keys | {key}


def remembered_secrets() -> frozenset[str]:
    """The values handed to remember_secret() so far."""
    return _remembered


def redact(obj, secrets: Iterable[str] = ()):
    """Return a copy of `obj` with secrets replaced by "[redacted]".

    Values under secret-looking keys are replaced whole; the literal values in `secrets` and those
    remembered from `$env` (4 characters or more), AWS role ARNs and `token=` query parameters are
    replaced inside any string, and a string that is exactly a remembered value goes whole
    whatever its length.
    """
    return _redact(obj, _known(secrets))


def redact_field(key: str, value, secrets: Iterable[str] = ()):
    """`value` as stored under `key`: "[redacted]" when the key names a secret, else redacted inside."""
    return _field(key, value, _known(secrets))


# A tool's `auth` object (CONTRACT §10.4): every value is a credential except these, which say how
# and where it is sent (api_key's header `value` would pass as an ordinary word otherwise).
AUTH_PUBLIC_FIELDS = frozenset({"type", "location", "name", "username", "token_url", "scope", "client_id"})


def _field(key, value, known):
    if key == "auth" and isinstance(value, dict):
        return {k: _redact(v, known) if k in AUTH_PUBLIC_FIELDS or v in (None, "") or isinstance(v, (dict, list))
                else REDACTED for k, v in value.items()}
    if (is_secret_key(key) or key in _remembered_keys) and value not in (None, "", False, True) and not isinstance(value, (dict, list)):
        return REDACTED
    return _redact(value, known)


def _redact(obj, known):
    if isinstance(obj, dict) and isinstance(obj.get("path"), str) and "op" in obj and "value" in obj:
        # a JSON Patch operation: its value is judged by the name of the field it writes
        field = obj["path"].rstrip("/").rpartition("/")[2]
        return {**{k: _redact(v, known) for k, v in obj.items() if k != "value"}, "value": _field(field, obj["value"], known)}
    if isinstance(obj, dict):
        return {key: _field(key, value, known) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_redact(v, known) for v in obj]
    if isinstance(obj, str):
        return _redact_string(obj, known)
    return obj


def _known(secrets: Iterable[str]) -> list[str]:
    """The literal secrets worth replacing, longest first (so a secret inside another goes too)."""
    return sorted({s for s in (*secrets, *_remembered) if s and len(s) >= 4}, key=len, reverse=True)


def _redact_string(text: str, known: list[str]) -> str:
    if text in _remembered:  # a short value from $env: too short to replace inside text, not as a whole
        return REDACTED
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "arn:" in text:  # cheap tests first: most strings hold neither pattern
        text = _ARN.sub(REDACTED, text)
    if "=" in text:
        text = _TOKEN_QUERY.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secret values, role ARNs and token query parameters inside `text`."""
    return _redact_string(text, _known(secrets))


def printable(text: str) -> str:
    """Control characters from a sender (terminal escape codes, newlines) shown escaped, never obeyed."""
    if text.isprintable():  # the usual case, checked in C
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
