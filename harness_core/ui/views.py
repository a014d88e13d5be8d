"""What each inspector page shows, read from the stores the commands read (nothing here writes).

Every function returns plain data for a template: the callback store (logs/callbacks.sqlite3),
logs/api.jsonl, the run artifacts under logs/runs/ and the lock file with its plan. Values in
them came from callbacks or the API and are untrusted: the templates escape them all.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..callbacks.eventstore import query_page, summarize
from ..callbacks.events import CONVERSATION_ID, callbacks_dir, describe_event, events_db
from ..context import RunContext
from ..env import api_configured
from ..errors import HarnessError
from ..redact import redact, redact_text
from ..store import read_jsonl

PAGE_SIZE = 50
MAX_API_RECORDS = 500  # API records shown on one conversation's timeline at most
RUN_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")  # a folder name under logs/runs/ (always fullmatch)
REPORT_FILES = ("report.json", "junit.xml")  # written by `invoke run` beside the scenario folders
ARTIFACTS = ("scenario.json", "payload.json", "response.json", "events.json", "verdicts.json")
# Which event an expectation kind was checked against, to mark it there on the dialogue.
VERDICT_EVENT = {
    "shutdown_reason": "system.shutdown",
    "transcript_contains": "application.transcription_ready",
    "transcript_excludes": "application.transcription_ready",
    "perception_mentions": "application.perception_analysis",
    "recording_ready": "application.recording_ready",
}


def pretty(value) -> str:
    """Indented JSON for a <pre> block (escaped by the template, never trusted)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)


def curl_command(url: str, event: dict, secrets=()) -> str:
    """A `curl` that re-sends `event` to `url`, with every secret (tokens in the URL too) redacted."""
    body = redact_text(json.dumps(redact(event, secrets), ensure_ascii=False), secrets)
    shown_url = redact_text(url, secrets) if url else "http://127.0.0.1:8000/tavus/callback?token=[redacted]"
    quote = lambda text: "'" + text.replace("'", "'\\''") + "'"  # noqa: E731 - POSIX single quotes
    return f"curl -X POST {quote(shown_url)} -H 'Content-Type: application/json' --data-raw {quote(body)}"


def event_row(row_id: int, record: dict, replay_url: str, secrets=()) -> dict:
    """One stored callback as the events page (and its live stream) shows it."""
    event = record.get("event") or {}
    return {"id": row_id, "ts": str(record.get("ts") or ""), "conversation_id": str(event.get("conversation_id", "")),
            "event_type": str(event.get("event_type", "")), "detail": describe_event(event),
            "json": pretty(record), "curl": curl_command(replay_url, event, secrets)}


def clean_filters(params: dict) -> dict:
    """The events page's filters from the query string: conversation, type, since, until (bad ones dropped)."""
    cid = (params.get("conversation_id") or "").strip()
    out = {"conversation_id": cid if CONVERSATION_ID.fullmatch(cid) else "",
           "type": (params.get("type") or "").strip()[:128]}
    for name in ("since", "until"):
        value = (params.get(name) or "").strip()
        out[name] = value if re.fullmatch(r"\d{4}-\d\d-\d\d([T ]\d\d(:\d\d(:\d\d(\.\d+)?)?)?)?Z?", value) else ""
        out[name] = out[name].replace(" ", "T")
    return out


def _cursor(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def events_page(ctx: RunContext, params: dict, replay_url: str) -> dict:
    """A page of stored callbacks, newest first (PAGE_SIZE rows, keyset pagination by `before`)."""
    filters = clean_filters(params)
    before = _cursor(params.get("before"))
    page = query_page(events_db(ctx), legacy_dir=callbacks_dir(ctx), conversation_id=filters["conversation_id"] or None,
                      event_type=filters["type"] or None, since=filters["since"] or None,
                      until=filters["until"] or None, before_id=before, limit=PAGE_SIZE + 1)
    more = len(page) > PAGE_SIZE
    secrets = ctx.secrets
    rows = [event_row(i, r, replay_url, secrets) for i, r in page[:PAGE_SIZE]]
    overview = summarize(events_db(ctx), legacy_dir=callbacks_dir(ctx), limit=0)
    return {"rows": rows, "filters": filters, "before": before, "older": rows[-1]["id"] if more and rows else None,
            "types": overview["types"], "last_id": overview["last_id"] if before is None else None}


def new_rows(ctx: RunContext, after_id: int, filters: dict, replay_url: str, limit: int = 200) -> list[dict]:
    """Rows stored after `after_id` that match `filters`, oldest first (what the live stream sends next)."""
    page = query_page(events_db(ctx), legacy_dir=callbacks_dir(ctx), conversation_id=filters.get("conversation_id") or None,
                      event_type=filters.get("type") or None, since=filters.get("since") or None,
                      until=filters.get("until") or None, after_id=after_id, limit=limit)
    secrets = ctx.secrets
    return [event_row(i, r, replay_url, secrets) for i, r in page]


def last_row_id(ctx: RunContext) -> int:
    """The newest row id in the callback store (0 when empty)."""
    return summarize(events_db(ctx), legacy_dir=callbacks_dir(ctx), limit=0)["last_id"]


def conversations_page(ctx: RunContext, params: dict | None = None) -> dict:
    """A page of the most recently active conversations in the callback store, with event counts and
    times (PAGE_SIZE per page, keyset pagination by `before`, the last row id of the previous page)."""
    before = _cursor((params or {}).get("before"))
    found = summarize(events_db(ctx), legacy_dir=callbacks_dir(ctx), limit=PAGE_SIZE + 1,
                      before_id=before)["conversations"]
    rows = [{"conversation_id": c, "events": n, "first": first, "last": last, "last_id": last_id}
            for c, n, first, last, last_id in found[:PAGE_SIZE]]
    return {"rows": rows, "before": before, "older": rows[-1]["last_id"] if len(found) > PAGE_SIZE else None}


def _turns(transcript) -> list[dict]:
    """Transcript entries as turns: role, words, and any tool calls (name + arguments) or tool result."""
    turns = []
    for index, entry in enumerate(transcript if isinstance(transcript, list) else []):
        if not isinstance(entry, dict):
            continue
        calls = []
        for call in entry.get("tool_calls") or []:
            if isinstance(call, dict):
                fn = call.get("function") if isinstance(call.get("function"), dict) else call
                calls.append({"name": str(fn.get("name", "?")), "arguments": pretty(fn.get("arguments"))})
        turns.append({"index": index, "role": str(entry.get("role", "?")), "content": str(entry.get("content") or ""),
                      "tool_calls": calls, "verdicts": []})
    return turns


def timeline_item(event: dict, ts: str = "") -> dict:
    """One callback on a conversation's timeline: what happened, in words, with the turns of a transcript."""
    props = event.get("properties") if isinstance(event.get("properties"), dict) else {}
    kind = str(event.get("event_type", "?"))
    return {"source": "callback", "ts": ts or str(event.get("timestamp") or ""), "title": kind,
            "detail": describe_event(event), "turns": _turns(props.get("transcript")),
            "json": pretty(event), "verdicts": []}


def _mentions(record: dict, cid: str) -> bool:
    if cid in str(record.get("url") or ""):
        return True
    response = record.get("response")
    return isinstance(response, dict) and response.get("conversation_id") == cid


def conversation_page(ctx: RunContext, cid: str) -> dict:
    """One conversation's timeline: its callbacks and the API requests and responses that made it, by time."""
    if not CONVERSATION_ID.fullmatch(cid or ""):
        return {"conversation_id": cid, "timeline": [], "missing": True}
    items = [timeline_item(r["event"], str(r.get("ts") or ""))
             for _, r in reversed(query_page(events_db(ctx), legacy_dir=callbacks_dir(ctx), conversation_id=cid,
                                             limit=10_000))]
    calls = [r for r in read_jsonl(ctx.store.logs_dir / "api.jsonl") if _mentions(r, cid)][-MAX_API_RECORDS:]
    for record in calls:
        items.append({"source": "api", "ts": str(record.get("ts") or ""),
                      "title": f"{record.get('method', '?')} {record.get('url', '')}",
                      "detail": f"{record.get('status', '-')} in {record.get('duration_ms', '?')} ms"
                                + (f" ({record['error']})" if record.get("error") else ""),
                      "turns": [], "json": pretty({"request": record.get("payload"), "params": record.get("params"),
                                                   "response": record.get("response")}), "verdicts": []})
    items.sort(key=lambda item: item["ts"])
    return {"conversation_id": cid, "timeline": items, "missing": not items}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def runs_root(ctx: RunContext) -> Path:
    """logs/runs/: one folder per `invoke run`, one sub-folder per scenario."""
    return ctx.store.logs_dir / "runs"


def _scenario_summary(folder: Path, reported: dict) -> dict:
    verdicts = _read_json(folder / "verdicts.json") or []
    verdicts = [v for v in verdicts if isinstance(v, dict)]
    error = next((v["error"] for v in verdicts if "error" in v), None)
    checks = [v for v in verdicts if "kind" in v]
    info = _read_json(folder / "scenario.json") or {}
    report = reported.get(folder.name, {})
    passed = report.get("passed", error is None and bool(checks) and all(v.get("passed") for v in checks))
    return {"slug": folder.name, "name": str(info.get("name") or report.get("name") or folder.name),
            "passed": bool(passed), "failed_checks": sum(not v.get("passed") for v in checks),
            "checks": len(checks), "error": error, "seconds": report.get("seconds"),
            "conversation_id": report.get("conversation_id")}


def _reported(run_dir: Path) -> dict:
    report = _read_json(run_dir / "report.json")
    scenarios = report.get("scenarios") if isinstance(report, dict) else None
    return {Path(str(s.get("run_dir", ""))).name: s for s in scenarios or [] if isinstance(s, dict)}


def runs_page(ctx: RunContext, limit: int = 100) -> list[dict]:
    """The newest `limit` runs: scenarios with pass/fail and durations, and which reports exist."""
    root = runs_root(ctx)
    if not root.is_dir():
        return []
    runs = []
    for run_dir in sorted((p for p in root.iterdir() if p.is_dir() and RUN_ID.fullmatch(p.name)),
                          key=lambda p: p.name, reverse=True)[:limit]:
        reported = _reported(run_dir)
        scenarios = [_scenario_summary(f, reported) for f in sorted(run_dir.iterdir()) if f.is_dir()]
        runs.append({"run_id": run_dir.name, "scenarios": scenarios,
                     "failed": sum(not s["passed"] for s in scenarios),
                     "seconds": round(sum(s["seconds"] or 0 for s in scenarios), 3) if reported else None,
                     "reports": [name for name in REPORT_FILES if (run_dir / name).is_file()]})
    return runs


def scenario_folder(ctx: RunContext, run_id: str, slug: str) -> Path | None:
    """logs/runs/<run_id>/<slug>/ when both names are plain folder names and it exists."""
    if not (RUN_ID.fullmatch(run_id or "") and RUN_ID.fullmatch(slug or "")) or ".." in (run_id, slug):
        return None
    folder = runs_root(ctx) / run_id / slug
    return folder if folder.is_dir() else None


def _anchor(kind: str) -> str | None:
    if kind.startswith("event "):
        return kind[len("event "):]
    return VERDICT_EVENT.get(kind)


def scenario_page(ctx: RunContext, run_id: str, slug: str) -> dict | None:
    """A scenario of a run: its expectations (failed first), and the dialogue with each marked where checked."""
    folder = scenario_folder(ctx, run_id, slug)
    if folder is None:
        return None
    summary = _scenario_summary(folder, _reported(folder.parent))
    verdicts = [v for v in (_read_json(folder / "verdicts.json") or []) if isinstance(v, dict) and "kind" in v]
    verdicts = sorted(verdicts, key=lambda v: bool(v.get("passed")))  # stable: failed first, in checking order
    events = [e for e in (_read_json(folder / "events.json") or []) if isinstance(e, dict)]
    items = [timeline_item(e) for e in events]
    overall = []
    for v in verdicts:
        shown = {"kind": str(v.get("kind")), "passed": bool(v.get("passed")), "message": str(v.get("message", "")),
                 "observed": pretty(v.get("observed"))}
        wanted = _anchor(shown["kind"])
        target = next((i for i in reversed(items) if i["title"] == wanted), None) if wanted else None
        if target is None:
            overall.append(shown)
            continue
        observed = v.get("observed")
        turn = next((t for t in target["turns"] if isinstance(observed, str) and observed and t["content"] == observed), None)
        (turn or target)["verdicts"].append(shown)
    artifacts = [name for name in ARTIFACTS if (folder / name).is_file()]
    return {"run_id": run_id, "summary": summary, "verdicts": [
        {"kind": str(v.get("kind")), "passed": bool(v.get("passed")), "message": str(v.get("message", ""))}
        for v in verdicts], "timeline": items, "overall": overall, "artifacts": artifacts,
        "reports": [name for name in REPORT_FILES if (folder.parent / name).is_file()],
        "scenario": pretty(_read_json(folder / "scenario.json"))}


def report_file(ctx: RunContext, run_id: str, name: str, slug: str | None = None) -> Path | None:
    """A report (report.json, junit.xml) of a run, or an artifact of one of its scenarios; None if not one."""
    if slug is None:
        folder = runs_root(ctx) / run_id if RUN_ID.fullmatch(run_id or "") and ".." not in run_id else None
        allowed = REPORT_FILES
    else:
        folder, allowed = scenario_folder(ctx, run_id, slug), ARTIFACTS
    if folder is None or name not in allowed or not (folder / name).is_file():
        return None
    return folder / name


def state_page(ctx: RunContext) -> dict:
    """The lock file's resources and, when an API is configured, the plan (class + diff) per config."""
    from ..gitops.plan import make_plan, render
    from ..resources.lockfile import LOCK_FILE, load

    page = {"lock_file": LOCK_FILE, "resources": [], "plan": [], "problem": None, "no_api": False}
    try:
        for api_url, kinds in sorted(load(ctx).items()):
            for kind, entries in sorted(kinds.items()):
                for name, entry in sorted(entries.items()):
                    page["resources"].append({"api": redact_text(api_url, ctx.secrets), "kind": kind, "name": name,
                                              "remote_id": str(entry.get("id") or entry.get("remote_id") or ""),
                                              "json": pretty(redact(entry, ctx.secrets))})
    except HarnessError as exc:
        page["problem"] = exc.render()
    if not api_configured(ctx.env):
        page["no_api"] = True
        return page
    try:
        items = make_plan(ctx)
    except HarnessError as exc:
        page["problem"] = exc.render()
        return page
    for item in items:
        lines = render(item, width=200)
        page["plan"].append({"status": item.status, "kind": item.kind, "name": item.name, "config": item.config,
                             "remote_id": item.remote_id or "", "note": item.note,
                             "diff": [redact_text(line.strip(), ctx.secrets) for line in lines[1 + bool(item.note):]]})
    return page
