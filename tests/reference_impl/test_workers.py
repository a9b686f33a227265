"""``serve --workers N``: several processes that behave as one server (real processes on 127.0.0.1).

Every request goes on a new connection, and ``worker_processes`` names the worker that answered it,
so each test asserts that several workers took part, not only what the answers were.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from reference_impl.settings import PREFIX
from reference_impl.workers import WorkerCount

from ..server_process import Server, StartServer, server_env, start_server
from .test_e2e import add_user, cli
from .test_signing_keys import pem_file
from .worker_processes import Answer, request, wait_for_workers, worker_pids

__all__ = ["start_server"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.e2e

WORKERS = 3
PASSWORD = "correct horse battery"


def server_env_for(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = server_env(tmp_path / "users.db", secrets.token_urlsafe(48))
    env[PREFIX + "LOGIN_MAX_FAILURES_PER_CLIENT"] = "0"  # every test client is 127.0.0.1
    env.update({PREFIX + name.upper(): value for name, value in settings.items()})
    return env


@pytest.fixture
def cluster(tmp_path: Path, start_server: StartServer) -> Iterator[Server]:
    """A server of three workers with the users bob and carol."""
    env = server_env_for(tmp_path)
    for name in ("bob", "carol"):
        add_user(env, name, PASSWORD)
    server = start_server(env, "--workers", str(WORKERS))
    wait_for_workers(server.process.pid, WORKERS)
    yield server


def call(
    server: Server, method: str, path: str, form: dict[str, str] | None = None, token: str | None = None
) -> Answer:
    return request(server.base_url, server.process.pid, method, path, form, token)


def login(server: Server, username: str, password: str = PASSWORD, **extra: str) -> Answer:
    form = {"grant_type": "password", "username": username, "password": password, **extra}
    return call(server, "POST", "/token", form)


def tokens(answer: Answer) -> tuple[str, str]:
    assert answer.status == 200, answer.body
    body = json.loads(answer.body)
    return body["access_token"], body["refresh_token"]


def many(count: int, send: Callable[[], Answer], threads: int = 6) -> list[Answer]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: send(), range(count)))


def across_workers(send: Callable[[], Answer], minimum: int = 12, cap: int = 240) -> list[Answer]:
    """At least ``minimum`` answers, and more (up to ``cap``) until two workers or more have answered:
    the kernel hands new connections to the workers unevenly, sometimes to one many times running."""
    answers: list[Answer] = []
    while len(answers) < cap:
        answers += many(6, send)
        if len(answers) >= minimum and len({answer.worker for answer in answers}) >= 2:
            break
    return answers


def spread(answers: list[Answer]) -> set[int]:
    """The workers that answered; more than one, or the test would prove nothing about sharing."""
    workers = {answer.worker for answer in answers}
    assert len(workers) >= 2, f"all {len(answers)} requests went to one worker"
    return workers


def statuses(answers: list[Answer]) -> Counter[int]:
    return Counter(answer.status for answer in answers)


def test_the_login_throttle_limit_holds_across_workers(cluster: Server) -> None:
    answers = across_workers(lambda: login(cluster, "bob", "wrong"), minimum=30)
    spread(answers)
    assert statuses(answers) == {400: 10, 429: len(answers) - 10}  # the default limit of 10, not 10 per worker
    assert {login(cluster, "bob").status for _ in range(6)} == {429}  # the right password too
    assert login(cluster, "carol").status == 200


def test_a_revoked_access_token_is_refused_by_every_worker(cluster: Server) -> None:
    access, _ = tokens(login(cluster, "bob"))
    before = across_workers(lambda: call(cluster, "GET", "/users/me", token=access))
    assert statuses(before) == {200: len(before)}  # every worker that answered has now verified (and cached) it
    assert call(cluster, "POST", "/revoke", {"token": access}).status == 200
    after = across_workers(lambda: call(cluster, "GET", "/users/me", token=access), minimum=30)
    assert statuses(after) == {401: len(after)}
    spread(before)
    spread(after)


def test_a_reused_refresh_token_ends_the_family_in_every_worker(cluster: Server) -> None:
    first_access, first_refresh = tokens(login(cluster, "bob"))
    refresh_form = {"grant_type": "refresh_token", "refresh_token": first_refresh}
    second_access, second_refresh = tokens(call(cluster, "POST", "/token", refresh_form))
    for access in (first_access, second_access):
        assert statuses(many(9, lambda: call(cluster, "GET", "/users/me", token=access))) == {200: 9}  # noqa: B023
    assert call(cluster, "POST", "/token", refresh_form).status == 400  # a reuse: the family ends
    after = [
        answer
        for access in (first_access, second_access)
        for answer in across_workers(lambda: call(cluster, "GET", "/users/me", token=access))  # noqa: B023
    ]
    spread(after)
    assert statuses(after) == {401: len(after)}
    spent = many(12, lambda: call(cluster, "POST", "/token", {**refresh_form, "refresh_token": second_refresh}))
    assert statuses(spent) == {400: 12}


def test_a_refresh_token_is_spent_once_across_workers(cluster: Server) -> None:
    _, refresh = tokens(login(cluster, "bob"))
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    answers = many(12, lambda: call(cluster, "POST", "/token", form), threads=12)
    assert statuses(answers)[200] <= 1
    assert statuses(answers)[200] + statuses(answers)[400] == 12


def test_a_disabled_user_is_refused_by_every_worker(cluster: Server) -> None:
    access, refresh = tokens(login(cluster, "carol"))
    assert statuses(many(15, lambda: call(cluster, "GET", "/users/me", token=access))) == {200: 15}
    result = cli(cluster.env, "users", "disable", "carol")
    assert result.returncode == 0, result.stderr
    after = across_workers(lambda: call(cluster, "GET", "/users/me", token=access), minimum=24)
    spread(after)
    assert statuses(after) == {401: len(after)}
    logins = many(9, lambda: login(cluster, "carol"))  # under the throttle's limit (the login above reset it)
    assert statuses(logins) == {400: 9}
    refreshed = call(cluster, "POST", "/token", {"grant_type": "refresh_token", "refresh_token": refresh})
    assert refreshed.status == 400


def test_a_killed_worker_is_replaced_and_only_its_request_in_flight_can_fail(cluster: Server) -> None:
    parent = cluster.process.pid
    access, _ = tokens(login(cluster, "bob"))
    workers = wait_for_workers(parent, WORKERS)
    outcomes: list[int | str] = []
    stop = threading.Event()

    def drive() -> None:
        while not stop.is_set():
            try:
                outcomes.append(call(cluster, "GET", "/users/me", token=access).status)
            except (OSError, AssertionError) as exc:  # the connection of the killed worker
                outcomes.append(type(exc).__name__)

    drivers = [threading.Thread(target=drive) for _ in range(2)]
    for driver in drivers:
        driver.start()
    try:
        time.sleep(0.5)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for_workers(parent, WORKERS, without=frozenset({victim}))
        time.sleep(1.0)
    finally:
        stop.set()
        for driver in drivers:
            driver.join()
    assert len(replaced - workers) == 1
    failures = [o for o in outcomes if o != 200]
    assert len(failures) <= len(drivers), failures  # at most the one in flight on each connection
    assert len(outcomes) > 50
    assert cluster.process.poll() is None
    answers = across_workers(lambda: call(cluster, "GET", "/users/me", token=access), minimum=24)
    assert statuses(answers) == {200: len(answers)}
    spread(answers)


# Made-up usernames through real workers: none pushes the victim's count out, every failure is kept (the
# in-process test in test_throttle.py floods 20,000, past the 10,000 keys the old in-memory throttle kept).
FLOOD = 2_000


def test_a_flood_of_made_up_usernames_leaves_the_victim_throttled(cluster: Server) -> None:
    for _ in range(10):
        assert login(cluster, "bob", "wrong").status == 400
    started = time.monotonic()

    def flood(first: int) -> Counter[int]:
        seen: Counter[int] = Counter()
        with cluster.client() as client:  # kept-alive connections: the flood at full speed
            for n in range(first, FLOOD, FLOOD_THREADS):
                form = {"grant_type": "password", "username": f"made-up-{n}", "password": "wrong"}
                seen[client.post("/token", data=form).status_code] += 1
        return seen

    with ThreadPoolExecutor(FLOOD_THREADS) as pool:
        seen = sum(pool.map(flood, range(FLOOD_THREADS)), Counter[int]())
    assert time.monotonic() - started < 240
    assert seen == {400: FLOOD}
    assert rows(cluster.database, "username") == FLOOD + 10
    assert {login(cluster, "bob").status for _ in range(6)} == {429}


FLOOD_THREADS = 8


def rows(database: Path, kind: str) -> int:
    conn = sqlite3.connect(database)
    try:
        count: int = conn.execute("SELECT count(*) FROM login_failures WHERE kind = ?", (kind,)).fetchone()[0]
    finally:
        conn.close()
    return count


def test_workers_auto_starts_one_worker_per_core(tmp_path: Path, start_server: StartServer) -> None:
    server = start_server(server_env_for(tmp_path), "--workers", "auto")
    cores = os.cpu_count() or 1
    if cores == 1:  # one worker: the server process itself serves
        assert worker_pids(server.process.pid) == set()
    else:
        assert len(wait_for_workers(server.process.pid, cores)) == cores
        assert f"starting {cores} worker processes" in server.log()


def test_workers_auto_is_the_number_of_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 7)
    assert WorkerCount().convert("auto", None, None) == 7
    assert WorkerCount().convert("3", None, None) == 3


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", ""])
def test_a_bad_worker_count_is_a_usage_error(tmp_path: Path, value: str) -> None:
    result = cli(server_env_for(tmp_path), "serve", "--port", "0", "--workers", value)
    assert result.returncode == 2
    shown = repr(value) if value in ("abc", "1.5", "") else value
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--workers': {shown} is not a number of workers: use a positive integer or 'auto'"
    )
    assert not (tmp_path / "users.db").exists()


def test_sighup_after_a_key_rotation_moves_every_worker_to_the_new_key(
    tmp_path: Path, start_server: StartServer
) -> None:
    current, previous = tmp_path / "current.pem", tmp_path / "previous.pem"
    first, second = (ed25519.Ed25519PrivateKey.generate() for _ in range(2))
    pem_file(current, first)
    pem_file(previous, ed25519.Ed25519PrivateKey.generate())
    env = server_env(tmp_path / "users.db", None)
    env.update(
        {
            PREFIX + "ALGORITHM": "EdDSA",
            PREFIX + "PRIVATE_KEY_FILE": str(current),
            PREFIX + "VERIFY_KEY_FILES": str(previous),
            PREFIX + "LOGIN_MAX_FAILURES_PER_CLIENT": "0",
        }
    )
    add_user(env, "bob", PASSWORD)
    server = start_server(env, "--workers", str(WORKERS))
    old_workers = wait_for_workers(server.process.pid, WORKERS)
    old_access, _ = tokens(login(server, "bob"))
    old_kid = jwt.get_unverified_header(old_access)["kid"]

    pem_file(previous, first)  # the rotation: the current key becomes a verify-only one
    pem_file(current, second)
    os.kill(server.process.pid, signal.SIGHUP)
    wait_for_workers(server.process.pid, WORKERS, timeout=60, without=frozenset(old_workers))

    answers = across_workers(lambda: call(server, "GET", "/users/me", token=old_access), minimum=24)
    spread(answers)
    assert statuses(answers) == {200: len(answers)}  # signed by the previous key: still verifies everywhere
    logins = across_workers(lambda: login(server, "bob"), minimum=9, cap=60)
    spread(logins)
    kids = {jwt.get_unverified_header(tokens(answer)[0])["kid"] for answer in logins}
    assert len(kids) == 1 and old_kid not in kids  # every worker signs with the new key
    key_sets = many(12, lambda: call(server, "GET", "/.well-known/jwks.json"))
    assert {frozenset(key["kid"] for key in json.loads(a.body)["keys"]) for a in key_sets} == {
        frozenset({old_kid, *kids})
    }


def test_responses_are_not_delayed_by_the_peer_acknowledgement(cluster: Server) -> None:
    """Every accepted connection has TCP_NODELAY: a response in two writes goes out at once, not after
    the client's delayed ACK (about 40 ms a request without it)."""
    with cluster.client() as client:
        client.get("/health")
        timings = []
        for _ in range(21):
            started = time.perf_counter()
            assert client.get("/health").status_code == 200
            timings.append(time.perf_counter() - started)
    assert sorted(timings)[10] < 0.030


def test_dev_workers_all_sign_with_the_one_generated_secret(tmp_path: Path, start_server: StartServer) -> None:
    env = server_env(tmp_path / "users.db", None)
    env[PREFIX + "LOGIN_MAX_FAILURES_PER_CLIENT"] = "0"
    server = start_server(env, "--dev", "--demo-users", "--workers", str(WORKERS))
    wait_for_workers(server.process.pid, WORKERS)
    logins = across_workers(lambda: login(server, "johndoe", "secret"), cap=60)
    access_tokens = [tokens(answer)[0] for answer in logins]
    answers = across_workers(lambda: call(server, "GET", "/users/me", token=secrets.choice(access_tokens)), minimum=24)
    spread(logins)
    spread(answers)
    assert statuses(answers) == {200: len(answers)}  # a token signed by any worker verifies on every worker
    assert [p.name for p in tmp_path.iterdir() if "secret" in p.name] == ["users.db.secret"]


def test_one_process_serves_unless_workers_are_asked_for(tmp_path: Path, start_server: StartServer) -> None:
    server = start_server(server_env_for(tmp_path))
    assert worker_pids(server.process.pid) == set()
    assert "worker processes" not in server.log()
