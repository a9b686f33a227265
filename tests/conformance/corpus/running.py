"""Start a corpus server as a real process on 127.0.0.1 and run ``jwt-conformance run`` against it."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

from conformance.config import Paths

from ...server_process import free_port, stop_process
from .users import DATABASE_ENV, DISABLED, PRIMARY, SECOND, SECRET_ENV, User

ROOT = Path(__file__).resolve().parents[3]
NODE_DIR = Path(__file__).resolve().parent / "node"
JWT_CONFORMANCE = Path(sys.executable).parent / "jwt-conformance"
READY_TIMEOUT = 30.0
RUN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Stack:
    """How to start one corpus server and what the suite is told about it."""

    name: str
    app: str | None  # "module:factory" for uvicorn; None for the Node.js server
    paths: Paths = Paths()
    login: str = "username"  # "email" when users log in with their email address
    disabled: bool = True  # whether the server can hold a disabled user the suite may log in as
    give_key: bool = True  # hand the server's HMAC secret to the suite (unlocks the claim checks)

    def login_name(self, user: User) -> str:
        return user.email if self.login == "email" else user.username


@dataclass
class Running:
    stack: Stack
    process: subprocess.Popen[bytes]
    base_url: str
    secret: str = field(repr=False)
    log: Path

    def stop(self) -> None:
        stop_process(self.process)


def node_missing() -> str | None:
    """Why the Node.js server cannot run here, or ``None`` when it can."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed on this machine"
    if not (NODE_DIR / "node_modules" / "passport-jwt").is_dir():
        return f"the Node.js corpus is not installed: run `npm ci` in {NODE_DIR}"
    return None


def start(stack: Stack, workdir: Path) -> Running:
    port = free_port()
    secret = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        SECRET_ENV: secret,
        DATABASE_ENV: str(workdir / f"{stack.name}.db"),
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        "NODE_ENV": "production",
    }
    if stack.app is None:
        command = ["node", "server.js"]
        cwd = NODE_DIR
    else:
        command = [sys.executable, "-m", "uvicorn", "--factory", stack.app, "--host", "127.0.0.1", "--port", str(port)]
        cwd = ROOT
    log = workdir / f"{stack.name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    running = Running(stack, process, f"http://127.0.0.1:{port}", secret, log)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{stack.name} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            httpx.get(running.base_url + stack.paths.me, timeout=1.0, trust_env=False)
            return running
        except httpx.TransportError:
            time.sleep(0.05)
    running.stop()
    raise RuntimeError(f"{stack.name} did not answer within {READY_TIMEOUT} s:\n{log.read_text(errors='replace')}")


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    verdicts: dict[str, str]  # ID -> "fail" | "warn", for every FAIL and WARN of the run
    output: str


def run_suite(server: Running, profile: str, workdir: Path, *extra: str) -> Outcome:
    """``jwt-conformance run`` as a real process: config file, credentials from the environment, JSON report."""
    stack = server.stack
    users: dict[str, Any] = {
        "primary": {"username": stack.login_name(PRIMARY), "password": "${CORPUS_PRIMARY}"},
        "second": {"username": stack.login_name(SECOND), "password": "${CORPUS_SECOND}"},
    }
    if stack.disabled:
        users["disabled"] = {"username": stack.login_name(DISABLED), "password": "${CORPUS_DISABLED}"}
    config: dict[str, Any] = {
        "base_url": server.base_url,
        "profile": profile,
        "paths": {"token": stack.paths.token, "me": stack.paths.me, "protected": list(stack.paths.protected)},
        "users": users,
        # ENUM-002 is a timing statistic (~2 x 30 logins): noisy on a shared CI core and slow; ENUM-001 stays.
        "skip": ["ENUM-002"],
    }
    if stack.give_key:
        config["keys"] = {"hs_secret": "${CORPUS_SECRET}"}
    config_file = workdir / f"{stack.name}-{profile}.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    report = workdir / f"{stack.name}-{profile}.json"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(Path.home()),
        "CORPUS_PRIMARY": PRIMARY.password,
        "CORPUS_SECOND": SECOND.password,
        "CORPUS_DISABLED": DISABLED.password,
        "CORPUS_SECRET": server.secret,
    }
    result = subprocess.run(
        [str(JWT_CONFORMANCE), "run", "--config", str(config_file), "--json-report", str(report), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    if not report.exists():
        raise AssertionError(f"no report (exit {result.returncode}):\n{output}")
    document = json.loads(report.read_text(encoding="utf-8"))
    verdicts = {item["id"]: item["status"] for item in document["results"] if item["status"] in ("fail", "warn")}
    return Outcome(result.returncode, verdicts, output)
