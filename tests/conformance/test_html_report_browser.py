"""The HTML report in a real browser (headless chromium, no network): summary, filters, copy, no console error.

The evidence carries what a hostile target answered, a script among it: the page shows it as text and
never runs it. Screenshots go to the test artifacts directory.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from conformance.model import Exchange, Level, Result, Status, Summary
from conformance.reporters import RunInfo
from conformance.reporters.html_report import HtmlReporter

from .. import browser as chromium
from .harness import config_for

browser = chromium.browser  # the fixture

HOSTILE = '<script>window.pwned = 1</script><img src="x" onerror="window.pwned = 2">'
EXCHANGE = Exchange(
    method="POST",
    url="http://127.0.0.1/token",
    request_headers=(("Content-Type", "application/x-www-form-urlencoded"),),
    request_body="grant_type=password&username=bob&password=${PASSWORD}",
    status=200,
    response_headers={"content-type": "text/html"},
    response_body=f"<html><body>{HOSTILE}</body></html>",
    curl="curl -i -X POST http://127.0.0.1/token -d 'grant_type=password&username=bob&password=${PASSWORD}'",
    elapsed_s=0.02,
)
RESULTS = [
    Result("BASE-001", "A valid token works.", Level.MUST, Status.PASS, ("contract",)),
    Result(
        "JWT-ALG-001",
        "alg none is refused.",
        Level.MUST,
        Status.FAIL,
        ("RFC 8725 §3.2",),
        f"an unsigned token was ACCEPTED: {HOSTILE}",
        expected="401",
        actual="HTTP 200",
        hint="Pin the algorithm.",
        exchanges=(replace(EXCHANGE, url="http://127.0.0.1/users/me", method="GET", curl="curl -i /users/me"),),
    ),
    Result("TOKEN-004", "Pragma: no-cache.", Level.SHOULD, Status.WARN, ("RFC 6749 §5.1",), "no Pragma"),
    Result(
        "TOKEN-006",
        "A wrong password is invalid_grant.",
        Level.MUST,
        Status.FAIL,
        ("RFC 6749 §5.2",),
        "a wrong password: answered 200",
        exchanges=(EXCHANGE,),
    ),
    Result("PROT-002", "User 2 gets user 2.", Level.MUST, Status.SKIP, ("contract",), "needs users.second"),
]


def write_report(path: Path) -> Path:
    reporter = HtmlReporter(path)
    reporter.start(RunInfo(config_for(), "1.2.3", "2026-01-01T00:00:00+00:00"), [])
    summary = Summary(duration_s=2.0)
    for result in RESULTS:
        summary.add(result)
        reporter.record(result)
    reporter.finish(summary)
    return path


def visible(driver: Any) -> list[str]:
    items = driver.find_elements("css selector", "article.result")
    return [item.get_attribute("id") for item in items if item.is_displayed()]


def click_filter(driver: Any, kind: str, value: str) -> None:
    driver.find_element("css selector", f'button.filter[data-filter="{kind}"][data-value="{value}"]').click()


def test_the_html_report_reads_filters_and_copies_in_a_browser(browser: Any, tmp_path: Path) -> None:
    shots = chromium.artifacts_dir()
    browser.get(write_report(tmp_path / "report.html").as_uri())
    counts = {e.get_attribute("data-status"): e.text for e in browser.find_elements("css selector", "span.count")}
    assert counts == {"pass": "1", "fail": "2", "warn": "1", "info": "0", "skip": "1", "error": "0"}
    row = browser.find_element("css selector", 'tr[data-area="token_endpoint"]')
    cells = [cell.text for cell in row.find_elements("tag name", "td")]
    assert cells == ["token endpoint", "0", "1", "1", "0", "0", "0", "2"]  # area, pass ... error, total
    segments = [rect.get_attribute("class") for rect in browser.find_elements("css selector", "svg.chart rect")]
    assert segments == ["s-pass", "s-fail", "s-warn", "s-fail", "s-skip"]  # by area, then verdict
    assert visible(browser) == [result.id for result in RESULTS]
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0  # loads nothing
    browser.save_screenshot(str(shots / "html-report-all.png"))

    click_filter(browser, "status", "fail")
    assert visible(browser) == ["JWT-ALG-001", "TOKEN-006"]
    assert browser.find_element("id", "shown-count").text == "2"
    click_filter(browser, "area", "token_endpoint")
    assert visible(browser) == ["TOKEN-006"]
    click_filter(browser, "status", "")
    assert visible(browser) == ["TOKEN-004", "TOKEN-006"]
    browser.save_screenshot(str(shots / "html-report-filtered.png"))

    # the hostile answer is text on the page, and its script never ran
    assert browser.execute_script("return window.pwned === undefined")
    responses = browser.find_elements("css selector", "#TOKEN-006 pre.response")
    assert [HOSTILE in pre.text for pre in responses] == [True]
    assert browser.find_elements("css selector", "article img") == []
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    button = browser.find_element("css selector", "#TOKEN-006 button.copy")
    button.click()
    WebDriverWait(browser, 5).until(lambda _: button.get_attribute("data-copied") is not None)
    assert button.get_attribute("data-copied") == "yes"
    assert button.text == "Copied"
    browser.save_screenshot(str(shots / "html-report-copied.png"))
    browser.execute_script("const pad = document.createElement('textarea'); pad.id = 'pad'; document.body.prepend(pad)")
    pad = browser.find_element("id", "pad")
    pad.send_keys(Keys.CONTROL, "v")
    assert pad.get_attribute("value") == EXCHANGE.curl  # what the clipboard holds: the curl line, as it reads
    assert chromium.console_errors(browser) == []
