"""The rules the names and links of an objectives (or guardrails) set follow (contract §2.4), for harness and sandbox alike.

Names are unique within a set; an objective leads on through `next_conditional_objectives` or
`next_required_objective` (not both), never to itself, and only to objectives of the same set.
"""
from __future__ import annotations


def duplicate_name(items: list, key: str) -> tuple[int, str] | None:
    """(index, what is wrong) for the first item whose `key` (objective_name, guardrail_name) repeats."""
    names = [item.get(key) if isinstance(item, dict) else None for item in items]
    for i, name in enumerate(names):
        if name is not None and name in names[:i]:
            return i, f"{key} {name!r} is already used in this set"
    return None


def link_problem(items: list) -> tuple[int, str] | None:
    """(index of the item, what is wrong) for the first broken rule of an objectives set, or None.

    Items that are not objects are skipped: their shape is the schema's business.
    """
    duplicate = duplicate_name(items, "objective_name")
    if duplicate:
        return duplicate
    names = [item.get("objective_name") if isinstance(item, dict) else None for item in items]
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        conditional = item.get("next_conditional_objectives") or {}
        required = item.get("next_required_objective")
        if conditional and required:
            return i, "next_conditional_objectives and next_required_objective cannot both be set"
        for target in [*(conditional if isinstance(conditional, dict) else ()), *([required] if required else [])]:
            if target == item.get("objective_name"):
                return i, f"objective {target!r} cannot lead to itself"
            if target not in names:
                return i, f"next objective {target!r} does not exist in this set"
    return None
