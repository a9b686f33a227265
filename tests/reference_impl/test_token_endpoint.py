"""POST /token: RFC 6749 §4.3.2 requests, §5.1 answers, §5.2 errors; every answer checked against the contract."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reference_impl.security import ACCESS_TOKEN_TYPE

from ..conftest import PASSWORD

FORM = {"grant_type": "password", "username": "bob", "password": PASSWORD}


def post_token(client: TestClient, data: Any = None, **kwargs: Any) -> Any:
    return client.post("/token", data=FORM if data is None else data, **kwargs)


def assert_oauth_error(response: Any, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert "access_token" not in response.text


def test_password_grant_issues_a_bearer_token(client: TestClient, app: FastAPI) -> None:
    response = post_token(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == app.state.reference.settings.access_token_ttl
    assert body["scope"] == "me items:read"
    assert body["refresh_token"] != body["access_token"]
    assert body["refresh_token"].count(".") != 2  # opaque, never a JWT
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"] == "application/json"


def test_issued_token_is_an_at_jwt_with_the_rfc_9068_claims(client: TestClient, app: FastAPI) -> None:
    settings = app.state.reference.settings
    token = post_token(client).json()["access_token"]
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": ACCESS_TOKEN_TYPE}
    claims = jwt.decode(token, settings.secret_key, algorithms=["HS256"], audience=settings.audience)
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "jti", "scope", "sid"}
    assert claims["sub"] == "bob"
    assert claims["scope"] == "me items:read"
    assert len(claims["sid"]) == 32
    int(claims["sid"], 16)  # random hex
    assert claims["iss"] == settings.issuer
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl
    assert "password" not in str(claims).lower()


def test_two_logins_give_distinct_tokens_and_jtis(client: TestClient) -> None:
    first, second = (post_token(client).json()["access_token"] for _ in range(2))
    assert first != second
    assert (
        jwt.decode(first, options={"verify_signature": False})["jti"]
        != jwt.decode(second, options={"verify_signature": False})["jti"]
    )


@pytest.mark.parametrize(
    ("username", "password"),
    [("bob", "wrong password"), ("nobody", PASSWORD), ("alice", "secretalice"), ("bob", PASSWORD.upper())],
    ids=["wrong-password", "unknown-user", "disabled-user", "password-case-changed"],
)
def test_bad_credentials_get_invalid_grant(client: TestClient, username: str, password: str) -> None:
    response = post_token(client, {"grant_type": "password", "username": username, "password": password})
    assert_oauth_error(response, "invalid_grant")


def test_wrong_password_unknown_user_and_disabled_user_get_one_identical_answer(client: TestClient) -> None:
    answers = []
    for username, password in [("bob", "nope"), ("nobody", "nope"), ("alice", "secretalice"), ("alice", "nope")]:
        response = post_token(client, {"grant_type": "password", "username": username, "password": password})
        headers = {k: v for k, v in response.headers.items() if k != "date"}
        answers.append((response.status_code, headers, response.content))
    assert all(answer == answers[0] for answer in answers), answers


@pytest.mark.parametrize("missing", ["grant_type", "username", "password"])
def test_a_missing_parameter_is_invalid_request(client: TestClient, missing: str) -> None:
    data = {k: v for k, v in FORM.items() if k != missing}
    response = post_token(client, data)
    assert_oauth_error(response, "invalid_request")
    assert missing in response.json()["error_description"]


@pytest.mark.parametrize("empty", ["grant_type", "username", "password"])
def test_a_parameter_without_a_value_counts_as_omitted(client: TestClient, empty: str) -> None:
    assert_oauth_error(post_token(client, {**FORM, empty: ""}), "invalid_request")


@pytest.mark.parametrize("repeated", ["grant_type", "username", "password"])
def test_a_repeated_parameter_is_invalid_request(client: TestClient, repeated: str) -> None:
    body = "&".join(f"{k}={v}" for k, v in FORM.items()) + f"&{repeated}=x"
    response = post_token(client, content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert_oauth_error(response, "invalid_request")


def test_a_repeated_password_with_the_correct_one_last_gets_no_token(client: TestClient) -> None:
    body = f"grant_type=password&username=bob&password=a&password={PASSWORD.replace(' ', '+')}"
    response = post_token(client, content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert_oauth_error(response, "invalid_request")


@pytest.mark.parametrize("grant_type", ["client_credentials", "foo", "PASSWORD", "REFRESH_TOKEN", "authorization_code"])
def test_other_grant_types_are_unsupported(client: TestClient, grant_type: str) -> None:
    assert_oauth_error(post_token(client, {**FORM, "grant_type": grant_type}), "unsupported_grant_type")


def test_unknown_parameters_are_ignored(client: TestClient) -> None:
    response = post_token(client, {**FORM, "foo": "bar", "client_id": "swagger"})
    assert response.status_code == 200, response.text


def test_an_empty_scope_is_ignored_and_an_unknown_scope_is_invalid_scope(client: TestClient) -> None:
    assert post_token(client, {**FORM, "scope": ""}).json()["scope"] == "me items:read"
    assert post_token(client, {**FORM, "scope": "  "}).json()["scope"] == "me items:read"
    assert_oauth_error(post_token(client, {**FORM, "scope": "write"}), "invalid_scope")
    assert_oauth_error(post_token(client, {**FORM, "scope": 'me "quoted\\'}), "invalid_scope")  # never echoed


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"grant_type":"password","username":"bob","password":"x"}', "application/json"),
        (b"grant_type=password&username=bob&password=x", "text/plain"),
        (b"grant_type=password&username=bob&password=x", "application/x-www-form-urlencoded; charset=latin-1"),
        (b"grant_type=password&username=bob&password=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"grant_type=password&username=bob&password=%ff%fe", "application/x-www-form-urlencoded"),
        (b"grant_type=password&username=bob%00&password=x", "application/x-www-form-urlencoded"),
        (b"", "application/x-www-form-urlencoded"),
        (b"%%%%&&&===", "application/x-www-form-urlencoded"),
    ],
    ids=["json", "text-plain", "latin-1", "raw-non-utf8", "escaped-non-utf8", "nul-byte", "empty", "garbage"],
)
def test_malformed_bodies_are_invalid_request(client: TestClient, content: bytes, content_type: str) -> None:
    response = post_token(client, content=content, headers={"content-type": content_type})
    assert_oauth_error(response, "invalid_request")


def test_missing_content_type_is_invalid_request(client: TestClient) -> None:
    response = client.post("/token", content=b"grant_type=password&username=bob&password=x")
    assert_oauth_error(response, "invalid_request")


def test_a_percent_encoded_utf8_password_is_decoded(client: TestClient, app: FastAPI) -> None:
    from reference_impl.models import UserInDB

    store, passwords = app.state.reference.store, app.state.reference.passwords
    store.add(UserInDB(username="zoë", hashed_password=passwords.hash("pässwörd ✓")))
    response = post_token(client, {"grant_type": "password", "username": "zoë", "password": "pässwörd ✓"})
    assert response.status_code == 200, response.text


def test_an_oversized_body_gets_413_without_being_read(client: TestClient) -> None:
    body = b"grant_type=password&username=bob&password=" + b"a" * 200_000
    response = post_token(client, content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert_oauth_error(response, "invalid_request", status=413)


def test_a_long_password_within_the_body_limit_is_invalid_grant_not_an_error(client: TestClient) -> None:
    assert_oauth_error(post_token(client, {**FORM, "password": "p" * 5000}), "invalid_grant")
    assert_oauth_error(post_token(client, {**FORM, "username": "u" * 5000}), "invalid_grant")


def test_credentials_in_the_uri_get_no_token(client: TestClient) -> None:
    response = client.post(
        "/token", params=FORM, content=b"", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert_oauth_error(response, "invalid_request")


def test_get_on_the_token_endpoint_is_405_with_allow(raw_client: TestClient) -> None:
    response = raw_client.get("/token", params=FORM)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "access_token" not in response.text
