"""A real browser for tests: Debian's chromium, headless, driven by selenium through the matching chromedriver.

The browser has no network but loopback: every other host goes to a dead proxy, so a page that needs a
CDN fails here as it would on an air-gapped machine. Screenshots go to ``TEST_ARTIFACTS`` (default
``test-artifacts/`` at the repository root; not committed). Tests skip, saying why, only where chromium
or chromedriver is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
DEAD_PROXY = "127.0.0.1:9"  # nothing listens there: any request off loopback fails at once


def browser_missing() -> str | None:
    """Why no browser can run here, or ``None``."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        return "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
    return None


def artifacts_dir() -> Path:
    directory = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless chromium (selenium ``WebDriver``) with browser console logging and no network off loopback."""
    missing = browser_missing()
    if missing is not None:
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1600",
        f"--proxy-server={DEAD_PROXY}",  # loopback bypasses a proxy by default ("<-loopback>" would send it there)
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """The browser console's error messages since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
