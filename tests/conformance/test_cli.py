"""``jwt-conformance``: list, usage errors with exit 2, and the demo with its three reports."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result

from conformance.cli import cli
from conformance.config import PASSWORD_ENV
from conformance.registry import all_checks, select

PASSWORD = {PASSWORD_ENV: "p"}


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={PASSWORD_ENV: "", **(env or {})}, prog_name="jwt-conformance")


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_list_shows_every_check_with_level_spec_and_title() -> None:
    result = invoke("list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == len(all_checks())
    assert lines[0].split()[:3] == ["BASE-001", "MUST", "quick"]
    assert any(line.split()[:3] == ["ENUM-002", "SHOULD", "standard"] for line in lines)


def test_list_selects_by_prefix_and_refuses_an_empty_selection() -> None:
    assert [line.split()[0] for line in invoke("list", "--select", "BASE-00").output.splitlines()] == [
        "BASE-001",
        "BASE-002",
        "BASE-003",
    ]
    assert invoke("list", "--select", "NOPE").exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no target: pass --base-url"),
        (("--base-url", "http://127.0.0.1:8000"), "no username"),
        (("--base-url", "http://127.0.0.1:8000", "--username", "u"), PASSWORD_ENV),
        (("--base-url", "127.0.0.1:8000", "--username", "u", "--password", "p"), "not an http(s) URL"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    assert message in one_line_error(invoke("run", *args))


@pytest.mark.parametrize(
    ("contract", "message"),
    [
        ("kit:9.9.9", "error: unknown version of the kit's contract kit:9.9.9: known versions are 1.0.0, 1.1.0"),
        ("nowhere.yaml", "error: the contract file nowhere.yaml does not exist"),
    ],
)
def test_a_bad_contract_exits_2_with_one_line(contract: str, message: str) -> None:
    line = one_line_error(
        invoke("run", "--base-url", "http://127.0.0.1:9", "--username", "u", "--contract", contract, env=PASSWORD)
    )
    assert line.startswith(message)


def test_the_contract_is_named_in_the_report_notes(raw_server: Any, tmp_path: Path) -> None:
    # A target that answers nothing useful: the run stops after the login, having read the contract first.
    def html(conn: Any) -> None:
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    report = tmp_path / "r.json"
    args = ("run", "--base-url", raw_server(html), "--username", "u", "--select", "BASE-001", "--json-report")
    result = invoke(*args, str(report), "--contract", "kit:1.3.0", env=PASSWORD)
    assert result.exit_code == 1, result.output
    notes = json.loads(report.read_text(encoding="utf-8"))["notes"]
    assert notes == ["contract: the kit's contract 1.3.0 (kit:1.3.0): body shapes are checked against its schemas"]


def test_an_unreachable_target_exits_2_naming_the_url() -> None:
    line = one_line_error(
        invoke("run", "--base-url", "http://127.0.0.1:9", "--username", "u", "--timeout", "2", env={PASSWORD_ENV: "p"})
    )
    assert "cannot reach http://127.0.0.1:9" in line


def test_an_unknown_config_key_exits_2_listing_the_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("base_url: http://127.0.0.1:9\nprofil: rfc\n", encoding="utf-8")
    line = one_line_error(invoke("run", "--config", str(path)))
    assert "'profil'" in line and "profile" in line


def test_a_selection_matching_nothing_exits_2() -> None:
    line = one_line_error(
        invoke(
            "run", "--base-url", "http://127.0.0.1:9", "--username", "u", "--select", "NOPE", env={PASSWORD_ENV: "p"}
        )
    )
    assert "no check matches" in line


def document_version() -> str:
    from reference_impl.contract import load_contract

    return str(load_contract()["info"]["version"])


def test_demo_runs_clean_and_writes_valid_reports(tmp_path: Path) -> None:
    result = invoke(
        "demo",
        "--hash-profile",
        "fast",
        "--json-report",
        str(tmp_path / "r.json"),
        "--junit-report",
        str(tmp_path / "r.xml"),
        "--markdown-report",
        str(tmp_path / "r.md"),
    )
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    schema = json.loads(resources.files("conformance").joinpath("report.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    statuses = {r["id"]: r["status"] for r in document["results"]}
    assert not [i for i, s in statuses.items() if s in ("fail", "warn", "error")], statuses
    assert len(statuses) == len(select(all_checks(), level="standard"))  # the default level
    for skipped in (r for r in document["results"] if r["status"] == "skip"):
        assert skipped["message"], f"{skipped['id']} skips without saying how to enable it"
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert int(suite.attrib["tests"]) == len(statuses) and suite.attrib["failures"] == "0"
    assert "# JWT conformance report" in (tmp_path / "r.md").read_text(encoding="utf-8")
    for result in document["results"]:  # the demo accounts' random passwords are replaced everywhere
        assert "${PASSWORD}" not in result["title"]
    version = document_version()
    assert (
        f"contract: the kit's contract {version} (kit:{version}): body shapes are checked against its schemas"
        in (document["notes"])
    )


def test_a_target_answering_html_fails_token_001_without_a_traceback(raw_server: Any) -> None:
    def html(conn: Any) -> None:
        body = b"<html><body>Please log in</body></html>"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    result = invoke("run", "--base-url", raw_server(html), "--username", "u", env=PASSWORD)
    assert result.exit_code == 1, result.output
    assert "FAIL TOKEN-001" in result.output
    assert "Traceback" not in result.output


def test_a_hanging_target_exits_2_naming_the_url(raw_server: Any) -> None:
    url = raw_server(lambda conn: time.sleep(3))
    line = one_line_error(invoke("run", "--base-url", url, "--username", "u", "--timeout", "0.5", env=PASSWORD))
    assert f"cannot reach {url}" in line and "no answer within" in line


def test_low_confidence_results_are_summarised_in_a_note() -> None:
    from conformance.cli import execute_run
    from conformance.model import Level, Result, Status

    from .harness import config_for

    results = [
        Result("BASE-001", "x.", Level.MUST, Status.PASS, ("s",)),
        Result("BEARER-001", "y.", Level.MUST, Status.PASS, ("s",), low_confidence=True),
    ]
    summary = execute_run(config_for(), [], results=iter(results), plan=[])
    assert summary.notes == ["1 results are low-confidence: the baseline token stopped working mid-run"]


def test_key_flags_reach_the_config(tmp_path: Path) -> None:
    from conformance.config import build_config

    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    flags = {"base_url": "http://127.0.0.1:1", "username": "u", "password": "p", "private_key_file": key}
    config = build_config({**flags, "jwks_url": "/keys", "hs_secret": "s" * 40}, {})
    assert (config.keys.private_key_file, config.keys.jwks_url, config.keys.hs_secret) == (key, "/keys", "s" * 40)
    result = invoke(
        "run", "--base-url", "http://127.0.0.1:9", "--username", "u", "--private-key-file", str(tmp_path / "x")
    )
    assert result.exit_code == 2 and "does not exist" in result.output
