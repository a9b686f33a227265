"""PostgreSQL behind the reference server: configuration, schema and migration, errors of the moment, secrets."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_impl.database import POSTGRES_INSTALL, open_database, redacted
from reference_impl.dev_secret import load_or_create_shared_dev_secret
from reference_impl.errors import DatabaseUnavailableError, SettingsError, UserStoreError
from reference_impl.grants import GrantStore
from reference_impl.models import UserInDB
from reference_impl.settings import PREFIX, load_settings
from reference_impl.store import UserStore
from reference_impl.throttle import LoginThrottle

from ..postgres import PostgresCluster, running_cluster, unavailable_reason
from ..server_process import JWT_REFERENCE, free_port

PASSWORD_IN_URL = "hunter2-not-for-logs"


def user(name: str, **changes: object) -> UserInDB:
    return UserInDB(username=name, hashed_password="$argon2id$placeholder", **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["sqlite:///x.db", "mysql://u@h/db", "http://127.0.0.1/", "users.db"])
def test_a_database_url_must_be_a_postgresql_url(url: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({PREFIX + "DATABASE_URL": url})
    assert str(raised.value) == (
        f"{PREFIX}DATABASE_URL must be a postgresql:// URL (postgresql://user:password@host:5432/name); "
        f"for a SQLite file use {PREFIX}DATABASE"
    )


def test_the_url_is_not_in_the_settings_repr() -> None:
    settings = load_settings({PREFIX + "DATABASE_URL": f"postgresql://u:{PASSWORD_IN_URL}@db/app"})
    assert settings.database_url == f"postgresql://u:{PASSWORD_IN_URL}@db/app"
    assert settings.database_target == settings.database_url
    assert PASSWORD_IN_URL not in repr(settings)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cr%40t@db:5432/auth", "postgresql://app:***@db:5432/auth"),
        ("postgresql://app@db/auth", "postgresql://app@db/auth"),
        (
            "postgresql://db/auth?user=app&password=s3cret&sslmode=require",
            "postgresql://db/auth?user=app&password=***&sslmode=require",
        ),
        ("postgres://:pw@/auth?host=/run/postgresql", "postgres://:***@/auth?host=%2Frun%2Fpostgresql"),
    ],
)
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert redacted(url) == shown


def test_a_url_without_psycopg_installed_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # an import of psycopg now raises ImportError
    monkeypatch.delitem(sys.modules, "reference_impl.postgres", raising=False)
    with pytest.raises(SettingsError) as raised:
        open_database(f"postgresql://app:{PASSWORD_IN_URL}@127.0.0.1/auth")
    message = str(raised.value)
    assert message.startswith("postgresql://app:***@127.0.0.1/auth is a PostgreSQL database, and PostgreSQL support")
    assert message.endswith(f": {POSTGRES_INSTALL}")
    assert PASSWORD_IN_URL not in message and "\n" not in message


def test_an_unreachable_database_is_one_line_without_the_password() -> None:
    if unavailable_reason() and "psycopg" in str(unavailable_reason()):
        pytest.skip("psycopg is not installed")
    url = f"postgresql://app:{PASSWORD_IN_URL}@127.0.0.1:{free_port()}/auth?connect_timeout=1"
    result = subprocess.run(
        [str(JWT_REFERENCE), "--database-url", url, "users", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert PASSWORD_IN_URL not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: cannot open the database postgresql://app:***@127.0.0.1:{url.split(':')[3]}")
    assert "Traceback" not in result.stderr


def test_the_cli_manages_users_in_postgresql(postgres_url: str) -> None:
    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(JWT_REFERENCE), "--database-url", postgres_url, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    added = cli("users", "add", "carol", "--password-stdin", stdin="correct horse\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout == f"added user carol to {redacted(postgres_url)}\n"
    assert cli("users", "disable", "carol").returncode == 0
    listed = cli("users", "list")
    assert listed.stdout == "carol\tdisabled\t-\t-\tme items:read\n"


def test_a_users_table_without_the_scopes_column_is_migrated(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE users (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, username TEXT NOT NULL UNIQUE,"
            " email TEXT, full_name TEXT, hashed_password TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,"
            " created_at TEXT NOT NULL DEFAULT 'then')"
        )
        conn.execute("INSERT INTO users (username, hashed_password, disabled) VALUES ('olduser', '$argon2id$old', 1)")
    store = UserStore(postgres_url)
    try:
        old = store.get("olduser")
        assert old is not None and old.disabled and old.scopes == ["me", "items:read"]
        store.add(user("newuser", scopes=["admin"]))
        assert store.get("newuser").scopes == ["admin"]  # type: ignore[union-attr]
    finally:
        store.close()
    again = UserStore(postgres_url)  # nothing left to migrate
    assert [u.username for u in again.list()] == ["newuser", "olduser"]
    again.close()


def test_instances_creating_the_schema_at_once_all_succeed(postgres_url: str) -> None:
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []
    opened: list[UserStore | GrantStore | LoginThrottle] = []
    lock = threading.Lock()

    def open_all() -> None:
        barrier.wait()
        try:
            stores = (
                UserStore(postgres_url),
                GrantStore(postgres_url, 600, 905),
                LoginThrottle(postgres_url, per_username=3, per_client=3, window_s=60),
            )
            with lock:
                opened.extend(stores)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=open_all) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert not errors, errors
        assert len(opened) == 18
    finally:
        for store in opened:
            store.close()


def test_nul_characters_never_reach_postgresql(postgres_url: str) -> None:
    store = UserStore(postgres_url)
    try:
        store.add(user("bob"))
        assert store.get("bo\x00b") is None
        with pytest.raises(UserStoreError, match="NUL"):
            store.add(user("carol", full_name="Carol\x00"))
        assert store.get("carol") is None
    finally:
        store.close()


def test_sql_defects_are_not_mistaken_for_an_unavailable_database(postgres_url: str) -> None:
    import psycopg

    store = UserStore(postgres_url)
    try:
        with pytest.raises(psycopg.errors.UndefinedColumn):
            store.fetchone("SELECT no_such_column FROM users")
        assert store.ping()
    finally:
        store.close()


def test_connections_ended_by_the_server_are_replaced_by_themselves(postgres_url: str) -> None:
    import psycopg

    store = UserStore(postgres_url)
    try:
        store.add(user("bob"))
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'jwt-reference' AND pid <> pg_backend_pid()"
            ).fetchone()
        assert ended is not None and ended[0] >= 1
        outcomes = []
        for _ in range(20):
            try:
                outcomes.append(store.get("bob") is not None)
            except DatabaseUnavailableError as exc:
                assert "terminating connection due to administrator command" in str(exc) or "closed" in str(exc)
                outcomes.append(False)
        assert outcomes[-10:] == [True] * 10  # the broken connections are gone, new ones serve
    finally:
        store.close()


def test_dev_secret_is_one_row_shared_by_every_instance(postgres_url: str) -> None:
    secrets = set()
    threads = [
        threading.Thread(target=lambda: secrets.add(load_or_create_shared_dev_secret(postgres_url))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(secrets) == 1
    assert len(secrets.pop()) >= 32


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this test alone (it is stopped and started again)."""
    with running_cluster() as cluster:
        yield cluster


def test_a_stopped_server_is_unavailable_and_its_return_is_noticed(own_cluster: PostgresCluster) -> None:
    store = UserStore(own_cluster.url())
    grants = GrantStore(store.database, 600, 905)
    try:
        store.add(user("bob"))
        own_cluster.stop("immediate")
        for _ in range(5):
            with pytest.raises(DatabaseUnavailableError):
                store.get("bob")
            with pytest.raises(DatabaseUnavailableError):
                grants.is_revoked("j", "s")
            with pytest.raises(DatabaseUnavailableError):
                grants.start_family("bob", ("me",))
        own_cluster.start()
        import time

        deadline = time.monotonic() + 20
        while True:
            try:
                assert store.get("bob") is not None
                break
            except DatabaseUnavailableError:
                assert time.monotonic() < deadline, "the pool did not reconnect within 20 s"
                time.sleep(0.1)
        assert not grants.is_revoked("j", "s")
    finally:
        grants.close()
        store.close()


def test_without_a_postgresql_server_the_tests_skip_locally_and_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    from .. import postgres

    monkeypatch.setattr(postgres, "find_binaries", lambda: None)
    reason = postgres.unavailable_reason()
    assert reason is not None and reason.startswith("no PostgreSQL server binaries")
    monkeypatch.delenv(postgres.REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL server binaries"):
        postgres.skip_or_fail(reason)
    monkeypatch.setenv(postgres.REQUIRE, "1")
    with pytest.raises(
        pytest.fail.Exception, match=r"PostgreSQL is required here \(JWT_REF_TESTS_REQUIRE_POSTGRES=1\)"
    ):
        postgres.skip_or_fail(reason)


def test_the_server_binaries_are_found_without_a_fixed_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from .. import postgres

    bin_dir = tmp_path / "pg" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("initdb", "pg_ctl", "postgres"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/nonexistent")
    assert postgres.find_binaries() == bin_dir
