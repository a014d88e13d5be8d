"""Browser fixtures: Debian's headless Chromium driven by Selenium, with nothing downloaded.

The executables are named explicitly (/usr/bin/chromium, /usr/bin/chromedriver), so Selenium
Manager never runs; `.ci/run` installs the `chromium` and `chromium-driver` packages. Without
them the browser tests are skipped, saying why.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "logs" / "ui-screenshots"  # logs/ is git-ignored: for a reviewer's eyes, not committed
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--window-size=1280,900")


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return (f"headless Chromium is not installed ({', '.join(missing)} missing): "
                "apt-get install -y chromium chromium-driver (.ci/run does it)")
    return None


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module, with a fresh profile; quit afterwards."""
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="tavus-ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(15)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def inspector(project):
    """A receiver and the inspector for the scratch project, both on free loopback ports."""
    from harness_core.callbacks.receiver import Receiver
    from harness_core.context import make_context
    from harness_core.ui.server import Inspector

    ctx = make_context(quiet=True)
    with Receiver(ctx, path="/tavus/callback") as rx, Inspector(ctx, 0) as ui:
        ui.receiver = rx
        yield ui


def screenshot(driver, name: str) -> Path:
    """Save what the browser shows under logs/ui-screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
