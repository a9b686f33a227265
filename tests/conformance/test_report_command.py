"""``jwt-conformance report``: a saved JSON report rendered again is the file the run wrote; bad input exits 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from conformance.cli import cli, execute_run
from conformance.client import Client, Redactor
from conformance.contract import load_contract
from conformance.model import Status
from conformance.registry import all_checks, select
from conformance.reporters.html_report import HtmlReporter
from conformance.reporters.json_report import JsonReporter
from conformance.reporters.junit import JunitReporter
from conformance.reporters.markdown import MarkdownReporter
from conformance.reporters.sarif import SarifReporter
from conformance.runner import run

from .harness import BASE_URL, config_for
from .test_reporters import sarif_validator
from .tutorial_app import tutorial_app

FORMATS = {"html": "r.html", "sarif": "r.sarif", "junit": "r.xml", "markdown": "r.md"}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="jwt-conformance")


def rerender(report: Path, into: Path) -> Result:
    into.mkdir()
    outputs = [arg for name, file in FORMATS.items() for arg in (f"--{name}", str(into / file))]
    return invoke("report", str(report), *outputs)


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_rendered_report_is_the_file_the_run_wrote(tmp_path: Path) -> None:
    """A run with fails, warns and evidence (the FastAPI tutorial, rfc profile) writes every format in-process."""
    config = config_for()
    checks = select(all_checks(), ("TOKEN", "JWT-FMT", "BEARER"))
    run_dir = tmp_path / "run"
    reporters = [
        JsonReporter(run_dir / "r.json"),
        HtmlReporter(run_dir / "r.html"),
        SarifReporter(run_dir / "r.sarif"),
        JunitReporter(run_dir / "r.xml"),
        MarkdownReporter(run_dir / "r.md"),
    ]
    with TestClient(tutorial_app(), base_url=BASE_URL, raise_server_exceptions=False) as http:
        client = Client(BASE_URL, http=http, redactor=Redactor(config.secrets))
        results = run(config, checks, contract=load_contract(), client=client)
        summary = execute_run(config, reporters, results=results, plan=checks)
    assert summary.counts[Status.FAIL] and summary.counts[Status.WARN], summary.counts
    result = rerender(run_dir / "r.json", tmp_path / "again")
    assert result.exit_code == 0, result.output
    for file in FORMATS.values():
        assert (tmp_path / "again" / file).read_bytes() == (run_dir / file).read_bytes(), file
    sarif = json.loads((run_dir / "r.sarif").read_text("utf-8"))
    assert [e.message for e in sarif_validator().iter_errors(sarif)] == []
    levels = sorted(r["level"] for r in sarif["runs"][0]["results"])
    assert levels == ["error"] * summary.counts[Status.FAIL] + ["warning"] * summary.counts[Status.WARN]


def test_the_demo_s_reports_rendered_again_are_the_same_files(tmp_path: Path) -> None:
    run_dir = tmp_path / "demo"
    flags = {"json": "r.json", "html": "r.html", "sarif": "r.sarif", "junit": "r.xml", "markdown": "r.md"}
    args = [arg for name, file in flags.items() for arg in (f"--{name}-report", str(run_dir / file))]
    demo = invoke("demo", "--hash-profile", "fast", "--select", "BASE", "--select", "TOKEN", *args)
    assert demo.exit_code == 0, demo.output
    result = rerender(run_dir / "r.json", tmp_path / "again")
    assert result.exit_code == 0, result.output
    for file in FORMATS.values():
        assert (tmp_path / "again" / file).read_bytes() == (run_dir / file).read_bytes(), file


def test_run_writes_html_and_sarif_for_a_target_answering_html(raw_server: Any, tmp_path: Path) -> None:
    def html(conn: Any) -> None:
        body = b"<html><body><script>document.title='owned'</script>Please log in</body></html>"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    url = raw_server(html)
    result = CliRunner().invoke(
        cli,
        ["run", "--base-url", url, "--username", "u", "--password", "p"]
        + ["--html-report", str(tmp_path / "r.html"), "--sarif-report", str(tmp_path / "r.sarif")],
        prog_name="jwt-conformance",
    )
    assert result.exit_code == 1, result.output
    sarif = json.loads((tmp_path / "r.sarif").read_text("utf-8"))
    findings = sarif["runs"][0]["results"]
    assert {f["ruleId"]: f["level"] for f in findings}["TOKEN-001"] == "error"
    assert sarif["runs"][0]["originalUriBaseIds"]["TARGET"]["uri"] == url + "/"
    locations = {f["ruleId"]: f["locations"][0]["physicalLocation"]["artifactLocation"] for f in findings}
    assert locations["TOKEN-006"] == {"uri": "token", "uriBaseId": "TARGET"}  # the request that showed it
    assert locations["TOKEN-001"] == {"uri": ".", "uriBaseId": "TARGET"}  # no request kept: the target itself
    assert not [where for where in locations.values() if "://" in where["uri"] or not where["uri"]]
    page = (tmp_path / "r.html").read_text("utf-8")
    assert "&lt;script&gt;document.title=&#x27;owned&#x27;&lt;/script&gt;" in page
    assert "<script>document.title" not in page


@pytest.fixture
def saved(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A valid saved report (the demo's shape, two results) to break in each test."""
    yield {
        "schema_version": 1,
        "tool": {"name": "jwt-conformance", "version": "0.1.0"},
        "target": {"base_url": "http://127.0.0.1:8000", "profile": "rfc"},
        "started_at": "2026-01-01T00:00:00+00:00",
        "duration_s": 1.25,
        "summary": {"pass": 1, "fail": 1, "warn": 0, "info": 0, "skip": 0, "error": 0},
        "results": [
            {
                "id": "BASE-001",
                "title": "A valid token works.",
                "level": "MUST",
                "status": "pass",
                "spec": ["contract"],
                "message": "",
                "evidence": {"exchanges": []},
                "duration_s": 0.1,
            },
            {
                "id": "JWT-ALG-001",
                "title": "alg none is refused.",
                "level": "MUST",
                "status": "fail",
                "spec": ["RFC 8725 §3.2"],
                "message": "an unsigned token was ACCEPTED (200)",
                "evidence": {"expected": "401", "actual": "HTTP 200", "hint": "Pin the algorithm.", "exchanges": []},
                "duration_s": 0.2,
            },
        ],
    }


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_a_report_without_options_or_notes_renders(saved: dict[str, Any], tmp_path: Path) -> None:
    """Both are optional in schema_version 1."""
    result = invoke("report", str(write(tmp_path / "r.json", saved)), "--sarif", str(tmp_path / "r.sarif"))
    assert result.exit_code == 0, result.output
    (finding,) = json.loads((tmp_path / "r.sarif").read_text("utf-8"))["runs"][0]["results"]
    assert (finding["ruleId"], finding["level"]) == ("JWT-ALG-001", "error")


def test_a_newer_schema_version_exits_2_naming_the_upgrade(saved: dict[str, Any], tmp_path: Path) -> None:
    path = write(tmp_path / "r.json", {**saved, "schema_version": 2})
    line = one_line_error(invoke("report", str(path), "--html", str(tmp_path / "r.html")))
    assert "has schema_version 2, newer than" in line and "upgrade jwt-conformance" in line
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"schema_version": 1, "tool": ', "is not JSON (Expecting value at line 1, column 31)"),
        ("[1, 2]", "is not a jwt-conformance JSON report (no schema_version)"),
        ('{"schema_version": "1"}', "is not a jwt-conformance JSON report (no schema_version)"),
        ('{"schema_version": 0}', "has schema_version 0, which no jwt-conformance wrote"),
        ("\udcff", "cannot read"),
    ],
    ids=["truncated", "not-an-object", "string-version", "unknown-version", "not-utf8"],
)
def test_a_malformed_file_exits_2_with_one_line(content: str, says: str, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    line = one_line_error(invoke("report", str(path), "--markdown", str(tmp_path / "r.md")))
    assert says in line, line


def test_an_invalid_report_names_the_member_at_fault(saved: dict[str, Any], tmp_path: Path) -> None:
    saved["results"][1]["status"] = "broken"
    line = one_line_error(invoke("report", str(write(tmp_path / "r.json", saved)), "--junit", str(tmp_path / "r.xml")))
    assert "is not a valid jwt-conformance report: results[1].status: 'broken' is not one of" in line, line


def test_a_missing_file_nothing_to_write_and_an_unwritable_output_exit_2(saved: dict[str, Any], tmp_path: Path) -> None:
    assert "cannot read" in one_line_error(invoke("report", str(tmp_path / "none.json"), "--html", "x.html"))
    path = write(tmp_path / "r.json", saved)
    assert "nothing to write" in one_line_error(invoke("report", str(path)))
    (tmp_path / "file").write_text("", encoding="utf-8")
    line = one_line_error(invoke("report", str(path), "--html", str(tmp_path / "file" / "r.html")))
    assert line.startswith(f"error: cannot write --html {tmp_path / 'file' / 'r.html'}: "), line
