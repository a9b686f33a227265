"""SIGTERM drains: every request the server had accepted gets its whole answer, then it exits with status 0.

Real ``jwt-reference serve`` processes on 127.0.0.1, one worker and ``--workers 2``, with logins slow enough
(the default Argon2id cost, one hash at a time per worker) that many are still in flight when the signal comes.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import jwt
import pytest

from reference_impl.workers import GRACEFUL_SHUTDOWN_S

from ..server_process import StartServer, start_server
from .test_e2e import add_user
from .test_workers import PASSWORD, server_env_for
from .worker_processes import assert_families_whole, database_rows, wait_for_workers

__all__ = ["start_server"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.e2e

LOGINS = 24
REFRESHES = 12
FORM = "application/x-www-form-urlencoded"
SETTLE_S = 0.5  # after the last request is sent, before the signal: time for the server to accept them all


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_answers_every_request_in_flight_then_exits_0(
    tmp_path: Path, start_server: StartServer, workers: int
) -> None:
    # The throttle off: concurrent logins count as failures until their password is checked.
    env = server_env_for(tmp_path, hash_profile="default", max_concurrent_hashes="1", login_max_failures="0")
    add_user(env, "bob", PASSWORD)
    server = start_server(env, "--workers", str(workers))
    if workers > 1:
        wait_for_workers(server.process.pid, workers)
    form = {"grant_type": "password", "username": "bob", "password": PASSWORD}
    with server.client() as client:
        first = [client.post("/token", data=form).json()["refresh_token"] for _ in range(REFRESHES)]

    port = urlsplit(server.base_url).port
    sent = threading.Semaphore(0)

    def send(form: dict[str, str]) -> tuple[int, bytes]:
        # A connection of its own: the request is whole on the wire before the signal is sent.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("POST", "/token", body=urlencode(form), headers={"Content-Type": FORM})
            sent.release()
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    refresh_forms = [{"grant_type": "refresh_token", "refresh_token": token} for token in first]
    with ThreadPoolExecutor(LOGINS + REFRESHES) as pool:
        futures = [pool.submit(send, form) for _ in range(LOGINS)]
        futures += [pool.submit(send, refresh_form) for refresh_form in refresh_forms]
        for _ in futures:
            assert sent.acquire(timeout=10)
        time.sleep(SETTLE_S)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        answers = [future.result() for future in futures]
    code = server.process.wait(timeout=GRACEFUL_SHUTDOWN_S + 10)
    took = time.monotonic() - signalled
    log = server.log()

    assert [status for status, _ in answers] == [200] * (LOGINS + REFRESHES), log
    bodies = [json.loads(body) for _, body in answers]
    assert all(body["token_type"] == "bearer" and body["refresh_token"] for body in bodies)
    assert code == 0, log
    assert took < GRACEFUL_SHUTDOWN_S + 5
    assert "Traceback" not in log
    assert log.count("Application shutdown complete.") == workers
    # In flight when the signal came: answered after it (the hashes take seconds in all).
    assert "Shutting down" in log and log.index("Shutting down") < log.rindex('"POST /token HTTP/1.1" 200')

    # Nothing half-written: every family whole, each refreshed token spent once, its successor stored unspent.
    families = {jwt.decode(body["access_token"], options={"verify_signature": False})["sid"] for body in bodies}
    unspent = assert_families_whole(server.database, families)
    assert len(unspent) == LOGINS + REFRESHES  # the 12 refreshed families and the 24 new ones
    spent = database_rows(server.database, "SELECT count(*) FROM refresh_tokens WHERE used = 1")
    assert spent == [(REFRESHES,)]
