"""``jwt-conformance fuzz`` in issuer mode: tokens minted with the keys of the test issuer the API trusts.

A real ``jwt-conformance issuer`` process serves discovery and the JWK Set; the reference server,
configured to trust it, fetches them over real HTTP: as a real ``jwt-reference serve`` process, and
in-process behind a twin that crashes on one operation.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import jwt
import pytest
from click.testing import CliRunner, Result

from conformance.cli import cli
from conformance.config import TOKEN_ENV, IssuerMode
from conformance.issuer_mode import IssuerSession
from reference_impl.settings import TrustedIssuer

from ...server_process import Server, server_env, stop_process
from ..test_issuer import Issuer
from . import twins
from .live import serving
from .test_cli import JWT_CONFORMANCE, fuzz_report_schema, one_line_error
from .test_token_runs import LEFT_OUT_NOTE, PROTECTED, assert_hidden, reports_text

AUDIENCE = "https://api.example.test"
SCOPE = "me items:read"
ALG_NONE_HEADER = "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0"  # the fuzzer's own crafted header, no credential


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    root = tmp_path_factory.mktemp("issuer")
    running = Issuer(root / "keys", root).wait_ready()
    yield running
    stop_process(running.process)


def issuer_args(issuer: Issuer, subject: str, *more: str) -> list[str]:
    return [
        "--issuer-keys",
        str(issuer.keys_dir),
        "--audience",
        AUDIENCE,
        "--subject",
        subject,
        "--scope",
        SCOPE,
        "--max-examples",
        "20",
        "--seed",
        "11",
        *more,
    ]


def key_material(issuer: Issuer) -> list[str]:
    """The base64 body lines of every private key of the issuer."""
    lines = []
    for pem in Path(issuer.keys_dir).glob("*.pem"):
        lines += [line for line in pem.read_text().splitlines()[1:-1] if len(line) >= 16]
    assert lines
    return lines


def assert_no_key_and_no_token(issuer: Issuer, outputs: str) -> None:
    assert [line for line in key_material(issuer) if line in outputs] == []
    assert "eyJ" not in outputs.replace(ALG_NONE_HEADER, "")  # no compact JWS survives redaction


@pytest.mark.e2e
def test_issuer_mode_fuzz_passes_on_the_reference_server_that_trusts_the_issuer(tmp_path: Path, issuer: Issuer) -> None:
    env = server_env(tmp_path / "users.db", secrets.token_urlsafe(48))
    env["JWT_REF_TRUSTED_ISSUERS"] = json.dumps([{"issuer": issuer.issuer, "audience": AUDIENCE}])
    server = Server(env, ("--demo-users",), tmp_path / "server.log")
    try:
        server.wait_ready()
        command = [str(JWT_CONFORMANCE), "fuzz", "--base-url", server.base_url, "--report-dir", str(tmp_path / "r")]
        done = subprocess.run(
            [*command, *issuer_args(issuer, "johndoe")],
            env={**env, TOKEN_ENV: ""},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert f"  operations: {', '.join(PROTECTED)}" in lines
    minted = (
        f"  tokens:     minted as the issuer {issuer.issuer} for sub 'johndoe', audience '{AUDIENCE}', "
        f"scope '{SCOPE}'; minted again before each expires"
    )
    assert minted in lines
    assert [line for line in lines if line.startswith("note: ")] == [LEFT_OUT_NOTE]
    document = json.loads((tmp_path / "r" / "fuzz-report.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(fuzz_report_schema()).validate(document)
    assert document["findings"] == [] and document["errors"] == [] and document["summary"]["passed"]
    assert document["tokens"] == {"source": "issuer", "obtained": 1} and document["summary"]["logins"] == 0
    markdown = (tmp_path / "r" / "fuzz-report.md").read_text(encoding="utf-8").splitlines()
    assert "- Tokens: minted with the test issuer's keys (issuer mode): 1 token minted" in markdown
    assert_no_key_and_no_token(issuer, done.stdout + done.stderr + reports_text(tmp_path / "r"))


def fuzz(*args: str) -> Result:
    return CliRunner().invoke(cli, ["fuzz", *args], env={TOKEN_ENV: ""}, prog_name="jwt-conformance")


def recording(app: Any, seen: set[str]) -> Any:
    """``app`` that keeps every bearer token it is sent (to search the outputs for the minted ones)."""

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        token = twins._bearer(scope) if scope["type"] == "http" else None
        if token is not None:
            seen.add(token)
        await app(scope, receive, send)

    return wrapper


def minted_by(issuer: Issuer, tokens: set[str]) -> list[str]:
    """The tokens signed by the issuer's keys for the API's audience: the credentials of the run."""
    mode = IssuerMode(Path(issuer.keys_dir), issuer.issuer, issuer.issuer, AUDIENCE, "bob")
    keys = jwt.PyJWKSet.from_dict(IssuerSession(mode).public_jwks())
    found = []
    for token in tokens:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next(k for k in keys.keys if k.key_id == kid)
            jwt.decode(token, key.key, algorithms=[key.algorithm_name], audience=AUDIENCE)
        except (jwt.PyJWTError, StopIteration, ValueError):
            continue
        found.append(token)
    return found


@pytest.mark.parametrize(
    ("broken", "finding"),
    [
        (
            lambda app: twins.crashes_on_malformed_token(app, "/protected-resource"),
            ("GET /protected-resource", "not_a_server_error", 500),
        ),
        (twins.leaks_password_hash, ("GET /users/me", "response_schema_conformance", 200)),
    ],
    ids=["500-on-malformed-token", "hash-leaked"],
)
def test_issuer_mode_fuzz_names_exactly_the_defect_of_a_broken_resource_server_and_shows_no_token(
    make_reference: Any, issuer: Issuer, tmp_path: Path, broken: Any, finding: tuple[str, str, int]
) -> None:
    trusted = (TrustedIssuer(issuer.issuer, AUDIENCE),)
    app = make_reference(trusted_issuers=trusted, jwks_refresh_interval=1, issuer_timeout=2)
    seen: set[str] = set()
    reports = tmp_path / "reports"
    with serving(recording(broken(app), seen)) as base_url:
        more = ("--exclude-path", "/users", "--report-dir", str(reports))
        result = fuzz("--base-url", base_url, *issuer_args(issuer, "bob", *more))
    assert result.exit_code == 1, result.output
    document = json.loads((reports / "fuzz-report.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(fuzz_report_schema()).validate(document)
    assert [(f["operation"], f["check"], f["status"]) for f in document["findings"]] == [finding], result.output
    assert document["operations"] == ["GET /users/me", "GET /protected-resource"] and document["errors"] == []
    minted = minted_by(issuer, seen)
    assert minted  # the API was sent the issuer's tokens, and none of them, nor any part, is in an output
    outputs = result.output + reports_text(reports)
    assert_hidden(minted, outputs)
    assert_no_key_and_no_token(issuer, outputs)
    if finding[2] == 200:  # found with the minted token itself: the repro names it by its placeholder
        assert 'curl -X GET -H "Authorization: Bearer ${ACCESS_TOKEN}"' in document["findings"][0]["curl"]


def test_a_token_of_the_issuer_the_api_refuses_stops_the_run_with_the_way_out(
    make_reference: Any, issuer: Issuer
) -> None:
    app = make_reference(trusted_issuers=(TrustedIssuer(issuer.issuer, AUDIENCE),), issuer_timeout=2)
    with serving(app) as base_url:
        line = one_line_error(fuzz("--base-url", base_url, *issuer_args(issuer, "bob", "--audience", "https://other")))
    assert line == (
        f"error: the API refused a token of the test issuer (HTTP 401) at /users/me: check that it trusts the issuer "
        f"{issuer.issuer} (discovery at http://127.0.0.1:{issuer.port}/.well-known/openid-configuration) with "
        "audience 'https://other', and knows the user 'bob' (--subject; issuer.user_claim names the claim it reads)"
    )
