"""Password handling: exact verification, legacy bcrypt upgrade, timing guard, hashing off the event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import bcrypt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reference_impl.models import UserInDB
from reference_impl.security import Passwords

from ..conftest import SEED_BCRYPT_HASH

SEVENTY_TWO = "k" * 72


def add_bcrypt_user(app: FastAPI, username: str, password: str) -> None:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    app.state.reference.store.add(UserInDB(username=username, hashed_password=hashed))


def token_request(client: TestClient, username: str, password: str) -> Any:
    return client.post("/token", data={"grant_type": "password", "username": username, "password": password})


def test_the_seed_bcrypt_hash_verifies_and_is_upgraded_to_argon2id(client: TestClient, app: FastAPI) -> None:
    store = app.state.reference.store
    assert store.get("johndoe").hashed_password == SEED_BCRYPT_HASH
    assert token_request(client, "johndoe", "secret").status_code == 200
    upgraded = store.get("johndoe").hashed_password
    assert upgraded.startswith("$argon2id$")
    assert token_request(client, "johndoe", "secret").status_code == 200
    assert store.get("johndoe").hashed_password == upgraded  # upgraded once, not at every login


def test_a_failed_login_does_not_touch_the_stored_hash(client: TestClient, app: FastAPI) -> None:
    assert token_request(client, "johndoe", "Secret").status_code == 400
    assert app.state.reference.store.get("johndoe").hashed_password == SEED_BCRYPT_HASH


@pytest.mark.parametrize(
    "password",
    [SEVENTY_TWO + "x", SEVENTY_TWO + "junk after the bcrypt limit", "é" * 37],
    ids=["73-bytes", "72-plus-junk", "74-bytes-multibyte"],
)
def test_passwords_beyond_72_bytes_are_refused_for_bcrypt_users_never_a_500(
    client: TestClient, app: FastAPI, password: str
) -> None:
    add_bcrypt_user(app, "legacy", SEVENTY_TWO)
    response = token_request(client, "legacy", password)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    assert token_request(client, "legacy", SEVENTY_TWO).status_code == 200


def test_a_multibyte_utf8_password_verifies_against_bcrypt(client: TestClient, app: FastAPI) -> None:
    password = "пароль-ключ-密码-🔑"
    add_bcrypt_user(app, "multibyte", password)
    assert token_request(client, "multibyte", password[:-1]).status_code == 400
    assert token_request(client, "multibyte", password).status_code == 200
    assert app.state.reference.store.get("multibyte").hashed_password.startswith("$argon2id$")


def test_a_corrupt_stored_hash_refuses_the_login_without_an_error(client: TestClient, app: FastAPI) -> None:
    app.state.reference.store.add(UserInDB(username="corrupt", hashed_password="not-a-hash"))
    response = token_request(client, "corrupt", "anything")
    assert response.status_code == 400, response.text


class CountingHash:
    """Wraps pwdlib's PasswordHash: counts verifications and where they run."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0
        self.on_event_loop = 0
        self.lock = threading.Lock()

    def _record(self) -> None:
        with self.lock:
            self.calls += 1
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.on_event_loop += 1

    def verify(self, password: str, hashed: str) -> bool:
        self._record()
        return bool(self.inner.verify(password, hashed))

    def verify_and_update(self, password: str, hashed: str) -> tuple[bool, str | None]:
        self._record()
        result: tuple[bool, str | None] = self.inner.verify_and_update(password, hashed)
        return result

    def hash(self, password: str) -> str:
        return str(self.inner.hash(password))


@pytest.mark.parametrize(
    ("username", "password"),
    [("bob", "wrong"), ("nobody", "wrong"), ("alice", "secretalice"), ("nobody", "x" * 2000)],
    ids=["wrong-password", "unknown-user", "disabled-user", "overlong-password"],
)
def test_every_failed_login_costs_exactly_one_hash_off_the_event_loop(
    client: TestClient, app: FastAPI, username: str, password: str
) -> None:
    passwords = app.state.reference.passwords
    counting = CountingHash(passwords._hash)
    passwords._hash = counting
    assert token_request(client, username, password).status_code == 400
    assert counting.calls == 1
    assert counting.on_event_loop == 0


def test_concurrent_hashes_are_bounded() -> None:
    passwords = Passwords("fast", max_concurrent=2)
    active = 0
    peak = 0
    lock = threading.Lock()
    inner = passwords._hash

    class Slow:
        def verify(self, password: str, hashed: str) -> bool:
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            try:
                return bool(inner.verify(password, hashed)) and threading.Event().wait(0.05) is False
            finally:
                with lock:
                    active -= 1

    passwords._hash = Slow()  # type: ignore[assignment]

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(passwords.verify, "pw", None)

    anyio.run(main)
    assert peak == 2
