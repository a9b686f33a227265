"""Load test of the reference server: reports figures, exits 1 on a 5xx or a lost write.

    python bench/load.py                          # 200 connections for 10 minutes
    python bench/load.py --duration 120           # 2 minutes
    python bench/load.py --serve-args "--workers 2"   # extra arguments for ``jwt-reference serve``

Starts ``jwt-reference serve --demo-users`` on 127.0.0.1 (a temporary database, hash profile ``fast``
unless ``--hash-profile default``), creates ``--users`` users through the admin API, then runs
``--connections`` keep-alive connections for ``--duration`` seconds. Each connection logs in, refreshes,
calls ``/users/me`` and revokes (access tokens and whole refresh-token families) at random, and
checks every answer against what it expects (a revoked token is refused: 401). Meanwhile the
server's RSS (its whole process tree) is sampled from /proc. Afterwards the database is read and
compared with what the clients saw succeed: every user created, every refresh token issued (and
only the latest of a family unused), every revocation. ``--base-url`` drives a running server
instead (give ``--database`` and ``--pid`` for the database and memory figures).

Loopback only; every loop is bounded by the deadline, and every request by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import shlex
import socket
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench_server import SERVE, Server, load_average, machine, p, server_env
from population import create_users

from reference_impl.grants import token_digest
from reference_impl.settings import PREFIX

BENCH = Path(__file__).resolve().parent
REQUEST_TIMEOUT = 30.0
USER_PREFIX = "load-"
# What a connection does next, with weights; revocations alternate between access and refresh tokens.
MIX = {"me": 60, "refresh": 20, "login": 10, "revoke": 10}


class TransportError(Exception):
    """No complete answer (connection closed, timeout, garbage)."""


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1, reopened after an error."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _request(self, raw: bytes) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await reader.readexactly(length)
        if close:
            await self.close()
        return int(head[9:12]), body

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        try:
            return await asyncio.wait_for(self._request(raw), REQUEST_TIMEOUT)
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            await self.close()
            raise TransportError(type(exc).__name__) from None

    async def form(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        content = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return await self.request("POST", path, content, urlencode(fields).encode())

    async def close(self) -> None:
        if self.streams is not None:
            writer = self.streams[1]
            self.streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def claim(token: str, name: str) -> str:
    """A claim of one of the server's access tokens, read without verification (the server verified it)."""
    payload = token.split(".")[1]
    value: str = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))[name]
    return value


@dataclass
class Family:
    """What the clients know about one refresh-token family, from the answers they got."""

    username: str
    issued: list[str] = field(default_factory=list)  # refresh tokens, in order
    revoked: bool = False
    uncertain: bool = False  # a request of this family got no answer: its outcome is unknown


@dataclass
class Tally:
    """Every answer, by kind; every write the clients saw succeed."""

    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    transport_errors: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)  # "kind: got status, expected status"
    families: dict[str, Family] = field(default_factory=dict)
    revoked_jtis: set[str] = field(default_factory=set)
    uncertain_jtis: set[str] = field(default_factory=set)

    def record(self, kind: str, status: int, seconds: float, expected: int) -> None:
        self.statuses.setdefault(kind, Counter())[status] += 1
        self.latencies.setdefault(kind, []).append(seconds)
        if status != expected:
            self.unexpected[f"{kind}: {status} (expected {expected})"] += 1


class Client:
    """One connection's session: a user, its current access and refresh tokens."""

    def __init__(self, port: int, username: str, password: str, tally: Tally, rng: random.Random) -> None:
        self.conn = Connection(port)
        self.username, self.password, self.tally, self.rng = username, password, tally, rng
        self.access: str | None = None
        self.family: Family | None = None
        self.revoke_access_next = True

    async def _call(self, kind: str, expected: int, method: str, path: str, **kw: Any) -> tuple[int, bytes] | None:
        start = time.perf_counter()
        try:
            if method == "GET":
                status, body = await self.conn.request("GET", path, kw["headers"])
            else:
                status, body = await self.conn.form(path, kw["fields"])
        except TransportError as exc:
            self.tally.transport_errors[f"{kind}: {exc}"] += 1
            return None
        self.tally.record(kind, status, time.perf_counter() - start, expected)
        return status, body

    def _take(self, body: bytes) -> None:
        answer = json.loads(body)
        self.access = answer["access_token"]
        sid = claim(answer["access_token"], "sid")
        family = self.tally.families.setdefault(sid, Family(self.username))
        family.issued.append(answer["refresh_token"])
        self.family = family

    async def login(self) -> None:
        fields = {"grant_type": "password", "username": self.username, "password": self.password}
        answer = await self._call("login", 200, "POST", "/token", fields=fields)
        if answer is not None and answer[0] == 200:
            self._take(answer[1])

    async def refresh(self) -> None:
        if self.family is None:
            return await self.login()
        fields = {"grant_type": "refresh_token", "refresh_token": self.family.issued[-1]}
        answer = await self._call("refresh", 200, "POST", "/token", fields=fields)
        if answer is None:
            self.family.uncertain = True
            self.family, self.access = None, None
        elif answer[0] == 200:
            self._take(answer[1])
        return None

    async def me(self, kind: str = "me", expected: int = 200) -> None:
        if self.access is None:
            return await self.login()
        await self._call(kind, expected, "GET", "/users/me", headers={"Authorization": f"Bearer {self.access}"})
        return None

    async def revoke(self) -> None:
        if self.family is None or self.access is None:
            return await self.login()
        if self.revoke_access_next:
            jti = claim(self.access, "jti")
            fields = {"token": self.access, "token_type_hint": "access_token"}
            answer = await self._call("revoke_access", 200, "POST", "/revoke", fields=fields)
            (self.tally.revoked_jtis if answer is not None and answer[0] == 200 else self.tally.uncertain_jtis).add(jti)
            await self.me("me_revoked", 401)  # the revoked token is refused at once
            self.access = None
            await self.refresh()  # the family lives on
        else:
            fields = {"token": self.family.issued[-1], "token_type_hint": "refresh_token"}
            answer = await self._call("revoke_family", 200, "POST", "/revoke", fields=fields)
            if answer is not None and answer[0] == 200:
                self.family.revoked = True
            else:
                self.family.uncertain = True
            await self.me("me_revoked", 401)  # the family's access tokens are refused at once
            self.family, self.access = None, None
        self.revoke_access_next = not self.revoke_access_next
        return None

    async def run(self, end: float) -> None:
        actions = {"me": self.me, "refresh": self.refresh, "login": self.login, "revoke": self.revoke}
        kinds, weights = list(MIX), list(MIX.values())
        try:
            while time.monotonic() < end:
                await actions[self.rng.choices(kinds, weights)[0]]()
        finally:
            await self.conn.close()


def process_tree_kib(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants (uvicorn's workers, if any), KiB; 0 once it is gone."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


async def sample_rss(pid: int, interval: float, end: float, samples: list[tuple[float, float]]) -> None:
    start = time.monotonic()
    while time.monotonic() < end:
        samples.append((time.monotonic() - start, process_tree_kib(pid) * 1024 / 1e6))
        await asyncio.sleep(min(interval, max(0.0, end - time.monotonic())))
    samples.append((time.monotonic() - start, process_tree_kib(pid) * 1024 / 1e6))


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over time."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    return 0.0 if var == 0 else 60 * sum((t - mean_t) * (m - mean_m) for t, m in samples) / var


async def drive(args: argparse.Namespace, port: int, pid: int | None, users: dict[str, str]) -> dict[str, Any]:
    tally, rss = Tally(), list[tuple[float, float]]()
    rng = random.Random(args.seed)
    names = sorted(users)
    clients = [
        Client(port, names[i % len(names)], users[names[i % len(names)]], tally, random.Random(rng.random()))
        for i in range(args.connections)
    ]
    started = time.monotonic()
    end = started + args.duration
    tasks = [asyncio.create_task(client.run(end)) for client in clients]
    if pid is not None:
        tasks.append(asyncio.create_task(sample_rss(pid, args.rss_interval, end, rss)))
    await asyncio.gather(*tasks)
    return {"tally": tally, "rss": rss, "elapsed_s": time.monotonic() - started}


def count_writes(database: Path, users: dict[str, str], tally: Tally) -> dict[str, Any]:
    """Compare the database with the answers the clients got; every difference is a lost (or stray) write."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        db_users = {
            row[0] for row in conn.execute("SELECT username FROM users WHERE username LIKE ?", (USER_PREFIX + "%",))
        }
        rows: dict[str, tuple[str, int]] = {
            token_hash: (family_id, used)
            for token_hash, family_id, used in conn.execute(
                "SELECT token_hash, family_id, used FROM refresh_tokens WHERE username LIKE ?", (USER_PREFIX + "%",)
            )
        }
        revoked_families = {row[0] for row in conn.execute("SELECT family_id FROM revoked_families")}
        revoked_jtis = {row[0] for row in conn.execute("SELECT jti FROM revoked_access_tokens")}
    finally:
        conn.close()
    problems: Counter[str] = Counter()
    problems["users missing"] = len(set(users) - db_users)
    expected_rows = expected_revoked = 0
    by_family: Counter[str] = Counter(family_id for family_id, _ in rows.values())
    for sid, family in tally.families.items():
        if family.uncertain:
            continue
        if family.revoked:
            expected_revoked += 1
            problems["revoked families missing"] += sid not in revoked_families
            problems["refresh-token rows of revoked families left"] += by_family[sid]
            continue
        expected_rows += len(family.issued)
        digests = [token_digest(token) for token in family.issued]
        problems["refresh-token rows missing"] += sum(digest not in rows for digest in digests)
        problems["spent refresh tokens not marked used"] += sum(rows.get(d, ("", 1))[1] != 1 for d in digests[:-1])
        problems["latest refresh token marked used"] += rows.get(digests[-1], ("", 0))[1] != 0
        problems["refresh-token rows not issued to a client"] += by_family[sid] - sum(d in rows for d in digests)
    problems["revoked access tokens missing"] = len(tally.revoked_jtis - revoked_jtis)
    certain = [f for f in tally.families.values() if not f.uncertain]
    return {
        "database": {
            "users": len(db_users),
            "refresh_token_rows": len(rows),
            "revoked_families": len(revoked_families),
            "revoked_access_tokens": len(revoked_jtis),
        },
        "clients_saw": {
            "users_created": len(users),
            "refresh_tokens_issued_in_live_families": expected_rows,
            "families": len(tally.families),
            "families_revoked": expected_revoked,
            "access_tokens_revoked": len(tally.revoked_jtis),
            "families_uncertain": len(tally.families) - len(certain),
            "access_revocations_uncertain": len(tally.uncertain_jtis),
        },
        "problems": {name: count for name, count in problems.items() if count},
    }


def summary(result: dict[str, Any], writes: dict[str, Any] | None) -> dict[str, Any]:
    tally: Tally = result["tally"]
    elapsed = result["elapsed_s"]
    kinds = {}
    for kind in sorted(tally.statuses):
        lat = tally.latencies[kind]
        kinds[kind] = {
            "count": sum(tally.statuses[kind].values()),
            "per_s": sum(tally.statuses[kind].values()) / elapsed,
            "statuses": {str(s): n for s, n in sorted(tally.statuses[kind].items())},
            "p50_ms": p(lat, 0.50),
            "p90_ms": p(lat, 0.90),
            "p99_ms": p(lat, 0.99),
            "max_ms": p(lat, 1.0),
        }
    rss: list[tuple[float, float]] = result["rss"]
    later = rss[len(rss) // 2 :]
    memory = (
        {
            "samples": len(rss),
            "first_mb": rss[0][1],
            "last_mb": rss[-1][1],
            "max_mb": max(m for _, m in rss),
            "slope_mb_per_min": slope_mb_per_min(rss),
            "slope_second_half_mb_per_min": slope_mb_per_min(later),
            "series": [[round(t, 1), round(m, 1)] for t, m in rss],
        }
        if rss
        else None
    )
    return {
        "elapsed_s": elapsed,
        "requests": sum(k["count"] for k in kinds.values()),
        "kinds": kinds,
        "5xx": sum(n for c in tally.statuses.values() for s, n in c.items() if s >= 500),
        "transport_errors": dict(tally.transport_errors),
        "unexpected_statuses": dict(tally.unexpected),
        "memory": memory,
        "writes": writes,
    }


def report(command: str, s: dict[str, Any], connections: int) -> str:
    lines = [f"$ {command}", f"{connections} connections for {s['elapsed_s']:.0f} s: {s['requests']} requests", ""]
    lines.append(
        f"{'kind':<14} {'count':>8} {'per s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>8}  statuses"
    )
    for kind, k in s["kinds"].items():
        statuses = " ".join(f"{code}:{n}" for code, n in k["statuses"].items())
        lines.append(
            f"{kind:<14} {k['count']:>8} {k['per_s']:>7.1f} {k['p50_ms']:>7.1f} {k['p90_ms']:>7.1f} "
            f"{k['p99_ms']:>7.1f} {k['max_ms']:>8.1f}  {statuses}"
        )
    lines += [
        "",
        f"5xx: {s['5xx']}",
        f"transport errors: {sum(s['transport_errors'].values())} {s['transport_errors']}",
    ]
    lines.append(f"unexpected statuses: {sum(s['unexpected_statuses'].values())} {s['unexpected_statuses']}")
    if (m := s["memory"]) is not None:
        lines.append(
            f"server RSS ({m['samples']} samples): first {m['first_mb']:.0f} MB, last {m['last_mb']:.0f} MB, "
            f"max {m['max_mb']:.0f} MB; slope {m['slope_mb_per_min']:+.2f} MB/min "
            f"(second half {m['slope_second_half_mb_per_min']:+.2f} MB/min)"
        )
    if (w := s["writes"]) is not None:
        db, saw = w["database"], w["clients_saw"]
        lines.append(
            f"database: {db['users']} load users, {db['refresh_token_rows']} of their refresh-token rows, "
            f"{db['revoked_families']} revoked families, {db['revoked_access_tokens']} revoked access tokens"
        )
        lines.append(
            f"clients saw: {saw['users_created']} users created, {saw['families']} families "
            f"({saw['families_revoked']} revoked, {saw['families_uncertain']} uncertain), "
            f"{saw['refresh_tokens_issued_in_live_families']} refresh tokens in live families, "
            f"{saw['access_tokens_revoked']} access tokens revoked"
        )
        lines.append(f"lost writes: {sum(w['problems'].values())} {w['problems']}")
    else:
        lines.append("lost writes: not checked (no --database)")
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Load test of the reference server (reports figures).")
    parser.add_argument("--connections", type=int, default=200, help="concurrent connections (default 200)")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--users", type=int, default=100, help="users created before the load (default 100)")
    parser.add_argument("--hash-profile", choices=["fast", "default"], default="fast")
    parser.add_argument("--serve-args", default="", help="extra arguments for jwt-reference serve, e.g. '--workers 2'")
    parser.add_argument("--rss-interval", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--base-url", help="drive this running server (127.0.0.1 only) instead of starting one")
    parser.add_argument("--database", type=Path, help="with --base-url: its SQLite file, to count the writes")
    parser.add_argument("--pid", type=int, help="with --base-url: its PID, to sample its RSS")
    parser.add_argument("--json", type=Path, help="write the figures here (default: bench/results/load-*.json)")
    args = parser.parse_args(argv)
    if not 1 <= args.connections <= 2000 or not 0 < args.duration <= 3600 or not 1 <= args.users <= 10_000:
        parser.error("--connections 1..2000, --duration 0..3600 s, --users 1..10000")
    if args.base_url and urlsplit(args.base_url).hostname != "127.0.0.1":
        parser.error("--base-url must be http://127.0.0.1:PORT")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    server: Server | None = None
    with tempfile.TemporaryDirectory(prefix="jwt-load-") as tmp:
        try:
            if args.base_url:
                port, pid, database = urlsplit(args.base_url).port or 80, args.pid, args.database
            else:
                env = server_env(Path(tmp))
                env[PREFIX + "HASH_PROFILE"] = args.hash_profile
                port = free_port()
                command = [*SERVE, "serve", "--port", str(port), "--demo-users", *shlex.split(args.serve_args)]
                server = Server("jwt-reference", command, env, Path(tmp) / "server.log")
                server.wait_ready("/health", timeout=60)
                pid, database = server.pid, Path(env[PREFIX + "DATABASE"])
            names = [f"{USER_PREFIX}{i:04d}" for i in range(args.users)]
            users = asyncio.run(create_users(f"http://127.0.0.1:{port}", names))
            result = asyncio.run(drive(args, port, pid, users))
            if server is not None:
                server.stop()  # before counting: every write is on disk
                if server.process.returncode not in (0, -15):
                    print(f"server exit status {server.process.returncode}", file=sys.stderr)
            writes = count_writes(database, users, result["tally"]) if database is not None else None
            return summary(result, writes)
        finally:
            if server is not None:
                server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(sys.orig_argv)
    info = machine()
    figures = run(args)
    figures["load_average_after"] = load_average()
    print(report(command, figures, args.connections))
    print(
        f"{info['cores']} cores, load average before / after: {info['load_average']} / {figures['load_average_after']}"
    )
    out = args.json or BENCH / "results" / time.strftime("load-%Y%m%d-%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    date = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    document = {"command": command, "machine": info, "date": date, "args": {k: str(v) for k, v in vars(args).items()}}
    out.write_text(json.dumps({**document, **figures}, indent=2) + "\n")
    print(f"JSON: {os.path.relpath(out)}")
    failed = figures["5xx"] > 0 or bool(figures["writes"] and figures["writes"]["problems"])
    failed = failed or bool(figures["unexpected_statuses"]) or bool(figures["transport_errors"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
