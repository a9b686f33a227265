"""GET /users and POST /users: the admin scope, the UserCreate body, 400 (never 422) and 409."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ..conftest import bearer, login, password_grant, rehash_johndoe

HASH_MARKERS = ("$argon2", "$2b$", "hashed_password")
NEW_USER = {"username": "dana", "password": "dana's long password"}


@pytest.fixture(autouse=True)
def _fast_johndoe(app: FastAPI) -> None:
    rehash_johndoe(app)


@pytest.fixture
def admin(client: TestClient) -> dict[str, str]:
    """johndoe's Authorization header, with the admin scope asked for."""
    return bearer(login(client, "johndoe", "secret", scope="admin"))


def create(client: TestClient, headers: dict[str, str], body: Any = None, **kwargs: Any) -> Any:
    return client.post("/users", json=NEW_USER if body is None else body, headers=headers, **kwargs)


def post_raw(client: TestClient, headers: dict[str, str], content: bytes, content_type: str) -> Any:
    return client.post("/users", content=content, headers={**headers, "content-type": content_type})


def assert_refused(response: Any, status: int = 400, fragment: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"}, body
    assert fragment.lower() in body["detail"].lower(), body


# --- GET /users -----------------------------------------------------------------------------------


def test_an_admin_lists_every_user_by_username_never_a_hash(client: TestClient, admin: dict[str, str]) -> None:
    response = client.get("/users", headers=admin)
    assert response.status_code == 200, response.text
    assert "private" in response.headers["cache-control"]
    assert "no-store" in response.headers["cache-control"]
    users = response.json()
    assert [u["username"] for u in users] == ["alice", "bob", "johndoe"]
    assert users[0] == {
        "username": "alice",
        "email": "alice@example.com",
        "full_name": "Alice Wonderson",
        "disabled": True,
        "scopes": ["me", "items:read"],
    }
    assert users[2]["scopes"] == ["me", "items:read", "admin"]
    for marker in HASH_MARKERS:
        assert marker not in response.text


def test_listing_users_needs_the_admin_scope(client: TestClient) -> None:
    for token in (login(client), login(client, "johndoe", "secret")):  # bob; johndoe without asking for admin
        response = client.get("/users", headers=bearer(token))
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "insufficient_scope"
        assert "bob" not in response.text
    assert client.get("/users").status_code == 401


# --- POST /users ----------------------------------------------------------------------------------


def test_an_admin_adds_a_user_who_can_then_log_in(client: TestClient, app: FastAPI, admin: dict[str, str]) -> None:
    response = create(client, admin, {**NEW_USER, "email": "dana@example.com", "full_name": "Dana Scully"})
    assert response.status_code == 201, response.text
    assert "private" in response.headers["cache-control"]
    assert response.json() == {
        "username": "dana",
        "email": "dana@example.com",
        "full_name": "Dana Scully",
        "disabled": False,
        "scopes": ["me", "items:read"],
    }
    stored = app.state.reference.store.get("dana")
    assert stored.hashed_password.startswith("$argon2id$")
    assert NEW_USER["password"] not in stored.hashed_password
    body = password_grant(client, "dana", NEW_USER["password"])
    assert body["scope"] == "me items:read"
    assert client.get("/users/me", headers=bearer(body["access_token"])).json()["username"] == "dana"
    assert [u["username"] for u in client.get("/users", headers=admin).json()] == ["alice", "bob", "dana", "johndoe"]


@pytest.mark.parametrize(
    ("scopes", "stored"),
    [
        ([], []),
        (["admin"], ["admin"]),
        (["admin", "me"], ["me", "admin"]),
        (["items:read", "admin", "me"], ["me", "items:read", "admin"]),
    ],
)
def test_the_scopes_are_kept_in_canonical_order(
    client: TestClient, admin: dict[str, str], scopes: list[str], stored: list[str]
) -> None:
    response = create(client, admin, {**NEW_USER, "scopes": scopes})
    assert response.status_code == 201, response.text
    assert response.json()["scopes"] == stored
    listed = {u["username"]: u for u in client.get("/users", headers=admin).json()}
    assert listed["dana"]["scopes"] == stored


def test_nulls_are_accepted_for_email_and_full_name(client: TestClient, admin: dict[str, str]) -> None:
    response = create(client, admin, {**NEW_USER, "email": None, "full_name": None})
    assert response.status_code == 201, response.text
    assert response.json()["email"] is None


def test_a_nul_character_is_stored_where_the_database_can_hold_it_else_400(
    client: TestClient, admin: dict[str, str], backend: str
) -> None:
    response = create(client, admin, {**NEW_USER, "full_name": "Nul\u0000Name"})
    if backend == "sqlite":
        assert response.status_code == 201, response.text
        assert response.json()["full_name"] == "Nul\x00Name"
    else:  # PostgreSQL's text cannot hold NUL: refused, never a 500
        assert_refused(response, 400, "PostgreSQL cannot store the character NUL")
        assert NEW_USER["username"] not in {user["username"] for user in client.get("/users", headers=admin).json()}


def test_a_taken_username_is_409_and_the_user_is_untouched(
    client: TestClient, app: FastAPI, admin: dict[str, str]
) -> None:
    before = app.state.reference.store.get("bob")
    response = create(client, admin, {"username": "bob", "password": "another password", "scopes": ["admin"]})
    assert_refused(response, 409, "bob")
    assert app.state.reference.store.get("bob") == before


def test_the_password_is_hashed_off_the_event_loop(client: TestClient, app: FastAPI, admin: dict[str, str]) -> None:
    passwords = app.state.reference.passwords
    inner = passwords._hash
    where: list[tuple[str, bool]] = []

    class Recording:
        def hash(self, password: str) -> str:
            try:
                asyncio.get_running_loop()
                on_loop = True
            except RuntimeError:
                on_loop = False
            where.append((threading.current_thread().name, on_loop))
            return str(inner.hash(password))

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

    passwords._hash = Recording()
    assert create(client, admin).status_code == 201
    assert len(where) == 1
    name, on_loop = where[0]
    assert name.startswith("password-hash")
    assert not on_loop


BAD_BODIES = {
    "not-json": (b"{username: dana}", "not valid JSON"),
    "truncated-json": (b'{"username": "dana", "password": "long enough"', "not valid JSON"),
    "array": (b'["dana", "long enough"]', "object"),
    "string": (b'"dana"', "object"),
    "null": (b"null", "object"),
    "username-int": (json.dumps({"username": 1, "password": "long enough"}).encode(), "username"),
    "password-null": (json.dumps({"username": "dana", "password": None}).encode(), "password"),
    "disabled-field": (json.dumps({**NEW_USER, "disabled": True}).encode(), "disabled"),
    "unknown-field": (json.dumps({**NEW_USER, "role": "admin"}).encode(), "role"),
    "hashed-password-field": (json.dumps({**NEW_USER, "hashed_password": "$argon2id$x"}).encode(), "hashed_password"),
    "missing-password": (json.dumps({"username": "dana"}).encode(), "password"),
    "missing-username": (json.dumps({"password": "long enough"}).encode(), "username"),
    "short-password": (json.dumps({"username": "dana", "password": "7 chars"}).encode(), "password"),
    "long-password": (json.dumps({"username": "dana", "password": "p" * 1025}).encode(), "password"),
    "empty-username": (json.dumps({**NEW_USER, "username": ""}).encode(), "username"),
    "long-username": (json.dumps({**NEW_USER, "username": "u" * 151}).encode(), "username"),
    "leading-space": (json.dumps({**NEW_USER, "username": " dana"}).encode(), "username"),
    "trailing-tab": (json.dumps({**NEW_USER, "username": "dana\t"}).encode(), "username"),
    "inner-newline": (json.dumps({**NEW_USER, "username": "da\nna"}).encode(), "username"),
    "long-email": (json.dumps({**NEW_USER, "email": "e" * 321}).encode(), "email"),
    "long-full-name": (json.dumps({**NEW_USER, "full_name": "f" * 201}).encode(), "full_name"),
    "unknown-scope": (json.dumps({**NEW_USER, "scopes": ["me", "root"]}).encode(), "unknown scope 'root'"),
    "scope-case": (json.dumps({**NEW_USER, "scopes": ["ADMIN"]}).encode(), "unknown scope"),
    "repeated-scope": (json.dumps({**NEW_USER, "scopes": ["me", "me"]}).encode(), "unique"),
    "scopes-string": (json.dumps({**NEW_USER, "scopes": "me admin"}).encode(), "scopes"),
    "scopes-null": (json.dumps({**NEW_USER, "scopes": None}).encode(), "scopes"),
    "scope-int": (json.dumps({**NEW_USER, "scopes": [1]}).encode(), "scopes"),
}


@pytest.mark.parametrize(("content", "fragment"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_an_invalid_body_is_400_with_a_detail_never_422(
    client: TestClient, app: FastAPI, admin: dict[str, str], content: bytes, fragment: str
) -> None:
    assert_refused(post_raw(client, admin, content, "application/json"), 400, fragment)
    assert app.state.reference.store.get("dana") is None
    assert len(app.state.reference.store.list()) == 3


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "", "application/json-patch+json"]
)
def test_a_body_that_is_not_json_by_content_type_is_400(
    client: TestClient, admin: dict[str, str], content_type: str
) -> None:
    assert_refused(post_raw(client, admin, json.dumps(NEW_USER).encode(), content_type), 400, "application/json")


def test_a_json_content_type_with_a_charset_is_accepted(client: TestClient, admin: dict[str, str]) -> None:
    response = post_raw(client, admin, json.dumps(NEW_USER).encode(), "application/json; charset=utf-8")
    assert response.status_code == 201, response.text


def test_an_oversized_body_is_400(client: TestClient, admin: dict[str, str]) -> None:
    content = json.dumps({**NEW_USER, "full_name": "f" * 100_000}).encode()
    assert_refused(post_raw(client, admin, content, "application/json"), 400, "too large")


def test_a_username_the_contract_allows_is_accepted_whatever_it_holds(
    client: TestClient, app: FastAPI, admin: dict[str, str]
) -> None:
    # UserCreate.username forbids whitespace at either end and C0 control characters (they would reach logs).
    for name in ("Dana Scully", "zoë", "x\x93y", "名前", "u" * 150):
        response = create(client, admin, {**NEW_USER, "username": name})
        assert response.status_code == 201, (name, response.text)
        assert app.state.reference.store.get(name) is not None
    for name in ("tab\tbed", "new\nline", "nul\x00", "del\x7f", " lead", "trail "):
        response = create(client, admin, {**NEW_USER, "username": name})
        assert response.status_code == 400, (name, response.text)
        assert app.state.reference.store.get(name) is None


def test_adding_users_needs_the_admin_scope_and_the_token_comes_before_the_body(
    client: TestClient, app: FastAPI
) -> None:
    bob = bearer(login(client))
    response = create(client, bob)
    assert response.status_code == 403, response.text
    assert response.headers["www-authenticate"].endswith('scope="admin"')
    assert client.post("/users", json=NEW_USER).status_code == 401
    # A bad body without a token, or with a token lacking the scope, is refused for the token first.
    assert post_raw(client, {}, b"not json", "application/json").status_code == 401
    assert post_raw(client, bob, b"not json", "application/json").status_code == 403
    assert app.state.reference.store.get("dana") is None


def test_an_admin_token_stops_working_for_a_disabled_admin(
    client: TestClient, app: FastAPI, admin: dict[str, str]
) -> None:
    app.state.reference.store.set_disabled("johndoe")
    response = client.get("/users", headers=admin)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"


def test_put_on_users_is_405_listing_both_methods(raw_client: TestClient) -> None:
    response = raw_client.put("/users")
    assert response.status_code == 405
    assert {method.strip() for method in response.headers["allow"].split(",")} == {"GET", "POST"}
