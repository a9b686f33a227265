"""Scopes: what a password grant gets (RFC 6749 §3.3) and what each operation needs (RFC 6750 §3.1, 403)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reference_impl.contract import load_contract
from reference_impl.models import UserInDB
from reference_impl.oauth_errors import BearerError
from reference_impl.scopes import KNOWN_SCOPES, UnknownScopeError, canonical, parse
from reference_impl.security import password_hash_for

from ..conftest import PASSWORD, bearer, login, password_grant, rehash_johndoe
from ..jwt_craft import AT_HEADER, claims_for, sign

PROTECTED = {("GET", "/users/me"): "me", ("GET", "/protected-resource"): "items:read"}
ADMIN = {("GET", "/users"): "admin", ("POST", "/users"): "admin"}
NEEDED: dict[tuple[str, str], str] = {**PROTECTED, **ADMIN}
NEW_USER = {"username": "newcomer", "password": "a long enough password"}


@pytest.fixture(autouse=True)
def _fast_johndoe(app: FastAPI) -> None:
    rehash_johndoe(app)


def token_answer(client: TestClient, username: str, password: str, scope: str | None = None) -> Any:
    data = {"grant_type": "password", "username": username, "password": password}
    if scope is not None:
        data["scope"] = scope
    return client.post("/token", data=data)


def add_user(app: FastAPI, name: str, scopes: list[str]) -> None:
    hashed = password_hash_for("fast").hash(PASSWORD)
    app.state.reference.store.add(UserInDB(username=name, hashed_password=hashed, scopes=scopes))


def call(client: TestClient, method: str, path: str, token: str | None) -> Any:
    headers = bearer(token) if token is not None else {}
    if method == "POST":
        return client.post(path, json={**NEW_USER, "username": f"user-{uuid.uuid4().hex[:8]}"}, headers=headers)
    return client.get(path, headers=headers)


def contract_scopes() -> dict[tuple[str, str], str]:
    """(method, path) -> the one scope the contract's security requirements name for the operation."""
    found = {}
    for path, item in load_contract()["paths"].items():
        for method, operation in item.items():
            names = {name for requirement in operation.get("security", []) for v in requirement.values() for name in v}
            if names:
                assert len(names) == 1, (method, path, names)
                found[(method.upper(), path)] = names.pop()
    return found


# --- granting -----------------------------------------------------------------------------------


def test_without_scope_a_user_gets_its_scopes_except_admin(client: TestClient) -> None:
    assert password_grant(client)["scope"] == "me items:read"
    johndoe = password_grant(client, "johndoe", "secret")
    assert johndoe["scope"] == "me items:read"
    assert jwt.decode(johndoe["access_token"], options={"verify_signature": False})["scope"] == "me items:read"


@pytest.mark.parametrize(
    ("asked", "granted"),
    [
        ("admin", "admin"),
        ("me admin", "me admin"),
        ("admin me", "me admin"),
        ("admin items:read me", "me items:read admin"),
        ("me me", "me"),
        ("items:read", "items:read"),
        ("  me   admin ", "me admin"),
    ],
)
def test_admin_is_granted_when_asked_for_in_canonical_order(client: TestClient, asked: str, granted: str) -> None:
    body = password_grant(client, "johndoe", "secret", scope=asked)
    assert body["scope"] == granted
    assert jwt.decode(body["access_token"], options={"verify_signature": False})["scope"] == granted


def test_the_grant_is_the_scopes_asked_for_that_the_user_holds(client: TestClient) -> None:
    assert password_grant(client, scope="me admin")["scope"] == "me"
    assert password_grant(client, scope="items:read admin")["scope"] == "items:read"


def test_asking_only_for_scopes_the_user_lacks_is_invalid_scope(client: TestClient) -> None:
    response = token_answer(client, "bob", PASSWORD, "admin")
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("scope", ["write", "me write", "ME", "me,items:read", "items:write", "admin\tme"])
def test_an_unknown_scope_is_invalid_scope_before_the_password_is_checked(
    client: TestClient, app: FastAPI, scope: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    passwords = app.state.reference.passwords
    verified: list[str] = []
    real_verify = passwords.verify

    async def counting_verify(password: str, hashed: str | None) -> Any:
        verified.append(password)
        return await real_verify(password, hashed)

    monkeypatch.setattr(passwords, "verify", counting_verify)
    assert token_answer(client, "johndoe", "wrong password").json()["error"] == "invalid_grant"
    assert verified == ["wrong password"]  # the counter sees logins
    response = token_answer(client, "johndoe", "wrong password", scope)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "invalid_scope",
        "error_description": "Unknown scope: this server defines me, items:read, admin",
    }
    assert verified == ["wrong password"]  # no second verification: refused before the password


def test_a_wrong_password_with_a_scope_is_still_the_one_invalid_grant(client: TestClient) -> None:
    for username, password in [("bob", "wrong"), ("nobody", "wrong"), ("alice", "secretalice")]:
        response = token_answer(client, username, password, "admin")
        assert response.json() == {"error": "invalid_grant", "error_description": "Incorrect username or password"}


def test_a_user_without_default_scopes_must_ask(client: TestClient, app: FastAPI) -> None:
    add_user(app, "root", ["admin"])
    add_user(app, "nothing", [])
    response = token_answer(client, "root", PASSWORD)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert password_grant(client, "root", scope="admin")["scope"] == "admin"
    for scope in (None, "me"):
        assert token_answer(client, "nothing", PASSWORD, scope).json()["error"] == "invalid_scope"


def test_scope_helpers_keep_the_canonical_order_and_name_the_valid_scopes() -> None:
    assert canonical(["admin", "me", "admin"]) == ("me", "admin")
    assert parse("items:read  me") == ("me", "items:read")
    assert parse("") == ()
    with pytest.raises(UnknownScopeError, match="use one or more of me, items:read, admin"):
        parse("me root")
    assert KNOWN_SCOPES == ("me", "items:read", "admin")


# --- enforcing ----------------------------------------------------------------------------------


def test_the_app_enforces_exactly_the_scopes_the_contract_names() -> None:
    assert contract_scopes() == NEEDED


@pytest.mark.parametrize(("method", "path"), list(NEEDED), ids=lambda v: str(v))
def test_a_valid_token_without_the_scope_gets_403_insufficient_scope(
    client: TestClient, method: str, path: str
) -> None:
    needed = NEEDED[(method, path)]
    others = " ".join(s for s in KNOWN_SCOPES if s != needed)
    token = login(client, "johndoe", "secret", scope=others)
    response = call(client, method, path, token)
    assert response.status_code == 403, response.text
    description = f"The access token does not grant the {needed} scope"
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="jwt-reference", error="insufficient_scope", error_description="{description}", scope="{needed}"'
    )
    assert response.json() == {"detail": description, "error": "insufficient_scope"}
    with_scope = call(client, method, path, login(client, "johndoe", "secret", scope=needed))
    assert with_scope.status_code in (200, 201), with_scope.text


@pytest.mark.parametrize(("method", "path"), list(NEEDED), ids=lambda v: str(v))
def test_an_invalid_or_missing_token_is_401_before_any_scope_check(client: TestClient, method: str, path: str) -> None:
    assert call(client, method, path, None).status_code == 401
    response = call(client, method, path, "not.a.token")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_a_forged_scope_claim_does_not_give_a_user_a_scope_it_lacks(client: TestClient, app: FastAPI) -> None:
    settings = app.state.reference.settings
    claims = claims_for("bob", issuer=settings.issuer, audience=settings.audience, scope="me admin", sid="a" * 32)
    token = sign(AT_HEADER, claims, settings.secret_key)  # as if bob's admin scope had been taken away
    assert client.get("/users/me", headers=bearer(token)).status_code == 200
    response = client.get("/users", headers=bearer(token))
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "insufficient_scope"


def test_the_scope_claim_is_matched_as_whole_space_delimited_words(client: TestClient, app: FastAPI) -> None:
    settings = app.state.reference.settings
    for scope in ("items:read:extra", "mee", "me,items:read", ""):
        claims = claims_for("bob", issuer=settings.issuer, audience=settings.audience, scope=scope, sid="b" * 32)
        response = client.get("/protected-resource", headers=bearer(sign(AT_HEADER, claims, settings.secret_key)))
        assert response.status_code == 403, (scope, response.text)


def test_the_challenge_of_each_scope_matches_the_contract_pattern() -> None:
    pattern = load_contract()["components"]["headers"]["WWWAuthenticateBearer"]["schema"]["pattern"]
    for scope in KNOWN_SCOPES:
        response = BearerError(f"needs {scope}", "insufficient_scope", scope).response("realm")
        assert response.status_code == 403
        assert re.search(pattern, response.headers["www-authenticate"]), response.headers["www-authenticate"]


def test_insufficient_scope_and_only_it_carries_a_scope() -> None:
    with pytest.raises(ValueError, match="needs the scope"):
        BearerError("x", "insufficient_scope")
    with pytest.raises(ValueError, match="needs the scope"):
        BearerError("x", "invalid_token", "me")
