"""Token runs (``--token``, ``--token-command``): an API whose tokens the suite did not get from a password grant.

The run sends the given token (or the one the command prints), never logs in, and skips, with the
way out, exactly the checks that need a password-grant token endpoint; the rest run and pass on the
reference server.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from conformance.config import TOKEN_ENV, build_config
from conformance.context import NO_PASSWORD_GRANT
from conformance.errors import BaselineLoginError, ConfigError
from conformance.model import Status
from conformance.token_source import TokenSource, TokenSourceError, parse_command

from ..conftest import PASSWORD
from ..server_process import Server
from .harness import BASE_URL, PRIMARY, explain, run_checks

JWT_CONFORMANCE = Path(sys.executable).parent / "jwt-conformance"
# Every check that needs the password grant: the token endpoint itself, other logins, wrong passwords.
NEEDS_PASSWORD_GRANT = frozenset(
    {f"TOKEN-{n:03d}" for n in (*range(1, 21), 22, 23, 24)}
    | {"ENUM-001", "ENUM-002", "ENUM-003", "RATE-001", "RATE-002"}
    | {"PROT-002", "PROT-003", "PROT-004", "JWT-FMT-012"}
    | {"REFRESH-001", "REFRESH-002", "REFRESH-003", "REFRESH-004", "REVOKE-001", "REVOKE-003", "REVOKE-004"}
)
# Skipped on the reference server over plain http whatever the run: not https, HS256, no logout endpoint.
NOT_APPLICABLE = frozenset({"TLS-002", "TLS-003", "JWT-SIG-009", "JWT-ALG-007", "REVOKE-005"})
# Skipped outside issuer mode (the suite is not the issuer the API trusts).
ISSUER_MODE_ONLY = frozenset({f"ISS-{n:03d}" for n in range(1, 6)})
# Without the server's key (a real identity provider's is never known): the checks that mint tokens.
NEEDS_KEY = frozenset({f"JWT-CLM-{n:03d}" for n in range(1, 13)} | {"JWT-ALG-006", "JWT-ALG-008", "JWT-ALG-009"})


def mint(app: FastAPI, username: str = PRIMARY.username, password: str = PASSWORD) -> str:
    """A real access token of the reference app, from its password grant (as an identity provider would issue)."""
    with TestClient(app, base_url=BASE_URL) as http:
        answer = http.post("/token", data={"grant_type": "password", "username": username, "password": password})
    token: str = answer.json()["access_token"]
    return token


def token_run(app: Any, select: list[str], **changes: Any) -> dict[str, Any]:
    return run_checks(app, select, **{"primary": None, "second": None, "disabled": None, **changes})


# -- in process -------------------------------------------------------------------------------------


def test_a_token_run_skips_exactly_the_password_grant_checks_and_passes_the_rest(
    reference: FastAPI, settings: Any
) -> None:
    token = mint(reference)
    secret = settings.secret_key
    results = token_run(reference, [], token=token, keys=replace_keys(hs_secret=secret))
    skipped = {check_id for check_id, r in results.items() if r.status is Status.SKIP}
    assert skipped == NEEDS_PASSWORD_GRANT | NOT_APPLICABLE | ISSUER_MODE_ONLY, explain(results)
    for check_id in NEEDS_PASSWORD_GRANT:
        assert results[check_id].message == NO_PASSWORD_GRANT, check_id
    others = {r.status for check_id, r in results.items() if check_id not in skipped}
    assert others <= {Status.PASS, Status.INFO}, explain(results)
    assert {check_id for check_id, r in results.items() if r.status is Status.INFO} == {"PROT-006", "BEARER-008"}
    assert results["BASE-001"].message.startswith("the user is named by username; ")
    dumped = json.dumps([r.message for r in results.values()]) + repr(list(results.values()))
    assert token not in dumped and secret not in dumped


def replace_keys(**changes: Any) -> Any:
    from dataclasses import replace

    from conformance.config import Keys

    return replace(Keys(), **changes)


def test_the_password_grant_checks_run_in_a_password_run(reference: FastAPI) -> None:
    """The control: the same checks do not skip when the run logs in (the skip is the token run's)."""
    results = run_checks(reference, sorted(NEEDS_PASSWORD_GRANT - {"RATE-001", "RATE-002", "ENUM-002"}))
    assert all(r.message != NO_PASSWORD_GRANT for r in results.values()), explain(results)
    assert results["TOKEN-001"].status is Status.PASS and results["PROT-003"].status is Status.PASS


def test_without_the_key_a_token_run_skips_the_minting_checks_too(reference: FastAPI) -> None:
    results = token_run(reference, [], token=mint(reference))
    skipped = {check_id for check_id, r in results.items() if r.status is Status.SKIP}
    assert skipped == NEEDS_PASSWORD_GRANT | NOT_APPLICABLE | NEEDS_KEY | ISSUER_MODE_ONLY, explain(results)
    assert {r.status for check_id, r in results.items() if check_id not in skipped} <= {Status.PASS, Status.INFO}


def test_a_refused_token_stops_the_run(reference: FastAPI) -> None:
    token = mint(reference)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(BaselineLoginError) as raised:
        token_run(reference, ["BASE"], token=forged)
    assert str(raised.value) == "the token was refused (HTTP 401): is it expired, or for another audience?"


def opaque_api(me: dict[str, Any]) -> FastAPI:
    """An API that accepts one opaque token (no claims to read) at /users/me, and answers ``me``."""
    app = FastAPI()
    accepted = "opaque-token-" + "x" * 24

    @app.get("/users/me")
    def users_me(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {accepted}":
            return JSONResponse({"detail": "no"}, 401, headers={"WWW-Authenticate": 'Bearer realm="api"'})
        return JSONResponse(me)

    app.state.token = accepted
    return app


def test_base_001_says_it_did_not_compare_the_identity_when_no_name_is_known() -> None:
    app = opaque_api({"id": 7, "team": "blue"})
    results = token_run(app, ["BASE-001"], token=app.state.token, contract=None)
    assert results["BASE-001"].status is Status.PASS, explain(results)
    assert results["BASE-001"].message.startswith(
        "identity not compared: the token has no sub and no login name is known (pass --username NAME); "
    )


def test_base_001_compares_the_given_login_name_in_a_token_run() -> None:
    app = opaque_api({"username": "someone-else"})
    passed = token_run(app, ["BASE-001"], token=app.state.token, contract=None, login_name="someone-else")
    assert passed["BASE-001"].status is Status.PASS, explain(passed)
    failed = token_run(app, ["BASE-001"], token=app.state.token, contract=None, login_name="alice")
    assert failed["BASE-001"].status is Status.FAIL, explain(failed)
    assert failed["BASE-001"].message == "/users/me did not answer with the logged-in user"


def test_base_001_accepts_the_tokens_sub_as_the_name(reference: FastAPI) -> None:
    token = mint(reference)
    results = token_run(reference, ["BASE-001"], token=token)
    assert results["BASE-001"].status is Status.PASS, explain(results)
    mismatch = token_run(reference, ["BASE-001"], token=token, login_name="carol")  # the me answer says bob
    assert mismatch["BASE-001"].status is Status.PASS, explain(mismatch)  # bob is the token's sub


# -- configuration ----------------------------------------------------------------------------------


def test_a_token_replaces_the_username_and_password() -> None:
    config = build_config({"base_url": "http://127.0.0.1:1", "token": "a.b.c"}, {})
    assert (config.primary, config.token, config.token_command, config.token_run) == (None, "a.b.c", None, True)
    assert config.secrets == {"a.b.c": "${ACCESS_TOKEN}"}
    assert "a.b.c" not in repr(config)


def test_the_token_comes_from_the_environment_or_the_config_file(tmp_path: Path) -> None:
    base = {"base_url": "http://127.0.0.1:1"}
    assert build_config(base, {TOKEN_ENV: "from.env.var"}).token == "from.env.var"
    path = tmp_path / "c.yaml"
    path.write_text("users:\n  primary: {username: svc, token: '${IDP_TOKEN}'}\n", encoding="utf-8")
    config = build_config(base, {"IDP_TOKEN": "from.the.file"}, path)
    assert (config.token, config.primary, config.username) == ("from.the.file", None, "svc")
    path.write_text("users:\n  primary: {token_command: 'get-token --secret ${S}'}\n", encoding="utf-8")
    config = build_config(base, {"S": "client secret value"}, path)
    assert config.token_command == ("get-token", "--secret", "client", "secret", "value")
    assert build_config({**base, "token": "flag.wins"}, {TOKEN_ENV: "env.loses", "S": "x"}, path).token == "flag.wins"


def test_a_token_run_never_uses_a_password_given_as_well() -> None:
    flags = {"base_url": "http://127.0.0.1:1", "username": "svc", "token": "a.b.c"}
    config = build_config(flags, {"JWT_CONFORMANCE_PASSWORD": "pw-in-the-env"})
    assert (config.primary, config.username, config.login_name) == (None, "svc", "svc")
    assert "pw-in-the-env" not in config.secrets


def test_the_bearer_note_names_the_token_run(reference: FastAPI) -> None:
    results = token_run(reference, ["BEARER-012"], token=mint(reference))
    assert results["BEARER-012"].status is Status.PASS, explain(results)
    assert results["BEARER-012"].message.endswith("two identities not tried: a token run has one identity")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"token": "a.b.c", "token_command": "x"}, "--token and --token-command are alternatives: give one"),
        ({"token": "two words"}, "the given access token is not a bearer token"),
        ({"token_command": "'unclosed"}, "--token-command cannot be parsed (No closing quotation)"),
        ({"token_command": "  "}, "--token-command is empty"),
        ({}, "no username: pass --username"),
    ],
)
def test_token_flags_are_checked(flags: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build_config({"base_url": "http://127.0.0.1:1", **flags}, {})
    assert str(raised.value).startswith(message)


def test_long_command_arguments_are_secrets() -> None:
    config = build_config({"base_url": "http://127.0.0.1:1", "token_command": "idp -s --secret=s3cr3t-value"}, {})
    assert config.secrets == {"--secret=s3cr3t-value": "${TOKEN_COMMAND_ARGUMENT}"}
    assert "s3cr3t" not in repr(config)


# -- the token command ------------------------------------------------------------------------------


def script(tmp_path: Path, body: str) -> tuple[str, ...]:
    path = tmp_path / f"cmd{secrets.token_hex(3)}.py"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return (sys.executable, str(path))


def jwt_with_exp(exp: int) -> str:
    import base64

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256'})}.{part({'sub': 'svc', 'exp': exp})}.c2ln"


def test_the_command_runs_once_and_again_only_when_its_token_expires(tmp_path: Path) -> None:
    count = tmp_path / "count"
    command = script(
        tmp_path,
        f"""
        from pathlib import Path
        p = Path({str(count)!r})
        n = int(p.read_text()) + 1 if p.exists() else 1
        p.write_text(str(n))
        print({jwt_with_exp(1000)!r}[:-4] + "c2l" + str(n))
        """,
    )
    now = [100.0]
    seen: list[str] = []
    source = TokenSource(command=command, on_token=seen.append, clock=lambda: now[0])
    first = source.current()
    assert [source.current(), source.current(), source.invocations] == [first, first, 1]
    now[0] = 996.0  # within the margin before exp: a fresh one
    second = source.current()
    assert (second != first, source.invocations, seen) == (True, 2, [first, second])
    assert source.fresh() not in (first, second) and source.invocations == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "import sys; print('invalid_client for hunter2-secret-id', file=sys.stderr); sys.exit(3)",
            "the token command {program!r} failed (exit 3): invalid_client for ***",
        ),
        ("import sys; sys.exit(1)", "the token command {program!r} failed (exit 1): it printed nothing on stderr"),
        ("print()", "the token command {program!r} printed no usable token: it must print the access token alone"),
        ("print('{\"access_token\": 1}')", "the token command {program!r} printed no usable token"),
        ("import time; time.sleep(5)", "the token command {program!r} printed no token within 0.5 s"),
    ],
)
def test_a_command_that_fails_says_why_without_its_arguments(tmp_path: Path, body: str, message: str) -> None:
    command = (*script(tmp_path, body), "hunter2-secret-id")
    source = TokenSource(command=command, timeout_s=0.5)
    with pytest.raises(TokenSourceError) as raised:
        source.current()
    assert str(raised.value).startswith(message.format(program=sys.executable))
    assert "hunter2" not in str(raised.value)


def test_a_missing_program_is_named() -> None:
    with pytest.raises(TokenSourceError) as raised:
        TokenSource(command=parse_command("/no/such/idp-token --client x")).current()
    assert str(raised.value) == (
        "the token command '/no/such/idp-token' was not found: give its full path in --token-command"
    )


# -- the CLI against a real server ------------------------------------------------------------------


def login(base_url: str) -> str:
    answer = httpx.post(
        f"{base_url}/token", data={"grant_type": "password", "username": "johndoe", "password": "secret"}
    )
    token: str = answer.json()["access_token"]
    return token


def cli_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": str(Path(sys.executable).parent), "HOME": str(Path.home()), **(env or {})}
    return subprocess.run(
        [str(JWT_CONFORMANCE), "run", *args], env=environment, capture_output=True, text=True, timeout=240, check=False
    )


@pytest.mark.e2e
def test_cli_token_run_passes_with_exactly_the_password_grant_checks_skipped(
    reference_server: Server, tmp_path: Path
) -> None:
    token = login(reference_server.base_url)
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    result = cli_run(
        "--base-url", reference_server.base_url, "--json-report", str(report), "--junit-report", str(junit),
        "--skip", "ENUM-002", "-v", env={TOKEN_ENV: token},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(report.read_text(encoding="utf-8"))
    statuses = {item["id"]: item["status"] for item in document["results"]}
    skipped = {check_id for check_id, status in statuses.items() if status == "skip"}
    assert skipped == (NEEDS_PASSWORD_GRANT - {"ENUM-002"}) | NOT_APPLICABLE | NEEDS_KEY | ISSUER_MODE_ONLY
    assert set(statuses.values()) - {"skip"} <= {"pass", "info"}
    assert statuses["BASE-001"] == statuses["JWT-SIG-001"] == statuses["BEARER-001"] == "pass"
    for text in (result.stdout, result.stderr, report.read_text("utf-8"), junit.read_text("utf-8")):
        assert token not in text and token.split(".")[2][:16] not in text


@pytest.mark.e2e
def test_cli_token_command_prints_the_token_and_runs_a_bounded_number_of_times(
    reference_server: Server, tmp_path: Path
) -> None:
    count = tmp_path / "count"
    command = script(
        tmp_path,
        f"""
        import sys
        from pathlib import Path
        import httpx2 as httpx
        p = Path({str(count)!r})
        p.write_text(str(int(p.read_text()) + 1 if p.exists() else 1))
        form = {{"grant_type": "password", "username": "johndoe", "password": sys.argv[2]}}
        answer = httpx.post(sys.argv[1] + "/token", data=form)
        print(answer.json()["access_token"])
        """,
    )
    report = tmp_path / "r.json"
    line = " ".join([*command, reference_server.base_url, "secret"])
    result = cli_run(
        "--base-url", reference_server.base_url, "--token-command", line, "--select", "BASE", "--select", "JWT-SIG",
        "--select", "BEARER", "--json-report", str(report), "-v",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    statuses = {item["id"]: item["status"] for item in json.loads(report.read_text("utf-8"))["results"]}
    assert statuses["BASE-001"] == statuses["BASE-002"] == statuses["JWT-SIG-001"] == "pass", statuses
    assert int(count.read_text()) == 1


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("import sys; sys.exit(4)", "error: the token command {program!r} failed (exit 4): "
            "it printed nothing on stderr"),
        ("pass", "error: the token command {program!r} printed no usable token: "
            "it must print the access token alone on stdout"),
    ],
)  # fmt: skip
def test_cli_a_failing_or_silent_command_exits_2_with_one_line(
    reference_server: Server, tmp_path: Path, body: str, message: str
) -> None:
    command = " ".join([*script(tmp_path, body), "--client-secret", "very-secret-value"])
    result = cli_run("--base-url", reference_server.base_url, "--token-command", command)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == message.format(program=sys.executable) + "\n"
    assert "very-secret-value" not in result.stdout + result.stderr


@pytest.mark.e2e
def test_cli_a_refused_token_exits_2_with_one_line(reference_server: Server) -> None:
    token = login(reference_server.base_url)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    result = cli_run("--base-url", reference_server.base_url, "--token", forged)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == "error: the token was refused (HTTP 401): is it expired, or for another audience?\n"
    assert forged not in result.stdout + result.stderr
