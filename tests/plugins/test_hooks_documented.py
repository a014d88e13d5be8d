"""Every hook is documented in docs/hooks.md with its exact signature, and has a test_hook_<name>."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from harness_core import hookspecs

ROOT = Path(__file__).resolve().parents[2]
HOOKS = {name: fn for name, fn in vars(hookspecs).items() if name.startswith("harness_") and callable(fn)}


def signature_text(fn) -> str:
    return f"{fn.__name__}{inspect.signature(fn)}".replace("'", "").replace("|", "\\|")


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_is_documented_with_its_exact_signature(name):
    assert signature_text(HOOKS[name]) in (ROOT / "docs" / "hooks.md").read_text()


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_docstring_answers_when_returns_mode_and_builtin(name):
    doc = inspect.getdoc(HOOKS[name]) or ""
    assert "Called by" in doc and "Returns" in doc and "Mode:" in doc and "Built-in" in doc


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_a_test(name):
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    assert re.search(rf"def test_hook_{name}\b", tests), f"write a test named test_hook_{name}"
