"""fuzz with its defaults against servers the kit did not write: their operations, the core rules, real defects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conformance.cli import cli
from conformance.config import PASSWORD_ENV, Credentials, RunConfig
from conformance.fuzzing import FuzzConfig, FuzzFinished, FuzzStarted, FuzzSummary, run_fuzz

from ..corpus.running import Stack, node_missing, start
from ..corpus.users import PRIMARY as CORPUS_USER
from ..harness import PRIMARY
from . import strangers
from .live import serving

SEED = 20261201
EXAMPLES = 20
CORE = ("POST /token", "GET /users/me", "GET /protected-resource")


def fuzz(app: Any) -> tuple[FuzzStarted, FuzzSummary]:
    with serving(app) as base_url:
        config = FuzzConfig(RunConfig(base_url=base_url, primary=PRIMARY), max_examples=EXAMPLES, seed=SEED)
        events = list(run_fuzz(config))
    started, finished = events[0], events[-1]
    assert isinstance(started, FuzzStarted) and isinstance(finished, FuzzFinished)
    return started, finished.summary


def fuzz_cli(app: Any, *more: str) -> Result:
    with serving(app) as base_url:
        args = ["fuzz", "--base-url", base_url, "--username", PRIMARY.username, "--seed", str(SEED)]
        args += ["--max-examples", str(EXAMPLES), *more]
        return CliRunner().invoke(cli, args, env={PASSWORD_ENV: PRIMARY.password}, prog_name="jwt-conformance")


def explain(summary: FuzzSummary) -> str:
    lines = [f"{f.operation} {f.check}: {f.title} ({f.status}) {f.message[:200]}" for f in summary.findings]
    return "\n".join(lines + [f"error {e.operation}: {e.message}" for e in summary.errors] + summary.notes)


def test_a_correct_server_without_a_contract_gets_no_finding_on_its_core_operations() -> None:
    result = fuzz_cli(strangers.express_style())
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  operations: POST /token, GET /users/me, GET /protected-resource" in lines
    assert any(
        line.startswith("  contract:   no --contract and no OpenAPI document at /openapi.json") for line in lines
    )
    assert any(line.startswith("  answers:    the kit's response schemas are not the target's") for line in lines)
    assert "FAIL" not in result.output
    assert any(line.startswith("passed: 3 operations (1 not on the target), ") for line in lines), result.output
    # It has no /protected-resource (the default protected path): a note with the fix, not a finding.
    notes = [line for line in lines if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].startswith("note: GET /protected-resource is not on the target"), notes
    assert "--exclude-path /protected-resource" in notes[0]


@pytest.mark.parametrize(
    ("defect", "expected"),
    [
        ("500-on-content-type", {("POST /token", "not_a_server_error")}),
        ("401-without-challenge", {("GET /users/me", "response_headers_conformance")}),
    ],
)
def test_one_real_defect_of_that_server_is_exactly_one_finding(defect: str, expected: set[tuple[str, str]]) -> None:
    started, summary = fuzz(strangers.express_style(defect))
    assert started.source == "core" and started.operations == CORE
    assert {(f.operation, f.check) for f in summary.findings} == expected, explain(summary)
    assert summary.failed and not summary.errors, explain(summary)
    assert [a.operation for a in summary.absent] == ["GET /protected-resource"]


def test_a_server_that_serves_its_openapi_is_fuzzed_against_it() -> None:
    started, summary = fuzz(strangers.fastapi_served())
    assert started.source == "served" and started.contract.endswith("/openapi.json")
    assert started.description.startswith("the OpenAPI document the target serves, http://127.0.0.1:")
    assert started.operations == ("POST /token", "GET /users/me", "GET /items") and started.rules is None
    assert not summary.findings and not summary.errors and not summary.absent, explain(summary)
    assert summary.cases > 50


# What the express + passport-jwt server of the corpus really does wrong, each once per operation.
EXPRESS_DEFECTS = {
    ("POST /token", "response_headers_conformance"): "a token without Cache-Control: no-store (RFC 6749 §5.1)",
    ("POST /token", "status_code_conformance"): "a refused login gets 401 {message}, not 400 (RFC 6749 §5.2)",
    ("GET /users/me", "content_type_conformance"): "passport's 401 'Unauthorized' has no Content-Type",
    ("GET /users/me", "response_headers_conformance"): "passport-jwt's 401 has no Bearer challenge (RFC 6750 §3)",
    ("GET /protected-resource", "content_type_conformance"): "the same 401 without Content-Type",
    ("GET /protected-resource", "response_headers_conformance"): "the same 401 without a challenge",
}


@pytest.mark.e2e
def test_the_corpus_express_server_gets_its_real_defects_and_nothing_else(tmp_path: Path) -> None:
    if reason := node_missing():
        pytest.skip(reason)
    server = start(Stack("express", None), tmp_path)
    try:
        target = RunConfig(base_url=server.base_url, primary=Credentials(CORPUS_USER.username, CORPUS_USER.password))
        events = list(run_fuzz(FuzzConfig(target, max_examples=EXAMPLES, seed=SEED)))
    finally:
        server.stop()
    started, finished = events[0], events[-1]
    assert isinstance(started, FuzzStarted) and isinstance(finished, FuzzFinished)
    assert started.source == "core" and started.operations == CORE
    summary = finished.summary
    assert {(f.operation, f.check) for f in summary.findings} == set(EXPRESS_DEFECTS), explain(summary)
    assert not summary.errors and not summary.absent, explain(summary)
