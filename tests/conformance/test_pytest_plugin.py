"""``pytest --jwt-conformance CONFIG.yaml``: each check a test item with its verdict, against real servers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import checks as _registered  # noqa: F401 - see pytest_plugins below
from conformance.model import Status
from conformance.pytest_plugin import run_suite
from conformance.registry import all_checks, select
from conformance.runner import run_order

from ..conftest import PASSWORD
from ..server_process import Server, free_port
from .test_e2e import TUTORIAL_UNDER_FASTAPI, UvicornApp

# ``pytester`` drops the modules imported while it is active from sys.modules when it ends: what the tests use
# is imported first (the checks now, the servers' fixtures before ``pytester``), else a later import would
# register the checks twice or split httpx's exception classes.
pytest_plugins = ["pytester"]
pytestmark = pytest.mark.e2e

# What `jwt-reference serve --demo-users` leaves undecided for a config with johndoe alone: no key, no second or
# disabled user, no issuer, plain http, no destructive runs, no logout endpoint, no scope beyond johndoe's reach,
# and ENUM-002's 60 failed logins meet the server's login throttle (10 failures per user and window).
REFERENCE_SKIPS = {
    "ENUM-002",
    "ISS-001",
    "ISS-002",
    "ISS-003",
    "ISS-004",
    "ISS-005",
    "JWT-ALG-006",
    "JWT-ALG-007",
    "JWT-ALG-008",
    "JWT-ALG-009",
    "JWT-CLM-001",
    "JWT-CLM-002",
    "JWT-CLM-003",
    "JWT-CLM-004",
    "JWT-CLM-005",
    "JWT-CLM-006",
    "JWT-CLM-007",
    "JWT-CLM-008",
    "JWT-CLM-009",
    "JWT-CLM-010",
    "JWT-CLM-011",
    "JWT-CLM-012",
    "JWT-SIG-009",
    "PROT-002",
    "PROT-003",
    "RATE-001",
    "RATE-002",
    "REVOKE-005",
    "TLS-002",
    "TLS-003",
    "TOKEN-024",
}


ITEM = re.compile(r"^conformance\.yaml::(\S+) (PASSED|FAILED|SKIPPED|ERROR)\b")
WARNING = ": ConformanceWarning: "


def pytest_run(pytester: pytest.Pytester, config: Path, *args: str) -> pytest.RunResult:
    """A pytest process (as a user runs it) with the suite of ``config``, verbose, with every outcome listed."""
    return pytester.runpytest_subprocess(
        "--jwt-conformance", str(config), "-p", "no:cacheprovider", "-v", "-rA", *args, timeout=300
    )


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Check ID → passed, failed, skipped or error, in the order the items ran."""
    found: dict[str, str] = {}
    for line in result.outlines:
        if match := ITEM.match(line):
            found.setdefault(match[1], match[2].lower())
    return found


def warned(result: pytest.RunResult) -> set[str]:
    """The IDs whose items passed with a ConformanceWarning."""
    return {line.split(WARNING, 1)[1].split(":")[0] for line in result.outlines if WARNING in line}


def report_of(result: pytest.RunResult, check_id: str) -> str:
    """The text of the first failure or error section of ``check_id``."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if line.startswith("_") and f" {check_id}: " in line)
    body = []
    for line in lines[start + 1 :]:
        if line.startswith(("_____", "=====")):
            break
        body.append(line)
    return "\n".join(body)


def write_config(pytester: pytest.Pytester, base_url: str, username: str, *lines: str) -> Path:
    text = "\n".join(
        [f"base_url: {base_url}", "users:", f"  primary: {{username: {username}, password: '${{PW}}'}}", *lines]
    )
    return pytester.makefile(".yaml", conformance=text)


@pytest.fixture
def tutorial_server(tmp_path: Path) -> Iterator[UvicornApp]:
    """The FastAPI tutorial's server (users bob, carol, the disabled alice) under uvicorn, stopped by PID."""
    server = UvicornApp("tests.conformance.tutorial_app:tutorial_app", tmp_path / "log")
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def test_on_the_reference_server_every_check_is_an_item_that_passes_or_skips_in_run_order(
    reference_server: Server, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", "secret")
    config = write_config(pytester, reference_server.base_url, "johndoe")
    result = pytest_run(pytester, config)
    plan = run_order(select(all_checks(), level="standard"))
    expected = {check.id: "skipped" if check.id in REFERENCE_SKIPS else "passed" for check in plan}
    got = outcomes(result)
    assert got == expected
    assert list(got) == [check.id for check in plan]  # the items ran in the order the suite runs the checks
    assert warned(result) == set()
    assert result.ret == pytest.ExitCode.OK


def test_a_tutorial_server_fails_exactly_token_003_and_warns_on_its_dialect(
    tutorial_server: UvicornApp, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", PASSWORD)
    config = write_config(pytester, tutorial_server.base_url, "bob", "profile: fastapi", "skip: [ENUM-002]")
    result = pytest_run(pytester, config)
    got = outcomes(result)
    assert {check_id for check_id, outcome in got.items() if outcome in ("failed", "error")} == {"TOKEN-003"}
    assert got["TOKEN-003"] == "failed"
    warnings = {check_id for check_id, verdict in TUTORIAL_UNDER_FASTAPI.items() if verdict == "warn"}
    assert warned(result) == warnings
    assert all(got[check_id] == "passed" for check_id in warnings)
    assert report_of(result, "TOKEN-003") == (
        "TOKEN-003 [MUST] The token response carries Cache-Control: no-store.\n"
        "  spec:     RFC 6749 §5.1\n"
        "  problem:  the token response may be stored by caches\n"
        "  expected: Cache-Control: no-store\n"
        "  actual:   Cache-Control: None\n"
        "  fix:      Add Cache-Control: no-store (and Pragma: no-cache) to every token endpoint answer."
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_strict_in_the_config_fails_the_warnings_too(
    tutorial_server: UvicornApp, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", PASSWORD)
    config = write_config(
        pytester, tutorial_server.base_url, "bob", "profile: fastapi", "strict: true", "select: [TOKEN, BEARER]"
    )
    result = pytest_run(pytester, config)
    failed = {check_id for check_id, outcome in outcomes(result).items() if outcome == "failed"}
    assert failed == {c for c in TUTORIAL_UNDER_FASTAPI if c.startswith(("TOKEN", "BEARER"))}
    assert warned(result) == set()


def test_a_failure_shows_the_redacted_curl_of_its_evidence(
    tutorial_server: UvicornApp, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", PASSWORD)
    monkeypatch.setenv("CI", "true")  # pytest then prints the short summary untrimmed: one line per check still
    config = write_config(pytester, tutorial_server.base_url, "bob", "select: [TOKEN-006, TOKEN-011]")
    result = pytest_run(pytester, config)
    assert outcomes(result) == {"TOKEN-006": "failed", "TOKEN-011": "failed"}
    text = result.stdout.str()
    repro = [line for line in result.outlines if line.startswith("  repro:    ")]
    assert len(repro) == 2
    assert repro[0].startswith("  repro:    curl -i -X POST -H 'Content-Type: application/x-www-form-urlencoded'")
    assert "grant_type=password&username=bob&password=wrong-" in repro[0]  # TOKEN-006: a wrong password
    assert "password=${PASSWORD}" in repro[1]  # TOKEN-011 logs in with the real one: never shown
    assert PASSWORD not in text


def test_k_selects_checks_by_id_and_only_those_run(
    tutorial_server: UvicornApp, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", PASSWORD)
    config = write_config(pytester, tutorial_server.base_url, "bob", "skip: [ENUM-002]")
    result = pytest_run(pytester, config, "-k", "JWT-ALG")
    plan = run_order(select(all_checks(), exclude=["ENUM-002"], level="standard"))
    algorithms = [check.id for check in plan if check.id.startswith("JWT-ALG")]
    assert list(outcomes(result)) == algorithms
    summary = (
        f"jwt-conformance: {len(algorithms)} of the config's {len(plan)} checks run against {tutorial_server.base_url}"
    )
    assert summary in result.outlines


def test_an_unreachable_target_makes_every_item_an_error_with_the_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", PASSWORD)
    base_url = f"http://127.0.0.1:{free_port()}"
    config = write_config(pytester, base_url, "bob", "select: [TOKEN-001, TOKEN-002]")
    result = pytest_run(pytester, config)
    assert outcomes(result) == {"TOKEN-001": "error", "TOKEN-002": "error"}
    reason = report_of(result, "TOKEN-002")
    assert reason.startswith(f"the suite could not run against {base_url}: cannot reach {base_url}: ")


def test_a_config_that_cannot_be_read_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--jwt-conformance", "missing.yaml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    missing = pytester.path / "missing.yaml"
    expected = (
        f"ERROR: --jwt-conformance missing.yaml: cannot read the config file {missing}: No such file or directory"
    )
    assert expected in result.errlines


def test_without_the_option_a_session_is_as_without_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_the_kit_is_not_imported():
            assert not [name for name in sys.modules if name.split(".")[0] in ("conformance", "reference_impl")]

        def test_fails():
            assert 1 == 2
        """
    )

    def lines(*args: str) -> list[str]:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *args)
        assert result.parseoutcomes() == {"passed": 1, "failed": 1}
        # the header names the plugins' distributions, the last line the duration
        return [line for line in result.outlines[:-1] if not line.startswith(("plugins:", "rootdir:"))]

    assert lines() == lines("-p", "no:jwt_conformance")
    help_text = pytester.runpytest_subprocess("--help").stdout.str()
    assert "--jwt-conformance=CONFIG" in help_text


def test_run_suite_returns_the_results_for_code(tutorial_server: UvicornApp, tmp_path: Path) -> None:
    config = tmp_path / "conformance.yaml"
    config.write_text(
        f"base_url: {tutorial_server.base_url}\nusers:\n  primary: {{username: bob, password: '${{PW}}'}}\n",
        encoding="utf-8",
    )
    results = run_suite(config, select=["TOKEN-003", "TOKEN-004"], env={"PW": PASSWORD})
    assert [(r.id, r.status) for r in results] == [("TOKEN-003", Status.FAIL), ("TOKEN-004", Status.WARN)]


FAKE_RUNNER = """
from conformance import pytest_plugin
from conformance.model import Result, Status
from conformance.registry import REGISTRY

VERDICTS = {"TOKEN-001": "pass", "TOKEN-002": "fail", "TOKEN-003": "warn", "TOKEN-004": "info", "TOKEN-005": "skip",
            "TOKEN-006": "error"}
RUNS = []


def fake_run(config, checks):
    RUNS.append([check.id for check in checks])
    if "TOKEN-001" not in RUNS[-1]:  # the runner adds TOKEN-001 when the login answered malformed
        checks = [REGISTRY["TOKEN-001"], *checks]
        VERDICTS["TOKEN-001"] = "fail"
    for check in checks:
        status = Status(VERDICTS[check.id])
        yield Result(
            id=check.id, title=check.title, level=check.level, status=status, spec=check.spec,
            message=f"{status} found with the password {config.primary.password}",
            expected="what the rule wants" if status is Status.FAIL else None,
            actual="what came" if status is Status.FAIL else None,
            hint="how to fix it" if status is Status.FAIL else None,
        )


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"RUNS {RUNS}")


pytest_plugin.run = fake_run
"""


def fake_suite(pytester: pytest.Pytester, *lines: str) -> Path:
    """A config whose run is replaced by ``FAKE_RUNNER``: each of TOKEN-001..006 gets one verdict."""
    pytester.makeconftest(FAKE_RUNNER)
    return write_config(pytester, "http://127.0.0.1:9", "bob", *lines)


def test_each_verdict_becomes_its_outcome_and_the_suite_runs_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", PASSWORD)
    config = fake_suite(pytester, "select: [TOKEN-001, TOKEN-002, TOKEN-003, TOKEN-004, TOKEN-005, TOKEN-006]")
    result = pytest_run(pytester, config)
    assert outcomes(result) == {
        "TOKEN-001": "passed",
        "TOKEN-002": "failed",
        "TOKEN-003": "passed",
        "TOKEN-004": "passed",
        "TOKEN-005": "skipped",
        "TOKEN-006": "error",
    }
    assert "RUNS [['TOKEN-001', 'TOKEN-002', 'TOKEN-003', 'TOKEN-004', 'TOKEN-005', 'TOKEN-006']]" in result.outlines
    assert warned(result) == {"TOKEN-003"}
    check = next(check for check in all_checks() if check.id == "TOKEN-002")
    assert report_of(result, "TOKEN-002") == "\n".join(
        [
            f"TOKEN-002 [{check.level}] {check.title}",
            f"  spec:     {', '.join(check.spec)}",
            "  problem:  fail found with the password ${PASSWORD}",
            "  expected: what the rule wants",
            "  actual:   what came",
            "  fix:      how to fix it",
        ]
    )
    assert report_of(result, "TOKEN-006").splitlines()[2] == "  problem:  error found with the password ${PASSWORD}"
    skipped = "SKIPPED [1] conformance.yaml::TOKEN-005: skip found with the password ${PASSWORD}"
    assert skipped in result.outlines
    warning = "ConformanceWarning: TOKEN-003: warn found with the password ${PASSWORD}"
    assert [line.strip().split(":0: ", 1)[1] for line in result.outlines if WARNING in line] == [warning]
    info = report_of(result, "TOKEN-004").splitlines()
    assert info[1] == "info found with the password ${PASSWORD}" and "Captured jwt-conformance call" in info[0]
    assert PASSWORD not in result.stdout.str()


def test_a_check_the_run_adds_reports_its_failure_on_the_first_item(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", PASSWORD)
    config = fake_suite(pytester, "select: [TOKEN-003, TOKEN-004]")
    result = pytest_run(pytester, config)
    assert outcomes(result) == {"TOKEN-003": "failed", "TOKEN-004": "passed"}
    report = report_of(result, "TOKEN-003").splitlines()
    assert report[0].startswith("TOKEN-001 [MUST] ")
    assert report[-1] == "  (run although not selected: every check needs the login)"


def test_collect_only_runs_nothing(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PW", PASSWORD)
    config = fake_suite(pytester, "select: [TOKEN-001, TOKEN-002]")
    result = pytester.runpytest_subprocess("--jwt-conformance", str(config), "-p", "no:cacheprovider", "-q", "--co")
    assert result.outlines[:2] == ["conformance.yaml::TOKEN-001", "conformance.yaml::TOKEN-002"]
    assert "RUNS []" in result.outlines
