"""kill -9 of workers in the middle of logins, refreshes and user creations (SQLite, ``--workers 3``).

Afterwards the database is read directly: no acknowledged user is missing, no refresh token was
spent twice, and every family is whole (exactly one unspent token) or ended (none at all).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path

import jwt
import pytest

from ..server_process import Server, StartServer, start_server
from .test_e2e import add_user, cli
from .test_workers import PASSWORD, WORKERS, Answer, call, login, server_env_for, tokens
from .worker_processes import request, wait_for_workers

__all__ = ["start_server"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.e2e

KILLS = 3
DRIVERS = 4


class Outcomes:
    """What the clients saw: refresh tokens answered 200 (each may be at most once), users created."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spent: Counter[str] = Counter()
        self.created: list[str] = []
        self.families: set[str] = set()
        self.errors = 0
        self.refreshes = 0


def attempt(outcomes: Outcomes, send: object) -> Answer | None:
    try:
        return send()  # type: ignore[operator, no-any-return]
    except (OSError, http.client.HTTPException, AssertionError):  # a connection to the killed worker
        with outcomes.lock:
            outcomes.errors += 1
        return None


def refresh_chains(server: Server, outcomes: Outcomes, stop: threading.Event) -> None:
    refresh = None
    while not stop.is_set():
        if refresh is None:
            answer = attempt(outcomes, lambda: login(server, "bob"))
            if answer is None or answer.status != 200:
                continue
            access, refresh = tokens(answer)
            with outcomes.lock:
                outcomes.families.add(jwt.decode(access, options={"verify_signature": False})["sid"])
            continue
        presented = refresh
        answer = attempt(
            outcomes,
            partial(call, server, "POST", "/token", {"grant_type": "refresh_token", "refresh_token": presented}),
        )
        if answer is None:
            continue  # presented again: if the killed worker had spent it, this is a reuse and ends the family
        if answer.status == 200:
            with outcomes.lock:
                outcomes.spent[presented] += 1
                outcomes.refreshes += 1
            refresh = tokens(answer)[1]
        else:
            assert answer.status == 400, answer.body
            refresh = None


def user_creations(server: Server, outcomes: Outcomes, stop: threading.Event, admin_token: str) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        name = f"user-{n}"
        body = json.dumps({"username": name, "password": "a long enough password"}).encode()
        answer = attempt(outcomes, partial(call_json, server, "/users", body, admin_token))
        if answer is not None and answer.status == 201:
            with outcomes.lock:
                outcomes.created.append(name)


def call_json(server: Server, path: str, body: bytes, token: str) -> Answer:
    return request(server.base_url, server.process.pid, "POST", path, json_body=body, token=token)


def database_rows(database: Path, query: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(database)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def test_kill_9_of_workers_loses_no_user_spends_no_token_twice_and_halves_no_family(
    tmp_path: Path, start_server: StartServer
) -> None:
    env = server_env_for(tmp_path)
    add_user(env, "bob", PASSWORD)
    result = cli(env, "users", "add", "root", "--scopes", "me items:read admin", "--password-stdin", stdin=PASSWORD)
    assert result.returncode == 0, result.stderr
    server = start_server(env, "--workers", str(WORKERS))
    parent = server.process.pid
    admin, _ = tokens(login(server, "root", scope="admin"))
    outcomes, stop = Outcomes(), threading.Event()
    threads = [threading.Thread(target=refresh_chains, args=(server, outcomes, stop)) for _ in range(DRIVERS)]
    threads.append(threading.Thread(target=user_creations, args=(server, outcomes, stop, admin)))
    for thread in threads:
        thread.start()
    try:
        for _ in range(KILLS):
            time.sleep(0.7)
            workers = wait_for_workers(parent, WORKERS)
            victim = max(workers)
            os.kill(victim, signal.SIGKILL)
            wait_for_workers(parent, WORKERS, without=frozenset({victim}))
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert server.process.poll() is None
    assert outcomes.refreshes > 20 and outcomes.created
    assert max(outcomes.spent.values()) == 1  # no refresh token answered 200 twice

    users = {name for (name,) in database_rows(server.database, "SELECT username FROM users")}
    assert set(outcomes.created) <= users  # every 201 is in the database
    unspent = dict(
        database_rows(server.database, "SELECT family_id, sum(1 - used) FROM refresh_tokens GROUP BY family_id")
    )
    revoked = {family for (family,) in database_rows(server.database, "SELECT family_id FROM revoked_families")}
    assert set(unspent.values()) <= {1}  # a family with tokens has exactly one to spend: none half-rotated
    assert not set(unspent) & revoked  # an ended family has no token left
    assert outcomes.families <= set(unspent) | revoked
