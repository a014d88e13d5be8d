"""Property-based: the scenario loader never raises anything but a one-line ConfigError."""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from harness_core.errors import ConfigError
from harness_core.testing.expectations import BUILTIN_KINDS
from harness_core.testing.scenario import load_scenario

values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                      max_leaves=12)
tables = st.fixed_dictionaries({}, optional={
    "scenario": st.dictionaries(st.sampled_from(["name", "persona_name", "persona_id", "end_after_seconds",
                                                 "timeout_seconds", "expected_to_fail"]), values, max_size=4) | values,
    "expect": st.dictionaries(st.sampled_from(["events", *BUILTIN_KINDS]), values, max_size=3) | values,
    "conversation": values, "sandbox": values})


@given(data=tables)
def test_any_scenario_shape_loads_or_fails_cleanly(tmp_path, data):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    try:
        load_scenario(path, BUILTIN_KINDS)
    except ConfigError as exc:
        assert str(path) in exc.message and "\n" not in exc.render()
