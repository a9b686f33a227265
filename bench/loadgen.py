"""The load generator of bench_server.py. It runs in its own process (``run_phase`` is called through a
process pool) and speaks raw HTTP/1.1 over keep-alive asyncio connections to 127.0.0.1 only: far
cheaper per request than an HTTP client library, so that the server, not the client, is measured.
Every loop is bounded by a deadline and a request count.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

HOST = "127.0.0.1"
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Phase:
    port: int
    duration: float
    token: str = ""
    tokens: tuple[str, ...] = ()  # if given, the throughput connections cycle through these instead
    connections: int = 0  # closed-loop GET /users/me connections (throughput)
    probe_interval: float = 0.0  # > 0: one paced GET /users/me connection (latency)
    login_clients: int = 0  # closed-loop POST /token connections, johndoe/secret
    max_requests: int = 1_000_000  # per loop, besides the deadline


@dataclass
class Loop:
    ok: int = 0  # expected status, completed before the deadline
    late: int = 0  # expected status, completed after the deadline (draining)
    errors: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, in-window requests only


@dataclass
class Outcome:
    duration: float
    me: Loop
    probe: Loop
    logins: Loop
    client_cpu_s: float


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> int:
        """Send one request; read the whole response; return its status."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(head[9:12])

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def me_request(port: int, token: str) -> bytes:
    return f"GET /users/me HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()


def login_request(port: int) -> bytes:
    body = urlencode({"grant_type": "password", "username": "johndoe", "password": "secret"}).encode()
    head = (
        f"POST /token HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _loop(port: int, raw: bytes | list[bytes], end: float, limit: int, interval: float = 0.0) -> Loop:
    """Send ``raw`` back to back (or every ``interval`` s) until ``end`` or ``limit`` requests; a list is
    sent in turn, one request after the other."""
    raws = raw if isinstance(raw, list) else [raw]
    loop, conn, sent = Loop(), None, 0
    next_at = time.perf_counter()
    while sent < limit and time.perf_counter() < end:
        if interval:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            next_at = max(next_at + interval, time.perf_counter())
        sent += 1
        try:
            conn = conn or await Connection.open(port)
            start = time.perf_counter()
            status = await asyncio.wait_for(conn.request(raws[sent % len(raws)]), REQUEST_TIMEOUT)
            done = time.perf_counter()
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            loop.errors += 1
            if conn is not None:
                await conn.close()
            conn = None
            continue
        if status != 200:
            loop.errors += 1
        elif done <= end:
            loop.ok += 1
            loop.latencies.append(done - start)
        else:
            loop.late += 1
    if conn is not None:
        await conn.close()
    return loop


def _merge(loops: list[Loop]) -> Loop:
    merged = Loop()
    for loop in loops:
        merged.ok += loop.ok
        merged.late += loop.late
        merged.errors += loop.errors
        merged.latencies.extend(loop.latencies)
    return merged


async def _run(phase: Phase) -> Outcome:
    cpu = time.process_time()
    end = time.perf_counter() + phase.duration
    me, login = me_request(phase.port, phase.token), login_request(phase.port)
    many = [me_request(phase.port, token) for token in phase.tokens]
    # Connection i starts its turn through the tokens at its own offset: all of them are in use at once.
    offsets = [i * len(many) // max(1, phase.connections) for i in range(phase.connections)]
    throughput = [many[k:] + many[:k] if many else me for k in offsets]
    groups: list[list[asyncio.Task[Loop]]] = [
        [asyncio.create_task(_loop(phase.port, raws, end, phase.max_requests)) for raws in throughput],
        [asyncio.create_task(_loop(phase.port, me, end, phase.max_requests, phase.probe_interval))]
        if phase.probe_interval > 0
        else [],
        [asyncio.create_task(_loop(phase.port, login, end, phase.max_requests)) for _ in range(phase.login_clients)],
    ]
    me_loop, probe_loop, login_loop = [_merge(list(await asyncio.gather(*group))) for group in groups]
    return Outcome(phase.duration, me_loop, probe_loop, login_loop, client_cpu_s=time.process_time() - cpu)


def run_phase(phase: Phase) -> Outcome:
    if not 0 < phase.duration <= 120:
        raise ValueError("a phase lasts between 0 and 120 s")
    return asyncio.run(_run(phase))
