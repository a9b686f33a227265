"""Which worker process of a ``serve --workers N`` server answered a request, read from /proc (Linux).

Each request goes on a new TCP connection, so the kernel may hand it to any worker; the answer
names the worker that holds the server end of that connection.

And the server's SQLite database as another process sees it: a held write lock, its rows.
"""

from __future__ import annotations

import http.client
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from reference_impl.store import DatabaseStore

PROC = Path("/proc")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]
    worker: int  # the PID of the worker process that answered


def worker_pids(parent: int) -> set[int]:
    """The live worker processes of the server whose supervisor is ``parent``."""
    pids = set()
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == parent and state != "Z" and b"spawn_main" in cmdline:
            pids.add(int(entry.name))
    return pids


def wait_for_workers(parent: int, count: int, timeout: float = 20.0, without: frozenset[int] = frozenset()) -> set[int]:
    """Wait until ``parent`` has ``count`` live workers, none of them in ``without``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = worker_pids(parent)
        if len(pids) == count and not pids & without:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"{parent} has workers {worker_pids(parent)}, not {count} new ones")


def _socket_inode(server_port: int, client_port: int) -> str | None:
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in (PROC / "net" / "tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return fields[9]
    return None


def _owner(inode: str, candidates: set[int]) -> int | None:
    target = f"socket:[{inode}]"
    for pid in candidates:
        try:
            fds = os.listdir(PROC / str(pid) / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(PROC / str(pid) / "fd" / fd) == target:
                    return pid
            except OSError:
                continue
    return None


def request(
    base_url: str,
    parent: int,
    method: str,
    path: str,
    form: dict[str, str] | None = None,
    token: str | None = None,
    json_body: bytes | None = None,
) -> Answer:
    """One request on a new connection; the connection stays open until its worker is identified."""
    url = urlsplit(base_url)
    assert url.hostname == "127.0.0.1" and url.port is not None
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        headers = {"Connection": "keep-alive"}
        body: str | bytes | None = json_body
        if json_body is not None:
            headers["Content-Type"] = "application/json"
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        assert conn.sock is not None
        inode = _socket_inode(url.port, conn.sock.getsockname()[1])
        assert inode is not None, "the server end of the connection is not in /proc/net/tcp"
        worker = _owner(inode, worker_pids(parent))
        assert worker is not None, "no worker holds the server end of the connection"
        return Answer(response.status, payload, {k.lower(): v for k, v in response.getheaders()}, worker)
    finally:
        conn.close()


# -- the database, seen from outside the server -----------------------------------------------------------

LOCKER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
conn.close()
"""


@contextmanager
def write_lock(database: Path) -> Iterator[None]:
    """Another process holds ``database``'s write lock (``BEGIN EXCLUSIVE``) for as long as the block runs."""
    with subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdin is not None and holder.stdout is not None
        try:
            assert holder.stdout.readline().strip() == "locked"
            yield
        finally:
            holder.stdin.close()
            assert holder.wait(timeout=10) == 0


def busy_timeout_s(database: Path) -> float:
    """How long the server's stores wait for a lock before they give up (their connections' busy timeout)."""
    store = DatabaseStore(database)
    try:
        with store._locked() as conn:
            milliseconds: int = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    finally:
        store.close()
    return milliseconds / 1000


def database_rows(database: Path, query: str, parameters: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(database)
    try:
        return conn.execute(query, parameters).fetchall()
    finally:
        conn.close()


def assert_families_whole(database: Path, families: set[str]) -> dict[str, int]:
    """Every refresh family is whole (exactly one unspent token) or ended (revoked, no token left), and each of
    ``families`` (those the clients were given) is one of them; returns the unspent count by family."""
    unspent = dict(database_rows(database, "SELECT family_id, sum(1 - used) FROM refresh_tokens GROUP BY family_id"))
    revoked = {family for (family,) in database_rows(database, "SELECT family_id FROM revoked_families")}
    assert set(unspent.values()) <= {1}, "a family has no token to spend, or two: half-rotated"
    assert not set(unspent) & revoked, "an ended family still has refresh tokens"
    assert families <= set(unspent) | revoked, "a family a client was given is missing"
    return unspent
