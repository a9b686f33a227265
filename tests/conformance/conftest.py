"""Fixtures for the conformance tests: the reference app with the users the harness config names."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from reference_impl.models import UserInDB
from reference_impl.security import password_hash_for

from ..conftest import AppFactory
from .harness import SECOND


def _add_second_user(app: FastAPI) -> None:
    store = app.state.reference.store
    if store.get(SECOND.username) is None:
        hashed = password_hash_for("fast").hash(SECOND.password)
        store.add(
            UserInDB(username=SECOND.username, email="carol@example.com", full_name="Carol", hashed_password=hashed)
        )


@pytest.fixture
def reference(make_app: AppFactory) -> FastAPI:
    """The reference app with bob (primary), carol (second) and the disabled alice."""
    app = make_app()
    store = app.state.reference.store
    if store.get(SECOND.username) is None:
        hashed = password_hash_for("fast").hash(SECOND.password)
        store.add(
            UserInDB(username=SECOND.username, email="carol@example.com", full_name="Carol", hashed_password=hashed)
        )
    return app


@pytest.fixture
def make_reference(make_app: AppFactory) -> Any:
    """Build further reference apps with changed settings (e.g. ``access_token_ttl=2``), users included."""

    def factory(**changes: Any) -> FastAPI:
        app = make_app(**changes)
        _add_second_user(app)
        return app

    return factory
