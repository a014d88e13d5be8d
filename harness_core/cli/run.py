"""Task: run (scenario files)."""
from __future__ import annotations

from invoke import task

from ..errors import CheckFailed
from ..store import writable
from .base import HarnessTask, context, not_help, number, say, say_json


@task(klass=HarnessTask, positional=["target"], help={
    "target": "a scenario file, or a folder of them (e.g. scenarios/)",
    "junit": "also write JUnit XML to this file (e.g. logs/junit.xml)",
    "json": "print a machine-readable report instead of text",
    "keep": "do not end the conversations afterwards (they keep costing money on the real API)",
    "max_concurrent": "conversations open at once (default 2; Tavus limits concurrent conversations)",
})
def run(c, target=None, junit=None, json=False, keep=False, max_concurrent=None):
    """Run scenario files: create what they need, watch the callbacks, check, clean up, report.

    Without TAVUS_API_KEY and TAVUS_API_URL an embedded sandbox is used (nothing reaches Tavus).
    Exit code 0 only when every scenario passes (or fails as marked with expected_to_fail).
    """
    from ..testing.report import as_json, ok, summary, text_lines, write_junit, write_run_reports
    from ..testing.runner import run_scenarios
    from ..testing.scenario import find_scenarios
    ctx = context()
    paths = find_scenarios(not_help(target, "run") if target else None, ctx.root)
    if junit:
        writable(junit, "junit", "logs/junit.xml")  # before the run, so a bad path does not cost the report
    results, label = run_scenarios(ctx, paths, keep=keep, max_concurrent=number(max_concurrent, "max-concurrent", 2, low=1),
                                   on_result=None if json else lambda r: [say(ctx, line) for line in text_lines(r)])
    if junit:
        write_junit(results, junit, ctx.secrets)
    write_run_reports(results, label, ctx.secrets)  # beside the artifacts, linked from `tune ui`
    if json:
        say_json(ctx, as_json(results, label))
    else:
        say(ctx, f"{summary(results)}  (target: {label})")
    if not ok(results):
        raise CheckFailed(f"{summary(results)}", hint="see the FAIL lines above and the artifacts under logs/runs/")
