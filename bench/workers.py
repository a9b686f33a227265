"""Throughput with N workers ÷ one worker: reports figures, asserts nothing.

    python bench/workers.py                 # N = the number of cores (at least 2)
    python bench/workers.py --workers 4 --rounds 5 --round-s 5

Starts ``jwt-reference serve --demo-users --workers 1`` and ``... --workers N`` side by side on
127.0.0.1 (each its own temporary database; hash profile ``fast`` unless ``--hash-profile default``),
gives each a population of users, then alternates throughput rounds between the two servers (so
that whatever else the machine does falls on both alike): ``GET /users/me`` cycling through the
population's tokens, and ``POST /token`` logins. Prints the requests per second of both, their
ratio (median over rounds), and the CPU the servers and the load generators used, which says where
the ceiling is: on a machine whose cores are all busy, N workers cannot do more than the cores left
over by the load generators. Every worker hashes passwords on up to one thread per core, so one
worker alone can already keep every core hashing: logins gain little from workers.
Linux only (/proc). Loopback only; every round is bounded by its deadline.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench_server import CLK_TCK, SERVE, Server, load_average, machine, server_env
from loadgen import Outcome, Phase, run_phase
from population import population

from reference_impl.settings import PREFIX

BENCH = Path(__file__).resolve().parent
KINDS = ("me", "login")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and every live descendant: the supervisor and its workers."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        if current in stats:
            total += (int(stats[current][11]) + int(stats[current][12])) / CLK_TCK
        todo.extend(children.get(current, []))
    return total


def phase_for(kind: str, server: Server, tokens: tuple[str, ...], duration: float, connections: int) -> Phase:
    if kind == "me":
        return Phase(server.port, duration, tokens=tokens, connections=connections)
    return Phase(server.port, duration, login_clients=connections)


def completed(kind: str, outcome: Outcome) -> tuple[int, int]:
    loop = outcome.me if kind == "me" else outcome.logins
    return loop.ok, loop.errors


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    servers: dict[int, Server] = {}
    tokens: dict[int, tuple[str, ...]] = {}
    try:
        for workers in (1, args.workers):
            home = tmp / f"workers-{workers}"
            home.mkdir()
            env = {
                **server_env(home),
                PREFIX + "HASH_PROFILE": args.hash_profile,
                # Every login is johndoe's, from 127.0.0.1, many at once; attempts in flight count toward the
                # throttle's limits until their password is judged. Limits no round reaches keep the
                # throttle's writes in every login without refusing any.
                PREFIX + "LOGIN_MAX_FAILURES": "100000",
                PREFIX + "LOGIN_MAX_FAILURES_PER_CLIENT": "1000000",
            }
            command = [*SERVE, "serve", "--port", "0", "--demo-users", "--workers", str(workers)]
            servers[workers] = Server(f"{workers} worker(s)", command, env, home / "serve.log")
        for workers, server in servers.items():
            server.wait_ready("/health", timeout=60.0)
            tokens[workers] = tuple(population(server.url, args.population))

        rates: dict[str, dict[int, list[float]]] = {kind: {w: [] for w in servers} for kind in KINDS}
        server_cores: dict[str, dict[int, list[float]]] = {kind: {w: [] for w in servers} for kind in KINDS}
        client_cores: dict[str, dict[int, list[float]]] = {kind: {w: [] for w in servers} for kind in KINDS}
        errors = 0
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.generators, mp_context=context) as pool:

            def measure(kind: str, workers: int, duration: float) -> tuple[float, float, float]:
                """One round: (completed requests/s, server cores, load-generator cores)."""
                nonlocal errors
                server = servers[workers]
                share = max(1, args.connections // args.generators)
                phase = phase_for(kind, server, tokens[workers], duration, share)
                before = tree_cpu_s(server.pid)
                futures = [pool.submit(run_phase, phase) for _ in range(args.generators)]
                outcomes = [future.result(timeout=duration + 120) for future in futures]
                cores = (tree_cpu_s(server.pid) - before) / duration
                ok = sum(completed(kind, o)[0] for o in outcomes)
                errors += sum(completed(kind, o)[1] for o in outcomes)
                client = sum(o.client_cpu_s for o in outcomes) / duration
                return ok / duration, cores, client

            for kind in KINDS:  # warm-up, not counted: every worker verifies tokens and hashes once
                for workers in servers:
                    measure(kind, workers, 1.0)
            order = list(servers)
            for i in range(args.rounds):  # alternating: 1, N, then N, 1, ...
                for kind in KINDS:
                    for workers in order[:: 1 if i % 2 == 0 else -1]:
                        rate, cores, client = measure(kind, workers, args.round_s)
                        rates[kind][workers].append(rate)
                        server_cores[kind][workers].append(cores)
                        client_cores[kind][workers].append(client)
    finally:
        for server in servers.values():
            server.stop()

    figures: dict[str, Any] = {}
    for kind in KINDS:
        ratios = [n / one for one, n in zip(rates[kind][1], rates[kind][args.workers], strict=True) if one > 0]
        figures[kind] = {
            "requests_per_s": {str(w): statistics.median(r) for w, r in rates[kind].items()},
            "server_cores": {str(w): statistics.median(c) for w, c in server_cores[kind].items()},
            "load_generator_cores": {str(w): statistics.median(c) for w, c in client_cores[kind].items()},
            "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
        }
    return {"workers": args.workers, "errors": errors, "figures": figures}


def table(command: str, info: dict[str, Any], args: argparse.Namespace, r: dict[str, Any]) -> str:
    n = args.workers
    lines = [
        f"$ {command}",
        f"{info['cpu']}, {info['cores']} cores, Python {info['python']}, load average before: {info['load_before']}",
        f"{args.rounds} rounds of {args.round_s:g} s per kind and server, alternating; {args.connections} connections "
        f"from {args.generators} load-generator process(es); {args.population} users per server; "
        f"hash profile {args.hash_profile}",
        "",
        f"{'kind':<18}{'1 worker req/s':>16}{f'{n} workers req/s':>18}{f'{n} ÷ 1 (min-max)':>22}"
        f"{'server cores 1 / N':>22}{'generator cores':>18}",
    ]
    for kind, label in (("me", "GET /users/me"), ("login", "POST /token")):
        f = r["figures"][kind]
        rps, cores, gen = f["requests_per_s"], f["server_cores"], f["load_generator_cores"]
        ratio = f"{f['ratio_median']:.2f} ({f['ratio_min']:.2f}-{f['ratio_max']:.2f})"
        server = f"{cores['1']:.2f} / {cores[str(n)]:.2f}"
        generator = f"{gen['1']:.2f} / {gen[str(n)]:.2f}"
        lines.append(f"{label:<18}{rps['1']:>16,.0f}{rps[str(n)]:>18,.0f}{ratio:>22}{server:>22}{generator:>18}")
    lines.append(f"failed requests: {r['errors']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2), help="N (default: cores, ≥ 2)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-s", type=float, default=5.0, help="seconds per round (at most 120)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections in all (default 32)")
    parser.add_argument("--generators", type=int, default=1, help="load-generator processes (default 1)")
    parser.add_argument("--population", type=int, default=200, help="users (and tokens) per server (default 200)")
    parser.add_argument(
        "--hash-profile", choices=["fast", "default"], default="fast", help="password hashing (default: fast)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here (default: bench/results/workers-*.json)")
    args = parser.parse_args()
    if args.workers < 2 or not 0 < args.round_s <= 120 or args.rounds < 1 or args.generators < 1:
        parser.error("--workers must be at least 2, --round-s in (0, 120], --rounds and --generators at least 1")
    info = {**machine(), "load_before": load_average()}
    with tempfile.TemporaryDirectory(prefix="jwt-bench-workers-") as tmp:
        result = run(args, Path(tmp))
    info["load_after"] = load_average()
    command = "python bench/workers.py " + " ".join(sys.argv[1:])
    print(table(command.strip(), info, args, result))
    out = args.json or BENCH / "results" / f"workers-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": info, **result}, indent=2) + "\n")
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
