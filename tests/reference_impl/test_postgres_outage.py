"""PostgreSQL stopped under load: a real ``jwt-reference serve`` process answers 503 with Retry-After
meanwhile (never a 500, never a traceback), and serves again by itself once PostgreSQL is back."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from ..postgres import PostgresCluster, running_cluster
from ..server_process import Server, StartServer, start_server
from .test_e2e import add_user
from .test_instances import PASSWORD, instances_env

__all__ = ["start_server"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.e2e

OUTAGE_S = 3.0
RECOVERY_TIMEOUT = 30.0


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL server of this test alone: it is stopped and started again."""
    with running_cluster() as started:
        yield started


class Load:
    """Threads that log in and call /users/me in a loop, recording (time, path, status, Retry-After)."""

    def __init__(self, server: Server, access: str) -> None:
        self.server, self.access = server, access
        self.seen: list[tuple[float, str, int, str | None]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.drive, args=(n,)) for n in range(4)]

    def drive(self, n: int) -> None:
        with httpx.Client(base_url=self.server.base_url, timeout=30.0, trust_env=False) as client:
            while not self.stop.is_set():
                if n % 2:
                    path = "/token"
                    form = {"grant_type": "password", "username": "bob", "password": PASSWORD}
                    response = client.post(path, data=form)
                else:
                    path = "/users/me"
                    response = client.get(path, headers={"Authorization": f"Bearer {self.access}"})
                with self.lock:
                    self.seen.append(
                        (time.monotonic(), path, response.status_code, response.headers.get("retry-after"))
                    )

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def since(self, started: float, until: float = float("inf")) -> list[tuple[float, str, int, str | None]]:
        with self.lock:
            return [answer for answer in self.seen if started <= answer[0] < until]


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_stopped_under_load_gives_503_then_recovers(
    tmp_path: Path, cluster: PostgresCluster, start_server: StartServer, mode: str
) -> None:
    env = instances_env(tmp_path, cluster.url(), secrets.token_urlsafe(48))
    add_user(env, "bob", PASSWORD)
    server = start_server(env)
    with server.client() as client:
        form = {"grant_type": "password", "username": "bob", "password": PASSWORD}
        access = client.post("/token", data=form).json()["access_token"]
    with Load(server, access) as load:
        time.sleep(1.0)
        before = load.since(0)
        cluster.stop(mode)
        stopped = time.monotonic()
        time.sleep(OUTAGE_S)
        during = load.since(stopped + 0.3)
        cluster.start()
        restarted = time.monotonic()
        deadline = restarted + RECOVERY_TIMEOUT
        while time.monotonic() < deadline:
            recent = load.since(time.monotonic() - 1.0)
            if len(recent) > 10 and all(status == 200 for _, _, status, _ in recent):
                break
            time.sleep(0.2)
        recovered = time.monotonic()
        time.sleep(1.0)
        after = load.since(recovered)
    everything = load.since(0)

    assert Counter(status for _, _, status, _ in before) == {200: len(before)} and len(before) > 20
    assert {path for _, path, _, _ in during} == {"/token", "/users/me"} and len(during) > 20
    assert {status for _, _, status, _ in during} == {503}, Counter(s for _, _, s, _ in during)
    assert {status for _, _, status, _ in everything} <= {200, 503}  # never a 500
    assert all((retry or "").isdigit() for _, _, status, retry in everything if status == 503)
    assert recovered - restarted < RECOVERY_TIMEOUT, "the server did not serve again by itself"
    assert Counter(status for _, _, status, _ in after) == {200: len(after)} and len(after) > 20
    assert server.process.poll() is None
    assert "Traceback" not in server.log()
    server.stop_gracefully()
