"""The sandbox under hostile bodies: deep nesting is a 4xx (never a 500), big bodies are refused unread."""
from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from harness_core.sandbox import Sandbox, SandboxSettings
from harness_core.sandbox.http import MAX_BODY

KEY = {"x-api-key": "k"}
STOCK = "r4317e64d25a"


def nested(levels: int):
    """A JSON Schema whose properties nest `levels` objects deep (2 JSON levels each)."""
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def persona_with_tool(parameters) -> dict:
    tool = {"type": "function", "function": {"name": "deep", "description": "d", "parameters": parameters}}
    return {"persona_name": "Deep", "system_prompt": "p", "default_replica_id": STOCK,
            "layers": {"llm": {"model": "tavus-gpt-oss", "tools": [tool]}}}


def raw_json(sb, method: str, path: str, text: str):
    return requests.request(method, sb.url + path, data=text.encode(), timeout=10,
                            headers={**KEY, "Content-Type": "application/json"})


@pytest.fixture
def sb():
    with Sandbox(SandboxSettings(time_scale=0.01)) as sandbox:
        yield sandbox


@pytest.mark.parametrize("method,path", [("POST", "/personas"), ("POST", "/conversations"), ("POST", "/objectives"),
                                         ("POST", "/guardrails"), ("PATCH", "/objectives/o1"), ("POST", "/pals")])
@pytest.mark.parametrize("levels", [200, 50_000])
def test_deeply_nested_bodies_are_4xx_not_500(sb, method, path, levels):
    text = '{"a": ' * levels + "1" + "}" * levels
    resp = raw_json(sb, method, path, text)
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:200])
    assert "sandbox internal error" not in resp.text


@pytest.mark.parametrize("levels", [200, 50_000])
def test_a_deep_patch_to_a_persona_is_refused(sb, levels):
    pid = requests.post(sb.url + "/personas", json=persona_with_tool(nested(3)), headers=KEY, timeout=10).json()["persona_id"]
    text = '[{"op": "add", "path": "/context", "value": ' + "[" * levels + "]" * levels + "}]"
    resp = raw_json(sb, "PATCH", f"/personas/{pid}", text)
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:200])


def chain(levels: int):
    value = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_patches_that_stack_values_past_the_limit_are_refused(sb):
    pid = requests.post(sb.url + "/personas", json=persona_with_tool(nested(3)), headers=KEY, timeout=10).json()["persona_id"]
    first = [{"op": "add", "path": "/layers/llm/extra_body", "value": chain(40)}]
    assert requests.patch(f"{sb.url}/personas/{pid}", json=first, headers=KEY, timeout=10).status_code == 200
    stored = json.dumps(sb.store.personas[pid], sort_keys=True)
    # this patch alone nests 42 levels; what it makes of the persona would nest over 80
    second = [{"op": "replace", "path": "/layers/llm/extra_body" + "/a" * 39, "value": chain(40)}]
    resp = requests.patch(f"{sb.url}/personas/{pid}", json=second, headers=KEY, timeout=10)
    assert resp.status_code == 400 and resp.json()["error"].startswith("Invalid patch operation: nested deeper than 64")
    assert json.dumps(sb.store.personas[pid], sort_keys=True) == stored, "nothing stored"
    assert requests.get(f"{sb.url}/personas", headers=KEY, timeout=10).status_code == 200


def test_a_tool_whose_parameters_nest_absurdly_is_refused_and_listing_keeps_working(tmp_path):
    state = tmp_path / "state.json"
    with Sandbox(SandboxSettings(state_file=str(state))) as sb:
        fine = requests.post(sb.url + "/personas", json=persona_with_tool(nested(12)), headers=KEY, timeout=10)
        assert fine.status_code == 200, "a realistic tool schema is accepted"
        deep = requests.post(sb.url + "/personas", json=persona_with_tool(nested(300)), headers=KEY, timeout=10)
        assert deep.status_code == 400 and "nested deeper than" in deep.json()["error"]
        assert requests.get(sb.url + "/personas", headers=KEY, timeout=10, params={"limit": 100}).status_code == 200
    # a state file written by an older sandbox that accepted one: dropped at load, listing still answers
    data = json.loads(state.read_text())
    data["personas"]["p_deep"] = {"persona_id": "p_deep", "persona_type": "user", **persona_with_tool(nested(300))}
    state.write_text(json.dumps(data))
    with Sandbox(SandboxSettings(state_file=str(state))) as sb:
        resp = requests.get(sb.url + "/personas", headers=KEY, timeout=10, params={"limit": 100})
        assert resp.status_code == 200
        names = [p["persona_name"] for p in resp.json()["data"]]
        assert "Deep" in names and "p_deep" not in sb.store.personas


def _send_head(sb, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", sb.port), timeout=5)
    sock.sendall(head)
    return sock


def _status(sock: socket.socket) -> int:
    data = b""
    deadline = time.monotonic() + 5
    while b"\r\n" not in data and time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


def test_a_body_over_the_limit_is_refused_by_its_content_length_before_it_is_sent(sb):
    head = (f"POST /v2/personas HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nContent-Type: application/json\r\n"
            f"Content-Length: {500 * 1024 * 1024}\r\n\r\n").encode()
    with _send_head(sb, head) as sock:  # not one byte of the 500 MiB body is sent
        assert _status(sock) == 413


def test_a_chunked_body_is_cut_off_at_the_limit(sb):
    head = (b"POST /v2/personas HTTP/1.1\r\nHost: x\r\nx-api-key: k\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    with _send_head(sb, head) as sock:
        sent = 0
        try:
            while sent <= 2 * MAX_BODY:  # no final chunk: only the limit can end this request
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except OSError:  # the server answered and closed while we were still sending
            pass
        assert _status(sock) == 413
