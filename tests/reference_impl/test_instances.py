"""Several ``jwt-reference serve`` instances on one PostgreSQL database behave as one server.

Three real servers (uvicorn on 127.0.0.1, each on its own port; in the throttle's test the first
has two worker processes) share a database of the session's PostgreSQL server; requests go to them in turn, so
every check involves every instance: a throttle limit holds across them (not once per instance),
and a revocation, a refresh-token reuse or a disabled user in one of them takes effect in the
others at once.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jwt
import pytest

from reference_impl.models import UserInDB
from reference_impl.security import password_hash_for
from reference_impl.settings import PREFIX
from reference_impl.store import UserStore

from ..server_process import Server, StartServer, server_env, start_server
from .test_e2e import cli

__all__ = ["start_server"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.e2e

INSTANCES = 3
PASSWORD = "correct horse battery"


def instances_env(tmp_path: Path, url: str, secret: str | None = None) -> dict[str, str]:
    env = server_env(tmp_path / "unused.db", secret)
    env[PREFIX + "DATABASE_URL"] = url
    env[PREFIX + "LOGIN_MAX_FAILURES_PER_CLIENT"] = "0"  # every test client is 127.0.0.1
    return env


class Instances:
    """The running instances, and requests sent to them in turn (or to a chosen one)."""

    def __init__(self, servers: list[Server], env: dict[str, str]) -> None:
        self.servers, self.env = servers, env
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def next(self) -> Server:
        with self._lock:
            return self.servers[next(self._turn) % len(self.servers)]

    def send(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        token: str | None = None,
        at: int | None = None,
    ) -> httpx.Response:
        server = self.servers[at] if at is not None else self.next()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with server.client() as client:
            return client.request(method, path, data=form, headers=headers)

    def login(self, username: str, password: str = PASSWORD, at: int | None = None) -> httpx.Response:
        form = {"grant_type": "password", "username": username, "password": password}
        return self.send("POST", "/token", form, at=at)

    def me_everywhere(self, token: str) -> list[int]:
        """The status of ``GET /users/me`` with ``token`` on every instance, twice."""
        return [
            self.send("GET", "/users/me", token=token, at=i).status_code for i in range(INSTANCES) for _ in range(2)
        ]


@pytest.fixture
def instances(
    tmp_path: Path, postgres_url: str, start_server: StartServer, request: pytest.FixtureRequest
) -> Iterator[Instances]:
    """Three instances on one database, with the users bob and carol. In a test given ``with_workers=True``
    (indirectly) the first runs two worker processes: more processes, the same sharing."""
    env = instances_env(tmp_path, postgres_url, secrets.token_urlsafe(48))
    store = UserStore(postgres_url)  # in this process: two CLI processes would take seconds
    for name in ("bob", "carol"):
        store.add(UserInDB(username=name, hashed_password=password_hash_for("fast").hash(PASSWORD)))
    store.close()
    arguments = [("--workers", "2") if getattr(request, "param", False) else (), (), ()]
    with ThreadPoolExecutor(INSTANCES) as pool:  # started together: the schema is created under a lock
        servers = list(pool.map(lambda args: start_server(env, *args), arguments))
    yield Instances(servers, env)


def tokens(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body["access_token"], body["refresh_token"]


def many(count: int, send: Callable[[], httpx.Response], threads: int = 6) -> list[httpx.Response]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: send(), range(count)))


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


@pytest.mark.parametrize("instances", [True], ids=["one-with-workers"], indirect=True)
def test_the_login_throttle_limit_holds_across_instances(instances: Instances) -> None:
    answers = many(30, lambda: instances.login("bob", "wrong"), threads=9)
    assert statuses(answers) == {400: 10, 429: 20}  # the default limit of 10, not 10 per instance
    assert [instances.login("bob", at=i).status_code for i in range(INSTANCES)] == [429] * INSTANCES
    assert instances.login("carol").status_code == 200


def test_a_revocation_in_one_instance_is_refused_by_every_instance(instances: Instances) -> None:
    access, refresh = tokens(instances.login("bob", at=0))
    assert instances.me_everywhere(access) == [200] * 2 * INSTANCES  # every instance has verified (and cached) it
    assert instances.send("POST", "/revoke", {"token": access}, at=1).status_code == 200
    assert instances.me_everywhere(access) == [401] * 2 * INSTANCES
    assert instances.send("POST", "/revoke", {"token": refresh}, at=2).status_code == 200
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    assert [instances.send("POST", "/token", form, at=i).status_code for i in range(INSTANCES)] == [400] * INSTANCES


def test_a_reused_refresh_token_ends_the_family_in_every_instance(instances: Instances) -> None:
    first_access, first_refresh = tokens(instances.login("bob", at=0))
    refresh_form = {"grant_type": "refresh_token", "refresh_token": first_refresh}
    second_access, second_refresh = tokens(instances.send("POST", "/token", refresh_form, at=1))
    for access in (first_access, second_access):
        assert instances.me_everywhere(access) == [200] * 2 * INSTANCES
    assert instances.send("POST", "/token", refresh_form, at=2).status_code == 400  # a reuse: the family ends
    for access in (first_access, second_access):
        assert instances.me_everywhere(access) == [401] * 2 * INSTANCES
    spent = {**refresh_form, "refresh_token": second_refresh}
    assert [instances.send("POST", "/token", spent, at=i).status_code for i in range(INSTANCES)] == [400] * INSTANCES


def test_concurrent_refreshes_with_one_token_have_exactly_one_winner(instances: Instances) -> None:
    for _ in range(3):
        _, refresh = tokens(instances.login("bob"))
        form = {"grant_type": "refresh_token", "refresh_token": refresh}
        answers = many(12, lambda: instances.send("POST", "/token", form), threads=12)  # noqa: B023
        assert statuses(answers) == {200: 1, 400: 11}
        winner = next(answer for answer in answers if answer.status_code == 200)
        access = winner.json()["access_token"]
        assert instances.me_everywhere(access) == [401] * 2 * INSTANCES  # the losers' reuse ended the family


def test_a_disabled_user_is_refused_by_every_instance(instances: Instances) -> None:
    access, refresh = tokens(instances.login("carol", at=0))
    assert instances.me_everywhere(access) == [200] * 2 * INSTANCES
    result = cli(instances.env, "users", "disable", "carol")
    assert result.returncode == 0, result.stderr
    assert instances.me_everywhere(access) == [401] * 2 * INSTANCES
    assert [instances.login("carol", at=i).status_code for i in range(INSTANCES)] == [400] * INSTANCES
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    assert [instances.send("POST", "/token", form, at=i).status_code for i in range(INSTANCES)] == [400] * INSTANCES


def test_dev_instances_on_one_database_sign_with_one_secret(
    tmp_path: Path, postgres_url: str, start_server: StartServer
) -> None:
    env = instances_env(tmp_path, postgres_url)
    servers = [start_server(env, "--dev", "--demo-users") for _ in range(2)]
    assert all("dev mode: signing secret kept in the database's dev_secrets table" in s.log() for s in servers)
    group = Instances(servers, env)
    for at in range(2):
        access, _ = tokens(group.login("johndoe", "secret", at=at))
        assert [group.send("GET", "/users/me", token=access, at=i).status_code for i in range(2)] == [200, 200]
        assert jwt.get_unverified_header(access)["alg"] == "HS256"
    assert not list(tmp_path.glob("*.secret"))  # nothing beside a SQLite file
