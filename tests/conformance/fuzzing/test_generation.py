"""The malformed tokens and the token source, without a server where none is needed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import given, settings, strategies as st

from conformance.client import Client
from conformance.config import Credentials, RunConfig
from conformance.errors import ConfigError
from conformance.fuzzing import build_fuzz_config
from conformance.fuzzing.generation import bearer_value, unissued_tokens, without_framing_headers
from conformance.fuzzing.tokens import DEFAULT_LIFETIME_S, TokenSource, token_lifetime

from ...clock import Clock
from ..harness import BASE_URL, PRIMARY

ROOT = Path(__file__).resolve().parents[3]
ISSUED = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IiLCJleHAiOjIwMDAwMDAwMDAsImlhdCI6MTk5OTk5OTAwMH0.c2lnbmF0dXJlLWJ5dGVz"
# RFC 6750 §2.1 b64token: a well-formed credential, so that the contract's answer is 401, not 400.
B64TOKEN_VALUE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@settings(max_examples=300, deadline=None)
@given(token=unissued_tokens(ISSUED))
def test_unissued_tokens_are_never_the_issued_one_and_always_sendable(token: str) -> None:
    assert token != ISSUED
    assert B64TOKEN_VALUE.fullmatch(token), token


@settings(max_examples=200, deadline=None)
@given(token=st.from_regex(r"[A-Za-z0-9\-._~+/]{1,60}=*", fullmatch=True), data=st.data())
def test_unissued_tokens_derive_from_any_b64token_a_server_issues(token: str, data: st.DataObject) -> None:
    derived = data.draw(unissued_tokens(token))
    assert derived != token and B64TOKEN_VALUE.fullmatch(derived)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": "Bearer abc"}, "abc"),
        ({"authorization": "bearer abc"}, "abc"),
        ({"Authorization": "Basic abc"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_bearer_value_reads_the_token_of_a_bearer_field(headers: Any, expected: str | None) -> None:
    assert bearer_value(headers) == expected


def test_token_lifetime_prefers_expires_in_then_the_claims() -> None:
    assert token_lifetime({"expires_in": 60}, ISSUED) == 60
    assert token_lifetime({}, ISSUED) == 1000  # exp - iat of ISSUED
    assert token_lifetime({"expires_in": "60"}, "opaque") == DEFAULT_LIFETIME_S


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source(make_reference: Any, clock: Clock) -> Iterator[TokenSource]:
    """A token source on the reference app (tokens live 100 s), on a clock the test moves."""
    with TestClient(make_reference(access_token_ttl=100), base_url=BASE_URL) as http:
        yield TokenSource(Client(BASE_URL, http=http), PRIMARY, clock=clock)


def test_the_token_is_reused_until_shortly_before_it_expires(source: TokenSource, clock: Clock) -> None:
    first = source.token()
    clock.now += 79
    assert source.token() == first and source.logins == 1
    clock.now += 2  # past 100 - min(30, 100 / 5): fetched again
    second = source.token()
    assert source.logins == 2 and second != first and first in source.issued and second in source.issued


def test_a_failed_refresh_keeps_the_live_token_and_waits_before_trying_again(source: TokenSource, clock: Clock) -> None:
    first = source.token()
    source.credentials = Credentials(PRIMARY.username, "changed meanwhile")
    clock.now += 85
    assert source.token() == first and source.failed_refreshes == 1
    assert source.token() == first and source.failed_refreshes == 1  # no new attempt within 5 s
    clock.now += 20  # expired, and the refresh fails again: no token rather than a dead one
    assert source.token() is None and source.failed_refreshes == 2
    assert "rejected the credentials of 'bob'" in (source.last_refresh_error or "")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"max_examples": 0}, "--max-examples must be a whole number from 1 to 100000"),
        ({"seed": -1}, "--seed must be a whole number"),
        ({"max_time": 0.5}, "--max-time must be a number from 1"),
        ({"workers": 17}, "--workers must be a whole number from 1 to 16"),
    ],
)
def test_fuzz_flags_are_validated(flags: dict[str, Any], message: str) -> None:
    base = {"base_url": "http://127.0.0.1:8000", "username": "bob", "password": "p"}
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_fuzz_config({**base, **flags}, env={})


def test_fuzz_config_keeps_the_target_of_run() -> None:
    config = build_fuzz_config(
        {"base_url": "http://127.0.0.1:8000/", "username": "bob", "token_path": "/oauth/token", "seed": 3},
        env={"JWT_CONFORMANCE_PASSWORD": "p"},
    )
    assert isinstance(config.target, RunConfig)
    assert config.target.base_url == "http://127.0.0.1:8000" and config.target.paths.token == "/oauth/token"
    assert config.seed == 3 and config.max_examples == 100 and config.max_time_s is None


def test_generated_framing_headers_are_taken_out() -> None:
    schema = schemathesis.openapi.from_path(str(ROOT / "openapi.yaml"), config=schemathesis.Config())
    operation = next(r.ok() for r in schema.get_all_operations() if r.ok().label == "GET /users/me")
    case = operation.Case(headers={"Content-Length": "s", "transfer-encoding": "x", "X-Other": "1"})
    cleaned = without_framing_headers(case)
    assert dict(cleaned.headers) == {"X-Other": "1"}
    plain = operation.Case(headers={"X-Other": "1"})
    assert without_framing_headers(plain) is plain
