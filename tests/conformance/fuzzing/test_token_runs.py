"""``jwt-conformance fuzz`` with a given or printed token: no login, the protected operations only, no token shown.

The run takes its token as ``jwt-conformance run`` does (the same options, config keys, errors and
baseline), and gets a new one from the command shortly before the current one expires.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jsonschema
import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI

from conformance.cli import cli
from conformance.config import TOKEN_ENV
from conformance.errors import ConfigError
from conformance.fuzzing import build_fuzz_config
from conformance.fuzzing.tokens import COMMAND, GIVEN, MIN_REUSE_S, RETRY_AFTER_FAILURE_S, RunTokens
from conformance.token_source import TokenSource, TokenSourceError

from ...clock import Clock
from ...server_process import Server, server_env
from ..harness import PRIMARY
from .live import serving
from .test_cli import JWT_CONFORMANCE, fuzz_report_schema, one_line_error

PROTECTED = ("GET /users/me", "GET /protected-resource", "GET /users", "POST /users")
LEFT_OUT_NOTE = (
    "note: POST /token, POST /revoke, GET /.well-known/jwks.json, GET /health are not fuzzed: a run with a given, "
    "printed or minted token fuzzes the operations that take a bearer token only (the token endpoint's own fuzzing "
    "needs the password grant: run again with --username and a password)"
)


def _segment(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def jwt(iat: float, lifetime: float, n: int = 0) -> str:
    claims = {"sub": "bob", "iat": int(iat), "exp": int(iat + lifetime), "jti": str(n)}
    return f"{_segment({'alg': 'HS256', 'typ': 'at+jwt'})}.{_segment(claims)}.c2lnbmF0dXJl{n}"


# -- when a new token is had ------------------------------------------------------------------------------------


def test_a_printed_token_is_replaced_shortly_before_it_expires_not_at_every_request() -> None:
    clock = Clock()
    printed: list[str] = []

    def command() -> str:  # stands for the command: a new token on every run
        printed.append(jwt(clock.now, 100, len(printed)))
        return printed[-1]

    tokens = RunTokens(TokenSource(mint=command, clock=clock), COMMAND, clock=clock, wall_clock=clock)
    first = tokens.token()
    clock.now += 79
    assert tokens.token() == first and len(printed) == 1
    clock.now += 2  # past 100 - min(30, 100 / 5): the command runs again
    assert tokens.token() == printed[1] != first and tokens.count == 2
    assert tokens.described() == "2 tokens from the token command"


def test_a_failing_command_keeps_the_live_token_then_gives_none_once_it_has_expired() -> None:
    clock = Clock()
    runs: list[int] = []

    def command() -> str:
        runs.append(1)
        if len(runs) > 1:
            raise TokenSourceError("the token command 'idp' failed (exit 3): provider unavailable")
        return jwt(clock.now, 100)

    tokens = RunTokens(TokenSource(mint=command, clock=clock), COMMAND, clock=clock, wall_clock=clock)
    first = tokens.token()
    clock.now += 85
    assert tokens.token() == first and tokens.failed_refreshes == 1
    clock.now += RETRY_AFTER_FAILURE_S - 1
    assert tokens.token() == first and len(runs) == 2  # no new run within the retry delay
    clock.now += 20  # expired, and the command fails again: no token rather than a dead one
    assert tokens.token() is None and tokens.failed_refreshes == 2
    assert tokens.last_refresh_error == "the token command 'idp' failed (exit 3): provider unavailable"


def test_a_command_that_prints_expired_tokens_is_not_run_for_every_request() -> None:
    clock = Clock()
    printed: list[str] = []

    def command() -> str:
        printed.append(jwt(clock.now - 600, 300, len(printed)))  # expired five minutes ago
        return printed[-1]

    tokens = RunTokens(TokenSource(mint=command, clock=clock), COMMAND, clock=clock, wall_clock=clock)
    assert tokens.token() == tokens.token() == printed[0]
    clock.now += MIN_REUSE_S
    assert tokens.token() == printed[1] and len(printed) == 2


def test_a_given_token_is_never_renewed_and_its_expiry_is_noticed() -> None:
    clock = Clock()
    given = jwt(clock.now, 60)
    tokens = RunTokens(TokenSource(token=given, clock=clock), GIVEN, clock=clock, wall_clock=clock)
    assert tokens.token() == given and not tokens.expired()
    clock.now += 3600
    assert tokens.token() == given and tokens.obtained == 1 and tokens.expired()
    assert tokens.described() == "the given token"


# -- the options, config keys and errors of run ----------------------------------------------------------------


def fuzz(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["fuzz", *args], env={TOKEN_ENV: "", **(env or {})}, prog_name="jwt-conformance")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--token", "a.b.c", "--token-command", "x"], "error: --token and --token-command are alternatives: give one"),
        (["--token", "two words"], "error: the given access token is not a bearer token"),
        (["--token-command", "'unclosed"], "error: --token-command cannot be parsed (No closing quotation)"),
        (["--subject", "bob"], "error: --subject, --second-subject and --scope belong to issuer mode"),
        (
            ["--token", "a.b.c", "--audience", "api"],
            "error: --issuer and --audience name the tokens issuer mode mints: add --issuer-keys DIR",
        ),
        (["--issuer-keys", "/nonexistent/keys", "--audience", "api"], "error: --issuer-keys /nonexistent/keys: "),
    ],
)
def test_token_options_are_checked_as_run_checks_them(args: list[str], message: str) -> None:
    line = one_line_error(fuzz("--base-url", "http://127.0.0.1:9", *args))
    assert line.startswith(message), line


def test_a_contract_without_a_bearer_operation_stops_a_token_run_before_any_request(tmp_path: Path) -> None:
    public = tmp_path / "public.yaml"
    public.write_text(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\n"
        "paths:\n  /health:\n    get:\n      responses: {'200': {description: ok}}\n",
        encoding="utf-8",
    )
    line = one_line_error(fuzz("--base-url", "http://127.0.0.1:9", "--contract", str(public), "--token", "a.b.c"))
    assert line == (
        f"error: {public} has no operation that takes a bearer token, and a run with a token fuzzes only those: "
        "give the API's contract with --contract, or log in with --username and a password"
    )


def test_the_config_files_token_keys_and_the_environment_serve_fuzz_too(tmp_path: Path) -> None:
    config = tmp_path / "conformance.yaml"
    config.write_text("users:\n  primary: {token_command: 'idp --client-secret=${IDP_SECRET}'}\n", encoding="utf-8")
    built = build_fuzz_config({"base_url": "http://127.0.0.1:9"}, env={"IDP_SECRET": "s3cr3t"}, config_file=config)
    assert built.target.token_command == ("idp", "--client-secret=s3cr3t") and built.target.primary is None
    assert built.target.secrets == {"--client-secret=s3cr3t": "${TOKEN_COMMAND_ARGUMENT}"}
    from_env = build_fuzz_config({"base_url": "http://127.0.0.1:9"}, env={TOKEN_ENV: "a.b.c"})
    assert (from_env.target.token, from_env.target.primary) == ("a.b.c", None)
    with pytest.raises(ConfigError, match="^no username: pass --username"):
        build_fuzz_config({"base_url": "http://127.0.0.1:9"}, env={})


def test_a_token_the_me_path_refuses_stops_the_run_with_the_way_out(reference: FastAPI) -> None:
    with serving(reference) as base_url:
        line = one_line_error(fuzz("--base-url", base_url, "--token", jwt(0, 60)))
    assert line == "error: the token was refused (HTTP 401): is it expired, or for another audience?"


def test_a_given_token_that_expires_mid_run_is_noted_with_the_way_out(make_reference: Any) -> None:
    with serving(make_reference(access_token_ttl=2)) as base_url:
        form = {"grant_type": "password", "username": PRIMARY.username, "password": PRIMARY.password}
        token = httpx.post(f"{base_url}/token", data=form, timeout=10).json()["access_token"]
        result = fuzz("--base-url", base_url, "--token", token, "--max-examples", "25", "--seed", "3")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  tokens:     the given token (--token): it is not renewed" in lines
    assert [line for line in lines if line.startswith("note: ")] == [
        LEFT_OUT_NOTE,
        "note: the given token expired during the run: later requests carried an expired token; pass "
        "--token-command (a command that prints a fresh token) so that the fuzzer gets a new one in time",
    ]
    contract = f"  contract:   the OpenAPI document the target serves, {base_url}/openapi.json: its operations that "
    assert contract + "take a bearer token" in lines
    assert token not in result.output and lines[-2].endswith("(the given token)")


def test_a_failing_token_command_stops_the_run_naming_only_its_program(reference: FastAPI) -> None:
    command = f"{sys.executable} -c 'import sys; sys.exit(3)' --client-secret=very-secret-value"
    with serving(reference) as base_url:
        line = one_line_error(fuzz("--base-url", base_url, "--token-command", command))
    assert line == f"error: the token command {sys.executable!r} failed (exit 3): it printed nothing on stderr"


# -- against a real reference server -----------------------------------------------------------------------------

TOKEN_SCRIPT = """\
import json, os, urllib.parse, urllib.request
form = urllib.parse.urlencode({"grant_type": "password", "username": "johndoe", "password": "secret"}).encode()
token = json.load(urllib.request.urlopen(os.environ["TOKEN_URL"], data=form, timeout=10))["access_token"]
with open(os.environ["PRINTED"], "a", encoding="utf-8") as printed:
    printed.write(token + "\\n")
print(token)
"""


def pieces(token: str) -> list[str]:
    """The token and every part of it worth hiding: its segments and 16-character pieces of each."""
    parts = [token, *(segment for segment in token.split(".") if segment)]
    return parts + [part[i : i + 16] for part in parts[1:] for i in range(0, max(len(part) - 15, 1), 8)]


def assert_hidden(tokens: list[str], outputs: str) -> None:
    assert tokens
    for token in tokens:
        shown = [piece for piece in pieces(token) if piece in outputs]
        assert shown == [], shown


def reports_text(directory: Path) -> str:
    return "".join(path.read_text(encoding="utf-8") for path in sorted(directory.iterdir()))


@pytest.mark.e2e
def test_fuzz_with_a_token_command_passes_on_the_reference_server_renews_its_token_and_shows_none(
    tmp_path: Path,
) -> None:
    env = server_env(tmp_path / "users.db", secrets.token_urlsafe(48))
    env["JWT_REF_ACCESS_TOKEN_TTL"] = "3"  # the run outlives several tokens
    server = Server(env, ("--demo-users",), tmp_path / "server.log")
    script, printed = tmp_path / "token.py", tmp_path / "printed.txt"
    script.write_text(TOKEN_SCRIPT, encoding="utf-8")
    try:
        server.wait_ready()
        command = [str(JWT_CONFORMANCE), "fuzz", "--base-url", server.base_url, "--max-examples", "20", "--seed", "5"]
        command += ["--token-command", f"{sys.executable} {script}", "--report-dir", str(tmp_path / "reports")]
        env = {**os.environ, "TOKEN_URL": f"{server.base_url}/token", "PRINTED": str(printed), TOKEN_ENV: ""}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert f"  operations: {', '.join(PROTECTED)}" in lines
    origin = f"printed by the token command {sys.executable!r}; run again before each token expires"
    assert f"  tokens:     {origin}" in lines
    assert [line for line in lines if line.startswith("note: ")] == [LEFT_OUT_NOTE]
    tokens = printed.read_text(encoding="utf-8").split()
    assert len(tokens) >= 2, done.stdout  # tokens live 3 s: the command ran again before each expired
    document = json.loads((tmp_path / "reports" / "fuzz-report.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(fuzz_report_schema()).validate(document)
    assert document["findings"] == [] and document["errors"] == [] and document["summary"]["passed"]
    assert document["tokens"] == {"source": "token_command", "obtained": len(tokens)}
    assert document["operations"] == list(PROTECTED) and document["summary"]["logins"] == 0
    markdown = (tmp_path / "reports" / "fuzz-report.md").read_text(encoding="utf-8").splitlines()
    assert f"- Tokens: the token command (--token-command): {len(tokens)} tokens from the token command" in markdown
    assert_hidden(tokens, done.stdout + done.stderr + reports_text(tmp_path / "reports"))
