"""What a sandbox call leaves behind: callback envelopes, the system prompt, the transcript of what
was said, the perception analysis and the recording (each as Tavus documents it, CONTRACT §6)."""
from __future__ import annotations

import time

from ..store import utc_now

DEFAULT_PERCEPTION = "raven-1"  # layers.perception.perception_model default (CONTRACT §4.4)


def envelope(conversation: dict, event_type: str, properties: dict) -> dict:
    """A callback in the documented envelope (CONTRACT §6)."""
    return {"properties": properties, "conversation_id": conversation["conversation_id"],
            "webhook_url": conversation.get("callback_url") or "", "event_type": event_type,
            "message_type": event_type.split(".", 1)[0], "timestamp": utc_now()}


def system_prompt(persona: dict | None, conversation: dict, extra_context: str | None = None) -> str:
    """The system prompt as Tavus assembles it: persona system_prompt + context + conversational_context.

    `extra_context` (what conversation.append/overwrite_llm_context made of the conversational
    context) replaces the conversation's own when given.
    """
    persona = persona or {}
    context = conversation.get("conversational_context") if extra_context is None else extra_context
    return "\n\n".join(p for p in (persona.get("system_prompt"), persona.get("context"), context) if p)


def speaking_time(text: str) -> float:
    """Seconds a replica or user takes to say `text` (invented: ~18 characters a second)."""
    return round(0.4 + len(text) / 18, 2)


def build_transcript(persona: dict | None, conversation: dict, script: dict | None) -> list[dict]:
    """The transcript of what happened: the system prompt, then the dialogue in the order it was said.

    The dialogue is what the conversation's turns recorded (`conversation["dialogue"]`: the
    greeting once a participant was there, user turns, replies); none when nobody spoke. A script's
    `transcript` (list of {role, content}) replaces it, spread over the call's real length.
    Timestamps never run past the end (`ended_at`).
    """
    started = float(conversation.get("joined_at") or conversation.get("created_epoch") or time.time())
    ended = float(conversation.get("ended_at") or time.time())
    out = [{"role": "system", "content": system_prompt(persona, conversation)
            or "You are in a live video conference call with a user."}]
    if script and isinstance(script.get("transcript"), list):
        turns = [(t.get("role", "user"), str(t.get("content", ""))) for t in script["transcript"] if isinstance(t, dict)]
        durations = [speaking_time(content) for _, content in turns]
        total = sum(durations) + 0.6 * len(turns)
        squeeze = min(1.0, max(ended - started, 0.0) / total) if total else 1.0
        offset = 0.0
        for (role, content), duration in zip(turns, durations):
            out.append({"role": role, "content": content, "timestamp": round(started + offset, 2),
                        "seconds_from_start": round(offset, 2), "duration": round(duration * squeeze, 2)})
            offset += (duration + 0.6) * squeeze
        return out
    for entry in conversation.get("dialogue") or []:
        said = min(float(entry["timestamp"]), ended)
        item = {"role": entry["role"], "content": entry["content"], "timestamp": round(said, 2),
                "seconds_from_start": round(max(said - started, 0.0), 2),
                "duration": round(max(min(speaking_time(entry["content"]), ended - said), 0.0), 2)}
        if entry.get("inference_id"):
            item["inference_id"] = entry["inference_id"]
        out.append(item)
    return out


def perception_analysis(persona: dict | None, script: dict | None, conversation: dict | None = None) -> str | None:
    """The end-of-call visual summary, unless perception is off (raven-1 by default) or there was no
    video: `audio_only` and `chat` conversations get none (our reading: nothing to look at)."""
    conversation = conversation or {}
    if conversation.get("audio_only") or conversation.get("chat"):
        return None
    perception = ((persona or {}).get("layers") or {}).get("perception") or {}
    if perception.get("perception_model", DEFAULT_PERCEPTION) == "off":
        return None
    if script and script.get("perception_analysis"):
        return str(script["perception_analysis"])
    queries = perception.get("perception_analysis_queries") or []
    text = "Here's a summary of the visual observations taken during the video call: the participant was " \
           "attentive, in a well-lit room, and looked at the camera most of the time."
    if queries:
        text += " Answers to the analysis queries: " + "; ".join(f"{q} - yes" for q in queries) + "."
    return text


def recording_event(conversation: dict) -> dict | None:
    """application.recording_ready properties when recording is enabled and storage configured."""
    props = conversation.get("properties") or {}
    if not props.get("enable_recording"):
        return None
    storage = props.get("recording_storage")
    cid = conversation["conversation_id"]
    key = f"recordings/{cid}/{cid}.mp4"
    if isinstance(storage, dict) and storage.get("bucket_name"):
        provider = storage.get("provider", "s3")
        scheme = {"s3": "s3", "gcs": "gs", "azure_blob": "https"}.get(provider, provider)
        return {"bucket_name": storage["bucket_name"], "s3_key": key, "duration": 42,
                "storage_provider": provider, "storage_uri": f"{scheme}://{storage['bucket_name']}/{key}"}
    if props.get("recording_s3_bucket_name"):
        return {"bucket_name": props["recording_s3_bucket_name"], "s3_key": key, "duration": 42}
    return None
