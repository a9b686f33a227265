"""The SQLite user store: persistence, parameterized SQL, concurrent use."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reference_impl.errors import UserStoreError
from reference_impl.models import UserInDB
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
def test_usernames_are_data_never_sql(tmp_path: Path, name: str) -> None:
    store = UserStore(tmp_path / "users.db")
    store.add(user("bob"))
    assert store.get(name) is None
    store.add(user(name))
    assert store.get(name) is not None
    assert {u.username for u in store.list()} == {"bob", name}
    store.close()


@pytest.mark.parametrize("name", ["", " bob", "bob ", "bo\x00b", "b\nob", "x" * 151])
def test_invalid_usernames_are_refused_with_a_clear_error(tmp_path: Path, name: str) -> None:
    store = UserStore(tmp_path / "users.db")
    with pytest.raises(UserStoreError, match="invalid username"):
        store.add(user(name))
    store.close()


def test_duplicate_and_unknown_users_raise_store_errors(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.db")
    store.add(user("bob"))
    with pytest.raises(UserStoreError, match="already exists"):
        store.add(user("bob"))
    with pytest.raises(UserStoreError, match="no user named"):
        store.set_disabled("ghost")
    store.close()


def test_update_hash_only_replaces_the_hash_it_verified(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.db")
    store.add(user("bob"))
    store.update_hash("bob", "$argon2id$stale", "$argon2id$new")
    assert store.get("bob").hashed_password == "$argon2id$placeholder"  # type: ignore[union-attr]
    store.update_hash("bob", "$argon2id$placeholder", "$argon2id$new")
    assert store.get("bob").hashed_password == "$argon2id$new"  # type: ignore[union-attr]
    store.close()


def test_concurrent_reads_and_writes_from_threads_and_a_second_connection(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
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
