"""The server's tests on both databases: SQLite (the default) and PostgreSQL (a throwaway server).

In the modules named in ``BOTH_DATABASES``, every test that uses ``settings`` (and so ``app``,
``client``, ``make_app``) or ``database`` runs twice: ``[sqlite]`` on a file in ``tmp_path``,
``[postgresql]`` on a fresh database of the session's PostgreSQL server. Elsewhere they run on SQLite.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from reference_impl import Settings

from ..postgres import postgres_cluster, postgres_url

__all__ = ["postgres_cluster", "postgres_url"]  # the fixtures, for the tests of this directory

BOTH_DATABASES = frozenset(
    {
        "test_admin",
        "test_grants",
        "test_protected",
        "test_refresh",
        "test_revoke",
        "test_store",
        "test_throttle",
        "test_token_endpoint",
    }
)
BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and metafunc.module.__name__.rsplit(".", 1)[-1] in BOTH_DATABASES:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database the test runs on: ``sqlite`` unless its module runs on both."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | str:
    """Where the test's data lives: a SQLite file, or the URL of a fresh PostgreSQL database."""
    if backend == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return tmp_path / "users.db"


@pytest.fixture
def settings(settings: Settings, database: Path | str) -> Settings:
    return replace(settings, database_url=database) if isinstance(database, str) else settings
