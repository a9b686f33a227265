"""Protected operations: RFC 6750 §2.1 header parsing, §3 challenges, and token verification."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ..conftest import bearer, login
from ..jwt_craft import AT_HEADER, REMOVE, claims_for, sign, unsigned

PROTECTED = ["/users/me", "/protected-resource"]
REALM = 'Bearer realm="jwt-reference"'


def forged(app: FastAPI, header: dict[str, Any] | None = None, key: str | None = None, **claims: Any) -> str:
    """A token signed with the server's key: by default one it accepts (scope ``me items:read``, a random sid)."""
    settings = app.state.reference.settings
    claims = {"scope": "me items:read", "sid": secrets.token_hex(16), **claims}
    payload = claims_for(claims.pop("subject", "bob"), issuer=settings.issuer, audience=settings.audience, **claims)
    return sign(header or AT_HEADER, payload, key if key is not None else settings.secret_key)


def assert_challenge(response: Any, status: int = 401, error: str | None = None) -> None:
    assert response.status_code == status, response.text
    challenge = response.headers["www-authenticate"]
    if error is None:
        assert challenge == REALM
        assert "error" not in response.json()
    else:
        assert challenge.startswith(f'{REALM}, error="{error}", error_description="')
        assert response.json()["error"] == error
    assert "Traceback" not in response.text


@pytest.mark.parametrize("path", PROTECTED)
def test_a_valid_token_is_served_privately(client: TestClient, path: str) -> None:
    response = client.get(path, headers=bearer(login(client)))
    assert response.status_code == 200, response.text
    assert "private" in response.headers["cache-control"]


def test_users_me_returns_the_token_owner_and_never_the_hash(client: TestClient) -> None:
    body = client.get("/users/me", headers=bearer(login(client))).json()
    assert body == {
        "username": "bob",
        "email": "bob@example.com",
        "full_name": "Bob",
        "disabled": False,
        "scopes": ["me", "items:read"],
    }
    johndoe = client.get("/users/me", headers=bearer(login(client, "johndoe", "secret"))).json()
    assert johndoe["username"] == "johndoe"


@pytest.mark.parametrize("path", PROTECTED)
def test_no_credentials_get_a_challenge_without_an_error_code(client: TestClient, path: str) -> None:
    assert_challenge(client.get(path))


@pytest.mark.parametrize("value", ["Basic Ym9iOnB3", "Token abc", "JWT abc", "Bearerabc", "Digest x=y"])
def test_other_schemes_are_treated_as_no_credentials(client: TestClient, value: str) -> None:
    assert_challenge(client.get("/users/me", headers={"Authorization": value}))


@pytest.mark.parametrize("template", ["bearer {}", "BEARER {}", "Bearer  {}", "bEaReR   {}"])
def test_the_scheme_is_case_insensitive_and_takes_one_or_more_spaces(client: TestClient, template: str) -> None:
    token = login(client)
    response = client.get("/users/me", headers={"Authorization": template.format(token)})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "template",
    ["Bearer", "Bearer ", "Bearer\t{}", 'Bearer "{}"', "Bearer {},{}", "Bearer {} {}", "Bearer {}\x00"],
    ids=["bare", "empty", "tab", "quoted", "comma", "two-tokens", "nul"],
)
def test_malformed_bearer_credentials_are_invalid_request(client: TestClient, template: str) -> None:
    token = login(client)
    value = template.replace("{}", token)
    assert_challenge(client.get("/users/me", headers={"Authorization": value}), status=400, error="invalid_request")


def test_two_authorization_fields_are_invalid_request(client: TestClient) -> None:
    token = login(client)
    for pair in ([f"Bearer {token}", "Bearer garbage"], ["Bearer garbage", f"Bearer {token}"]):
        response = client.get("/users/me", headers=[("Authorization", value) for value in pair])
        assert_challenge(response, status=400, error="invalid_request")


def test_a_token_in_the_uri_is_refused(client: TestClient) -> None:
    token = login(client)
    response = client.get("/users/me", params={"access_token": token})
    assert_challenge(response, status=400, error="invalid_request")
    both = client.get("/users/me", params={"access_token": token}, headers=bearer(token))
    assert_challenge(both, status=400, error="invalid_request")


def test_a_token_in_a_cookie_is_ignored(client: TestClient) -> None:
    client.cookies.set("access_token", login(client))
    assert_challenge(client.get("/users/me"))


INVALID_TOKENS = {
    "garbage": lambda app: "abc",
    "truncated": lambda app: forged(app)[:40],
    "signature-flipped": lambda app: forged(app)[:-2] + ("A" if forged(app)[-2] != "A" else "B") + forged(app)[-1],
    "signature-stripped": lambda app: forged(app).rsplit(".", 1)[0] + ".",
    "two-segments": lambda app: forged(app).rsplit(".", 1)[0],
    "wrong-key": lambda app: forged(app, key="another-secret-key-that-is-long-enough-1234"),
    "empty-key": lambda app: forged(app, key=""),
    "alg-none": lambda app: unsigned({"alg": "none", "typ": "at+jwt"}, claims_for("bob", issuer="x", audience="y")),
    "alg-none-real-claims": lambda app: unsigned(
        {"alg": "none", "typ": "at+jwt"},
        claims_for("bob", issuer=app.state.reference.settings.issuer, audience=app.state.reference.settings.audience),
    ),
    "alg-NONE": lambda app: unsigned(
        {"alg": "NONE", "typ": "at+jwt"},
        claims_for("bob", issuer=app.state.reference.settings.issuer, audience=app.state.reference.settings.audience),
    ),
    "hs512-real-key": lambda app: sign(
        {"alg": "HS512", "typ": "at+jwt"},
        claims_for("bob", issuer=app.state.reference.settings.issuer, audience=app.state.reference.settings.audience),
        app.state.reference.settings.secret_key,
    ),
    "typ-JWT": lambda app: forged(app, header={"alg": "HS256", "typ": "JWT"}),
    "typ-missing": lambda app: forged(app, header={"alg": "HS256"}),
    "unknown-crit": lambda app: forged(app, header={**AT_HEADER, "crit": ["x-custom"], "x-custom": 1}),
    "no-exp": lambda app: forged(app, exp=REMOVE),
    "no-iat": lambda app: forged(app, iat=REMOVE),
    "no-sub": lambda app: forged(app, sub=REMOVE),
    "no-jti": lambda app: forged(app, jti=REMOVE),
    "no-scope": lambda app: forged(app, scope=REMOVE),
    "no-sid": lambda app: forged(app, sid=REMOVE),
    "jti-int": lambda app: forged(app, jti=42),
    "jti-empty": lambda app: forged(app, jti=""),
    "sid-int": lambda app: forged(app, sid=7),
    "sid-empty": lambda app: forged(app, sid=""),
    "sid-array": lambda app: forged(app, sid=["x"]),
    "scope-array": lambda app: forged(app, scope=["me"]),
    "scope-null": lambda app: forged(app, scope=None),
    "expired-10-min": lambda app: forged(app, exp=int(time.time()) - 600),
    "not-yet-valid": lambda app: forged(app, nbf=int(time.time()) + 600),
    "iat-in-future": lambda app: forged(app, iat=int(time.time()) + 3600),
    "exp-string": lambda app: forged(app, exp="tomorrow"),
    "exp-huge": lambda app: forged(app, exp=10**30),
    "exp-numeric-string": lambda app: forged(app, exp=str(int(time.time()) + 60)),
    "iat-numeric-string": lambda app: forged(app, iat=str(int(time.time()))),
    "lifetime-beyond-ttl": lambda app: forged(app, exp=int(time.time()) + 86_400),
    "wrong-iss": lambda app: forged(app, iss="https://evil.example"),
    "wrong-aud": lambda app: forged(app, aud="another-api"),
    "aud-array-without-us": lambda app: forged(app, aud=["another-api"]),
    "unknown-sub": lambda app: forged(app, subject="ghost"),
    "disabled-sub": lambda app: forged(app, subject="alice"),
    "sub-int": lambda app: forged(app, subject=42),
    "sub-array": lambda app: forged(app, subject=["bob"]),
    "sub-null": lambda app: forged(app, subject=None),
    "sub-empty": lambda app: forged(app, subject=""),
    "sub-10kb": lambda app: forged(app, subject="b" * 10_000),
    "header-not-json": lambda app: "bm90IGpzb24." + forged(app).split(".", 1)[1],
    "five-segments": lambda app: forged(app) + ".a.b",
    "one-megabyte": lambda app: "a" * 1_000_000,
}


@pytest.mark.parametrize("make_token", INVALID_TOKENS.values(), ids=INVALID_TOKENS.keys())
def test_invalid_tokens_get_invalid_token(client: TestClient, app: FastAPI, make_token: Any) -> None:
    token = make_token(app)
    assert_challenge(client.get("/users/me", headers=bearer(token)), error="invalid_token")


def test_the_forging_helper_makes_tokens_the_server_accepts(client: TestClient, app: FastAPI) -> None:
    # Without this, every invalid-token case above could pass for the wrong reason.
    response = client.get("/users/me", headers=bearer(forged(app)))
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "bob"


def test_a_token_stops_working_when_its_user_is_disabled(client: TestClient, app: FastAPI) -> None:
    token = login(client)
    assert client.get("/users/me", headers=bearer(token)).status_code == 200
    app.state.reference.store.set_disabled("bob")
    assert_challenge(client.get("/users/me", headers=bearer(token)), error="invalid_token")
    response = client.post("/token", data={"grant_type": "password", "username": "bob", "password": "x"})
    assert response.json()["error"] == "invalid_grant"


def test_a_token_is_refused_after_its_exp(make_app: Any, contract_validator: Any) -> None:
    app = make_app(access_token_ttl=2, leeway=0)  # whole seconds: exp is at least 1 s after the login
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.event_hooks = {"request": [], "response": [contract_validator.validate_response]}
        token = login(client)
        assert client.get("/users/me", headers=bearer(token)).status_code == 200
        time.sleep(3.1)
        response = client.get("/users/me", headers=bearer(token))
        assert_challenge(response, error="invalid_token")
        assert "expired" in response.json()["detail"]


def test_a_small_leeway_accepts_a_just_expired_token(client: TestClient, app: FastAPI) -> None:
    leeway = app.state.reference.settings.leeway
    assert 0 < leeway <= 60
    response = client.get("/users/me", headers=bearer(forged(app, exp=int(time.time()) - 1)))
    assert response.status_code == 200, response.text


def test_a_token_signed_by_another_server_is_refused(make_app: Any, client: TestClient) -> None:
    other = make_app(secret_key="a-different-secret-of-enough-length-0123456789")
    with TestClient(other, base_url="http://127.0.0.1") as other_client:
        token = login(other_client)
    assert_challenge(client.get("/users/me", headers=bearer(token)), error="invalid_token")


def test_store_calls_leave_the_event_loop_only_for_a_database_across_the_network(app: FastAPI, backend: str) -> None:
    """SQLite's lookups take microseconds on the loop; PostgreSQL's are round trips, made in worker threads so
    that one slow answer does not stall every request of the worker."""
    state = app.state.reference

    async def thread_of_a_store_call() -> int:
        return await state.db(threading.get_ident)

    on_loop = threading.get_ident()
    ran_in = anyio.run(thread_of_a_store_call)
    assert (ran_in != on_loop) is (backend == "postgresql")
