"""Pure core functions: redaction, merging, precedence, file loading, target resolution."""
from __future__ import annotations

import pytest

from harness_core.config import Layer, check_keys, expand_env_refs, load_file, resolve, suggest
from harness_core.env import Environment, resolve_target
from harness_core.errors import ConfigError
from harness_core.merge import deep_merge
from harness_core.redact import REDACTED, redact, redact_text


def env_of(values: dict, sources: dict | None = None) -> Environment:
    from pathlib import Path
    return Environment(values=values, sources=sources or {k: "env" for k in values}, root=Path("."), dotenv_path=Path(".env"))


# --- redaction -------------------------------------------------------------------------
def test_redact_replaces_values_under_secret_keys_case_insensitively():
    data = {"X-Api-Key": "k-123456", "layers": {"llm": {"api_key": "sk-abcdef", "model": "m"}}, "token": "t0k3n!"}
    out = redact(data)
    assert out["X-Api-Key"] == REDACTED
    assert out["layers"]["llm"] == {"api_key": REDACTED, "model": "m"}
    assert out["token"] == REDACTED
    assert data["layers"]["llm"]["api_key"] == "sk-abcdef", "redact must not mutate its input"


def test_redact_hides_every_credential_of_a_tool_auth_and_keeps_how_it_is_sent():
    tool = {"delivery": {"api": {"url": "https://t.example.com/x", "auth": {
        "type": "api_key", "location": "header", "name": "X-Key", "value": "k-literal-77"}}}}
    auth = redact(tool)["delivery"]["api"]["auth"]
    assert auth == {"type": "api_key", "location": "header", "name": "X-Key", "value": REDACTED}
    oauth = redact({"auth": {"type": "oauth2_client_credentials", "token_url": "https://i.example.com/t",
                             "client_id": "cid", "client_secret": "cs-99", "scope": "s"}})["auth"]
    assert oauth["client_secret"] == REDACTED and oauth["client_id"] == "cid" and oauth["token_url"].startswith("https")


def test_redact_scrubs_known_secret_values_arns_and_token_query_inside_strings():
    arn = "arn:aws:iam::123456789012:role/tavus-recorder"
    text = f"key=supersecret-1 url=https://h/cb?token=abc123&x=1 role {arn}"
    out = redact_text(text, ["supersecret-1"])
    assert "supersecret-1" not in out and "abc123" not in out and arn not in out
    assert "x=1" in out
    assert redact({"msg": [text]}, ["supersecret-1"])["msg"][0] == out


def test_redact_keeps_booleans_and_empty_values_under_secret_looking_keys():
    assert redact({"require_auth_token": True, "secret": ""}) == {"require_auth_token": True, "secret": ""}


def test_values_from_env_refs_are_secrets_under_any_key_and_inside_text():
    config = {"layers": {"llm": {"extra_body": {"auth": {"$env": "LLMCRED"}, "max_tokens": 5}}},
              "tags": [{"$env": "SHORT"}]}
    env = env_of({"LLMCRED": "plain-looking-value", "SHORT": "ab"})
    expanded = expand_env_refs(config, env.get, "cfg.json")
    assert expanded["layers"]["llm"]["extra_body"]["auth"] == "plain-looking-value", "the real value is sent"
    assert "plain-looking-value" in env.secrets() and "ab" in env.secrets()
    out = redact({"note": "sent plain-looking-value to the LLM", "other": {"auth": "an-older-value"},
                  "tags": ["ab", "abc"], "max_tokens": 5})
    assert out == {"note": f"sent {REDACTED} to the LLM", "other": {"auth": REDACTED},
                   "tags": [REDACTED, "abc"], "max_tokens": 5}, "a short value goes only as a whole string"


# --- merging ----------------------------------------------------------------------------
def test_deep_merge_merges_dicts_and_replaces_lists_and_scalars():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    over = {"a": {"c": [3], "e": 2}, "d": "y"}
    assert deep_merge(base, over) == {"a": {"b": 1, "c": [3], "e": 2}, "d": "y"}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}


def test_deep_merge_dict_meeting_scalar_names_both_sources():
    with pytest.raises(ConfigError) as err:
        deep_merge({"layers": {"llm": {}}}, {"layers": "gpt"}, base_source="preset p", overlay_source="cfg.json")
    assert "cfg.json" in err.value.message and "preset p" in err.value.message and "layers" in err.value.message


# --- precedence -------------------------------------------------------------------------
def test_resolve_precedence_flag_over_config_over_env_over_dotenv_over_preset_over_default():
    layers = [
        Layer("flag", "flags", {"a": "flag", "b": None}),
        Layer("default", "built-in default", {"a": "d", "b": "d", "c": "d", "e": "d", "f": "d", "g": "d"}),
        Layer("preset", "presets/x.json", {"a": "p", "b": "p", "c": "p", "e": "p", "f": "p"}),
        Layer(".env", ".env", {"a": "de", "b": "de", "c": "de", "e": "de"}),
        Layer("env", "environment", {"a": "e", "b": "e", "c": "e"}),
        Layer("config", "configs/p.json", {"a": "c", "b": "c"}),
    ]
    r = resolve(layers)
    assert r.values == {"a": "flag", "b": "c", "c": "e", "e": "de", "f": "p", "g": "d"}
    assert r.source("a") == "flag --a"
    assert r.source("b") == "configs/p.json"
    assert r.source("f") == "presets/x.json"
    assert r.source("g") == "built-in default"


def test_resolve_tracks_nested_sources_and_none_never_overrides():
    r = resolve([Layer("preset", "preset", {"layers": {"llm": {"model": "a", "x": 1}}}),
                 Layer("config", "c.json", {"layers": {"llm": {"model": "b", "y": None}}})])
    assert r.values == {"layers": {"llm": {"model": "b", "x": 1}}}
    assert r.source("layers.llm.model") == "c.json"
    assert r.source("layers.llm.x") == "preset"


# --- config files -----------------------------------------------------------------------
@pytest.mark.parametrize("content, needle", [
    (b"", "empty"),
    (b"{\n  \"a\": 1,\n}", "line 3 column 1"),
    (b"[1, 2]", "top level must be an object"),
    (b"\xff\xfe{}", "UTF-8"),
])
def test_load_file_errors_name_the_file_and_the_problem(tmp_path, content, needle):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_file(path)
    assert str(path) in err.value.message and needle in err.value.message


def test_load_file_reads_toml_and_reports_toml_errors(tmp_path):
    good = tmp_path / "a.toml"
    good.write_text('name = "x"\n[meeting]\ntitle = "t"\n')
    assert load_file(good) == {"name": "x", "meeting": {"title": "t"}}
    bad = tmp_path / "b.toml"
    bad.write_text("name = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_file(bad)


def test_check_keys_suggests_the_closest_key():
    with pytest.raises(ConfigError) as err:
        check_keys({"persona_nme": "x"}, {"persona_name", "system_prompt"}, "c.json")
    assert err.value.message == "c.json: persona_nme: unknown key"
    assert "persona_name" in err.value.hint
    assert suggest("zzz", ["persona_name"]) is None


def test_expand_env_refs_reads_env_and_refuses_literal_secrets():
    data = {"layers": {"llm": {"api_key": {"$env": "MY_LLM_KEY"}, "model": "m"}}}
    assert expand_env_refs(data, {"MY_LLM_KEY": "v"}.get, "c.json") == {"layers": {"llm": {"api_key": "v", "model": "m"}}}
    with pytest.raises(ConfigError, match="layers.llm.api_key: secrets do not belong"):
        expand_env_refs({"layers": {"llm": {"api_key": "sk-live"}}}, {}.get, "c.json")
    with pytest.raises(ConfigError, match="MISSING is not set"):
        expand_env_refs({"k": {"$env": "MISSING"}}, {}.get, "c.json")


# --- target -----------------------------------------------------------------------------
def test_target_requires_a_key_or_a_url_and_names_both_ways_forward():
    with pytest.raises(ConfigError) as err:
        resolve_target(env_of({}))
    text = err.value.render()
    assert "TAVUS_API_KEY" in text and "invoke sandbox" in text and "invoke demo" in text


def test_target_accepts_loopback_without_key_but_not_a_remote_url():
    t = resolve_target(env_of({"TAVUS_API_URL": "http://127.0.0.1:9/v2/"}))
    assert t.is_sandbox and t.base_url == "http://127.0.0.1:9/v2" and t.api_key
    with pytest.raises(ConfigError, match="TAVUS_API_KEY is not set"):
        resolve_target(env_of({"TAVUS_API_URL": "https://tavusapi.com/v2"}))


def test_target_defaults_to_tavus_and_honours_the_official_cli_variable():
    assert resolve_target(env_of({"TAVUS_API_KEY": "k1234"})).base_url == "https://tavusapi.com/v2"
    t = resolve_target(env_of({"TAVUS_API_KEY": "k1234", "TAVUS_PUBLIC_API_BASE_URL": "http://localhost:7/v2"}))
    assert t.base_url == "http://localhost:7/v2" and t.url_source == "env TAVUS_PUBLIC_API_BASE_URL"
    assert "k1234" not in repr(t)


def test_numeric_flags_parse_or_fail_on_one_line_naming_the_flag():
    from harness_core.cli.base import number
    assert number(None, "port", 8800) == 8800 and number("0", "port", 8800, high=65535) == 0
    assert number("0.01", "time-scale", 1.0, whole=False) == 0.01
    for value, kwargs in [("abc", {}), ("70000", {"high": 65535}), ("0", {"low": 1}), ("0", {"whole": False}),
                          ("nan", {"whole": False}), ("inf", {"whole": False}), ("1.5", {})]:
        with pytest.raises(ConfigError) as caught:
            number(value, "flag", 3, **kwargs)
        assert caught.value.render().startswith("--flag: ") and "\n" not in caught.value.render()


def test_output_paths_are_checked_before_any_work(tmp_path):
    from harness_core.store import writable
    (tmp_path / "afile").write_text("x")
    writable(str(tmp_path / "new" / "junit.xml"), "junit", "logs/junit.xml")
    assert not (tmp_path / "new" / "junit.xml").exists(), "the check leaves nothing behind"
    for bad, needle in [(tmp_path, "is a directory"), (tmp_path / "afile" / "junit.xml", "cannot write there")]:
        with pytest.raises(ConfigError, match=needle):
            writable(str(bad), "junit", "logs/junit.xml")


def test_redaction_covers_patch_operations_and_spares_lookalike_keys():
    from harness_core.redact import redact
    ops = [{"op": "replace", "path": "/layers/llm/api_key", "value": "sk-live-123456"},
           {"op": "add", "path": "/layers/llm", "value": {"api_key": "sk-live-123456", "model": "m"}},
           {"op": "replace", "path": "/context", "value": "plain"}]
    shown = redact(ops)
    assert "sk-live-123456" not in str(shown) and shown[2]["value"] == "plain" and shown[1]["value"]["model"] == "m"
    kept = {"extra_body": {"max_tokens": 512}, "tokenizer": "t", "WEBHOOK_TOKEN": "abcdef12"}
    assert redact(kept) == {"extra_body": {"max_tokens": 512}, "tokenizer": "t", "WEBHOOK_TOKEN": "[redacted]"}


# --- review fixes ---------------------------------------------------------------------------
def test_secrets_include_secret_looking_names_but_never_short_values():
    env = env_of({"OPENAI_API_KEY": "sk-openai-0123456789", "MY_SERVICE_TOKEN": "tok-abcdefgh",
                  "DB_PASSWORD": "hunter2-hunter2", "STRIPE_SECRET": "whsec_12345678", "OPENAI_API_KEY_ID": "kid-00000000",
                  "FEATURE_TOKEN": "true", "SHORT_KEY": "1234567", "HOME": "/home/someone-long", "TAVUS_API_KEY": "k1"})
    found = set(env.secrets())
    assert {"sk-openai-0123456789", "tok-abcdefgh", "hunter2-hunter2", "whsec_12345678", "kid-00000000", "k1"} <= found
    assert not {"true", "1234567", "/home/someone-long"} & found
    assert redact_text("enabled: true, key sk-openai-0123456789", env.secrets()) == "enabled: true, key [redacted]"


def test_expand_env_refs_refuses_a_name_that_is_not_a_string_naming_file_and_field():
    for bad in (["A"], 3, None, "", {"x": 1}):
        with pytest.raises(ConfigError) as err:
            expand_env_refs({"layers": {"llm": {"api_key": {"$env": bad}}}}, {"A": "v"}.get, "c.json")
        assert err.value.message.startswith("c.json: layers.llm.api_key: $env must be the name of an environment variable")
        assert '{"$env": "NAME"}' in err.value.hint


def test_label_for_prefers_a_dotted_path_label_then_the_top_key():
    layer = Layer("flag", "flags", {"meeting": {"duration_minutes": "abc", "title": "t"}, "enable_recording": True},
                  key_labels={"meeting.duration_minutes": "flag --duration-minutes", "enable_recording": "flag --record"})
    r = resolve([layer])
    assert r.source("meeting.duration_minutes") == "flag --duration-minutes"
    assert r.source("enable_recording") == "flag --record"
    assert r.source("meeting.title") == "flag --meeting", "no label: the generic flag name"


def test_retry_after_that_is_not_a_finite_number_is_ignored():
    from harness_core.api import parse_retry_after
    assert [parse_retry_after(v) for v in ("nan", "NaN", "inf", "-inf", "Wed, 21 Oct 2015 07:28:00 GMT", "", None)] == [None] * 7
    assert parse_retry_after("2.5") == 2.5 and parse_retry_after("-3") == 0.0 and parse_retry_after("1e9") == 30.0


def test_load_environment_with_an_empty_environ_ignores_the_process_dotenv_setting(tmp_path, monkeypatch):
    from harness_core.env import load_environment
    elsewhere = tmp_path / "elsewhere.env"
    elsewhere.write_text("FROM_ELSEWHERE=1\n")
    (tmp_path / ".env").write_text("FROM_ROOT=1\n")
    monkeypatch.setenv("TAVUS_HARNESS_DOTENV", str(elsewhere))
    env = load_environment(tmp_path, {})
    assert env.dotenv_path == tmp_path / ".env" and env.get("FROM_ROOT") == "1" and env.get("FROM_ELSEWHERE") is None


def test_run_context_keeps_only_the_last_200_notes(tmp_path):
    from harness_core.context import make_context
    ctx = make_context(tmp_path, {}, quiet=True)
    assert list(ctx.notes) == []
    for i in range(250):
        ctx.note(f"note {i}")
    assert len(ctx.notes) == 200 and ctx.notes[0] == "note 50" and ctx.notes[-1] == "note 249"
    assert list(ctx.notes) == [f"note {i}" for i in range(50, 250)]


def test_hook_docstrings_name_functions_that_exist():
    import importlib
    import re

    from harness_core import hookspecs
    named = re.findall(r"Called by ([\w.]+)\.(\w+)\(\)", "\n".join(
        fn.__doc__ or "" for name, fn in vars(hookspecs).items() if name.startswith("harness_")))
    assert len(named) >= 7
    missing = [f"{mod}.{fn}" for mod, fn in named if not hasattr(importlib.import_module(f"harness_core.{mod}"), fn)]
    assert missing == []


def test_api_client_has_no_unused_delete_method():
    from harness_core.api import TavusClient
    assert not hasattr(TavusClient, "delete"), "nothing calls it: end_conversation POSTs /end"


def test_pyngrok_gets_the_ngrok_authtoken_from_the_environment_or_dotenv():
    from harness_plugins.tunnel import pyngrok_settings
    assert pyngrok_settings(env_of({"NGROK_AUTHTOKEN": "2abcDEFghij_token"}, {"NGROK_AUTHTOKEN": ".env"})) == \
        {"auth_token": "2abcDEFghij_token"}
    assert pyngrok_settings(env_of({})) == {} and pyngrok_settings(env_of({"NGROK_AUTHTOKEN": ""})) == {}
