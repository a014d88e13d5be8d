"""Objectives completing and guardrails firing in a sandbox call: the in-call event and the callback.

Both go to the objective's / guardrail's own `callback_url` (CONTRACT §10.6). Objectives: the
envelope captured from Tavus, `{"conversation_id", "event_type": "conversation.objective.completed",
"message_type": "conversation", "properties": {"objective_name", "output_variables"}}`. Guardrails:
no payload is documented; the sandbox sends the same envelope with `event_type:
"conversation.guardrail.triggered"` and `properties: {guardrail_name, guardrail_id, modality,
utterance}` (our choice), and emits the in-call event unless the guardrail has `app_message: false`.
"""
from __future__ import annotations


def objectives_of(state, persona: dict | None) -> dict[str, dict]:
    """The persona's objectives by name (from its objectives set). Caller holds the state lock."""
    record = state.objectives.get((persona or {}).get("objectives_id") or "") or {}
    return {o["objective_name"]: o for o in record.get("data") or [] if isinstance(o, dict) and o.get("objective_name")}


def guardrails_of(state, persona: dict | None) -> dict[str, dict]:
    """The persona's guardrails by name: flat ones (`guardrail_ids`) and a legacy set's (`guardrails_id`),
    each with its `guardrail_id`. Caller holds the state lock."""
    persona = persona or {}
    out = {}
    legacy = state.guardrails.get(persona.get("guardrails_id") or "") or {}
    for item in legacy.get("data") or []:
        if isinstance(item, dict) and item.get("guardrail_name"):
            out[item["guardrail_name"]] = {**item, "guardrail_id": legacy.get("guardrails_id")}
    for gid in persona.get("guardrail_ids") or []:
        flat = state.guardrails.get(gid)
        if flat and flat.get("guardrail_name"):
            out[flat["guardrail_name"]] = {**flat, "guardrail_id": gid}
    return out


def policy_envelope(cid: str, event_type: str, properties: dict) -> dict:
    """The callback body for an objective or guardrail (CONTRACT §10.6)."""
    return {"conversation_id": cid, "event_type": event_type, "message_type": "conversation", "properties": properties}


def complete_objective(sb, cid: str, name: str, output_variables: dict, turn_idx: int, inference_id: str) -> None:
    """conversation.objective.completed in the call and to the objective's callback_url."""
    with sb.state.lock:
        conv = sb.state.conversations.get(cid) or {}
        objective = objectives_of(sb.state, sb.state.persona(conv.get("persona_id") or "")).get(name) or {}
    props = {"objective_name": name, "output_variables": dict(output_variables or {})}
    if sb.emit_in_call(cid, "conversation.objective.completed", props, turn_idx, inference_id) and objective.get("callback_url"):
        sb.deliverer.send(objective["callback_url"], policy_envelope(cid, "conversation.objective.completed", props))


def trigger_guardrail(sb, cid: str, name: str, utterance: str, turn_idx: int, inference_id: str) -> None:
    """conversation.guardrail.triggered in the call (unless app_message is false) and to its callback_url."""
    with sb.state.lock:
        conv = sb.state.conversations.get(cid) or {}
        if conv.get("status") != "active":
            return
        guardrail = guardrails_of(sb.state, sb.state.persona(conv.get("persona_id") or "")).get(name) or {}
    props = {"guardrail_name": name, "guardrail_id": guardrail.get("guardrail_id"),
             "modality": guardrail.get("modality") or "verbal", "utterance": utterance}
    if guardrail.get("app_message", True) is not False:
        sb.emit_in_call(cid, "conversation.guardrail.triggered", props, turn_idx, inference_id)
    if guardrail.get("callback_url"):
        sb.deliverer.send(guardrail["callback_url"], policy_envelope(cid, "conversation.guardrail.triggered", props))
