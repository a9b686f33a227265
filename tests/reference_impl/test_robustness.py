"""Malformed client input against a real uvicorn process: always a clear 4xx, never a 5xx or a hang."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ..server_process import Server, server_env

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory: Path = tmp_path_factory.mktemp("robust")
    process = Server(
        server_env(directory / "users.db", secrets.token_urlsafe(48)), ("--demo-users",), directory / "log"
    )
    try:
        yield process.wait_ready()
    finally:
        process.stop()


def raw_request(server: Server, data: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send raw bytes; return the status code and the whole answer (0 if the server closed without one)."""
    parts = urlsplit(server.base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as conn:
        conn.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
    status_line = received.split(b"\r\n", 1)[0].split()
    return (int(status_line[1]) if len(status_line) > 1 else 0), received


def get(path: str, *headers: bytes) -> bytes:
    return (
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"
    )


def post_token(body: bytes, content_type: bytes = b"application/x-www-form-urlencoded") -> bytes:
    return (
        b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type + b"\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )  # fmt: skip


CASES = {
    "one-megabyte-token": get("/users/me", b"Authorization: Bearer " + b"a" * 1_000_000),
    "64-kb-header": get("/users/me", b"X-Junk: " + b"x" * 65_536),
    "nul-in-authorization": get("/users/me", b"Authorization: Bearer abc\x00def"),
    "non-utf8-authorization": get("/users/me", b"Authorization: Bearer \xff\xfe\xfd"),
    "control-chars-in-path": get("/users/me%00%ff"),
    "non-utf8-form": post_token(b"grant_type=password&username=johndoe&password=\xff\xfe"),
    "nul-in-form": post_token(b"grant_type=password&username=john%00doe&password=secret"),
    "garbage-form": post_token(b"%%%===&&&%zz"),
    "odd-content-type": post_token(b"grant_type=password", b"multipart/form-data; boundary=x"),
    "oversized-form": post_token(b"grant_type=password&password=" + b"p" * 100_000),
    "bad-content-length": b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
}


@pytest.mark.parametrize("payload", CASES.values(), ids=CASES.keys())
def test_malformed_input_gets_a_4xx(server: Server, payload: bytes) -> None:
    status, answer = raw_request(server, payload)
    assert 400 <= status < 500, answer[:300]
    assert b"Traceback" not in answer


def test_the_server_still_answers_after_the_malformed_requests(server: Server) -> None:
    status, _ = raw_request(server, get("/health", b"Connection: close"))
    assert status == 200
    assert "Traceback" not in server.log()
