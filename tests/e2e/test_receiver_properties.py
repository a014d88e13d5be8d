"""Property-based: the receiver answers every body with a 2xx or a 4xx, never a 500, and keeps serving."""
from __future__ import annotations

import json

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from harness_core.context import make_context
from harness_core.callbacks.receiver import Receiver

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
                           max_leaves=15)
envelopes = st.fixed_dictionaries({"conversation_id": st.text(max_size=20), "event_type": st.text(max_size=30)},
                                  optional={"properties": json_values, "timestamp": json_values,
                                            "message_type": json_values})


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    root = tmp_path_factory.mktemp("rx")
    with Receiver(make_context(root, {}, quiet=True), token="property-token") as rx:
        yield rx


def post(rx, data: bytes, ctype="application/json"):
    return requests.post(rx.callback_url, data=data, headers={"Content-Type": ctype}, timeout=10)


@given(raw=st.binary(max_size=400))
def test_random_bytes_never_get_a_500(receiver, raw):
    assert post(receiver, raw).status_code in (200, 400, 422)


@given(value=json_values | envelopes)
def test_random_json_never_gets_a_500(receiver, value):
    status = post(receiver, json.dumps(value).encode()).status_code
    assert status in (200, 422)


def test_still_healthy_after_the_onslaught(receiver):
    assert requests.get(f"{receiver.base_url}/healthz", timeout=5).status_code == 200
    good = {"conversation_id": "cprop1", "event_type": "system.replica_joined", "message_type": "system",
            "timestamp": "2026-11-24T00:00:00.000000Z", "properties": {}}
    assert post(receiver, json.dumps(good).encode()).status_code == 200
