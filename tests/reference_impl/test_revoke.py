"""POST /revoke (RFC 7009): refresh tokens end their family, access tokens are refused until they expire."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reference_impl.security import REVOKED

from ..conftest import bearer, password_grant, refresh, revoke
from ..jwt_craft import AT_HEADER, claims_for, sign

FORM_TYPE = {"content-type": "application/x-www-form-urlencoded"}


def assert_revocation_answer(response: Any) -> None:
    """RFC 7009 §2.2: 200, no body, not to be stored."""
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def assert_oauth_error(response: Any, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def me(client: TestClient, token: str) -> Any:
    return client.get("/users/me", headers=bearer(token))


def revoked_rows(app: FastAPI) -> tuple[int, int]:
    grants = app.state.reference.grants
    jtis = grants.fetchone("SELECT count(*) FROM revoked_access_tokens")[0]
    families = grants.fetchone("SELECT count(*) FROM revoked_families")[0]
    return jtis, families


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token"], ids=["no-hint", "right-hint", "wrong-hint"])
def test_revoking_a_refresh_token_ends_its_family(client: TestClient, hint: str | None) -> None:
    first = password_grant(client)
    second = refresh(client, first["refresh_token"]).json()
    other = password_grant(client)
    assert_revocation_answer(revoke(client, second["refresh_token"], hint))

    assert refresh(client, second["refresh_token"]).json()["error"] == "invalid_grant"
    for access_token in (first["access_token"], second["access_token"]):
        response = me(client, access_token)
        assert response.status_code == 401, response.text
        assert response.json() == {"detail": REVOKED, "error": "invalid_token"}
    assert me(client, other["access_token"]).status_code == 200
    assert refresh(client, other["refresh_token"]).status_code == 200


def test_revoking_a_spent_refresh_token_ends_its_family_too(client: TestClient) -> None:
    first = password_grant(client)
    second = refresh(client, first["refresh_token"]).json()
    assert_revocation_answer(revoke(client, first["refresh_token"]))
    assert refresh(client, second["refresh_token"]).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"], ids=["no-hint", "right-hint", "wrong-hint"])
def test_revoking_an_access_token_refuses_it_from_then_on(client: TestClient, app: FastAPI, hint: str | None) -> None:
    body = password_grant(client)
    sibling = refresh(client, body["refresh_token"]).json()
    assert_revocation_answer(revoke(client, body["access_token"], hint))
    response = me(client, body["access_token"])
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": REVOKED, "error": "invalid_token"}
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="jwt-reference", error="invalid_token", error_description="{REVOKED}"'
    )
    assert client.get("/protected-resource", headers=bearer(body["access_token"])).status_code == 401
    # Only that token: its family and its other access tokens go on.
    assert me(client, sibling["access_token"]).status_code == 200
    assert refresh(client, sibling["refresh_token"]).status_code == 200
    assert revoked_rows(app) == (1, 0)


def test_revocation_reaches_an_access_token_already_in_the_verify_cache(client: TestClient, app: FastAPI) -> None:
    token = password_grant(client)["access_token"]
    assert me(client, token).status_code == 200
    assert token in app.state.reference.tokens._verified  # the next request would skip the signature check
    assert_revocation_answer(revoke(client, token))
    assert me(client, token).status_code == 401


def test_a_revoked_access_token_is_remembered_until_it_expires(client: TestClient, app: FastAPI) -> None:
    token = password_grant(client)["access_token"]
    revoke(client, token)
    claims = jwt.decode(token, options={"verify_signature": False})
    rows = app.state.reference.grants.fetchall("SELECT jti, expires_at FROM revoked_access_tokens")
    assert rows == [(claims["jti"], claims["exp"] + app.state.reference.settings.leeway)]


@pytest.mark.parametrize(
    "token",
    ["garbage", "x" * 43, "a.b.c", "eyJhbGciOiJub25lIn0.e30."],
    ids=["garbage", "refresh-shaped", "three-segments", "alg-none"],
)
def test_an_unknown_token_gets_the_same_200_and_nothing_is_stored(client: TestClient, app: FastAPI, token: str) -> None:
    live = password_grant(client)
    assert_revocation_answer(revoke(client, token))
    assert revoked_rows(app) == (0, 0)
    assert me(client, live["access_token"]).status_code == 200


def test_revoking_twice_is_200_both_times(client: TestClient) -> None:
    body = password_grant(client)
    for token in (body["access_token"], body["refresh_token"]):
        assert_revocation_answer(revoke(client, token))
        assert_revocation_answer(revoke(client, token))


def test_tokens_not_signed_by_this_server_or_expired_are_not_stored(client: TestClient, app: FastAPI) -> None:
    settings = app.state.reference.settings
    extra: dict[str, Any] = {"scope": "me", "sid": "f" * 32}
    foreign = sign(AT_HEADER, claims_for("bob", issuer=settings.issuer, audience=settings.audience, **extra), "k" * 40)
    expired = sign(
        AT_HEADER,
        claims_for("bob", issuer=settings.issuer, audience=settings.audience, exp=int(time.time()) - 600, **extra),
        settings.secret_key,
    )
    for token in (foreign, expired):
        assert_revocation_answer(revoke(client, token))
    assert revoked_rows(app) == (0, 0)


@pytest.mark.parametrize("hint", ["id_token", "ACCESS_TOKEN", "refresh", "bogus"])
def test_an_unknown_token_type_hint_is_unsupported_token_type(client: TestClient, hint: str) -> None:
    body = password_grant(client)
    assert_oauth_error(revoke(client, body["access_token"], hint), "unsupported_token_type")
    assert me(client, body["access_token"]).status_code == 200  # nothing was revoked


def test_an_empty_token_type_hint_counts_as_omitted(client: TestClient) -> None:
    body = password_grant(client)
    assert_revocation_answer(revoke(client, body["access_token"], ""))
    assert me(client, body["access_token"]).status_code == 401


@pytest.mark.parametrize(
    "data", [{}, {"token": ""}, {"token_type_hint": "access_token"}], ids=["none", "empty", "hint"]
)
def test_a_missing_token_is_invalid_request(client: TestClient, data: dict[str, str]) -> None:
    response = client.post("/revoke", content=urlencode(data).encode(), headers=FORM_TYPE)
    assert_oauth_error(response, "invalid_request")
    assert response.json()["error_description"] == "Missing parameter: token"


def test_a_repeated_token_is_invalid_request_and_revokes_nothing(client: TestClient) -> None:
    one, two = password_grant(client), password_grant(client)
    body = f"token={one['access_token']}&token={two['access_token']}"
    assert_oauth_error(client.post("/revoke", content=body, headers=FORM_TYPE), "invalid_request")
    assert me(client, one["access_token"]).status_code == 200
    assert me(client, two["access_token"]).status_code == 200


def test_unknown_parameters_are_ignored(client: TestClient) -> None:
    body = password_grant(client)
    response = client.post("/revoke", data={"token": body["access_token"], "client_id": "x", "foo": "bar"})
    assert_revocation_answer(response)
    assert me(client, body["access_token"]).status_code == 401


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"token":"x"}', "application/json"),
        (b"token=x", "text/plain"),
        (b"token=x", "application/x-www-form-urlencoded; charset=latin-1"),
        (b"token=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"token=%ff", "application/x-www-form-urlencoded"),
        (b"token=a%00b", "application/x-www-form-urlencoded"),
    ],
    ids=["json", "text-plain", "latin-1", "raw-non-utf8", "escaped-non-utf8", "nul-byte"],
)
def test_malformed_bodies_are_invalid_request(client: TestClient, content: bytes, content_type: str) -> None:
    assert_oauth_error(
        client.post("/revoke", content=content, headers={"content-type": content_type}), "invalid_request"
    )


def test_an_oversized_body_gets_413(client: TestClient) -> None:
    response = client.post("/revoke", content=b"token=" + b"a" * 200_000, headers=FORM_TYPE)
    assert_oauth_error(response, "invalid_request", status=413)


def test_a_token_in_the_uri_is_not_read(client: TestClient) -> None:
    body = password_grant(client)
    response = client.post("/revoke", params={"token": body["access_token"]}, content=b"", headers=FORM_TYPE)
    assert_oauth_error(response, "invalid_request")
    assert me(client, body["access_token"]).status_code == 200


def test_get_on_the_revocation_endpoint_is_405_with_allow(raw_client: TestClient) -> None:
    response = raw_client.get("/revoke")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
