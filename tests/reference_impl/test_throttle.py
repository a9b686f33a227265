"""Login throttling: 429 with Retry-After after too many failures, no lockout, nothing revealed."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from reference_impl.throttle import FailureWindow, LoginThrottle

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


def test_the_window_slides_so_there_is_no_permanent_lockout() -> None:
    now = [1000.0]
    throttle = LoginThrottle(per_username=2, per_client=100, window_s=60, clock=lambda: now[0])
    throttle.failed("bob", "10.0.0.1")
    now[0] += 30
    throttle.failed("bob", "10.0.0.1")
    assert throttle.retry_after("bob", "10.0.0.2") == 30  # until the first failure leaves the window
    now[0] += 30
    assert throttle.retry_after("bob", "10.0.0.2") == 0


def test_a_zero_limit_turns_throttling_off_and_memory_stays_bounded() -> None:
    off = FailureWindow(0, 60)
    for _ in range(50):
        off.fail("bob")
    assert off.retry_after("bob") == 0
    window = FailureWindow(1, 60)
    for n in range(10_050):
        window.fail(f"user{n}")
    assert len(window._failures) <= 10_000
