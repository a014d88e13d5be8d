"""Pronunciation dictionaries as code: `configs/pronunciation/*.json|toml` (OAS
/v2/pronunciation-dictionaries). A file holds `name` and `rules` ([{text, pronunciation, type:
alias|ipa, ...}]); a persona's TTS layer names it with `"pronunciation_dictionary": "<name>"`,
which the harness sends as `pronunciation_dictionary_id`.
"""
from __future__ import annotations

import copy

from ..config import check_keys
from ..errors import ConfigError

FIELDS = ("name", "rules")
RULE_FIELDS = ("text", "pronunciation", "type", "alphabet", "case_sensitive", "word_boundaries")
DEFAULTS = {"case_sensitive": False, "word_boundaries": True}  # what the API fills in (OAS)


def build_dictionary(data: dict, where: str) -> dict:
    """Check one dictionary config; return the body with each rule's documented defaults filled in
    (so the API's answer and the config compare equal)."""
    check_keys(data, FIELDS, where)
    if not isinstance(data.get("name"), str) or not data["name"].strip() or len(data["name"]) > 255:
        raise ConfigError(f"{where}: name: required, at most 255 characters", hint='e.g. "name": "Brand names"')
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise ConfigError(f"{where}: rules: must be a list", hint='write "rules": [{"text": ..., "pronunciation": ..., "type": "alias"}]')
    seen, out = set(), []
    for i, rule in enumerate(rules):
        at = f"rules[{i}]"
        if not isinstance(rule, dict):
            raise ConfigError(f"{where}: {at}: must be an object", hint='{"text": ..., "pronunciation": ..., "type": "alias"}')
        check_keys(rule, RULE_FIELDS, where, prefix=f"{at}.")
        for key, most in (("text", 200), ("pronunciation", 500)):
            if not isinstance(rule.get(key), str) or not rule[key] or len(rule[key]) > most:
                raise ConfigError(f"{where}: {at}.{key}: required, at most {most} characters", hint=f'add "{key}": "..."')
        if rule.get("type") not in ("alias", "ipa"):
            raise ConfigError(f"{where}: {at}.type: must be alias or ipa", hint='"alias" spells it out, "ipa" gives phonemes')
        if rule["text"] in seen:
            raise ConfigError(f"{where}: {at}.text: {rule['text']!r} appears twice", hint="keep one rule per text")
        seen.add(rule["text"])
        out.append({**DEFAULTS, **copy.deepcopy(rule)})
    return {"name": data["name"], "rules": out}


def as_config(remote: dict) -> dict:
    """A remote dictionary as a config file."""
    return {"name": remote.get("name"), "rules": copy.deepcopy(remote.get("rules") or [])}
