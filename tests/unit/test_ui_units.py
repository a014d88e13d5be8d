"""The inspector's pure parts: escaping, curl text, filters, and the guards (the WSGI app called directly)."""
from __future__ import annotations

import io
import shlex
from urllib.parse import urlencode

from harness_core.ui import views
from harness_core.ui.app import InspectorApp, templates

XSS = "<script>alert(1)</script>"


def call(app, path="/events", method="GET", host=None, body=b"", content_type=""):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "HTTP_HOST": f"127.0.0.1:{app.port}" if host is None else host,
               "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": content_type}
    seen = {}
    chunks = app(environ, lambda status, headers: seen.update(status=status, headers=dict(headers)))
    return seen["status"], seen["headers"], b"".join(chunks).decode()


def test_templates_escape_every_value():
    html = templates().from_string("<p>{{ v }}</p>").render(v=XSS)
    assert html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    page = templates().get_template("error.html").render(message=XSS, token="t")
    assert XSS not in page and "&lt;script&gt;" in page


def test_curl_command_redacts_and_quotes():
    event = {"conversation_id": "c1", "event_type": "x", "properties": {"api_key": "k1", "text": "it's"}}
    cmd = views.curl_command("http://127.0.0.1:8000/tavus/callback?token=s3cret", event, ["s3cret"])
    assert "s3cret" not in cmd and "k1" not in cmd and "[redacted]" in cmd
    argv = shlex.split(cmd)
    assert argv[:3] == ["curl", "-X", "POST"] and '"it\'s"' in argv[-1], "the shell gets the body back intact"


def test_filters_drop_what_is_not_a_filter():
    got = views.clean_filters({"conversation_id": "c1; DROP", "type": "system", "since": "yesterday",
                               "until": "2026-12-01 10:00"})
    assert got == {"conversation_id": "", "type": "system", "since": "", "until": "2026-12-01T10:00"}


def test_guards_refuse_foreign_hosts_get_replays_and_missing_tokens(project):
    from harness_core.context import make_context

    app = InspectorApp(make_context(quiet=True))
    app.port = 8040
    status, headers, _ = call(app)
    assert status.startswith("200") and "script-src 'self'" in headers["Content-Security-Policy"]
    assert app.token in call(app)[2], "pages carry the session token for replay"
    for host in ("evil.example:8040", "127.0.0.1:8041", "127.0.0.1", "localhost.evil.example:8040", ""):
        assert call(app, host=host)[0].startswith("403"), host
    assert call(app, "/replay")[0].startswith("405")
    form = urlencode({"event_id": "1"}).encode()
    assert call(app, "/replay", "POST", body=form, content_type="application/x-www-form-urlencoded")[0].startswith("403")
    form = urlencode({"event_id": "1", "token": app.token}).encode()
    assert call(app, "/replay", "POST", body=form, content_type="application/x-www-form-urlencoded")[0].startswith("404")


def test_run_files_cannot_escape_logs_runs(project):
    from harness_core.context import make_context

    ctx = make_context(quiet=True)
    (project / "logs" / "runs" / "r1" / "s1").mkdir(parents=True)
    (project / "logs" / "runs" / "r1" / "s1" / "events.json").write_text("[]")
    (project / "logs" / "runs" / "r1" / "report.json").write_text("{}")
    assert views.report_file(ctx, "r1", "events.json", "s1") is not None
    assert views.report_file(ctx, "r1", "report.json") is not None
    for run_id, name, slug in (("..", "report.json", None), ("r1", "../../api.jsonl", None), ("r1", "x.json", "s1"),
                               ("r1", "events.json", ".."), ("r1/s1", "events.json", None)):
        assert views.report_file(ctx, run_id, name, slug) is None, (run_id, name, slug)
