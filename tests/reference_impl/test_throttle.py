"""Login throttling: 429 with Retry-After after too many failures, no lockout, nothing revealed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reference_impl.throttle import LoginThrottle, stored_key

from ..conftest import PASSWORD, AppFactory


def token(client: TestClient, username: str, password: str) -> Any:
    return client.post("/token", data={"grant_type": "password", "username": username, "password": password})


def throttled_client(make_app: AppFactory, contract_validator: Any, **limits: Any) -> TestClient:
    settings = {"login_max_failures": 3, "login_max_failures_per_client": 100, "login_window": 300, **limits}
    client = TestClient(make_app(**settings), base_url="http://127.0.0.1")
    client.event_hooks = {"request": [], "response": [contract_validator.validate_response]}
    return client


def test_too_many_failures_for_a_username_get_429_even_with_the_right_password(
    make_app: AppFactory, contract_validator: Any
) -> None:
    client = throttled_client(make_app, contract_validator)
    for _ in range(3):
        assert token(client, "bob", "wrong").json()["error"] == "invalid_grant"
    for password in ("wrong", PASSWORD):  # the same answer: the password is not even checked
        response = token(client, "bob", password)
        assert response.status_code == 429, response.text
        assert int(response.headers["retry-after"]) > 0
        assert response.headers["cache-control"] == "no-store"
        assert "access_token" not in response.text
    assert token(client, "carol-unrelated", "x").status_code == 400  # other usernames are not affected


def test_unknown_usernames_are_throttled_like_known_ones(make_app: AppFactory, contract_validator: Any) -> None:
    client = throttled_client(make_app, contract_validator)
    for _ in range(3):
        token(client, "ghost", "wrong")
    assert token(client, "ghost", "wrong").status_code == 429


def test_a_client_address_is_throttled_across_usernames(make_app: AppFactory, contract_validator: Any) -> None:
    client = throttled_client(make_app, contract_validator, login_max_failures=100, login_max_failures_per_client=4)
    for n in range(4):
        assert token(client, f"user{n}", "wrong").status_code == 400
    assert token(client, "bob", PASSWORD).status_code == 429


def test_a_success_resets_the_username_count(make_app: AppFactory, contract_validator: Any) -> None:
    client = throttled_client(make_app, contract_validator)
    for _ in range(2):
        token(client, "bob", "wrong")
    assert token(client, "bob", PASSWORD).status_code == 200
    for _ in range(2):
        assert token(client, "bob", "wrong").status_code == 400


@pytest.fixture
def opened() -> Iterator[list[LoginThrottle]]:
    """The throttles a test opens, closed after it (on PostgreSQL, each has a pool of connections)."""
    throttles: list[LoginThrottle] = []
    yield throttles
    for throttle in throttles:
        throttle.close()


def throttle_on(opened: list[LoginThrottle], database: Path | str, **options: Any) -> LoginThrottle:
    throttle = LoginThrottle(database, **options)
    opened.append(throttle)
    return throttle


def failed(throttle: LoginThrottle, username: str, client: str) -> None:
    wait, attempt = throttle.attempt(username, client)
    assert wait == 0 and attempt is not None


def test_the_window_slides_so_there_is_no_permanent_lockout(database: Path | str, opened: list[LoginThrottle]) -> None:
    now = [1000.0]
    throttle = throttle_on(opened, database, per_username=2, per_client=100, window_s=60, clock=lambda: now[0])
    failed(throttle, "bob", "10.0.0.1")
    now[0] += 30
    failed(throttle, "bob", "10.0.0.1")
    assert throttle.retry_after("bob", "10.0.0.2") == 30  # until the first failure leaves the window
    assert throttle.attempt("bob", "10.0.0.2") == (30, None)  # refused, and not counted
    now[0] += 30
    assert throttle.retry_after("bob", "10.0.0.2") == 0


def test_a_zero_limit_turns_throttling_off_and_opens_no_table(tmp_path: Path) -> None:
    off = LoginThrottle(tmp_path / "db", per_username=0, per_client=0, window_s=60)
    for _ in range(50):
        failed(off, "bob", "10.0.0.1")
    assert off.retry_after("bob", "10.0.0.1") == 0
    assert not (tmp_path / "db").exists()


def test_a_success_forgets_its_own_attempt_and_the_username_failures(
    database: Path | str, opened: list[LoginThrottle]
) -> None:
    throttle = throttle_on(opened, database, per_username=3, per_client=3, window_s=60)
    failed(throttle, "bob", "10.0.0.1")
    failed(throttle, "bob", "10.0.0.1")
    _, attempt = throttle.attempt("bob", "10.0.0.1")
    assert attempt is not None
    assert throttle.retry_after("bob", "10.0.0.9") > 0 and throttle.retry_after("carol", "10.0.0.1") > 0
    throttle.succeeded(attempt)
    assert throttle.retry_after("bob", "10.0.0.9") == 0
    assert throttle.retry_after("carol", "10.0.0.1") == 0  # the client's two real failures remain
    failed(throttle, "carol", "10.0.0.1")
    assert throttle.retry_after("carol", "10.0.0.2") == 0
    assert throttle.retry_after("dave", "10.0.0.1") > 0


def test_an_abandoned_attempt_is_not_counted(database: Path | str, opened: list[LoginThrottle]) -> None:
    throttle = throttle_on(opened, database, per_username=1, per_client=100, window_s=60)
    _, attempt = throttle.attempt("bob", "10.0.0.1")
    assert attempt is not None
    throttle.abandoned(attempt)
    assert throttle.retry_after("bob", "10.0.0.1") == 0


def test_processes_sharing_the_database_share_the_counts(database: Path | str, opened: list[LoginThrottle]) -> None:
    first, second = (throttle_on(opened, database, per_username=4, per_client=100, window_s=60) for _ in range(2))
    for throttle in (first, second, first, second):
        failed(throttle, "bob", "10.0.0.1")
    assert first.attempt("bob", "10.0.0.1")[1] is None
    assert second.attempt("bob", "10.0.0.1")[1] is None


def test_concurrent_attempts_cannot_exceed_the_limit_together(
    database: Path | str, opened: list[LoginThrottle]
) -> None:
    throttles = [throttle_on(opened, database, per_username=10, per_client=0, window_s=60) for _ in range(4)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda n: throttles[n % 4].attempt("bob", f"10.0.0.{n}"), range(64)))
    assert sum(attempt is not None for _, attempt in results) == 10


FLOOD = 20_000


def test_a_flood_of_made_up_usernames_does_not_reset_a_victim(tmp_path: Path) -> None:
    """Nothing is evicted: after 20,000 other usernames the victim is still throttled, and the table
    holds exactly the failures of the window (then nothing, once the window has passed)."""
    now = [1000.0]
    throttle = LoginThrottle(tmp_path / "db", per_username=3, per_client=0, window_s=300, clock=lambda: now[0])
    for _ in range(3):
        failed(throttle, "victim", "10.0.0.1")
    started = time.monotonic()
    for n in range(FLOOD):
        failed(throttle, f"made-up-{n}", "10.6.6.6")
    assert time.monotonic() - started < 60
    assert throttle.attempt("victim", "10.0.0.2") == (300, None)
    assert throttle.rows() == FLOOD + 3
    now[0] += 301
    throttle.purge()
    assert throttle.rows() == 0
    assert throttle.retry_after("victim", "10.0.0.2") == 0


def test_keys_longer_than_any_username_are_stored_as_digests(database: Path | str, opened: list[LoginThrottle]) -> None:
    throttle = throttle_on(opened, database, per_username=1, per_client=0, window_s=60)
    long_name = "x" * 10_000
    failed(throttle, long_name, "10.0.0.1")
    assert throttle.attempt(long_name, "10.0.0.1")[1] is None
    assert throttle.attempt(long_name + "y", "10.0.0.1")[1] is not None
    assert stored_key(long_name).startswith("sha256:") and len(stored_key(long_name)) == 71


def test_keys_postgresql_cannot_store_are_stored_as_digests(database: Path | str, opened: list[LoginThrottle]) -> None:
    throttle = throttle_on(opened, database, per_username=1, per_client=1, window_s=60)
    failed(throttle, "bo\x00b", "10.0.0.1\x00")
    assert throttle.attempt("bo\x00b", "10.0.0.2")[1] is None
    assert throttle.attempt("bo", "10.0.0.1\x00")[1] is None  # the client's one failure
    assert throttle.attempt("bo", "10.0.0.2")[1] is not None
    assert stored_key("bo\x00b").startswith("sha256:")


def test_concurrent_successes_and_failures_of_one_username_never_conflict(
    database: Path | str, opened: list[LoginThrottle]
) -> None:
    """Successes delete the username's rows while other attempts add and delete theirs: on PostgreSQL they
    take the username's lock, or two of them deleting the same rows in different orders deadlock."""
    throttles = [throttle_on(opened, database, per_username=1000, per_client=1000, window_s=60) for _ in range(4)]

    def login(n: int) -> None:
        throttle = throttles[n % 4]
        _, attempt = throttle.attempt("bob", f"10.0.0.{n % 3}")
        assert attempt is not None
        if n % 3 == 0:
            throttle.abandoned(attempt)
        elif n % 2:
            throttle.succeeded(attempt)

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(login, range(300)))  # re-raises the first error of any
