"""Scenario reports: one line per expectation, a JSON document, JUnit XML for CI."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from .runner import RunResult


def text_lines(result: RunResult) -> list[str]:
    """`PASS/FAIL scenario` then one indented line per expectation with the observed value."""
    sc = result.scenario
    state = "PASS" if result.passed else ("XFAIL" if sc.expected_to_fail else "FAIL")
    lines = [f"{state} {sc.name}  ({sc.path}, {result.seconds:.2f}s, conversation {result.conversation_id or '-'})"]
    for v in result.verdicts:
        lines.append(f"  {'ok  ' if v.passed else 'FAIL'} {v.kind:<22} {v.message}")
    if result.error:
        lines.append(f"  FAIL error                  {result.error}")
    if result.conversation_id:
        cleanup = ("conversation ended" if result.cleaned_up else
                   "conversation left as it is (--keep)" if result.kept else "FAIL: conversation NOT ended")
        lines.append(f"  cleanup: {cleanup}; artifacts in {result.run_dir}")
    return lines


def summary(results: list[RunResult]) -> str:
    passed = sum(r.passed for r in results)
    xfail = sum(not r.passed and r.scenario.expected_to_fail for r in results)
    failed = len(results) - passed - xfail
    return f"{passed} passed, {failed} failed" + (f", {xfail} expected failures" if xfail else "")


def ok(results: list[RunResult]) -> bool:
    """True when every scenario passed, or failed as it was marked to."""
    return all(r.passed or r.scenario.expected_to_fail for r in results)


def as_json(results: list[RunResult], target: str) -> dict:
    return {"target": target, "summary": summary(results), "ok": ok(results), "scenarios": [{
        "name": r.scenario.name, "path": str(r.scenario.path), "passed": r.passed,
        "expected_to_fail": r.scenario.expected_to_fail, "conversation_id": r.conversation_id,
        "seconds": r.seconds, "error": r.error, "run_dir": r.run_dir, "cleaned_up": r.cleaned_up,
        "expectations": [{"kind": v.kind, "passed": v.passed, "observed": v.observed, "message": v.message}
                         for v in r.verdicts]} for r in results]}


def write_junit(results: list[RunResult], path: str | Path) -> Path:
    """A <testsuite> with one <testcase> per expectation (classname = scenario)."""
    cases = [(r, v) for r in results for v in r.verdicts] + [(r, None) for r in results if r.error]
    suite = ET.Element("testsuite", name="tavus-harness scenarios", tests=str(len(cases)),
                       failures=str(sum(1 for r, v in cases if v is not None and not v.passed and not r.scenario.expected_to_fail)),
                       errors=str(sum(1 for r, v in cases if v is None and not r.scenario.expected_to_fail)),
                       skipped=str(sum(1 for r, v in cases if r.scenario.expected_to_fail and (v is None or not v.passed))),
                       time=f"{sum(r.seconds for r in results):.3f}")
    timed: set[int] = set()
    for r, v in cases:  # a scenario's time goes on its first case, so the cases add up to the run
        case = ET.SubElement(suite, "testcase", classname=r.scenario.name, name=v.kind if v else "run",
                             time=f"{0 if id(r) in timed else r.seconds:.3f}")
        timed.add(id(r))
        if r.scenario.expected_to_fail and (v is None or not v.passed):
            ET.SubElement(case, "skipped", message=f"expected to fail: {v.message if v else r.error}")
        elif v is None:
            ET.SubElement(case, "error", message=r.error or "")
        elif not v.passed:
            ET.SubElement(case, "failure", message=v.message).text = f"observed: {v.observed!r}"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
    return path
