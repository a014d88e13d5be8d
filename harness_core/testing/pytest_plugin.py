"""pytest plugin (entry point `pytest11`): scenario files are test items.

`pytest scenarios/` runs each `*.toml` with a `[scenario]` table through the same runner as
`invoke run`, so `-k`, `--junitxml` and pytest-xdist's `-n 4` work as for any test. A scenario
marked `expected_to_fail = true` is reported as xfail.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from .scenario import is_scenario_file


def pytest_collect_file(file_path: Path, parent):
    """Collect scenario TOML files; every other file is left to pytest."""
    if is_scenario_file(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self):
        name = self.path.stem
        yield ScenarioItem.from_parent(self, name=name)


class ScenarioItem(pytest.Item):
    """One scenario run against the target the environment names (embedded sandbox by default)."""

    def runtest(self):
        from ..context import make_context
        from ..errors import HarnessError
        from ..redact import redact_text
        from .report import text_lines
        from .runner import run_scenarios

        ctx = make_context(quiet=True)

        def shown(lines):
            return [redact_text(line, ctx.secrets) for line in lines]

        try:
            [result], _label = run_scenarios(ctx, [self.path])
        except HarnessError as exc:
            raise ScenarioFailed(shown([f"error: {exc.render()}"])) from None
        if result.scenario.expected_to_fail:
            if result.passed:
                raise ScenarioFailed(["marked expected_to_fail, but every expectation passed"])
            pytest.xfail("\n".join(shown(text_lines(result))))
        if not result.passed:
            raise ScenarioFailed(shown(text_lines(result)))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ScenarioFailed):
            return "\n".join(excinfo.value.lines)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"scenario: {self.name}"


class ScenarioFailed(Exception):
    def __init__(self, lines):
        super().__init__("\n".join(lines))
        self.lines = lines
