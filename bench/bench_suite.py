"""How long the full black-box conformance run takes against the reference server, next to its floor.

The floor is the server's unavoidable work: every password hash the run makes it compute (each
login attempt that reaches verification costs one), times the time of one hash, spread over the
hashing threads the server may use at once. Run and floor are measured in the same run:

    python bench/bench_suite.py [--rounds N]

The reference server starts exactly as ``jwt-conformance demo`` starts it (uvicorn on 127.0.0.1,
default hash parameters); hashes are counted on the server side. The suite runs with 1 worker and
with the default 4, alternating. It prints a table and writes JSON to bench/results/; it asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_server import machine, time_one_hash

from conformance.cli import execute_run
from conformance.demo import demo_server
from conformance.model import Status

RESULTS = Path(__file__).resolve().parent / "results"


class HashCounter:
    """Stands in for the server's ``verify_sync``: counts every hash it computes."""

    def __init__(self, passwords: Any) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._inner = passwords.verify_sync
        passwords.verify_sync = self

    def __call__(self, password: str, hashed: str | None) -> Any:
        with self._lock:
            self.count += 1
        return self._inner(password, hashed)


def one_run(workers: int) -> dict[str, Any]:
    with demo_server("default") as demo:
        state = demo.app.state.reference
        counter = HashCounter(state.passwords)
        started = time.perf_counter()
        summary = execute_run(replace(demo.config, workers=workers), [])
        wall = time.perf_counter() - started
        return {
            "workers": workers,
            "wall_s": wall,
            "hashes": counter.count,
            "hash_threads": state.settings.max_concurrent_hashes,
            "summary": {str(status): summary.counts[status] for status in Status},
        }


def main() -> None:
    parser = argparse.ArgumentParser(description="Conformance suite wall time against its floor.")
    parser.add_argument("--rounds", type=int, default=3, help="runs per worker setting (default 3)")
    args = parser.parse_args()
    hash_timing = time_one_hash(7)
    runs = [one_run(workers) for _ in range(args.rounds) for workers in (1, 4)]
    rows = []
    for workers in (1, 4):
        mine = [r for r in runs if r["workers"] == workers]
        wall = statistics.median(r["wall_s"] for r in mine)
        hashes = statistics.median(r["hashes"] for r in mine)
        threads = min(mine[0]["hash_threads"], os.cpu_count() or 1)
        floor = hashes * hash_timing.wall_s / threads
        rows.append((workers, wall, hashes, floor, wall / floor if floor else float("nan")))
    print(f"$ python bench/bench_suite.py --rounds {args.rounds}")
    info = machine()
    print(f"{info['cores']} cores ({info['cpu']}), Python {info['python']}")
    print(f"one Argon2id verify ({hash_timing.params}): {hash_timing.wall_s * 1000:.0f} ms wall")
    print(f"verdicts per run: {runs[-1]['summary']}")
    print()
    print(f"{'workers':>7} {'wall s (median)':>16} {'hashes':>7} {'floor s':>8} {'wall / floor':>13}")
    for workers, wall, hashes, floor, ratio in rows:
        print(f"{workers:>7} {wall:>16.2f} {hashes:>7.0f} {floor:>8.2f} {ratio:>13.2f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"suite-{datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps({"machine": info, "hash_wall_s": hash_timing.wall_s, "runs": runs}, indent=2))
    print(f"\nJSON: {out.relative_to(RESULTS.parent.parent)}")


if __name__ == "__main__":
    main()
