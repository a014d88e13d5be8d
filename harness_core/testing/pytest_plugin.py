"""pytest plugin (entry point `pytest11`): scenario files are test items.

`pytest scenarios/` runs each `*.toml` with a `[scenario]` table through the same runner as
`invoke run`, so `-k`, `--junitxml` and pytest-xdist's `-n 4` work as for any test. A scenario
marked `expected_to_fail = true` is reported as xfail; one that cannot run here (a simulated user
without a model) as skipped, with the reason.

Only where you asked for it: a file is a candidate when it lies in a folder named `scenarios`
(the project's rootdir may be that folder) or under a folder named in the `tavus_scenarios` ini
option. Anywhere else, in any other project, the plugin looks at a file's name and nothing more.
"""
from __future__ import annotations

from pathlib import Path

import pytest

DEFAULT_FOLDER = "scenarios"


def pytest_addoption(parser):
    """The `tavus_scenarios` ini option: folders (relative to the rootdir) that hold scenario files."""
    parser.addini("tavus_scenarios", type="linelist", default=[],
                  help="folders of tavus-harness scenario files, relative to the rootdir "
                       f"(besides any folder named {DEFAULT_FOLDER}/)")


def in_scenario_folder(file_path: Path, config) -> bool:
    """True when `file_path` is under a folder named `scenarios` or under a `tavus_scenarios` folder."""
    root = Path(config.rootpath)
    folders = [root / name for name in config.getini("tavus_scenarios")]
    if any(file_path.is_relative_to(folder) for folder in folders):
        return True
    inside_root = [parent for parent in file_path.parents if parent == root or parent.is_relative_to(root)]
    return any(parent.name == DEFAULT_FOLDER for parent in inside_root)


def pytest_collect_file(file_path: Path, parent):
    """Collect scenario TOML files where the user keeps them; every other file is left to pytest."""
    if file_path.suffix != ".toml" or not in_scenario_folder(file_path, parent.config):
        return None
    from .scenario import is_scenario_file

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
        if result.skipped:  # e.g. a simulated user without a model: said, never passed in silence
            pytest.skip(result.skipped)
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
