"""The SQLite database under faults, with real ``jwt-reference serve`` processes on 127.0.0.1.

Another process holds the write lock; the file and its directory become read-only; the database cannot
be opened at start. Every answer is a correct one or 503 ``temporarily_unavailable`` with ``Retry-After``,
never a 500 or a traceback, and the server recovers by itself once the database is usable again.

The test process runs as root in CI, and root ignores file modes: the server then runs without the
capabilities that override them (``setpriv``), so a read-only file is read-only to it as to anyone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import jwt
import pytest

from reference_impl.oauth_errors import UNAVAILABLE_RETRY_AFTER
from reference_impl.throttle import SETTLE_RETRY_S

from .. import server_process
from ..server_process import Server, StartServer, start_server
from .test_e2e import add_user
from .test_workers import PASSWORD, server_env_for
from .worker_processes import (
    Answer,
    assert_families_whole,
    busy_timeout_s,
    database_rows,
    request,
    wait_for_workers,
    write_lock,
)

__all__ = ["start_server"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.e2e

# Without these capabilities root is bound by file modes like any other user.
UNPRIVILEGED = ("setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--")


# -- requests and what a correct answer under a fault is ---------------------------------------------------


def post(server: Server, path: str, form: dict[str, str], timeout: float = 30.0) -> httpx.Response:
    return httpx.post(server.base_url + path, data=form, timeout=timeout, trust_env=False)


def password_login(server: Server, username: str, timeout: float = 30.0) -> httpx.Response:
    return post(server, "/token", {"grant_type": "password", "username": username, "password": PASSWORD}, timeout)


def refresh(server: Server, token: str, timeout: float = 30.0) -> httpx.Response:
    return post(server, "/token", {"grant_type": "refresh_token", "refresh_token": token}, timeout)


def revoke(server: Server, token: str, timeout: float = 30.0) -> httpx.Response:
    return post(server, "/revoke", {"token": token}, timeout)


def me(server: Server, access: str, timeout: float = 30.0) -> httpx.Response:
    headers = {"Authorization": f"Bearer {access}"}
    return httpx.get(server.base_url + "/users/me", headers=headers, timeout=timeout, trust_env=False)


def token_pair(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 200, response.text
    body = response.json()
    return body["access_token"], body["refresh_token"]


def family(access: str) -> str:
    sid: str = jwt.decode(access, options={"verify_signature": False})["sid"]
    return sid


def assert_unavailable(response: httpx.Response) -> None:
    """503 with Retry-After (RFC 9110 §15.6.4, §10.2.3), the RFC 6749 §5.2 shape, never stored."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(UNAVAILABLE_RETRY_AFTER)
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "temporarily_unavailable"


def assert_clean_log(server: Server) -> None:
    log = server.log()
    assert "Traceback" not in log
    assert '" 500 ' not in log


def failures_of(database: Path, username: str) -> int:
    query = "SELECT count(*) FROM login_failures WHERE kind = 'username' AND key = ?"
    count: int = database_rows(database, query, (username,))[0][0]
    return count


# -- another process holds the write lock ----------------------------------------------------------------


def test_a_write_lock_held_past_the_busy_timeout_gives_503_with_retry_after_and_the_server_recovers(
    tmp_path: Path, start_server: StartServer
) -> None:
    env = server_env_for(tmp_path)
    for name in ("bob", "carol"):
        add_user(env, name, PASSWORD)
    server = start_server(env, "--workers", "2")
    each_answers(server, wait_for_workers(server.process.pid, 2))
    access, refresh_token = token_pair(password_login(server, "bob"))
    carol_access, carol_refresh = token_pair(password_login(server, "carol"))
    patience = busy_timeout_s(server.database)
    # A refresh and a revocation wait for the lock on the event loop: a worker answers nothing else meanwhile
    # (see the test below), so a request may wait for two of them.
    wait = 3 * patience + 10
    calls: dict[str, Callable[[], httpx.Response]] = {
        "login": lambda: password_login(server, "bob", wait),
        "refresh": lambda: refresh(server, refresh_token, wait),
        "revoke": lambda: revoke(server, carol_refresh, wait),
        "me": lambda: me(server, access, wait),
    }
    with write_lock(server.database), ThreadPoolExecutor(8) as pool:  # held until every answer is in
        started = time.monotonic()
        futures = {kind: pool.submit(send) for kind, send in calls.items()}
        answers = {kind: future.result() for kind, future in futures.items()}
        elapsed = time.monotonic() - started
    statuses = {kind: (answer.status_code, answer.text) for kind, answer in answers.items()}
    assert patience <= elapsed < wait, (elapsed, statuses, server.log())
    for kind in ("login", "refresh", "revoke"):  # writes: they waited for the lock, then gave up
        assert_unavailable(answers[kind])
    assert answers["me"].status_code == 200, (statuses, server.log())  # reads go on (WAL)
    assert_clean_log(server)
    reasons = [line for line in server.log().splitlines() if line.startswith("WARNING:")]
    assert sorted(line.split(":", 2)[1].strip() for line in reasons) == sorted(
        ["503 for POST /token", "503 for POST /token", "503 for POST /revoke"]
    ), server.log()
    assert all(line.endswith("the database cannot be used just now: database is locked") for line in reasons)

    # Released: the same requests succeed, with nothing spent or counted by the ones refused.
    assert failures_of(server.database, "bob") == 0
    _, successor = token_pair(refresh(server, refresh_token))  # the refused refresh spent nothing
    assert revoke(server, carol_refresh).status_code == 200
    assert me(server, carol_access).status_code == 401
    assert password_login(server, "bob").status_code == 200
    assert refresh(server, successor).status_code == 200
    assert_families_whole(server.database, {family(access), family(carol_access)})
    assert_clean_log(server)


def test_a_write_lock_shorter_than_the_busy_timeout_only_delays_the_writes(
    tmp_path: Path, start_server: StartServer
) -> None:
    env = server_env_for(tmp_path)
    add_user(env, "bob", PASSWORD)
    server = start_server(env)
    access, refresh_token = token_pair(password_login(server, "bob"))
    hold = min(1.5, busy_timeout_s(server.database) / 2)
    with ThreadPoolExecutor(4) as pool:
        with write_lock(server.database):
            started = time.monotonic()
            login = pool.submit(password_login, server, "bob")
            refreshed = pool.submit(refresh, server, refresh_token)
            time.sleep(hold)
        assert login.result().status_code == 200
        assert refreshed.result().status_code == 200
        assert time.monotonic() - started >= hold  # they waited for the lock
    assert me(server, access).status_code == 200
    assert_families_whole(server.database, {family(access)})
    assert_clean_log(server)


def test_a_write_waiting_for_the_lock_does_not_hold_up_other_requests(
    tmp_path: Path, start_server: StartServer
) -> None:
    env = server_env_for(tmp_path)
    add_user(env, "bob", PASSWORD)
    server = start_server(env)  # one worker: every request goes to the one that waits
    access, refresh_token = token_pair(password_login(server, "bob"))
    patience = busy_timeout_s(server.database)
    with ThreadPoolExecutor(2) as pool, write_lock(server.database):
        waiting = pool.submit(refresh, server, refresh_token, patience + 10)
        time.sleep(0.5)
        try:
            read = me(server, access, timeout=2.0)
        finally:
            assert_unavailable(waiting.result())
    assert read.status_code == 200


LOGIN_DRIVERS = 3


def logins_in_a_loop(server: Server, stop: threading.Event, statuses: list[int], timeout: float) -> None:
    while not stop.is_set():
        statuses.append(password_login(server, "bob", timeout).status_code)


def test_a_login_that_ends_in_503_is_not_counted_as_a_failed_one(tmp_path: Path, start_server: StartServer) -> None:
    # Slow hashes, one at a time: at any moment most logins are counted and wait for their hash.
    env = server_env_for(tmp_path, hash_profile="default", max_concurrent_hashes="1")
    add_user(env, "bob", PASSWORD)
    server = start_server(env)
    patience = busy_timeout_s(server.database)
    stop, statuses = threading.Event(), list[int]()
    # The writes of one store wait for the lock one after the other (each up to the busy timeout).
    timeout = (LOGIN_DRIVERS + 2) * patience + 10
    drivers = [
        threading.Thread(target=logins_in_a_loop, args=(server, stop, statuses, timeout)) for _ in range(LOGIN_DRIVERS)
    ]
    for driver in drivers:
        driver.start()
    try:
        time.sleep(0.5)
        with write_lock(server.database):
            time.sleep(patience + 1)
            stop.set()
            for driver in drivers:
                driver.join()
    finally:
        stop.set()
    assert 503 in statuses
    assert_clean_log(server)
    # Every password was right: the successes the locked database could not take are recorded once it is
    # back (the throttle retries them every SETTLE_RETRY_S), with no further request.
    deadline = time.monotonic() + 10 * SETTLE_RETRY_S
    while failures_of(server.database, "bob") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert failures_of(server.database, "bob") == 0


# -- a database that cannot be opened, or only read ------------------------------------------------------


@pytest.fixture
def unprivileged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Servers started from here run without the capabilities that let root ignore file modes."""
    if os.geteuid() != 0:
        yield
        return
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed to run the server unprivileged as root"
    wrapper = tmp_path / "jwt-reference-unprivileged"
    wrapper.write_text(f'#!/bin/sh\nexec {" ".join(UNPRIVILEGED)} {server_process.JWT_REFERENCE} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(server_process, "JWT_REFERENCE", wrapper)
    yield


def serve_exits(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(server_process.JWT_REFERENCE), "serve", "--host", "127.0.0.1", "--port", "0", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)


def read_only(path: Path) -> None:
    if path.is_file():
        path.chmod(0o444)
    path.parent.chmod(0o555)


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(
    "fault",
    [
        "directory is a file",
        "read-only directory",
        "read-only database",
    ],
)
def test_a_database_that_cannot_be_opened_stops_serve_with_one_line(
    tmp_path: Path, unprivileged: None, fault: str, workers: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    database = data / "users.db"
    if fault == "directory is a file":
        data.rmdir()
        data.write_text("not a directory\n")
    env = server_env_for(tmp_path)
    env["JWT_REF_DATABASE"] = str(database)
    if fault == "read-only database":
        add_user(env, "bob", PASSWORD)  # an existing database (WAL), closed cleanly
    if fault != "directory is a file":
        read_only(database)
    try:
        result = serve_exits(env, "--workers", workers)
    finally:
        if data.is_dir():
            data.chmod(0o755)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Error: cannot open the user database {database}: ")
    assert lines[0].endswith("point JWT_REF_DATABASE (or --database) at a writable SQLite file")


def read_only_worker(tmp_path: Path, start_server: StartServer) -> tuple[Server, Path, str, int]:
    """A two-worker server whose database became read-only, one worker replaced (opened read-only) meanwhile;
    returns the server, its data directory, an access token of bob and the PID of the replacement."""
    data = tmp_path / "data"
    data.mkdir()
    env = server_env_for(tmp_path)
    env["JWT_REF_DATABASE"] = str(data / "users.db")
    add_user(env, "bob", PASSWORD)
    server = start_server(env, "--workers", "2")
    workers = wait_for_workers(server.process.pid, 2)
    each_answers(server, workers)  # both have opened the database, read-write
    read_only(server.database)
    access, _ = token_pair(password_login(server, "bob"))
    victim = max(workers)
    os.kill(victim, signal.SIGKILL)
    (replacement,) = wait_for_workers(server.process.pid, 2, without=frozenset({victim})) - workers
    health = by_worker(server, lambda: request(server.base_url, server.process.pid, "GET", "/health"), replacement)
    assert {answer.status for answer in health[True]} == {200}  # it has started, and opened the database
    return server, data, access, replacement


def each_answers(server: Server, workers: set[int]) -> None:
    """Wait until each of ``workers`` has answered ``GET /health``: it has started and opened the database."""
    answered: set[int] = set()
    deadline = time.monotonic() + 30
    while answered != workers and time.monotonic() < deadline:
        answer = request(server.base_url, server.process.pid, "GET", "/health")
        assert answer.status == 200
        answered.add(answer.worker)
    assert answered == workers, f"only {answered} of {workers} answered"


def by_worker(server: Server, send: Callable[[], Answer], replacement: int) -> dict[bool, list[Answer]]:
    """Answers on new connections, split by whether the replacement worker gave them, until both workers
    have given three (the kernel hands connections to the workers unevenly)."""
    answers: dict[bool, list[Answer]] = {True: [], False: []}
    deadline = time.monotonic() + 30  # the replacement may still be starting
    while time.monotonic() < deadline:
        answer = send()
        answers[answer.worker == replacement].append(answer)
        if min(len(group) for group in answers.values()) >= 3:
            return answers
    raise AssertionError(f"one worker gave every answer: {[len(group) for group in answers.values()]}")


def login_answer(server: Server) -> Answer:
    form = {"grant_type": "password", "username": "bob", "password": PASSWORD}
    return request(server.base_url, server.process.pid, "POST", "/token", form)


def assert_unavailable_answer(answer: Answer) -> None:
    assert answer.status == 503, answer.body
    assert answer.headers["retry-after"] == str(UNAVAILABLE_RETRY_AFTER)
    assert json.loads(answer.body)["error"] == "temporarily_unavailable"


def test_a_worker_that_opens_a_read_only_database_answers_writes_503_and_reads_200(
    tmp_path: Path, unprivileged: None, start_server: StartServer
) -> None:
    server, data, access, replacement = read_only_worker(tmp_path, start_server)
    try:
        logins = by_worker(server, lambda: login_answer(server), replacement)
        reads = by_worker(
            server, lambda: request(server.base_url, server.process.pid, "GET", "/users/me", token=access), replacement
        )
    finally:
        data.chmod(0o755)
        server.database.chmod(0o644)
    for answer in logins[True]:  # the replacement opened the file read-only: it cannot count the attempt
        assert_unavailable_answer(answer)
    assert {answer.status for answer in logins[False]} == {200}, server.log()  # the other opened it read-write
    assert {answer.status for group in reads.values() for answer in group} == {200}
    assert_clean_log(server)


def test_a_worker_that_opened_a_read_only_database_recovers_once_it_is_writable(
    tmp_path: Path, unprivileged: None, start_server: StartServer
) -> None:
    server, data, _, replacement = read_only_worker(tmp_path, start_server)
    data.chmod(0o755)
    server.database.chmod(0o644)
    time.sleep(UNAVAILABLE_RETRY_AFTER)  # what the 503 asks a client to wait
    logins = by_worker(server, lambda: login_answer(server), replacement)
    assert {answer.status for group in logins.values() for answer in group} == {200}
    assert_clean_log(server)


def test_the_database_file_made_read_only_under_a_running_server_goes_on_serving(
    tmp_path: Path, unprivileged: None, start_server: StartServer
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = server_env_for(tmp_path)
    env["JWT_REF_DATABASE"] = str(data / "users.db")
    add_user(env, "bob", PASSWORD)
    server = start_server(env)
    access, refresh_token = token_pair(password_login(server, "bob"))
    read_only(server.database)
    try:
        next_access, successor = token_pair(refresh(server, refresh_token))
        assert revoke(server, access).status_code == 200
        assert me(server, access).status_code == 401
        assert me(server, next_access).status_code == 200
    finally:
        data.chmod(0o755)
        server.database.chmod(0o644)
    assert json.loads(refresh(server, successor).text)["token_type"] == "bearer"
    assert_families_whole(server.database, {family(access)})
    assert_clean_log(server)


def test_a_database_deleted_under_a_running_server_is_not_noticed(tmp_path: Path, start_server: StartServer) -> None:
    # What the README lists as not guaranteed: SQLite writes on through the descriptors it holds, to a file
    # that no longer has a name; those writes are lost when the server stops.
    data = tmp_path / "data"
    data.mkdir()
    env = server_env_for(tmp_path)
    env["JWT_REF_DATABASE"] = str(data / "users.db")
    add_user(env, "bob", PASSWORD)
    server = start_server(env)
    shutil.rmtree(data)
    access, refresh_token = token_pair(password_login(server, "bob"))
    assert refresh(server, refresh_token).status_code == 200
    assert me(server, access).status_code == 200
    assert not data.exists()
    assert_clean_log(server)
