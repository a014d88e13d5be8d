"""Scenario reports: one line per expectation, a JSON document, JUnit XML for CI."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..redact import redact_text
from .runner import RunResult


def text_lines(result: RunResult) -> list[str]:
    """`PASS/FAIL scenario` then one indented line per expectation with the observed value."""
    sc = result.scenario
    state = ("XPASS" if sc.expected_to_fail else "PASS") if result.passed else ("XFAIL" if sc.expected_to_fail else "FAIL")
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
    passed = sum(r.passed and not r.scenario.expected_to_fail for r in results)
    xfail = sum(not r.passed and r.scenario.expected_to_fail for r in results)
    xpass = sum(r.passed and r.scenario.expected_to_fail for r in results)
    failed = len(results) - passed - xfail - xpass
    return (f"{passed} passed, {failed} failed" + (f", {xfail} expected failures" if xfail else "")
            + (f", {xpass} passed though marked expected_to_fail" if xpass else ""))


def ok(results: list[RunResult]) -> bool:
    """True when every scenario passed, or failed as it was marked to (as pytest sees it too)."""
    return all(r.passed != r.scenario.expected_to_fail for r in results)


def as_json(results: list[RunResult], target: str) -> dict:
    return {"target": target, "summary": summary(results), "ok": ok(results), "scenarios": [{
        "name": r.scenario.name, "path": str(r.scenario.path), "passed": r.passed,
        "expected_to_fail": r.scenario.expected_to_fail, "conversation_id": r.conversation_id,
        "seconds": r.seconds, "error": r.error, "run_dir": r.run_dir, "cleaned_up": r.cleaned_up,
        "expectations": [{"kind": v.kind, "passed": v.passed, "observed": v.observed, "message": v.message}
                         for v in r.verdicts]} for r in results]}


def write_junit(results: list[RunResult], path: str | Path, secrets=()) -> Path:
    """A <testsuite> with one <testcase> per expectation (classname = scenario), secrets redacted."""
    xpass = "marked expected_to_fail, but every expectation passed"
    cases = [(r, v) for r in results for v in r.verdicts]
    cases += [(r, None) for r in results if r.error or (r.passed and r.scenario.expected_to_fail)]
    suite = ET.Element("testsuite", name="tavus-harness scenarios", tests=str(len(cases)))
    counts = {"failure": 0, "error": 0, "skipped": 0}
    timed: set[int] = set()
    for r, v in cases:  # a scenario's time goes on its first case, so the cases add up to the run
        case = ET.SubElement(suite, "testcase", classname=r.scenario.name, name=v.kind if v else "run",
                             time=f"{0 if id(r) in timed else r.seconds:.3f}")
        timed.add(id(r))
        if r.scenario.expected_to_fail and (v is None or not v.passed) and not r.passed:
            outcome, message, text = "skipped", f"expected to fail: {v.message if v else r.error}", None
        elif v is None:
            outcome, message, text = ("failure", xpass, None) if r.passed else ("error", r.error or "", None)
        elif not v.passed:
            outcome, message, text = "failure", v.message, f"observed: {v.observed!r}"
        else:
            continue
        counts[outcome] += 1
        ET.SubElement(case, outcome, message=redact_text(message, secrets)).text = (
            redact_text(text, secrets) if text else None)
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    suite.set("time", f"{sum(r.seconds for r in results):.3f}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_run_reports(results: list[RunResult], target: str, secrets=()) -> Path | None:
    """report.json and junit.xml beside the run's scenario folders (logs/runs/<run-id>/), for `tune ui`."""
    if not results:
        return None
    import json

    from ..redact import redact
    folder = Path(results[0].run_dir).parent
    (folder / "report.json").write_text(json.dumps(redact(as_json(results, target), secrets), indent=2, default=str) + "\n",
                                        encoding="utf-8")
    write_junit(results, folder / "junit.xml", secrets)
    return folder
