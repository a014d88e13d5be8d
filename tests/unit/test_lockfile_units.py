"""The state file's text: rendered entry by entry (kept between writes), the same as tomli_w's."""
from __future__ import annotations

import tomllib

import tomli_w
from hypothesis import given, strategies as st

from harness_core.resources.lockfile import HEADER, render

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
entries = st.fixed_dictionaries({"id": names, "sent_hash": names}, optional={"paths": st.lists(names, max_size=3)})
states = st.dictionaries(names, st.dictionaries(st.sampled_from(["persona", "objectives", "guardrails"]),
                                                st.dictionaries(names, entries, max_size=3), max_size=3), max_size=2)


def whole(state: dict) -> str:
    ordered = {"api": {url: {kind: {name: dict(sorted(e.items())) for name, e in sorted(kinds[kind].items())}
                             for kind in sorted(kinds) if kinds[kind]}
                       for url, kinds in sorted(state.items()) if any(kinds.values())}}
    return HEADER + (tomli_w.dumps(ordered) if ordered["api"] else "")


@given(states, states)
def test_render_with_kept_chunks_is_the_whole_file_as_tomli_w_writes_it(first, second):
    chunks: dict = {}
    assert render(first, chunks) == whole(first)
    assert render(second, chunks) == whole(second), "changed, added and removed entries"
    assert tomllib.loads(render(second, chunks)).get("api", {}) == {
        u: {k: v for k, v in kinds.items() if v} for u, kinds in second.items() if any(kinds.values())}
