"""kill -9 of a whole instance: two ``jwt-reference serve`` processes on one SQLite file (two ports), one
killed in the middle of logins, refreshes and user creations. The other goes on serving; the database,
read directly afterwards, has every acknowledged user, no refresh token spent twice and no family half-rotated.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from ..server_process import Server, StartServer, start_server
from .test_e2e import add_user, cli
from .test_worker_faults import Outcomes, refresh_chains, user_creations
from .test_workers import PASSWORD, login, server_env_for, tokens
from .worker_processes import assert_families_whole, database_rows, wait_for_workers

__all__ = ["start_server"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.e2e

DRIVERS = 3  # refresh chains per instance
WORKERS = 2


def drive(server: Server, outcomes: Outcomes, stop: threading.Event, admin: str) -> list[threading.Thread]:
    threads = [threading.Thread(target=refresh_chains, args=(server, outcomes, stop)) for _ in range(DRIVERS)]
    threads.append(threading.Thread(target=user_creations, args=(server, outcomes, stop, admin)))
    for thread in threads:
        thread.start()
    return threads


def test_kill_9_of_an_instance_loses_nothing_committed_and_the_other_goes_on(
    tmp_path: Path, start_server: StartServer
) -> None:
    env = server_env_for(tmp_path)
    add_user(env, "bob", PASSWORD)
    result = cli(env, "users", "add", "root", "--scopes", "me items:read admin", "--password-stdin", stdin=PASSWORD)
    assert result.returncode == 0, result.stderr
    survivor, victim = (start_server(env, "--workers", str(WORKERS)) for _ in range(2))
    victim_processes = {victim.process.pid, *wait_for_workers(victim.process.pid, WORKERS)}
    wait_for_workers(survivor.process.pid, WORKERS)
    admin, _ = tokens(login(survivor, "root", scope="admin"))
    kept, lost = Outcomes(), Outcomes()
    stop_victim, stop_survivor = threading.Event(), threading.Event()
    victim_threads = drive(victim, lost, stop_victim, admin)
    survivor_threads = drive(survivor, kept, stop_survivor, admin)
    # user_creations names users user-1, user-2, ... on each instance: the second instance's are refused 409
    # when the first has them, which is fine: only the 201s are counted.
    try:
        time.sleep(1.5)
        for pid in victim_processes:  # the whole instance: its supervisor and its workers, at once
            os.kill(pid, signal.SIGKILL)
        victim.process.wait(timeout=10)
        refreshes_at_kill = kept.refreshes
        time.sleep(1.5)
    finally:
        stop_victim.set()
        stop_survivor.set()
        for thread in victim_threads + survivor_threads:
            thread.join()
    assert victim.process.returncode == -signal.SIGKILL
    assert survivor.process.poll() is None
    assert lost.refreshes > 5 and kept.refreshes > refreshes_at_kill + 5  # the survivor went on serving
    assert max((lost.spent + kept.spent).values()) == 1  # no refresh token answered 200 twice, by either

    users = {name for (name,) in database_rows(survivor.database, "SELECT username FROM users")}
    assert set(lost.created) | set(kept.created) <= users  # every 201, from either instance, is in the database
    assert_families_whole(survivor.database, lost.families | kept.families)
    log = survivor.log()
    assert "Traceback" not in log and '" 500 ' not in log
