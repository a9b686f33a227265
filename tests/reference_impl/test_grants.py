"""The grant store: refresh-token families and revocations (SQLite and PostgreSQL), atomic rotation, lazy purging."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_impl.grants import PURGE_INTERVAL, GrantStore, token_digest

from ..clock import Clock

TTL = 600
ACCESS_LIFETIME = 905


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def grants(database: Path | str, clock: Clock) -> Iterator[GrantStore]:
    store = GrantStore(database, TTL, ACCESS_LIFETIME, clock)
    yield store
    store.close()


def count(store: GrantStore, table: str) -> int:
    found: int = store.fetchone(f"SELECT count(*) FROM {table}")[0]  # noqa: S608
    return found


def test_a_family_starts_with_one_unused_token(grants: GrantStore, clock: Clock) -> None:
    family_id, token = grants.start_family("bob", ("me", "items:read"))
    record = grants.find(token)
    assert record is not None
    assert (record.family_id, record.username, record.scope, record.used) == (
        family_id,
        "bob",
        ("me", "items:read"),
        False,
    )
    assert record.expires_at == int(clock.now) + TTL
    assert record.token_hash == token_digest(token)
    assert len(family_id) == 32
    int(family_id, 16)
    assert grants.find(token + "x") is None


def test_rotation_spends_the_token_once(grants: GrantStore, clock: Clock) -> None:
    _, token = grants.start_family("bob", ("me",))
    record = grants.find(token)
    assert record is not None
    clock.now += 100
    successor = grants.rotate(record)
    assert successor is not None
    assert grants.find(token).used  # type: ignore[union-attr]
    following = grants.find(successor)
    assert following is not None
    assert (following.family_id, following.scope, following.used) == (record.family_id, ("me",), False)
    assert following.expires_at == int(clock.now) + TTL
    assert grants.rotate(record) is None  # spent


def test_two_connections_racing_to_rotate_one_token_let_exactly_one_win(database: Path | str) -> None:
    path = database
    stores = [GrantStore(path, TTL, ACCESS_LIFETIME) for _ in range(8)]
    try:
        _, token = stores[0].start_family("bob", ("me",))
        record = stores[0].find(token)
        assert record is not None
        barrier = threading.Barrier(len(stores))
        results: list[str | None] = []
        lock = threading.Lock()

        def race(store: GrantStore) -> None:
            barrier.wait()
            successor = store.rotate(record)
            with lock:
                results.append(successor)

        threads = [threading.Thread(target=race, args=(store,)) for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        winners = [r for r in results if r is not None]
        assert len(results) == len(stores)
        assert len(winners) == 1
        assert count(stores[0], "refresh_tokens") == 2  # the spent token and one successor
    finally:
        for store in stores:
            store.close()


def test_revoking_a_family_deletes_its_tokens_and_remembers_its_sid(grants: GrantStore, clock: Clock) -> None:
    family_id, token = grants.start_family("bob", ("me",))
    other_family, other = grants.start_family("bob", ("me",))
    grants.rotate(grants.find(token))  # type: ignore[arg-type]
    grants.revoke_family(family_id)
    assert grants.find(token) is None
    assert grants.is_revoked("any-jti", family_id)
    assert not grants.is_revoked("any-jti", other_family)
    assert grants.find(other) is not None
    assert grants.revoke_refresh_token(other)
    assert grants.is_revoked("any-jti", other_family)
    assert not grants.revoke_refresh_token("unknown")


def test_a_revoked_jti_is_refused_whatever_its_family(grants: GrantStore, clock: Clock) -> None:
    grants.revoke_access_token("jti-1", int(clock.now) + 60)
    assert grants.is_revoked("jti-1", "some-family")
    assert not grants.is_revoked("jti-2", "some-family")


def test_everything_survives_reopening_the_database(database: Path | str) -> None:
    path = database
    store = GrantStore(path, TTL, ACCESS_LIFETIME)
    family_id, token = store.start_family("bob", ("me", "admin"))
    revoked_family, _ = store.start_family("bob", ("me",))
    store.revoke_family(revoked_family)
    store.revoke_access_token("jti-1", store.now() + 60)
    store.close()

    reopened = GrantStore(path, TTL, ACCESS_LIFETIME)
    try:
        record = reopened.find(token)
        assert record is not None
        assert (record.family_id, record.scope) == (family_id, ("me", "admin"))
        assert reopened.is_revoked("jti-1", "x")
        assert reopened.is_revoked("x", revoked_family)
    finally:
        reopened.close()


def test_expired_rows_are_purged_lazily_at_most_once_an_interval(grants: GrantStore, clock: Clock) -> None:
    family_id, token = grants.start_family("bob", ("me",))  # the first write purges, and sets the next purge
    grants.revoke_access_token("jti-1", int(clock.now) + 10)
    grants.revoke_family("gone")  # revoked until now + ACCESS_LIFETIME
    clock.now += TTL + ACCESS_LIFETIME + 1  # everything has expired
    assert grants.find(token) is not None  # reads never purge
    assert grants.is_revoked("jti-1", "x")
    grants.start_family("carol", ("me",))  # a write after the interval purges
    assert grants.find(token) is None
    assert not grants.is_revoked("jti-1", "gone")
    assert count(grants, "refresh_tokens") == 1
    grants.revoke_access_token("jti-2", int(clock.now) + 1)
    clock.now += 5
    grants.start_family("dave", ("me",))  # within the interval: no purge yet
    assert grants.is_revoked("jti-2", "x")
    clock.now += PURGE_INTERVAL
    grants.start_family("erin", ("me",))
    assert not grants.is_revoked("jti-2", "x")


def test_a_purge_keeps_what_can_still_matter(grants: GrantStore, clock: Clock) -> None:
    _, token = grants.start_family("bob", ("me",))
    grants.revoke_access_token("jti-1", int(clock.now) + 10)
    grants.revoke_family("recent")
    clock.now += 9
    grants.purge()
    assert grants.find(token) is not None
    assert grants.is_revoked("jti-1", "x")
    assert grants.is_revoked("x", "recent")


def test_the_tables_are_keyed_for_primary_key_lookups(tmp_path: Path) -> None:
    grants = GrantStore(tmp_path / "users.db", TTL, ACCESS_LIFETIME)
    with grants._locked() as conn:
        plans = [
            " ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", params))
            for query, params in (
                ("SELECT 1 FROM revoked_access_tokens WHERE jti = ?", ("j",)),
                ("SELECT 1 FROM revoked_families WHERE family_id = ?", ("f",)),
                ("SELECT used FROM refresh_tokens WHERE token_hash = ?", ("h",)),
                ("DELETE FROM refresh_tokens WHERE family_id = ?", ("f",)),
            )
        ]
    for plan in plans:
        assert "SCAN" not in plan, plan
        assert "SEARCH" in plan, plan
    grants.close()
