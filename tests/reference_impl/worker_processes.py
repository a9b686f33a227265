"""Which worker process of a ``serve --workers N`` server answered a request, read from /proc (Linux).

Each request goes on a new TCP connection, so the kernel may hand it to any worker; the answer
names the worker that holds the server end of that connection.
"""

from __future__ import annotations

import http.client
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

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
