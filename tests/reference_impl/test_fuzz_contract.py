"""schemathesis against the reference app in-process: every check, positive and negative data,
with real access tokens obtained through the password flow (johndoe, with every scope, so that
the admin operations are fuzzed too).

The schema is loaded at import time (``@schema.parametrize`` needs it then), so this module builds
its own app on a temporary database rather than using the function-scoped fixtures.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS
from schemathesis.generation.modes import GenerationMode

from reference_impl import Settings, create_app
from reference_impl.cli import seed_demo_users

_DATA_DIR = Path(tempfile.mkdtemp(prefix="jwt-fuzz-"))
APP = create_app(
    Settings(
        secret_key=secrets.token_urlsafe(48),
        database=_DATA_DIR / "users.db",
        hash_profile="fast",
        max_concurrent_hashes=2,
    )
)
seed_demo_users(APP.state.reference.store, APP.state.reference.settings)

DEMO_LOGIN = {"grant_type": "password", "username": "johndoe", "password": "secret", "scope": "me items:read admin"}
_config = schemathesis.Config()
_config.projects.default.generation.update(modes=list(GenerationMode))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=_config)


@schema.auth()
class PasswordFlow:
    """A real token from POST /token (johndoe/secret), fetched once and reused."""

    def get(self, case: Any, ctx: Any) -> str:
        with TestClient(APP, base_url="http://127.0.0.1") as client:
            response = client.post("/token", data=DEMO_LOGIN)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module", autouse=True)
def _remove_data_dir() -> Iterator[None]:
    yield
    APP.state.reference.close()
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_the_app_passes_every_schemathesis_check(case: Any) -> None:
    case.call_and_validate(checks=CHECKS.get_all())
