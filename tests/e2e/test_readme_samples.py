"""The documented sample run output (docs/testing.md) is what a real run prints (times, ids and ports aside)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
VARYING = [(re.compile(r"\d+\.\d+s"), "Ns"), (re.compile(r"\b[cp][0-9a-f]{12,}\b"), "ID"),
           (re.compile(r"runs/[0-9-]+[0-9a-f]+/"), "runs/RUN/"), (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
           (re.compile(r"/\S+/logs/"), "logs/")]


def normal(text: str) -> list[str]:
    for pattern, stand_in in VARYING:
        text = pattern.sub(stand_in, text)
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks of a Markdown text, in order."""
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def readme_sample(first_word: str) -> list[str]:
    """The docs/testing.md code block whose first line starts with `first_word` (PASS, XFAIL)."""
    [block] = [b for b in code_blocks((REPO / "docs" / "testing.md").read_text(encoding="utf-8"))
               if b.startswith(first_word + " ")]
    return normal(block)


@pytest.mark.parametrize("scenario, first_word", [("scenarios/facilitator_smoke.toml", "PASS"),
                                                   ("scenarios/examples/facilitator_fails.toml", "XFAIL")])
def test_readme_sample_output_matches_a_real_run(project, monkeypatch, scenario, first_word):
    monkeypatch.delenv("TAVUS_API_URL")  # the embedded sandbox, as in the README
    result = run_cli("run", scenario)
    assert result.code == 0, result.err
    assert normal(result.out) == readme_sample(first_word)
