"""Property-based: config loading never raises anything but a one-line ConfigError."""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from harness_core.config import load_file
from harness_core.errors import ConfigError

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)


@given(raw=st.binary(max_size=300), suffix=st.sampled_from([".json", ".toml"]))
def test_random_bytes_load_or_fail_cleanly(tmp_path, raw, suffix):
    path = tmp_path / f"cfg{suffix}"
    path.write_bytes(raw)
    try:
        data = load_file(path)
    except ConfigError as exc:
        assert str(path) in exc.message and "\n" not in exc.render()
    else:
        assert isinstance(data, dict)


@given(value=json_values)
def test_any_json_value_is_an_object_or_a_clear_error(tmp_path, value):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(value))
    try:
        assert load_file(path) == value
    except ConfigError as exc:
        assert not isinstance(value, dict) and "top level must be an object" in exc.message
