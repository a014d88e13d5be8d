"""Scenario reports: the dialogue turn by turn, one line per expectation, a JSON document, JUnit XML for CI."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from ..redact import redact_text
from .runner import RunResult


REPLIES_FROM = {"room": "replies seen live in the sandbox's room",
                "transcript": "replies read from the final transcript, aligned by turn (the real API shows them only in the room)"}


def _short(value, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dialogue_lines(result: RunResult) -> list[str]:
    """The dialogue, turn by turn: the user's words, tool calls and results, objective and guardrail events, the reply."""
    lines = []
    if result.turns:
        lines.append(f"  dialogue ({REPLIES_FROM.get(result.replies_from, result.replies_from or '')}):")
    for t in result.turns:
        lines.append(f"    turn {t.index} user:   {_short(t.user)}" + ("  (simulated user)" if t.simulated else ""))
        results = {r.get("tool_call_id"): r for r in t.tool_results}
        for call in t.tool_calls:
            res = results.pop(call.get("tool_call_id"), None)
            answer = f" -> {res.get('status')} {_short(res.get('output'), 100)}" if res else " -> (no result)"
            lines.append(f"           tool:   {call.get('name')}({_short(call.get('arguments'), 100)}){answer}")
        for res in results.values():
            lines.append(f"           result: {res.get('name')} {res.get('status')} {_short(res.get('output'), 100)}")
        for o in t.objectives:
            lines.append(f"           event:  objective {o.get('name')} completed {_short(o.get('output_variables') or {}, 100)}")
        for g in t.guardrails:
            lines.append(f"           event:  guardrail {g.get('name')} triggered")
        for e in t.errors:
            lines.append(f"           error:  {e}")
        lines.append(f"           agent:  {_short(t.reply) if t.reply else '(no reply)'}")
    return lines


def state_of(result: RunResult) -> str:
    """PASS, FAIL, XPASS, XFAIL or SKIP."""
    sc = result.scenario
    if result.skipped:
        return "SKIP"
    return ("XPASS" if sc.expected_to_fail else "PASS") if result.passed else ("XFAIL" if sc.expected_to_fail else "FAIL")


def text_lines(result: RunResult) -> list[str]:
    """`PASS/FAIL scenario`, the dialogue when there was one, then one indented line per expectation."""
    sc = result.scenario
    state = state_of(result)
    lines = [f"{state} {sc.name}  ({sc.path}, {result.seconds:.2f}s, conversation {result.conversation_id or '-'})"]
    lines += dialogue_lines(result)
    for v in result.verdicts:
        mark = "skip" if v.skipped else "ok  " if v.passed else "FAIL"
        lines.append(f"  {mark} {v.kind:<22} {v.message}")
    if result.error:
        lines.append(f"  FAIL error                  {result.error}")
    if result.conversation_id:
        cleanup = ("conversation ended" if result.cleaned_up else
                   "conversation left as it is (--keep)" if result.kept else "FAIL: conversation NOT ended")
        lines.append(f"  cleanup: {cleanup}; artifacts in {result.run_dir}")
    return lines


def summary(results: list[RunResult]) -> str:
    skipped = sum(bool(r.skipped) for r in results)
    passed = sum(r.passed and not r.scenario.expected_to_fail and not r.skipped for r in results)
    xfail = sum(not r.passed and r.scenario.expected_to_fail for r in results)
    xpass = sum(r.passed and r.scenario.expected_to_fail and not r.skipped for r in results)
    failed = len(results) - passed - xfail - xpass - skipped
    return (f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")
            + (f", {xfail} expected failures" if xfail else "")
            + (f", {xpass} passed though marked expected_to_fail" if xpass else ""))


def ok(results: list[RunResult]) -> bool:
    """True when every scenario passed, or failed as it was marked to (as pytest sees it too)."""
    return all(bool(r.skipped) or r.passed != r.scenario.expected_to_fail for r in results)


def as_json(results: list[RunResult], target: str) -> dict:
    return {"target": target, "summary": summary(results), "ok": ok(results), "scenarios": [{
        "name": r.scenario.name, "path": str(r.scenario.path), "passed": r.passed,
        "expected_to_fail": r.scenario.expected_to_fail, "conversation_id": r.conversation_id,
        "seconds": r.seconds, "error": r.error, "run_dir": r.run_dir, "cleaned_up": r.cleaned_up,
        "skipped": r.skipped, "replies_from": r.replies_from, "dialogue": r.dialogue,
        "expectations": [{"kind": v.kind, "passed": v.passed, "skipped": v.skipped, "observed": v.observed,
                          "message": v.message} for v in r.verdicts]} for r in results]}


def write_junit(results: list[RunResult], path: str | Path, secrets=()) -> Path:
    """A <testsuite> with one <testcase> per expectation (classname = scenario), secrets redacted."""
    xpass = "marked expected_to_fail, but every expectation passed"
    cases = [(r, v) for r in results for v in r.verdicts]
    cases += [(r, None) for r in results if r.error or (r.passed and r.scenario.expected_to_fail and not r.skipped)]
    suite = ET.Element("testsuite", name="tavus-harness scenarios", tests=str(len(cases)))
    counts = {"failure": 0, "error": 0, "skipped": 0}
    timed: set[int] = set()
    for r, v in cases:  # a scenario's time goes on its first case, so the cases add up to the run
        case = ET.SubElement(suite, "testcase", classname=r.scenario.name, name=v.kind if v else "run",
                             time=f"{0 if id(r) in timed else r.seconds:.3f}")
        timed.add(id(r))
        if v is not None and v.skipped:
            outcome, message, text = "skipped", v.message, None
        elif r.scenario.expected_to_fail and (v is None or not v.passed) and not r.passed:
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
    dialogues = [line for r in results if r.turns for line in [f"{r.scenario.name}:", *dialogue_lines(r)]]
    if dialogues:  # the dialogues, turn by turn, where CI shows the suite's output
        ET.SubElement(suite, "system-out").text = redact_text("\n".join(dialogues), secrets)
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
