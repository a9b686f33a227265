"""Benchmark of the reference server: reports figures, asserts nothing.

    python bench/bench_server.py [--quick]
    python bench/bench_server.py --database-url postgresql://... [--quick]

Starts ``jwt-reference serve --demo-users`` (default Argon2id hash profile, one uvicorn worker) and
bench/bare_app.py on 127.0.0.1, drives them from a separate load-generator process (loadgen.py),
prints a table and writes the figures as JSON to bench/results/. Linux only (/proc). See README.md.

With ``--database-url``, compares the databases instead: the same server on a SQLite file, then on
that PostgreSQL database (one after the other, never at once): logins, refreshes and ``/users/me``,
requests/s and p50 / p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import re
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx2
from loadgen import HOST, Connection, Loop, Outcome, Phase, run_phase
from population import population

from reference_impl.security import Passwords
from reference_impl.settings import PREFIX

BENCH = Path(__file__).resolve().parent
JWT_REFERENCE = Path(sys.executable).parent / "jwt-reference"  # else the same CLI through python -m
SERVE = [str(JWT_REFERENCE)] if JWT_REFERENCE.exists() else [sys.executable, "-m", "reference_impl"]
RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Plan:
    rounds: int = 5  # interleaved bare / reference throughput rounds
    round_s: float = 4.0
    connections: int = 16  # keep-alive connections of a throughput round
    latency_s: float = 10.0  # each of: idle latency, latency under login load, logins/s
    probe_interval: float = 0.01  # one /users/me request every 10 ms
    login_clients: int = 4
    flood_s: float = 15.0
    flood_clients: int = 50
    hash_samples: int = 7
    population: int = 1000  # distinct users whose tokens one throughput variant cycles through


QUICK = Plan(rounds=3, round_s=1.5, latency_s=4.0, flood_s=6.0, hash_samples=3, population=200)
VARIANTS = ("bare", "reference", "population_one", "population_all")


class Server:
    """A server process on 127.0.0.1 (port chosen by the OS), its output in ``log``; stopped by PID."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log, self.url = name, log, ""
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, path: str, timeout: float = 30.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text(errors='replace')}")
            if not self.url and (match := RUNNING.search(self.log.read_text(errors="replace"))):
                self.url = f"http://127.0.0.1:{match.group(1)}"
            if self.url:
                try:
                    if httpx2.get(self.url + path, timeout=2.0, trust_env=False).status_code in (200, 401):
                        return self
                except httpx2.TransportError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready within {timeout} s:\n{self.log.read_text(errors='replace')}")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def status_kib(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def server_env(tmp: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(PREFIX)}
    env.update(
        {
            PREFIX + "SECRET_KEY": secrets.token_urlsafe(48),
            PREFIX + "DATABASE": str(tmp / "users.db"),
            PREFIX + "HASH_PROFILE": "default",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass(frozen=True)
class HashTiming:
    wall_s: float
    cpu_s: float
    params: str


def time_one_hash(samples: int) -> HashTiming:
    """One Argon2id verify with the server's parameters, in this process: median wall and CPU seconds."""
    passwords = Passwords("default", 1)
    hashed = passwords.hash("secret")
    walls, cpus = [], []
    for _ in range(samples):
        wall, cpu = time.perf_counter(), time.process_time()
        if not passwords.verify_sync("secret", hashed).valid:
            raise RuntimeError("the timed verification failed")
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return HashTiming(statistics.median(walls), statistics.median(cpus), hashed.split("$")[3])


class RssSampler(threading.Thread):
    """Samples VmRSS of a process every 10 ms until stopped; keeps the peak (KiB)."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server, self.peak_kib, self.done = server, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.01):
            self.peak_kib = max(self.peak_kib, self.server.status_kib("VmRSS"))


def p(latencies: list[float], q: float) -> float:
    """The q-quantile in milliseconds (nearest rank)."""
    if not latencies:
        return float("nan")
    ordered = sorted(latencies)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def loop_summary(loop: Loop, duration: float) -> dict[str, Any]:
    return {
        "ok": loop.ok,
        "late": loop.late,
        "errors": loop.errors,
        "per_s": loop.ok / duration,
        "p50_ms": p(loop.latencies, 0.50),
        "p99_ms": p(loop.latencies, 0.99),
        "max_ms": p(loop.latencies, 1.0),
    }


class Load:
    """The load-generator process; counts the failed requests of every phase."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool, self.errors = pool, 0

    def run(self, server: Server, phase: Phase) -> tuple[Outcome, float]:
        """Run a phase; return its outcome and the server's CPU use meanwhile (cores)."""
        cpu = server.cpu_s()
        outcome = self.pool.submit(run_phase, phase).result(timeout=phase.duration + 120)
        self.errors += outcome.me.errors + outcome.probe.errors + outcome.logins.errors
        return outcome, (server.cpu_s() - cpu) / phase.duration


def cpu_per_request(cores: list[float], rates: list[float]) -> float:
    """Median over rounds of server CPU microseconds per completed request."""
    return statistics.median(1e6 * c / r for c, r in zip(cores, rates, strict=True) if r > 0)


def run(plan: Plan, tmp: Path) -> dict[str, Any]:
    env = server_env(tmp)
    servers: list[Server] = []
    try:
        ref = Server("jwt-reference", [*SERVE, "serve", "--port", "0", "--demo-users"], env, tmp / "ref.log")
        servers.append(ref)
        bare = Server("bare_app", [sys.executable, str(BENCH / "bare_app.py")], env, tmp / "bare.log")
        servers.append(bare)
        # The population's server: its own database, and the fast hash profile, so that creating and
        # logging in 1,000 users takes seconds (hashing plays no part in GET /users/me).
        (tmp / "population").mkdir()
        pop_env = {**server_env(tmp / "population"), PREFIX + "HASH_PROFILE": "fast"}
        pop = Server(
            "jwt-reference (population)", [*SERVE, "serve", "--port", "0", "--demo-users"], pop_env, tmp / "pop.log"
        )
        servers.append(pop)
        ref.wait_ready("/health")
        bare.wait_ready("/users/me")
        pop.wait_ready("/health")
        with httpx2.Client(base_url=ref.url, trust_env=False, timeout=30.0) as client:
            form = {"grant_type": "password", "username": "johndoe", "password": "secret"}
            client.post("/token", data=form).raise_for_status()  # upgrades the legacy bcrypt hash
            token = client.post("/token", data=form).raise_for_status().json()["access_token"]
            ref_body = client.get("/users/me", headers={"Authorization": f"Bearer {token}"}).json()
        same_json = ref_body == httpx2.get(bare.url + "/users/me", trust_env=False).json()
        made = time.monotonic()
        tokens = tuple(population(pop.url, plan.population))
        population_setup_s = time.monotonic() - made
        one_hash = time_one_hash(plan.hash_samples)

        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            load = Load(pool)
            rounds: dict[str, list[float]] = {name: [] for name in VARIANTS}
            cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
            client_cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
            variants = {
                "bare": (bare, {"token": token}),
                "reference": (ref, {"token": token}),
                "population_one": (pop, {"token": tokens[0]}),
                "population_all": (pop, {"tokens": tokens}),
            }
            warmup: dict[str, float] = {}
            for name, (server, given) in variants.items():  # warm-up, not counted (every token verified once)
                outcome, _ = load.run(server, Phase(server.port, 1.0, connections=plan.connections, **given))
                warmup[name] = outcome.me.ok / 1.0
            for i in range(plan.rounds):  # the order alternates: forwards in even rounds, backwards in odd ones
                for name in VARIANTS[:: 1 if i % 2 == 0 else -1]:
                    server, given = variants[name]
                    phase = Phase(server.port, plan.round_s, connections=plan.connections, **given)
                    outcome, cores = load.run(server, phase)
                    rounds[name].append(outcome.me.ok / plan.round_s)
                    cpu[name].append(cores)
                    client_cpu[name].append(outcome.client_cpu_s / plan.round_s)
            pop_rss_mb = pop.status_kib("VmRSS") * 1024 / 1e6
            pop.stop()
            bare.stop()

            probe = Phase(ref.port, plan.latency_s, token, probe_interval=plan.probe_interval)
            idle, _ = load.run(ref, probe)
            loaded, _ = load.run(ref, Phase(**{**asdict(probe), "login_clients": plan.login_clients}))
            logins, login_cores = load.run(ref, Phase(ref.port, plan.latency_s, login_clients=plan.login_clients))

            sampler = RssSampler(ref)
            sampler.start()
            flood, _ = load.run(ref, Phase(ref.port, plan.flood_s, login_clients=plan.flood_clients))
            sampler.done.set()
            sampler.join()
            hwm_kib = ref.status_kib("VmHWM")
    finally:
        for server in servers:
            server.stop()

    cores = os.cpu_count() or 1
    login_rate = logins.logins.ok / plan.latency_s
    idle_p99 = p(idle.probe.latencies, 0.99)
    return {
        "load_average_after": load_average(),
        "same_json": same_json,
        "failed_requests": load.errors,
        "throughput": {
            "rounds": rounds,
            "server_cpu_cores": cpu,
            "client_cpu_cores": client_cpu,
            "warmup_rps": warmup,
            "bare_rps": statistics.median(rounds["bare"]),
            "reference_rps": statistics.median(rounds["reference"]),
            "ratio": statistics.median(rounds["reference"]) / statistics.median(rounds["bare"]),
            # Server CPU time per request (microseconds): what the ratio measures when both servers
            # saturate their core, and still meaningful when the machine's other work keeps them below it.
            "cpu_us_per_request": {name: cpu_per_request(cpu[name], rounds[name]) for name in VARIANTS},
        },
        "population": {
            "users": len(tokens),
            "setup_s": population_setup_s,
            "one_token_rps": statistics.median(rounds["population_one"]),
            "all_tokens_rps": statistics.median(rounds["population_all"]),
            "all_over_one": statistics.median(rounds["population_all"]) / statistics.median(rounds["population_one"]),
            "all_over_bare": statistics.median(rounds["population_all"]) / statistics.median(rounds["bare"]),
            "server_rss_mb": pop_rss_mb,
        },
        "latency": {
            "idle": loop_summary(idle.probe, plan.latency_s),
            "under_login_load": loop_summary(loaded.probe, plan.latency_s),
            "logins_meanwhile": loop_summary(loaded.logins, plan.latency_s),
            "p99_ratio": p(loaded.probe.latencies, 0.99) / idle_p99,
        },
        "logins": {
            "argon2_params": one_hash.params,
            "one_hash_wall_s": one_hash.wall_s,
            "one_hash_cpu_s": one_hash.cpu_s,
            "floor_per_s": cores / one_hash.wall_s,
            "cpu_floor_per_s": cores / one_hash.cpu_s,
            "clients": plan.login_clients,
            "logins": loop_summary(logins.logins, plan.latency_s),
            "server_cpu_cores": login_cores,
            "ratio_to_floor": login_rate / (cores / one_hash.wall_s),
            "ratio_to_cpu_floor": login_rate / (cores / one_hash.cpu_s),
        },
        "flood": {
            "clients": plan.flood_clients,
            "logins": loop_summary(flood.logins, plan.flood_s),
            "peak_rss_sampled_mb": sampler.peak_kib * 1024 / 1e6,
            "vmhwm_mb": hwm_kib * 1024 / 1e6,
        },
    }


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages: other work on the machine shows here."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.machine())
    packages = ("fastapi", "starlette", "uvicorn", "pyjwt", "argon2-cffi", "pwdlib")
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": load_average(),
        "packages": {name: version(name) for name in packages},
    }


def table(command: str, info: dict[str, Any], plan: Plan, r: dict[str, Any]) -> str:
    t, lat, lg, fl, pp = r["throughput"], r["latency"], r["logins"], r["flood"], r["population"]
    us = t["cpu_us_per_request"]
    idle, loaded = lat["idle"], lat["under_login_load"]
    hash_ms = f"{lg['one_hash_wall_s'] * 1000:.0f} / {lg['one_hash_cpu_s'] * 1000:.0f} ms"
    cpu = f"{statistics.median(t['server_cpu_cores']['reference']):.2f} / "
    cpu += f"{statistics.median(t['server_cpu_cores']['bare']):.2f} cores"
    rss = f"{fl['peak_rss_sampled_mb']:.0f} / {fl['vmhwm_mb']:.0f} MB"
    n, clients = plan.rounds, plan.login_clients
    rows = [
        (f"/users/me req/s, reference (median of {n})", f"{t['reference_rps']:.0f}", "", None),
        (f"/users/me req/s, bare FastAPI (median of {n})", f"{t['bare_rps']:.0f}", "", None),
        ("  server CPU meanwhile, reference / bare", cpu, "", None),
        ("  ratio reference / bare", f"{t['ratio']:.2f}", ">= 0.85", t["ratio"] >= 0.85),
        ("  server CPU per request, reference / bare", f"{us['reference']:.0f} / {us['bare']:.0f} us", "", None),
        ("  ratio of CPU per request, bare / reference", f"{us['bare'] / us['reference']:.2f}", "", None),
        (f"/users/me req/s, one token of {pp['users']} users' server", f"{pp['one_token_rps']:.0f}", "", None),
        (f"/users/me req/s, all {pp['users']} users' tokens in turn", f"{pp['all_tokens_rps']:.0f}", "", None),
        ("  ratio all tokens / one token", f"{pp['all_over_one']:.2f}", "", None),
        ("  ratio all tokens / bare", f"{pp['all_over_bare']:.2f}", "", None),
        (
            "  server CPU per request, one / all tokens",
            f"{us['population_one']:.0f} / {us['population_all']:.0f} us",
            "",
            None,
        ),
        ("/users/me p50 / p99, idle", f"{idle['p50_ms']:.2f} / {idle['p99_ms']:.2f} ms", "", None),
        (
            f"/users/me p50 / p99, {clients} clients logging in",
            f"{loaded['p50_ms']:.2f} / {loaded['p99_ms']:.2f} ms",
            f"p99 <= {2 * idle['p99_ms']:.2f} ms",
            lat["p99_ratio"] <= 2,
        ),
        ("one Argon2id verify in-process, wall / CPU", hash_ms, "", None),
        (f"logins/s, {clients} clients", f"{lg['logins']['per_s']:.1f}", "", None),
        ("  floor: cores / wall time of one hash", f"{lg['floor_per_s']:.1f}", "", None),
        ("  ratio to floor", f"{lg['ratio_to_floor']:.2f}", ">= 0.8", lg["ratio_to_floor"] >= 0.8),
        ("  ratio to cores / CPU time of one hash", f"{lg['ratio_to_cpu_floor']:.2f}", "(see README)", None),
        (f"logins/s, {fl['clients']}-client flood", f"{fl['logins']['per_s']:.1f}", "", None),
        ("peak server RSS, flood (sampled / VmHWM)", rss, "< 400 MB", fl["vmhwm_mb"] < 400),
    ]
    width = max(len(row[0]) for row in rows)
    lines = [
        f"$ {command}",
        f"{info['cores']} cores ({info['cpu']}), Python {info['python']}, {info['platform']}",
        f"load average before / after the run: {info['load_average']} / {r['load_average_after']}",
        f"hash profile: default (Argon2id {lg['argon2_params']}) for every login and memory figure",
        f"failed requests: {r['failed_requests']}; same JSON from both apps: {r['same_json']}",
        "",
        f"{'figure':<{width}}  {'value':>19}  {'goal':<17} status",
    ]
    for figure, value, goal, met in rows:
        status = "" if met is None else "met" if met else "MISSED"
        lines.append(f"{figure:<{width}}  {value:>19}  {goal:<17} {status}".rstrip())
    return "\n".join(lines)


# --- SQLite beside PostgreSQL ---------------------------------------------------------------------------


def refresh_request(port: int, token: str) -> bytes:
    body = urlencode({"grant_type": "refresh_token", "refresh_token": token}).encode()
    head = (
        f"POST /token HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _refresh_chain(port: int, token: str, end: float) -> Loop:
    """Refresh, then refresh with the token just received, and so on until ``end`` (one connection)."""
    loop = Loop()
    conn = await Connection.open(port)
    try:
        while time.perf_counter() < end:
            conn.writer.write(refresh_request(port, token))
            start = time.perf_counter()
            head = await conn.reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            body = await conn.reader.readexactly(length)
            done = time.perf_counter()
            if int(head[9:12]) != 200:
                loop.errors += 1
                break
            token = json.loads(body)["refresh_token"]
            if done <= end:
                loop.ok += 1
                loop.latencies.append(done - start)
    finally:
        await conn.close()
    return loop


def run_refreshes(port: int, tokens: tuple[str, ...], duration: float) -> Loop:
    """One refresh chain per token, concurrently, for ``duration`` seconds (in the load-generator process)."""

    async def all_chains() -> list[Loop]:
        end = time.perf_counter() + duration
        return list(await asyncio.gather(*(_refresh_chain(port, token, end) for token in tokens)))

    merged = Loop()
    for loop in asyncio.run(all_chains()):
        merged.ok, merged.errors = merged.ok + loop.ok, merged.errors + loop.errors
        merged.latencies.extend(loop.latencies)
    return merged


def measure_database(
    plan: Plan, env: dict[str, str], tmp: Path, name: str, pool: ProcessPoolExecutor
) -> dict[str, Any]:
    """The reference server on one database: /users/me, logins and refreshes, rates and latencies."""
    server = Server(
        f"jwt-reference ({name})", [*SERVE, "serve", "--port", "0", "--demo-users"], env, tmp / f"{name}.log"
    )
    try:
        server.wait_ready("/health")
        form = {"grant_type": "password", "username": "johndoe", "password": "secret"}
        with httpx2.Client(base_url=server.url, trust_env=False, timeout=30.0) as client:
            client.post("/token", data=form).raise_for_status()  # upgrades the legacy bcrypt hash
            token = client.post("/token", data=form).raise_for_status().json()["access_token"]
            refresh_tokens = tuple(
                client.post("/token", data=form).raise_for_status().json()["refresh_token"]
                for _ in range(plan.login_clients)
            )
        load = Load(pool)
        load.run(server, Phase(server.port, 1.0, token, connections=plan.connections))  # warm-up
        rates, cores = [], []
        for _ in range(plan.rounds):
            outcome, used = load.run(server, Phase(server.port, plan.round_s, token, connections=plan.connections))
            rates.append(outcome.me.ok / plan.round_s)
            cores.append(used)
        idle, _ = load.run(server, Phase(server.port, plan.latency_s, token, probe_interval=plan.probe_interval))
        logins, _ = load.run(server, Phase(server.port, plan.latency_s, login_clients=plan.login_clients))
        refreshes = pool.submit(run_refreshes, server.port, refresh_tokens, plan.latency_s).result(
            timeout=plan.latency_s + 120
        )
        return {
            "me_rps": statistics.median(rates),
            "me_cpu_us_per_request": cpu_per_request(cores, rates),
            "me_idle": loop_summary(idle.probe, plan.latency_s),
            "logins": loop_summary(logins.logins, plan.latency_s),
            "refreshes": loop_summary(refreshes, plan.latency_s),
            "failed_requests": load.errors + refreshes.errors,
        }
    finally:
        server.stop()


def compare_databases(plan: Plan, url: str, tmp: Path) -> dict[str, Any]:
    from reference_impl.database import redacted

    results: dict[str, Any] = {"database_url": redacted(url)}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        for name in ("sqlite", "postgresql"):
            env = server_env(tmp)
            if name == "postgresql":
                env[PREFIX + "DATABASE_URL"] = url
            results[name] = measure_database(plan, env, tmp, name, pool)
    results["load_average_after"] = load_average()
    return results


def database_table(command: str, info: dict[str, Any], plan: Plan, r: dict[str, Any]) -> str:
    def ms(loop: dict[str, Any]) -> str:
        return f"{loop['p50_ms']:.2f} / {loop['p99_ms']:.2f} ms"

    rows = [
        (f"/users/me req/s ({plan.connections} connections, median of {plan.rounds})", "{:.0f}", "me_rps"),
        ("  server CPU per request", "{:.0f} us", "me_cpu_us_per_request"),
        ("/users/me p50 / p99, one request every 10 ms", None, "me_idle"),
        (f"logins/s, {plan.login_clients} clients (Argon2id default)", "{:.1f}", "logins"),
        ("  login p50 / p99", None, "logins"),
        (f"refreshes/s, {plan.login_clients} refresh chains", "{:.1f}", "refreshes"),
        ("  refresh p50 / p99", None, "refreshes"),
    ]
    width = max(len(row[0]) for row in rows)
    lines = [
        f"$ {command}",
        f"{info['cores']} cores ({info['cpu']}), Python {info['python']}, {info['platform']}",
        f"load average before / after the run: {info['load_average']} / {r['load_average_after']}",
        f"PostgreSQL: {r['database_url']}",
        f"failed requests: SQLite {r['sqlite']['failed_requests']}, PostgreSQL {r['postgresql']['failed_requests']}",
        "",
        f"{'figure':<{width}}  {'SQLite':>17}  {'PostgreSQL':>17}",
    ]
    for figure, fmt, key in rows:
        values = []
        for name in ("sqlite", "postgresql"):
            value = r[name][key]
            if fmt is None:
                values.append(ms(value))
            elif isinstance(value, dict):
                values.append(fmt.format(value["per_s"]))
            else:
                values.append(fmt.format(value))
        lines.append(f"{figure:<{width}}  {values[0]:>17}  {values[1]:>17}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the reference server (reports figures).")
    parser.add_argument("--quick", action="store_true", help="shorter phases (about 60 s instead of 150 s)")
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="compare the server on SQLite and on this PostgreSQL database (postgresql://...) instead",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    command = shlex.join(sys.orig_argv)
    if args.database_url:
        from reference_impl.database import redacted

        command = command.replace(args.database_url, redacted(args.database_url))
    info = machine()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jwt-bench-") as tmp:
        url = args.database_url
        results = compare_databases(plan, url, Path(tmp)) if url else run(plan, Path(tmp))
    elapsed = time.monotonic() - started
    print(database_table(command, info, plan, results) if args.database_url else table(command, info, plan, results))
    print(f"\n(run took {elapsed:.0f} s)")
    out = BENCH / "results" / time.strftime("bench-%Y%m%d-%H%M%S.json")
    out.parent.mkdir(exist_ok=True)
    document = {"command": command, "machine": info, "plan": asdict(plan), "elapsed_s": elapsed, "results": results}
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"JSON: {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
