"""Reporters: the JSON report validates against its schema; JUnit, Markdown and console say the same."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from importlib import resources
from pathlib import Path

import jsonschema

from conformance.config import Keys
from conformance.forge import make_hs
from conformance.model import Exchange, Level, Result, Status, Summary
from conformance.reporters import RunInfo
from conformance.reporters.console import ConsoleReporter
from conformance.reporters.json_report import JsonReporter
from conformance.reporters.junit import JunitReporter
from conformance.reporters.markdown import MarkdownReporter

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
    ]
    info = RunInfo(config, "1.2.3", "2026-01-01T00:00:00+00:00")
    for reporter in reporters:
        reporter.start(info, [None])  # type: ignore[list-item]
        reporter.record(leaky)
        reporter.finish(Summary(duration_s=1.0))
    outputs = [console.getvalue(), *((tmp_path / n).read_text("utf-8") for n in ("r.json", "r.xml", "r.md"))]
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
