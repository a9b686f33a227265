"""Shared fixtures: settings on a temporary database, the reference app, contract-checked clients."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reference_impl import Settings, create_app
from reference_impl.cli import seed_demo_users
from reference_impl.models import UserInDB
from reference_impl.security import password_hash_for

from .contract_validation import ContractValidator

# The seed tutorial's bcrypt hash (cost 12) of "secret".
SEED_BCRYPT_HASH = "$2b$12$EixZaYVK1fsbw1ZfbX3OXePaWxn96p36WQoeG6Lruj3vjPGga31lW"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def contract_validator() -> ContractValidator:
    return ContractValidator()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        secret_key=secrets.token_urlsafe(48),
        database=tmp_path / "users.db",
        hash_profile="fast",
        max_concurrent_hashes=2,
        login_max_failures=0,  # throttling off: the tests make many failed logins (test_throttle.py turns it on)
        login_max_failures_per_client=0,
    )


AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_app(settings: Settings) -> Iterator[AppFactory]:
    """Build a reference app, optionally with changed settings; it holds bob (active) and the demo users."""
    made: list[FastAPI] = []

    def factory(**changes: Any) -> FastAPI:
        app_settings = replace(settings, **changes)
        app = create_app(app_settings)
        store = app.state.reference.store
        seed_demo_users(store, app_settings)
        if store.get("bob") is None:
            hashed = password_hash_for("fast").hash(PASSWORD)
            store.add(UserInDB(username="bob", email="bob@example.com", full_name="Bob", hashed_password=hashed))
        made.append(app)
        return app

    yield factory
    for app in made:
        app.state.reference.close()


@pytest.fixture
def app(make_app: AppFactory) -> FastAPI:
    return make_app()


def rehash_johndoe(app: FastAPI) -> None:
    """Replace johndoe's seed bcrypt hash (cost 12, a quarter second a login) with a fast Argon2id one of "secret"."""
    store = app.state.reference.store
    store.update_hash("johndoe", SEED_BCRYPT_HASH, password_hash_for("fast").hash("secret"))


@pytest.fixture
def client(app: FastAPI, contract_validator: ContractValidator) -> Iterator[TestClient]:
    """A TestClient whose every response must conform to openapi.yaml."""
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        test_client.event_hooks = {"request": [], "response": [contract_validator.validate_response]}
        yield test_client


@pytest.fixture
def raw_client(app: FastAPI) -> Iterator[TestClient]:
    """A TestClient without contract validation, for answers outside the contract (404, 405, docs)."""
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def password_grant(
    client: TestClient, username: str = "bob", password: str = PASSWORD, scope: str | None = None
) -> dict[str, Any]:
    """A successful password grant's answer (access_token, refresh_token, scope, ...)."""
    data = {"grant_type": "password", "username": username, "password": password}
    if scope is not None:
        data["scope"] = scope
    response = client.post("/token", data=data)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def login(client: TestClient, username: str = "bob", password: str = PASSWORD, scope: str | None = None) -> str:
    token: str = password_grant(client, username, password, scope)["access_token"]
    return token


def refresh(client: TestClient, refresh_token: str, scope: str | None = None) -> Any:
    """``POST /token`` with ``grant_type=refresh_token``: the raw response."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope is not None:
        data["scope"] = scope
    return client.post("/token", data=data)


def revoke(client: TestClient, token: str, hint: str | None = None) -> Any:
    """``POST /revoke``: the raw response."""
    data = {"token": token}
    if hint is not None:
        data["token_type_hint"] = hint
    return client.post("/revoke", data=data)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def validated_client(app: FastAPI, contract_validator: ContractValidator) -> TestClient:
    """A TestClient for ``app`` (e.g. one from ``make_app``) whose every response must conform to openapi.yaml;
    use it as a context manager."""
    test_client = TestClient(app, base_url="http://127.0.0.1")
    test_client.event_hooks = {"request": [], "response": [contract_validator.validate_response]}
    return test_client
