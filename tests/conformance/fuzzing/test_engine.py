"""``run_fuzz`` against real servers on 127.0.0.1: clean on the reference server, each defect named."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from conformance.config import Credentials, RunConfig
from conformance.contract import default_contract_path
from conformance.errors import BaselineLoginError, TargetUnreachableError
from conformance.fuzzing import FuzzConfig, FuzzFinished, FuzzStarted, FuzzSummary, OperationTested, run_fuzz

from ..harness import PRIMARY, Answer, on, rewrite
from ..tutorial_app import tutorial_app
from . import twins
from .live import serving

SEED = 20261201
EXAMPLES = 25


# The admin operations need a scope the fuzzer's token lacks (403 throughout): only the clean run of the
# reference server fuzzes them; the defect runs leave them out, which halves their time.
ADMIN = ("/users",)


def fuzz(
    app: Any, credentials: Credentials = PRIMARY, contract: Path | None = None, **changes: Any
) -> tuple[list[Any], FuzzSummary]:
    with serving(app) as base_url:
        target = RunConfig(base_url=base_url, primary=credentials, contract=contract)
        config = FuzzConfig(target, max_examples=EXAMPLES, seed=SEED, exclude_paths=ADMIN)
        for name, value in changes.items():
            object.__setattr__(config, name, value)
        events = list(run_fuzz(config))
    finished = events[-1]
    assert isinstance(finished, FuzzFinished)
    return events, finished.summary


@pytest.fixture
def tutorial() -> FastAPI:
    """The FastAPI tutorial's server: users bob, carol and the disabled alice, as the harness names them."""
    return tutorial_app()


def problems(summary: FuzzSummary) -> set[tuple[str, str]]:
    return {(finding.operation, finding.check) for finding in summary.findings}


def explain(summary: FuzzSummary) -> str:
    lines = [f"{f.operation} {f.check}: {f.title} ({f.status}) {f.message[:200]}" for f in summary.findings]
    return "\n".join(lines + [f"error {e.operation}: {e.message}" for e in summary.errors] + summary.notes)


def counting_logins(app: FastAPI, username: str) -> tuple[Any, list[int]]:
    """``app`` that counts the 200 answers of the token endpoint."""
    granted: list[int] = []

    def count(answer: Answer) -> None:
        if answer.status == 200:
            granted.append(1)

    return rewrite(app, on("POST", "/token", count)), granted


def test_the_reference_server_passes_with_real_tokens_and_real_logins(reference: FastAPI) -> None:
    app, granted = counting_logins(reference, PRIMARY.username)
    events, summary = fuzz(app, exclude_paths=())
    assert not summary.failed, explain(summary)
    assert summary.logins == 1  # one token served the whole run
    assert len(granted) > 1  # the fuzzer logged in with the real credentials too, not only random ones
    tested = {(e.phase, e.operation) for e in events if isinstance(e, OperationTested) and e.cases}
    assert ("fuzzing", "POST /token") in tested and ("fuzzing", "GET /users/me") in tested
    assert isinstance(events[0], FuzzStarted) and events[0].seed == SEED
    assert summary.cases > 100


@pytest.mark.parametrize(
    ("twin", "operation", "check"),
    [
        (twins.crashes_on_malformed_token, "GET /users/me", "not_a_server_error"),
        (twins.leaks_password_hash, "GET /users/me", "response_schema_conformance"),
        (twins.serves_without_token, "GET /protected-resource", "ignored_auth"),
        (twins.undocumented_status, "POST /token", "status_code_conformance"),
        (twins.ignores_signature, "GET /users/me", "unissued_token_rejected"),
    ],
    ids=["500-on-malformed-token", "hash-leaked", "no-token-needed", "undocumented-422", "signature-ignored"],
)
def test_each_defect_fails_the_run_and_is_named(
    reference: FastAPI, twin: Callable[[FastAPI], Any], operation: str, check: str
) -> None:
    _, summary = fuzz(twin(reference))
    assert summary.failed
    assert (operation, check) in problems(summary), explain(summary)
    finding = next(f for f in summary.findings if (f.operation, f.check) == (operation, check))
    assert finding.curl.startswith("curl ") and operation.split()[1] in finding.curl


def test_findings_carry_placeholders_never_the_password_or_a_token(reference: FastAPI) -> None:
    _, summary = fuzz(twins.leaks_password_hash(reference))
    text = repr(summary)
    assert PRIMARY.password not in text
    assert "eyJ" not in text.replace("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0", "")  # only crafted alg-none headers
    leak = next(f for f in summary.findings if f.check == "response_schema_conformance")
    assert "${ACCESS_TOKEN}" in leak.curl and "hashed_password" in (leak.message + (leak.response_excerpt or ""))


def test_the_same_seed_gives_the_same_findings(reference: FastAPI, make_reference: Any) -> None:
    _, first = fuzz(twins.crashes_on_malformed_token(reference))
    _, second = fuzz(twins.crashes_on_malformed_token(make_reference()))
    assert problems(first) == problems(second) and first.cases == second.cases


def test_an_expiring_token_is_fetched_again(make_reference: Any) -> None:
    ttl_s = 2
    app = make_reference(access_token_ttl=ttl_s)
    _, summary = fuzz(app, max_examples=100)
    assert summary.duration_s > ttl_s, "the run must outlive one token for this test to mean anything"
    assert summary.logins >= 2, explain(summary)
    assert not summary.failed, explain(summary)


def test_refused_credentials_stop_before_fuzzing(reference: FastAPI) -> None:
    with pytest.raises(BaselineLoginError, match="rejected the credentials of 'bob'"):
        fuzz(reference, Credentials(PRIMARY.username, "not the password"))


def test_an_unreachable_target_stops_naming_it() -> None:
    from conformance.demo import free_port

    config = FuzzConfig(RunConfig(base_url=f"http://127.0.0.1:{free_port()}", primary=PRIMARY), max_examples=5)
    with pytest.raises(TargetUnreachableError, match="cannot reach http://127.0.0.1"):
        list(run_fuzz(config))


def test_a_token_endpoint_that_fails_a_proper_login_is_reported_and_fuzzing_goes_on(reference: FastAPI) -> None:
    def crash(answer: Answer) -> None:
        if answer.status == 200:
            answer.status, answer.body = 500, b"boom"

    _, summary = fuzz(rewrite(reference, on("POST", "/token", crash)))
    assert any("no access_token" in note for note in summary.notes), summary.notes
    assert ("POST /token", "not_a_server_error") in problems(summary), explain(summary)


def test_a_tutorial_style_server_fails_against_the_kits_contract(tutorial: FastAPI) -> None:
    _, summary = fuzz(tutorial, contract=default_contract_path())
    found = problems(summary)
    assert ("POST /token", "status_code_conformance") in found, explain(summary)  # its 401 and 422
    assert ("GET /users/me", "response_headers_conformance") in found, explain(summary)  # a bare challenge
    assert not summary.errors, explain(summary)
    # It has no /revoke, JWK Set or /health: notes say how to leave them out, and leaving them out works.
    absent = [a.operation for a in summary.absent]
    assert absent == ["POST /revoke", "GET /.well-known/jwks.json", "GET /health"], explain(summary)
    assert {f.operation for f in summary.findings}.isdisjoint(absent), explain(summary)
    health = [note for note in summary.notes if note.startswith("GET /health is not on the target")]
    assert len(health) == 1 and "--exclude-path /health" in health[0], summary.notes
    _, without = fuzz(
        tutorial_app(),
        contract=default_contract_path(),
        exclude_paths=("/health", "/.well-known/jwks.json", "/users", "/revoke"),
    )
    assert without.operations == ("POST /token", "GET /users/me", "GET /protected-resource")
    assert {f.operation for f in without.findings} <= set(without.operations) and not without.notes


# Hypothesis warns when it describes schemathesis's failing test call (its arguments are large objects).
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_an_operation_that_hangs_is_an_error_of_the_run(reference: FastAPI) -> None:
    async def hangs_on_unsigned_tokens(scope: Any, receive: Any, send: Any) -> None:
        unsigned = dict(scope.get("headers", [])).get(b"authorization", b"").endswith(b".")
        if scope["type"] == "http" and scope["path"] == "/users/me" and unsigned:
            await asyncio.sleep(1)
        await reference(scope, receive, send)

    with serving(hangs_on_unsigned_tokens) as base_url:
        target = replace(RunConfig(base_url=base_url, primary=PRIMARY), timeout_s=0.2)
        events = list(run_fuzz(FuzzConfig(target, max_examples=10, seed=SEED, exclude_paths=ADMIN)))
    summary = events[-1].summary
    assert summary.failed and summary.errors, explain(summary)
    assert all("timed out" in error.message for error in summary.errors), explain(summary)


def test_a_400_to_a_crafted_token_is_not_valid_data_rejected(reference: FastAPI) -> None:
    _, summary = fuzz(twins.refuses_bad_tokens_with_400(reference))
    checks = {finding.check for finding in summary.findings}
    # schemathesis's own rule stands (a bad token gets 401 or 403, RFC 6750 §3.1), but the kit's
    # crafted tokens are never counted as valid data the server rejected.
    assert "ignored_auth" in checks, explain(summary)
    assert "positive_data_acceptance" not in checks, explain(summary)


def test_a_finding_on_a_real_login_shows_the_password_as_a_placeholder(reference: FastAPI) -> None:
    issued: list[str] = []  # every credential the server handed out, recorded on the server's side

    def cacheable(answer: Answer) -> None:
        if answer.status == 200:
            answer.set_header("cache-control", None)  # a defect only a real login can show
            issued.extend(str(answer.json()[name]) for name in ("access_token", "refresh_token"))

    _, summary = fuzz(rewrite(reference, on("POST", "/token", cacheable)))
    finding = next((f for f in summary.findings if f.operation == "POST /token"), None)
    assert finding is not None and finding.check == "response_headers_conformance", explain(summary)
    assert "password=${PASSWORD}" in finding.curl and PRIMARY.password not in repr(summary), finding.curl
    # The answer excerpt of a token answer shows neither the access token nor the (opaque) refresh token.
    assert issued and not [token for token in issued if token[-16:] in repr(summary)], finding.response_excerpt
    assert finding.curl.count('"') >= 2  # the argument holding the placeholder is double-quoted: it expands
