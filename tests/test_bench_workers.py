"""bench/workers.py: a short real run measures both servers, counts the workers' CPU, and fails no request."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.e2e
def test_a_short_run_reports_both_servers_and_the_ratio(tmp_path: Path) -> None:
    out = tmp_path / "workers.json"
    command = [sys.executable, str(BENCH / "workers.py"), "--workers", "2", "--rounds", "1", "--round-s", "1"]
    command += ["--connections", "4", "--population", "5", "--json", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result["workers"] == 2
    assert result["errors"] == 0
    for kind in ("me", "login"):
        figures = result["figures"][kind]
        assert set(figures["requests_per_s"]) == {"1", "2"}
        assert min(figures["requests_per_s"].values()) > 0
        # the supervisor of 2 workers serves nothing itself: only its workers' CPU can make this non-zero
        assert figures["server_cores"]["2"] > 0
        assert figures["ratio_min"] <= figures["ratio_median"] <= figures["ratio_max"]
    assert "GET /users/me" in run.stdout
    assert "POST /token" in run.stdout
