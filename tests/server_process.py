"""A real ``jwt-reference serve`` process on 127.0.0.1 for end-to-end tests, stopped by its PID."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from reference_impl.settings import PREFIX

JWT_REFERENCE = Path(sys.executable).parent / "jwt-reference"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def stop_process(process: subprocess.Popen[bytes]) -> int:
    """Stop one process by its PID: SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
    return process.returncode


def server_env(database: Path, secret: str | None) -> dict[str, str]:
    """The test process's environment without any ``JWT_REF_`` variable, plus fast hashing and ``database``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(PREFIX)}
    env.update({PREFIX + "HASH_PROFILE": "fast", PREFIX + "DATABASE": str(database), "PYTHONUNBUFFERED": "1"})
    if secret is not None:
        env[PREFIX + "SECRET_KEY"] = secret
    return env


class Server:
    """One ``jwt-reference serve`` process; stdout and stderr both go to ``log_path``."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...], log_path: Path, port: int = 0) -> None:
        """``port=0``: the kernel picks one and the server's "Uvicorn running on" line tells which."""
        self.env = env
        self.database = Path(env[PREFIX + "DATABASE"])
        self.log_path = log_path
        self.base_url = f"http://127.0.0.1:{port}" if port else ""
        command = [str(JWT_REFERENCE), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=log_path.parent
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self) -> Server:
        """Wait until ``GET /health`` answers 200; fail with the server's output if it exits or never does."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                pytest.fail(f"jwt-reference serve exited with {code} before it was ready:\n{self.log()}")
            if not self.base_url and (match := RUNNING.search(self.log())):
                self.base_url = f"http://127.0.0.1:{match.group(1)}"
            if self.base_url:
                try:
                    if httpx.get(self.base_url + "/health", timeout=1.0, trust_env=False).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
            time.sleep(0.05)
        pytest.fail(f"jwt-reference serve was not ready within {READY_TIMEOUT} s:\n{self.log()}")

    def stop(self) -> int:
        return stop_process(self.process)

    def stop_gracefully(self) -> None:
        """Stop, and check that uvicorn shut down cleanly (it re-raises SIGTERM once done, hence -15)."""
        code = self.stop()
        log = self.log()
        assert code in (0, -signal.SIGTERM), f"exit code {code}:\n{log}"
        assert "Application shutdown complete." in log
        assert "Traceback" not in log

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10.0, trust_env=False)


StartServer = Callable[..., Server]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start servers for one test (``start(env, *serve_args)``); every one is stopped afterwards."""
    servers: list[Server] = []

    def start(env: dict[str, str], *args: str, port: int = 0) -> Server:
        server = Server(env, args, tmp_path / f"server-{len(servers)}.log", port)
        servers.append(server)  # registered before waiting, so that a failed start is stopped too
        return server.wait_ready()

    yield start
    for server in servers:
        server.stop()
