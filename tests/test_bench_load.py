"""bench/load.py: a short real run reports no 5xx and no lost write, and its write count catches a lost one."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from reference_impl.grants import GrantStore
from reference_impl.models import UserInDB
from reference_impl.store import UserStore

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def load() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        import load as module

        yield module
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.e2e
def test_a_short_run_reports_no_5xx_and_no_lost_write(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    command = [sys.executable, str(BENCH / "load.py"), "--duration", "5", "--connections", "10", "--users", "10"]
    run = subprocess.run([*command, "--json", str(out)], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    figures = json.loads(out.read_text())
    assert figures["5xx"] == 0
    assert figures["writes"]["problems"] == {}
    assert figures["unexpected_statuses"] == {}
    assert figures["transport_errors"] == {}
    assert {"login", "me", "refresh", "revoke_access", "revoke_family", "me_revoked"} <= set(figures["kinds"])
    assert figures["kinds"]["me_revoked"]["statuses"].keys() == {"401"}
    assert figures["writes"]["database"]["users"] == 10
    assert figures["memory"]["samples"] >= 2


def test_the_write_count_reports_a_refresh_token_the_database_lost(tmp_path: Path, load: ModuleType) -> None:
    database = tmp_path / "users.db"
    users = UserStore(database)
    grants = GrantStore(database, 3600, 900)
    try:
        users.add(UserInDB(username="load-0000", hashed_password="x", disabled=False))
        family_id, kept = grants.start_family("load-0000", ("me",))
    finally:
        grants.close()
        users.close()
    tally = load.Tally()
    tally.families[family_id] = load.Family("load-0000", [kept])
    assert load.count_writes(database, {"load-0000": "pw"}, tally)["problems"] == {}

    tally.families["f" * 32] = load.Family("load-0000", ["a refresh token the server never stored"])
    tally.revoked_jtis.add("j" * 32)
    problems = load.count_writes(database, {"load-0000": "pw", "load-0001": "pw"}, tally)["problems"]
    assert problems == {
        "users missing": 1,
        "refresh-token rows missing": 1,
        "revoked access tokens missing": 1,
    }
