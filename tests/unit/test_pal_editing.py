"""The two PAL editing generations (CONTRACT §10.5), against a recording stand-in for the client.

The sandbox does not serve drafts or 409 maker_changes on main yet (branch sandbox-pal); these
check the harness side: a dashboard change is a conflict, discarded only with force.
"""
from __future__ import annotations

import pytest

from harness_core.api import Reply
from harness_core.errors import ApiError, CheckFailed
from harness_core.resources import pal


class Client:
    """Answers like a PAL API of one generation and records what it was sent."""

    def __init__(self, *, draft=None, maker_changes=False, publish_url=False):
        self.live = {"pal_id": "p1", "pal_name": "P", "system_prompt": "live"}
        self.draft, self.maker_changes, self.publish_url, self.sent = draft, maker_changes, publish_url, []

    def get(self, path, **params):
        return dict(self.draft if params.get("source") == "draft" and self.draft else self.live)

    def patch(self, path, ops):
        return self.request("PATCH", path, json_body=ops)

    def post(self, path, body=None):
        self.sent.append(("POST", path, None))
        return {}

    def request(self, method, path, *, json_body=None, params=None):
        self.sent.append((method, path, params))
        if self.maker_changes and not params:
            raise ApiError("PATCH: 409", status=409, body={"conflict": "maker_changes"})
        return Reply(200, {"publish_url": "https://x"} if self.publish_url else
                     {"discarded_maker_changes": True} if params else {})


class Ctx:
    def __init__(self, client):
        self._client, self.notes = client, []

    def client(self):
        return self._client

    def note(self, text):
        self.notes.append(text)


OPS = [{"op": "replace", "path": "/system_prompt", "value": "new"}]


def test_a_409_maker_changes_is_a_conflict_and_force_discards_it_with_force_true():
    client = Client(maker_changes=True)
    with pytest.raises(CheckFailed, match="maker_changes; conflict"):
        pal.patch_pal(Ctx(client), "p1", OPS, "configs/pals/x.json")
    ctx = Ctx(client)
    pal.patch_pal(ctx, "p1", OPS, "configs/pals/x.json", force=True)
    assert client.sent[-1] == ("PATCH", "/personas/p1", {"force": "true"}) and "discarded" in ctx.notes[0]


def test_a_dashboard_draft_is_a_conflict_and_nothing_is_sent_without_force():
    client = Client(draft={"pal_id": "p1", "pal_name": "P", "system_prompt": "drafted in the Builder"}, publish_url=True)
    with pytest.raises(CheckFailed, match="unpublished draft"):
        pal.patch_pal(Ctx(client), "p1", OPS, "configs/pals/x.json")
    assert client.sent == []
    pal.patch_pal(Ctx(client), "p1", OPS, "configs/pals/x.json", force=True)
    assert client.sent == [("PATCH", "/personas/p1", None), ("POST", "/pals/p1/publish", None)]


def test_without_a_foreign_draft_our_own_draft_is_published():
    client = Client(publish_url=True)
    pal.patch_pal(Ctx(client), "p1", OPS, "configs/pals/x.json")
    assert ("POST", "/pals/p1/publish", None) in client.sent


def test_a_tool_url_on_this_machine_is_refused_unless_the_target_is_a_local_sandbox():
    from harness_core.errors import ConfigError
    from harness_core.resources.tools import build_tool
    tool = {"name": "t", "description": "d", "delivery": {"api": {"url": "http://127.0.0.1:9000/t"}}}
    assert build_tool(tool, "f.json", local_target=True)["delivery"]["api"]["url"].startswith("http://127.0.0.1")
    with pytest.raises(ConfigError, match="f.json: delivery.api.url: 127.0.0.1 is this machine"):
        build_tool(tool, "f.json", local_target=False)
