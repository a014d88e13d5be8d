"""Pronunciation dictionaries (OAS /v2/pronunciation-dictionaries*): create (201), list (0-based,
rows without rules), get, JSON Patch on `name` and `rules` (304 when unchanged), delete (204,
unlinked from every persona's `layers.tts.pronunciation_dictionary_id`).

The OAS names the id `pronunciation_dictionary_id`; the official CLI's list table reads `uuid`.
Sources conflict, so the sandbox answers both keys with the same value (our choice).
"""
from __future__ import annotations

import copy

from ...store import utc_now
from ..http import Family, Reply, apply_patch, error, page
from ..state import new_id

MAX_NAME, MAX_TEXT, MAX_PRONUNCIATION, MAX_RULES = 255, 200, 500, 10_000  # OAS / official CLI
RULE_FIELDS = {"text", "pronunciation", "type", "alphabet", "case_sensitive", "word_boundaries"}
EDITABLE = ("name", "rules")
NOT_FOUND = "Pronunciation dictionary not found"


def check_dictionary(body: dict) -> list[dict]:
    """400 for the first broken rule of a dictionary body; returns the rules with their defaults."""
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise error(400, "Invalid request: name is required")
    if len(name) > MAX_NAME:
        raise error(400, f"Invalid request: name is longer than {MAX_NAME} characters")
    rules = body.get("rules", [])
    if not isinstance(rules, list):
        raise error(400, "Invalid request: rules must be an array of {text, pronunciation, type}")
    if len(rules) > MAX_RULES:
        raise error(400, f"Invalid request: a dictionary holds at most {MAX_RULES} rules")
    out = []
    for i, rule in enumerate(rules):
        where = f"Invalid request: rules[{i}]"
        if not isinstance(rule, dict):
            raise error(400, f"{where} must be an object {{text, pronunciation, type}}")
        unknown = set(rule) - RULE_FIELDS
        if unknown:
            raise error(400, f"{where}: unknown field '{sorted(unknown)[0]}'; known: {', '.join(sorted(RULE_FIELDS))}")
        for key, most in (("text", MAX_TEXT), ("pronunciation", MAX_PRONUNCIATION)):
            if not isinstance(rule.get(key), str) or not rule[key]:
                raise error(400, f"{where}.{key} is required")
            if len(rule[key]) > most:
                raise error(400, f"{where}.{key} is longer than {most} characters")
        if rule.get("type") not in ("alias", "ipa"):
            raise error(400, f"{where}.type must be alias or ipa")
        if rule.get("alphabet") not in (None, "ipa"):
            raise error(400, f"{where}.alphabet must be ipa")
        for key in ("case_sensitive", "word_boundaries"):
            if key in rule and not isinstance(rule[key], bool):
                raise error(400, f"{where}.{key} must be true or false")
        out.append({**rule, "case_sensitive": rule.get("case_sensitive", False),
                    "word_boundaries": rule.get("word_boundaries", True)})
    texts = [r["text"] for r in out]
    if len(texts) != len(set(texts)):
        raise error(400, "Invalid request: duplicate text values in rules")
    return out


def shaped(record: dict, rules: bool = True) -> dict:
    out = copy.deepcopy(record)
    out["rules_count"] = len(record["rules"])
    out["uuid"] = record["pronunciation_dictionary_id"]  # the official CLI's name for the id (see module doc)
    if not rules:
        out.pop("rules")
    return out


class PronunciationDictionaries(Family):
    """/v2/pronunciation-dictionaries."""

    def routes(self):
        base = r"/v2/pronunciation-dictionaries"
        yield "POST", base, self.create_dictionary
        yield "GET", base, self.list_dictionaries
        yield "GET", rf"{base}/(?P<did>[^/]+)", self.get_dictionary
        yield "PATCH", rf"{base}/(?P<did>[^/]+)", self.patch_dictionary
        yield "DELETE", rf"{base}/(?P<did>[^/]+)", self.delete_dictionary

    def create_dictionary(self, req):
        body = req.json_object()
        unknown = set(body) - set(EDITABLE)
        if unknown:
            raise error(400, f"Invalid request: unknown field '{sorted(unknown)[0]}'; known: name, rules")
        rules = check_dictionary(body)
        with self.sb.state.lock:
            did, stamp = "pd_" + new_id("", 14), utc_now()  # OAS example pd_abc123def456gh
            record = {"pronunciation_dictionary_id": did, "name": body["name"], "rules": rules,
                      "created_at": stamp, "updated_at": stamp}
            self.sb.state.pronunciation_dictionaries[did] = record
            out = shaped(record)
        self.sb.save()
        return Reply(201, out)

    def list_dictionaries(self, req):
        sort = req.arg("sort") or "desc"
        if sort not in ("asc", "desc"):
            raise error(400, "Invalid request: sort must be asc or desc")
        with self.sb.state.lock:
            rows = [shaped(r, rules=False) for r in self.sb.state.pronunciation_dictionaries.values()]
        rows.sort(key=lambda r: r["created_at"], reverse=sort == "desc")
        return Reply(200, page(rows, req, base=0, most=100))

    def find(self, did) -> dict:
        record = self.sb.state.pronunciation_dictionaries.get(did)
        if record is None:
            raise error(404, NOT_FOUND, "message")
        return record

    def get_dictionary(self, req, did):
        with self.sb.state.lock:
            return Reply(200, shaped(self.find(did)))

    def patch_dictionary(self, req, did):
        """RFC 6902 on {name, rules}; ops on read-only fields are ignored (OAS), rules replace whole."""
        ops = req.json_patch()
        if ops is None:
            raise error(422, "Invalid JSON patch format", "message")
        ops = [op for op in ops if op["path"].lstrip("/").split("/", 1)[0] in EDITABLE]
        with self.sb.state.lock:
            current = self.find(did)
            document = {k: current[k] for k in EDITABLE}
            patched = apply_patch(document, ops)
            if set(patched) != set(EDITABLE):
                raise error(400, "Invalid patch operation")
            rules = check_dictionary(patched)
            if {"name": patched["name"], "rules": rules} == document:
                return Reply(304)
            current.update(name=patched["name"], rules=rules, updated_at=utc_now())
            out = shaped(current)
        self.sb.save()
        return Reply(200, out)

    def delete_dictionary(self, req, did):
        with self.sb.state.lock:
            self.find(did)
            del self.sb.state.pronunciation_dictionaries[did]
            for persona in self.sb.state.personas.values():  # OAS: linked personas get null
                tts = (persona.get("layers") or {}).get("tts")
                if isinstance(tts, dict) and tts.get("pronunciation_dictionary_id") == did:
                    tts["pronunciation_dictionary_id"] = None
        self.sb.save()
        return Reply(204)
