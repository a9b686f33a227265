"""The user store (SQLite and PostgreSQL): persistence, parameterized SQL, concurrent use."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from reference_impl.contract import load_contract
from reference_impl.errors import DuplicateUserError, UserStoreError
from reference_impl.models import MAX_USERNAME_CHARS, USERNAME_PATTERN, UserInDB
from reference_impl.store import UserStore


def user(name: str, **changes: object) -> UserInDB:
    return UserInDB(username=name, hashed_password="$argon2id$placeholder", **changes)  # type: ignore[arg-type]


def test_users_survive_reopening_the_database(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "users.db"
    store = UserStore(path)
    store.add(user("carol", email="carol@example.com", full_name="Carol"))
    store.close()
    reopened = UserStore(path)
    assert reopened.get("carol") == user("carol", email="carol@example.com", full_name="Carol")
    reopened.close()


def test_the_database_runs_in_wal_mode(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.db")
    with store._locked() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    store.close()


@pytest.mark.parametrize("name", ["x' OR '1'='1", "'; DROP TABLE users; --", 'bob"', "名前", "a%b_c"])
def test_usernames_are_data_never_sql(database: Path | str, name: str) -> None:
    store = UserStore(database)
    store.add(user("bob"))
    assert store.get(name) is None
    store.add(user(name))
    assert store.get(name) is not None
    assert {u.username for u in store.list()} == {"bob", name}
    store.close()


@pytest.mark.parametrize("name", ["", " bob", "bob ", "\tbob", "bob\u3000", "b\nob", "x" * 151])
def test_invalid_usernames_are_refused_with_a_clear_error(database: Path | str, name: str) -> None:
    store = UserStore(database)
    with pytest.raises(UserStoreError, match="invalid username"):
        store.add(user(name))
    store.close()


def test_duplicate_and_unknown_users_raise_store_errors(database: Path | str) -> None:
    store = UserStore(database)
    store.add(user("bob"))
    with pytest.raises(DuplicateUserError, match="already exists"):
        store.add(user("bob"))
    with pytest.raises(UserStoreError, match="no user named"):
        store.set_disabled("ghost")
    store.close()


def test_update_hash_only_replaces_the_hash_it_verified(database: Path | str) -> None:
    store = UserStore(database)
    store.add(user("bob"))
    store.update_hash("bob", "$argon2id$stale", "$argon2id$new")
    assert store.get("bob").hashed_password == "$argon2id$placeholder"  # type: ignore[union-attr]
    store.update_hash("bob", "$argon2id$placeholder", "$argon2id$new")
    assert store.get("bob").hashed_password == "$argon2id$new"  # type: ignore[union-attr]
    store.close()


def test_concurrent_reads_and_writes_from_threads_and_a_second_connection(database: Path | str) -> None:
    path = database
    store, other = UserStore(path), UserStore(path)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(50):
                target = store if i % 2 else other
                target.add(user(f"u{worker}-{i}"))
                assert target.get(f"u{worker}-{i}") is not None
                store.set_disabled(f"u{worker}-{i}")
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    everyone = store.list()
    assert len(everyone) == 400
    assert all(u.disabled for u in everyone)
    store.close()
    other.close()


@pytest.mark.parametrize("name", ["x\x93y", "Dana Scully", "名前", "u" * 150])
def test_usernames_the_contract_allows_are_stored_as_they_are(database: Path | str, name: str) -> None:
    store = UserStore(database)
    store.add(user(name))
    assert store.get(name) == user(name)
    assert store.get(name[:-1] + "?") is None
    store.close()


@pytest.mark.parametrize("name", ["bo\x00b", "a\tb", "new\nline", "del\x7f", " lead", "trail "])
def test_control_characters_and_outer_whitespace_are_refused(database: Path | str, name: str) -> None:
    store = UserStore(database)
    with pytest.raises(UserStoreError, match="invalid username"):
        store.add(user(name))
    store.close()


def test_the_username_rule_is_the_contracts() -> None:
    schema = load_contract()["components"]["schemas"]["UserCreate"]["properties"]["username"]
    assert USERNAME_PATTERN.pattern == schema["pattern"]
    assert (schema["minLength"], schema["maxLength"]) == (1, MAX_USERNAME_CHARS)


def test_scopes_are_stored_in_canonical_order_and_default_to_me_and_items_read(database: Path | str) -> None:
    path = database
    store = UserStore(path)
    store.add(user("bob"))
    store.add(user("root", scopes=["admin", "me", "admin"]))
    store.add(user("nobody", scopes=[]))
    store.close()
    reopened = UserStore(path)
    assert reopened.get("bob").scopes == ["me", "items:read"]  # type: ignore[union-attr]
    assert reopened.get("root").scopes == ["me", "admin"]  # type: ignore[union-attr]
    assert reopened.get("nobody").scopes == []  # type: ignore[union-attr]
    assert [(u.username, u.scopes) for u in reopened.list()] == [
        ("bob", ["me", "items:read"]),
        ("nobody", []),
        ("root", ["me", "admin"]),
    ]
    assert reopened.fetchone("SELECT scopes FROM users WHERE username = 'root'") == ("me admin",)
    reopened.close()


def test_an_unknown_scope_is_refused_before_it_reaches_the_store() -> None:
    with pytest.raises(ValidationError, match="unknown scope 'root'"):
        user("bob", scopes=["me", "root"])


def test_unknown_scopes_written_into_the_database_by_hand_are_ignored(database: Path | str) -> None:
    store = UserStore(database)
    store.add(user("bob"))
    store.execute("UPDATE users SET scopes = 'admin  superuser me' WHERE username = 'bob'")
    assert store.get("bob").scopes == ["me", "admin"]  # type: ignore[union-attr]
    store.close()


# The users table of contract 1.2.0 and before: no scopes column.
OLD_SCHEMA = """
CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE,
    email           TEXT,
    full_name       TEXT,
    hashed_password TEXT    NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
INSERT INTO users (username, email, full_name, hashed_password, disabled)
    VALUES ('olduser', 'old@example.com', 'Old User', '$argon2id$old', 0), ('gone', NULL, NULL, '$2b$x', 1);
"""


def columns(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[1] for row in conn.execute("PRAGMA table_info(users)")]
    finally:
        conn.close()


def test_a_database_without_the_scopes_column_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    conn.close()
    assert "scopes" not in columns(path)

    store = UserStore(path)
    assert "scopes" in columns(path)
    old = store.get("olduser")
    assert old is not None
    assert (old.email, old.full_name, old.hashed_password, old.disabled) == (
        "old@example.com",
        "Old User",
        "$argon2id$old",
        False,
    )
    assert old.scopes == ["me", "items:read"]
    assert store.get("gone").disabled  # type: ignore[union-attr]
    store.add(user("newuser", scopes=["admin"]))
    store.close()

    again = UserStore(path)  # a second open finds nothing to migrate
    assert columns(path).count("scopes") == 1
    assert again.get("newuser").scopes == ["admin"]  # type: ignore[union-attr]
    assert again.get("olduser").scopes == ["me", "items:read"]  # type: ignore[union-attr]
    again.close()


def test_two_stores_opening_an_old_database_at_once_both_succeed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    conn.close()
    barrier = threading.Barrier(4)
    opened: list[UserStore] = []
    errors: list[BaseException] = []

    def open_store() -> None:
        barrier.wait()
        try:
            opened.append(UserStore(path))
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert columns(path).count("scopes") == 1
    for store in opened:
        assert store.get("olduser").scopes == ["me", "items:read"]  # type: ignore[union-attr]
        store.close()


def test_a_user_changed_by_another_connection_is_read_as_changed_at_once(database: Path | str) -> None:
    # get() reuses the user it built from an identical row, so every change to the row must show.
    path = database
    server, cli = UserStore(path), UserStore(path)
    try:
        server.add(user("carol"))
        first = server.get("carol")
        assert first is not None and not first.disabled
        assert server.get("carol") is first  # the same row: the same object
        cli.set_disabled("carol", True)
        disabled = server.get("carol")
        assert disabled is not None and disabled.disabled
        cli.update_hash("carol", "$argon2id$placeholder", "$argon2id$other")
        rehashed = server.get("carol")
        assert rehashed is not None and rehashed.hashed_password == "$argon2id$other" and rehashed.disabled
        cli.delete("carol")
        assert server.get("carol") is None
    finally:
        server.close()
        cli.close()
