"""The one function that removes secrets from anything we print or store."""
from __future__ import annotations

import functools
import re
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


def redact(obj, secrets: Iterable[str] = ()):
    """Return a copy of `obj` with secrets replaced by "[redacted]".

    Values under secret-looking keys are replaced whole; the literal values in `secrets`,
    AWS role ARNs and `token=` query parameters are replaced inside any string.
    """
    return _redact(obj, _known(secrets))


def redact_field(key: str, value, secrets: Iterable[str] = ()):
    """`value` as stored under `key`: "[redacted]" when the key names a secret, else redacted inside."""
    return _field(key, value, _known(secrets))


def _field(key, value, known):
    if is_secret_key(key) and value not in (None, "", False, True) and not isinstance(value, (dict, list)):
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
    return sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)


def _redact_string(text: str, known: list[str]) -> str:
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
