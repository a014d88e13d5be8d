"""`tune ui` in a real headless Chromium: live events, a failed scenario, untrusted text, replay, Host guard."""
from __future__ import annotations

import time
from pathlib import Path

import requests
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from tests.browser.conftest import screenshot
from tests.helpers import run_cli

XSS = "<script>alert(1)</script>"


def wait_until(predicate, timeout: float, what: str):
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def callback(cid: str, event_type: str = "system.replica_joined", **properties) -> dict:
    return {"conversation_id": cid, "event_type": event_type, "message_type": event_type.split(".")[0],
            "timestamp": "2026-12-01T10:00:00.000000Z", "properties": properties or {"replica_id": "r90bbd427f71"}}


def no_alert(driver) -> bool:
    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def test_a_posted_callback_appears_on_the_events_page_within_a_second(browser, inspector):
    browser.get(inspector.url + "events")
    wait_until(lambda: browser.execute_script("return document.body.dataset.live") == "open", 5, "the live stream")
    resp = requests.post(inspector.receiver.callback_url, json=callback("cLive0001"), timeout=5)
    assert resp.status_code == 200
    posted = time.monotonic()
    rows = wait_until(lambda: browser.find_elements(By.XPATH, "//li[@class='event new']//a[text()='cLive0001']"),
                      1.0, "the new row without a reload")
    elapsed = time.monotonic() - posted
    assert rows[0].is_displayed() and elapsed <= 1.0
    assert browser.execute_script("return performance.getEntriesByType('navigation').length") == 1, "no reload"


def test_untrusted_transcript_renders_as_text(browser, inspector):
    cid = "cXss00001"
    transcript = [{"role": "user", "content": XSS}, {"role": "assistant", "content": "<img src=x onerror=alert(2)>"}]
    resp = requests.post(inspector.receiver.callback_url, timeout=5,
                         json=callback(cid, "application.transcription_ready", transcript=transcript))
    assert resp.status_code == 200
    for path in (f"conversations/{cid}", "events"):
        browser.get(inspector.url + path)
        if path == "events":
            browser.find_element(By.CSS_SELECTOR, "li.event summary").click()
            wait_until(lambda: XSS in browser.find_element(By.CSS_SELECTOR, "li.event pre.json").text, 2, "the JSON")
        else:
            turn = browser.find_element(By.CSS_SELECTOR, "li.turn.role-user .content")
            assert turn.text == XSS and turn.is_displayed()
        assert no_alert(browser), f"an alert opened on {path}"
        assert browser.execute_script("return document.querySelectorAll('main script, main img').length") == 0


def test_replay_needs_the_token_and_works_with_it(browser, inspector, collector):
    requests.post(inspector.receiver.callback_url, json=callback("cReplay01"), timeout=5).raise_for_status()
    refused = requests.post(inspector.url + "replay", data={"event_id": "1", "url": collector.url}, timeout=5)
    assert refused.status_code == 403 and "token" in refused.json()["error"]
    wrong = requests.post(inspector.url + "replay", data={"event_id": "1", "url": collector.url, "token": "guess"}, timeout=5)
    assert wrong.status_code == 403
    assert requests.get(inspector.url + "replay", timeout=5).status_code == 405, "GET never sends"
    assert collector.events == []

    browser.get(inspector.url + "events")
    browser.find_element(By.ID, "replay-url").send_keys(collector.url)
    browser.find_element(By.CSS_SELECTOR, "li.event summary").click()
    curl = browser.find_element(By.CSS_SELECTOR, "li.event pre.curl").text
    assert curl.startswith("curl -X POST") and inspector.receiver.token not in curl
    browser.find_element(By.CSS_SELECTOR, "li.event button.replay").click()
    bodies = collector.wait_for(lambda got: len(got) == 1, timeout=5)
    assert bodies[0]["conversation_id"] == "cReplay01"
    wait_until(lambda: "answered 200" in browser.find_element(By.CSS_SELECTOR, "li.event .result").text, 3, "the result")


def test_a_foreign_host_header_is_refused(inspector):
    port = inspector.server.port
    for host in ("attacker.example", f"attacker.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1"):
        resp = requests.get(inspector.url + "events", headers={"Host": host}, timeout=5)
        assert resp.status_code == 403 and "loopback" in resp.text, host
    resp = requests.post(inspector.url + "replay", headers={"Host": f"rebound.example:{port}"}, timeout=5,
                         data={"event_id": "1", "token": inspector.app.token})
    assert resp.status_code == 403
    assert requests.get(inspector.url + "events", timeout=5).status_code == 200
    assert requests.get(f"http://localhost:{port}/events", timeout=5).status_code == 200


SCENARIO = """[scenario]
name = "Demo with a failing check"
persona_config = "configs/persona/facilitator.example.json"
conversation_config = "configs/conversation/facilitator_kickoff.json"
end_after_seconds = 0.3
timeout_seconds = 20

[sandbox]
transcript = [{ role = "user", content = "Hello" }, { role = "assistant", content = "%s" },
              { role = "user", content = "Thanks" }]

[[expect.events]]
type = "application.transcription_ready"
within_seconds = 10

[expect]
shutdown_reason = "end_conversation_endpoint_hit"
transcript_excludes = [{ regex = "alert" }]
""" % XSS


def test_a_failed_scenario_shows_the_failed_expectation_at_its_turn(browser, inspector, project, sandbox):
    (project / "scenarios" / "demo.toml").write_text(SCENARIO)
    result = run_cli("run", "scenarios/demo.toml")
    assert result.code == 5, result.out + result.err
    browser.get(inspector.url + "runs")
    assert browser.find_element(By.CSS_SELECTOR, "tr.fail td").text == "Demo with a failing check"
    assert {a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.report")} == {"report.json", "junit.xml"}
    screenshot(browser, "failed-run")
    browser.find_element(By.LINK_TEXT, "Demo with a failing check").click()
    first = browser.find_element(By.CSS_SELECTOR, "ul.verdicts li.verdict")
    assert "fail" in first.get_attribute("class").split() and "transcript_excludes" in first.text, "failed ones first"
    turn = browser.find_element(By.CSS_SELECTOR, "li.turn.has-fail")
    assert XSS in turn.find_element(By.CSS_SELECTOR, ".content").text
    assert "transcript_excludes" in turn.find_element(By.CSS_SELECTOR, "li.verdict.fail").text
    assert no_alert(browser)
    screenshot(browser, "failed-scenario")
    cid = browser.find_element(By.CSS_SELECTOR, "main p a[href^='/conversations/']").text
    browser.get(inspector.url + f"conversations/{cid}")
    assert browser.find_elements(By.CSS_SELECTOR, "li.item.api"), "the API calls that made it are on the timeline"
    screenshot(browser, "failed-conversation")


def test_demo_screenshots_of_the_four_pages(browser, inspector, project, sandbox):
    """A demo run (`tune demo`, a passing `tune run`, an applied persona), then the four pages as a
    reviewer sees them, saved under logs/ui-screenshots/ (git-ignored)."""
    demo = run_cli("demo")
    assert demo.code == 0, demo.out + demo.err
    smoke = run_cli("run", "scenarios/facilitator_smoke.toml")
    assert smoke.code == 0, smoke.out + smoke.err
    for i, kind in enumerate(("system.replica_joined", "application.perception_analysis", "system.shutdown")):
        props = {"analysis": "The participant wore a purple hat."} if "perception" in kind else \
            {"shutdown_reason": "end_conversation_endpoint_hit"} if "shutdown" in kind else {}
        requests.post(inspector.receiver.callback_url, json=callback(f"cDemo000{i % 2}", kind, **props),
                      timeout=5).raise_for_status()
    assert run_cli("persona", "--config", "configs/persona/facilitator.example.json", "--upsert").code == 0
    shots = {}
    for page, ready in (("events", "li.event"), ("conversations", "table"), ("runs", "tr.pass"), ("state", "table.plan")):
        browser.get(inspector.url + page)
        wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ready), 5, page)
        shots[page] = screenshot(browser, page)
    plan = browser.find_element(By.CSS_SELECTOR, "table.plan").text
    assert "unchanged" in plan or "create" in plan
    browser.get(inspector.url + "runs")  # the run's conversation: callbacks, transcript turns and API calls
    browser.find_element(By.CSS_SELECTOR, "tr.pass a[href^='/conversations/']").click()
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "li.item.api"), 5, "a conversation's timeline")
    assert browser.find_elements(By.CSS_SELECTOR, "li.turn"), "the transcript's turns are on the timeline"
    shots["conversation"] = screenshot(browser, "conversation")
    assert all(Path(p).stat().st_size > 5000 for p in shots.values())
