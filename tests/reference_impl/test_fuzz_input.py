"""Property-based fuzzing of what fuzzers from the contract do not send: raw bodies and raw headers."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st

from reference_impl import Settings, create_app
from reference_impl.cli import seed_demo_users

_DIR = Path(tempfile.mkdtemp(prefix="jwt-fuzz-input-"))
APP = create_app(Settings(secret_key=secrets.token_urlsafe(48), database=_DIR / "u.db", hash_profile="fast"))
seed_demo_users(APP.state.reference.store, APP.state.reference.settings)
CLIENT = TestClient(APP, base_url="http://127.0.0.1", raise_server_exceptions=False)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    CLIENT.close()
    APP.state.reference.close()
    shutil.rmtree(_DIR, ignore_errors=True)


OAUTH_ERRORS = ("invalid_request", "invalid_grant", "unsupported_grant_type", "invalid_scope")
REVOCATION_ERRORS = ("invalid_request", "unsupported_token_type")
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
FORM_ALPHABET = st.sampled_from(
    list("=&%+ ;abcdefgpsworduntyjh0123456789_") + ["%00", "%ff", "%e2%82", "\x00", "token", "refresh_", "hint"]
)
form_text = st.lists(FORM_ALPHABET, max_size=80).map("".join)
header_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=200)


@FUZZ
@given(body=st.one_of(st.binary(max_size=300), form_text.map(str.encode)), content_type=st.sampled_from(
    ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8", "application/json",
     "multipart/form-data; boundary=x", "", "text/plain; charset=latin-1", "application/x-www-form-urlencoded;;;"]
))  # fmt: skip
def test_any_token_request_body_gets_200_or_an_oauth_error(body: bytes, content_type: str) -> None:
    response = CLIENT.post("/token", content=body, headers={"content-type": content_type})
    assert response.status_code in (200, 400, 413), response.text
    assert response.headers["cache-control"] == "no-store"
    if response.status_code != 200:
        assert response.json()["error"] in OAUTH_ERRORS


@FUZZ
@given(body=st.one_of(st.binary(max_size=300), form_text.map(str.encode)), content_type=st.sampled_from(
    ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8", "application/json", ""]
))  # fmt: skip
def test_any_revocation_body_gets_an_empty_200_or_an_oauth_error(body: bytes, content_type: str) -> None:
    response = CLIENT.post("/revoke", content=body, headers={"content-type": content_type})
    assert response.status_code in (200, 400, 413), response.text
    assert response.headers["cache-control"] == "no-store"
    if response.status_code == 200:
        assert response.content == b""
    else:
        assert response.json()["error"] in REVOCATION_ERRORS


@FUZZ
@given(value=header_value)
def test_any_authorization_header_gets_a_bearer_challenge(value: str) -> None:
    response = CLIENT.get("/users/me", headers={"authorization": value.encode("latin-1")})  # type: ignore[dict-item]
    assert response.status_code in (400, 401), response.text
    assert response.headers["www-authenticate"].startswith('Bearer realm="')


@FUZZ
@given(token=st.text(st.sampled_from("abcXYZ019-_.=+/~"), min_size=1, max_size=400))
def test_any_b64token_shaped_credential_is_refused_cleanly(token: str) -> None:
    response = CLIENT.get("/users/me", headers={"authorization": f"Bearer {token}"})
    assert response.status_code in (400, 401), response.text
