"""Seed data: the stock replicas, personas and documents every Tavus account can see (CONTRACT §7)."""
from __future__ import annotations

SEEDED_AT = "2025-01-15T10:00:00.000000Z"

# (replica_id, name, model_name). r4317e64d25a is widely used in public code as a stock replica.
STOCK_REPLICAS = [
    ("r4317e64d25a", "Stock Presenter", "phoenix-3"),
    ("r90bbd427f71", "Anna", "phoenix-3"),
    ("rf4e9d9790f0", "Anna", "phoenix-3"),
    ("r5f0577fc829", "Interviewer", "phoenix-3"),
    ("r3f427f43c9d", "Customer Support", "phoenix-3"),
    ("r4f5b5ef55c8", "Sales Coach", "phoenix-3"),
    ("rc9cff32ceba", "Anna - Casual", "phoenix-3"),
    ("rc8992fe8e8e", "Brooke", "phoenix-4"),
]

# (persona_id, name, default replica)
STOCK_PERSONAS = [
    ("p1af207b8189", "Sales Coach", "r4f5b5ef55c8"),
    ("paaee96e4f87", "Customer Support", "r3f427f43c9d"),
    ("pdac61133ac5", "Interviewer", "r5f0577fc829"),
    ("pcb7a34da5fe", "Sales Development Rep", "rf4e9d9790f0"),
]


def stock_replicas() -> dict[str, dict]:
    """Stock replicas by id, as the list endpoint stores them."""
    return {rid: {"replica_id": rid, "replica_name": name, "thumbnail_video_url": f"https://cdn.replica.tavus.io/{rid}.mp4",
                  "training_progress": "100/100", "status": "completed", "created_at": SEEDED_AT,
                  "updated_at": SEEDED_AT, "error_message": None, "replica_type": "system", "model_name": model,
                  "default_voice_id": None, "original_voice_id": None}
            for rid, name, model in STOCK_REPLICAS}


def stock_personas() -> dict[str, dict]:
    """Stock personas by id (persona_type system)."""
    return {pid: {"persona_id": pid, "persona_name": name, "system_prompt": f"You are the {name} persona by Tavus.",
                  "context": "", "pipeline_mode": "full", "default_replica_id": rid, "document_ids": [],
                  "document_tags": [], "objectives_id": None, "guardrails_id": None,
                  "layers": {"llm": {"model": "tavus-gpt-oss"}, "perception": {"perception_model": "raven-1"}},
                  "persona_type": "system", "created_at": SEEDED_AT, "updated_at": SEEDED_AT}
            for pid, name, rid in STOCK_PERSONAS}


def stock_documents() -> dict[str, dict]:
    """Three ready documents so document lists are not empty."""
    docs = {}
    # d1234567890 and d2468101214 are the ids the OAS persona examples name, so those examples are accepted.
    for did, name, url, tags in [("d1234567890", "Example Docs", "https://docs.example.com/", ["docs", "website"]),
                                 ("d2468101214", "Product Info", "https://example.com/product-info.pdf", ["product_info"]),
                                 ("d0987654321", "Meeting Guide", "https://example.com/meeting-guide.pdf", ["meetings"])]:
        docs[did] = {"document_id": did, "document_name": name, "document_url": url, "status": "ready",
                     "progress": None, "error_message": None, "created_at": SEEDED_AT, "updated_at": SEEDED_AT,
                     "callback_url": "", "tags": tags, "crawl_config": None, "crawled_urls": None,
                     "last_crawled_at": None, "crawl_count": None}
    return docs


# (voice_name, stock replica it comes from, tags): the slugs `voice_name` on an image-trained replica
# may name (OAS GET /v2/voices; "anna" is the OAS example). The other slugs are invented.
STOCK_VOICES = [
    ("anna", "r90bbd427f71", ["female", "warm"]),
    ("brooke", "rc8992fe8e8e", ["female", "professional"]),
    ("interviewer", "r5f0577fc829", ["male", "professional"]),
    ("sales_coach", "r4f5b5ef55c8", ["male", "energetic"]),
    ("support", "r3f427f43c9d", ["female", "calm"]),
]


def stock_voices() -> list[dict]:
    """The stock voices in the OAS list shape, sorted by voice_name."""
    return [{"voice_name": name, "replica_id": rid, "audio_url": f"https://cdn.replica.tavus.io/voices/{name}.mp3",
             "tags": [{"tag_name": tag} for tag in tags]} for name, rid, tags in sorted(STOCK_VOICES)]
