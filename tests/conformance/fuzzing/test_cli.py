"""``jwt-conformance fuzz``: the console summary, the report directory, exit codes 0, 1 and 2."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI

from conformance.cli import cli
from conformance.config import PASSWORD_ENV
from conformance.contract import default_contract_path
from conformance.demo import free_port

from ...server_process import Server, server_env
from ..harness import PRIMARY, answer
from . import twins
from .live import serving

JWT_CONFORMANCE = Path(sys.executable).parent / "jwt-conformance"


def fuzz(*args: str, password: str = PRIMARY.password) -> Result:
    return CliRunner().invoke(cli, ["fuzz", *args], env={PASSWORD_ENV: password}, prog_name="jwt-conformance")


def target_args(base_url: str, *more: str) -> list[str]:
    return ["--base-url", base_url, "--username", PRIMARY.username, "--max-examples", "20", "--seed", "7", *more]


def defect_args(base_url: str, *more: str) -> list[str]:
    """As ``target_args``, without the admin operations (403 throughout for the fuzzer's token)."""
    return target_args(base_url, "--exclude-path", "/users", *more)


def fuzz_report_schema() -> dict[str, Any]:
    text = resources.files("conformance").joinpath("fuzz-report.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def test_a_clean_run_exits_0_and_writes_three_valid_reports(reference: FastAPI, tmp_path: Path) -> None:
    with serving(reference) as base_url:
        result = fuzz(*target_args(base_url, "--report-dir", str(tmp_path / "reports")))
    assert result.exit_code == 0, result.output
    assert "passed: 8 operations" in result.output and "repeat this run with --seed 7" in result.output
    assert "fuzzing     GET /users/me" in result.output  # progress, one line per operation and phase
    document = json.loads((tmp_path / "reports" / "fuzz-report.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(fuzz_report_schema()).validate(document)
    assert document["summary"]["passed"] is True and document["options"]["seed"] == 7
    junit = ET.parse(tmp_path / "reports" / "fuzz-junit.xml").getroot()
    assert junit.attrib["failures"] == "0" and len(junit.findall("testcase")) == 8
    assert (tmp_path / "reports" / "fuzz-report.md").read_text(encoding="utf-8").startswith("# Fuzz report")


def test_findings_exit_1_grouped_by_operation_with_a_runnable_curl(reference: FastAPI, tmp_path: Path) -> None:
    with serving(twins.leaks_password_hash(reference)) as base_url:
        result = fuzz(*defect_args(base_url, "--report-dir", str(tmp_path / "reports")))
    assert result.exit_code == 1, result.output
    assert "GET /users/me (" in result.output
    assert "FAIL response_schema_conformance [ST108]" in result.output
    assert 'repro:   curl -X GET -H "Authorization: Bearer ${ACCESS_TOKEN}"' in result.output
    reports = tmp_path / "reports"
    everything = result.output + "".join(p.read_text(encoding="utf-8") for p in reports.iterdir())
    assert PRIMARY.password not in everything
    document = json.loads((reports / "fuzz-report.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(fuzz_report_schema()).validate(document)
    assert {f["check"] for f in document["findings"]} >= {"response_schema_conformance"}
    junit = ET.parse(reports / "fuzz-junit.xml").getroot()
    failed = [case.attrib["name"] for case in junit.findall("testcase") if case.find("failure") is not None]
    assert failed == ["GET /users/me"]


def without_health(app: FastAPI) -> Any:
    """``app`` without ``GET /health``: 404, as any router answers a path it does not have."""

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/health":
            await answer(send, 404, {"detail": "Not Found"})
            return
        await app(scope, receive, send)

    return wrapper


def test_an_operation_the_target_lacks_is_a_note_and_exits_0(reference: FastAPI, tmp_path: Path) -> None:
    kit = str(default_contract_path())
    with serving(without_health(reference)) as base_url:
        result = fuzz(*defect_args(base_url, "--contract", kit, "--report-dir", str(tmp_path / "reports")))
    assert result.exit_code == 0, result.output
    assert f"  contract:   {kit} (--contract): all of it" in result.output.splitlines()
    notes = [line for line in result.output.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1, notes
    note = re.fullmatch(
        r"note: GET /health is not on the target: it answered 404 or 405 to (\d+) of its (\d+) requests and never "
        r"succeeded(; its finding is left out|; its \d+ findings are left out)?\. Leave it out with "
        r"--exclude-path /health, or fuzz a contract of your own with --contract",
        notes[0],
    )
    assert note is not None and note[1] == note[2], notes[0]
    document = json.loads((tmp_path / "reports" / "fuzz-report.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(fuzz_report_schema()).validate(document)
    [absent] = document["absent_operations"]
    assert absent["operation"] == "GET /health" and absent["requests"] == absent["not_found"] == int(note[1])
    assert document["findings"] == [] and document["summary"]["passed"] is True
    assert document["target"]["contract_source"] == "contract" and document["target"]["response_schemas_judged"]
    junit = ET.parse(tmp_path / "reports" / "fuzz-junit.xml").getroot()
    skipped = [case.attrib["name"] for case in junit.findall("testcase") if case.find("skipped") is not None]
    assert skipped == ["GET /health"] and junit.attrib["failures"] == "0"


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_wrong_credentials_exit_2_in_one_line(reference: FastAPI) -> None:
    with serving(reference) as base_url:
        line = one_line_error(fuzz(*target_args(base_url), password="wrong password"))
    assert "rejected the credentials of 'bob'" in line


def test_an_unreachable_target_exits_2_in_one_line() -> None:
    line = one_line_error(fuzz(*target_args(f"http://127.0.0.1:{free_port()}")))
    assert "cannot reach http://127.0.0.1:" in line


def test_usage_errors_exit_2_naming_the_fix(tmp_path: Path) -> None:
    assert "no target: pass --base-url" in one_line_error(fuzz("--username", "bob"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("openapi: 3.1.0\ninfo: {title: t, version: '1'}\n", encoding="utf-8")
    line = one_line_error(fuzz(*target_args("http://127.0.0.1:9", "--contract", str(broken))))
    assert "is not an OpenAPI document" in line
    line = one_line_error(fuzz(*target_args("http://127.0.0.1:9", "--contract", str(tmp_path / "missing.yaml"))))
    missing = tmp_path / "missing.yaml"
    assert line == f"error: the contract file {missing} does not exist (or use kit:VERSION for the kit's contract)"
    line = one_line_error(fuzz(*target_args("http://127.0.0.1:9", "--contract", "kit:0.9")))
    assert line.startswith("error: unknown version of the kit's contract kit:0.9: known versions are 1.0.0, ")
    line = one_line_error(fuzz(*target_args("http://127.0.0.1:9", "--exclude-path", "/nowhere")))
    assert "--exclude-path /nowhere: the contract" in line and "/users/me" in line
    result = fuzz(*target_args("http://127.0.0.1:9", "--max-examples", "0"))
    assert result.exit_code == 2 and "--max-examples" in result.output


def test_the_config_file_of_run_serves_fuzz_too(reference: FastAPI, tmp_path: Path) -> None:
    with serving(reference) as base_url:
        config = tmp_path / "conformance.yaml"
        config.write_text(
            f"base_url: {base_url}\nusers:\n  primary: {{username: bob, password: '${{BOB_PASSWORD}}'}}\n",
            encoding="utf-8",
        )
        result = CliRunner().invoke(
            cli,
            ["fuzz", "--config", str(config), "--max-examples", "5", "--seed", "1"],
            env={"BOB_PASSWORD": PRIMARY.password, PASSWORD_ENV: ""},
        )
    assert result.exit_code == 0, result.output


@pytest.mark.e2e
def test_the_installed_command_fuzzes_a_real_reference_server_with_its_throttle_on(tmp_path: Path) -> None:
    server = Server(server_env(tmp_path / "users.db", secrets.token_urlsafe(48)), ("--demo-users",), tmp_path / "log")
    try:
        server.wait_ready()
        env = {"PATH": str(Path(sys.executable).parent), PASSWORD_ENV: "secret", "HOME": str(Path.home())}
        command = [str(JWT_CONFORMANCE), "fuzz", "--base-url", server.base_url, "--username", "johndoe"]
        command += ["--max-examples", "60", "--seed", "3", "--report-dir", str(tmp_path / "reports")]
        work = tmp_path / "work"
        work.mkdir()
        result = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True, timeout=300, check=False)
    finally:
        server.stop()
    assert list(work.iterdir()) == []  # no .hypothesis, no .schemathesis in the working directory
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "" and "passed: 8 operations" in result.stdout
    reports = "".join(path.read_text(encoding="utf-8") for path in (tmp_path / "reports").iterdir())
    assert "secret" not in result.stdout + reports
