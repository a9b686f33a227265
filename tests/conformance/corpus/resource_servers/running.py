"""Start the test issuer and the resource servers that trust it as real processes on 127.0.0.1, stopped by PID."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

from ....server_process import free_port, stop_process

ROOT = Path(__file__).resolve().parents[4]
NODE_RS_DIR = Path(__file__).resolve().parents[1] / "node_rs"
JWT_CONFORMANCE = Path(sys.executable).parent / "jwt-conformance"
READY_TIMEOUT = 30.0
ME_PATH = "/users/me"
PROTECTED_PATHS = ("/users/me", "/protected-resource")
BANNER = re.compile(r"^issuer:\s+(\S+)\njwks_uri:\s+(\S+)\n(?:.*\n)*?listening:\s+(http://127\.0\.0\.1:\d+)\n", re.M)


@dataclass(frozen=True)
class ResourceServer:
    """One server of the corpus: how to start it and what is wrong with it (``None``: nothing)."""

    name: str
    entry: str  # "module:factory" for uvicorn, or a script in node_rs/ for node
    defect: str | None = None

    @property
    def node(self) -> bool:
        return self.entry.endswith(".js")


_PACKAGE = "tests.conformance.corpus.resource_servers"
FASTAPI_PYJWT = ResourceServer("fastapi-pyjwt", f"{_PACKAGE}.fastapi_pyjwt:create_app")
FASTAPI_PYJWT_FROZEN_JWKS = ResourceServer(
    "fastapi-pyjwt-frozen-jwks", f"{_PACKAGE}.fastapi_pyjwt_frozen_jwks:create_app", "never refreshes its key set"
)
FASTAPI_PYJWT_FETCH_STORM = ResourceServer(
    "fastapi-pyjwt-fetch-storm", f"{_PACKAGE}.fastapi_pyjwt_fetch_storm:create_app", "refetches on every unknown kid"
)
JOSE_JWKS = ResourceServer("express-jose", "jose_jwks.js")
JOSE_NO_AUDIENCE = ResourceServer("express-jose-no-audience", "jose_no_audience.js", "does not check aud")
JOSE_EMBEDDED_JWK = ResourceServer("express-jose-embedded-jwk", "jose_embedded_jwk.js", "trusts the header's jwk")
JOSE_FOLLOWS_JKU = ResourceServer("express-jose-follows-jku", "jose_follows_jku.js", "fetches the header's jku")
SERVERS = (
    FASTAPI_PYJWT,
    FASTAPI_PYJWT_FROZEN_JWKS,
    FASTAPI_PYJWT_FETCH_STORM,
    JOSE_JWKS,
    JOSE_NO_AUDIENCE,
    JOSE_EMBEDDED_JWK,
    JOSE_FOLLOWS_JKU,
)


@dataclass
class Running:
    server: ResourceServer
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def wait_ready(self) -> Running:
        """Once the server answers (it found the issuer first); stopped and :class:`RuntimeError` if it never does."""
        _wait(self.process, self.log, self.base_url + ME_PATH, self.server.name)
        return self

    def stop(self) -> None:
        stop_process(self.process)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def node_missing() -> str | None:
    """Why the express + jose servers cannot run here, or ``None`` when they can."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed on this machine"
    if not (NODE_RS_DIR / "node_modules" / "jose").is_dir():
        return f"the Node.js resource servers are not installed: run `npm ci` in {NODE_RS_DIR}"
    return None


def _wait(process: subprocess.Popen[bytes], log: Path, url: str | None, what: str) -> None:
    """Until ``url`` answers anything (or, without one, the process prints the issuer's banner)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        if url is None:
            if BANNER.search(log.read_text(errors="replace")):
                return
        else:
            try:
                httpx.get(url, timeout=1.0, trust_env=False)
                return
            except httpx.TransportError:
                pass
        time.sleep(0.05)
    stop_process(process)
    raise RuntimeError(f"{what} was not ready within {READY_TIMEOUT} s:\n{log.read_text(errors='replace')}")


def launch(
    server: ResourceServer, issuer: str, audience: str, workdir: Path, extra_env: Mapping[str, str] | None = None
) -> Running:
    """``server`` starting on a free port, trusting ``issuer`` for ``audience``; :meth:`Running.wait_ready` next.

    ``extra_env``: e.g. ``JWKS_CACHE_SECONDS`` and ``JWKS_COOLDOWN_SECONDS``, which shorten the key caches of the
    servers that have one (their libraries' defaults otherwise)."""
    port = free_port()
    env = {**os.environ, "ISSUER": issuer, "AUDIENCE": audience, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    env.update(extra_env or {})
    if server.node:
        env["NODE_ENV"] = "production"
        command, cwd = ["node", server.entry], NODE_RS_DIR
    else:
        command = [sys.executable, "-m", "uvicorn", "--factory", server.entry, "--host", "127.0.0.1"]
        command += ["--port", str(port)]
        cwd = ROOT
    log = workdir / f"{server.name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    return Running(server, process, f"http://127.0.0.1:{port}", log)


def start(
    server: ResourceServer, issuer: str, audience: str, workdir: Path, extra_env: Mapping[str, str] | None = None
) -> Running:
    """``server`` trusting ``issuer`` for ``audience``, once it answers on its free port."""
    return launch(server, issuer, audience, workdir, extra_env).wait_ready()


@dataclass
class IssuerProcess:
    """A ``jwt-conformance issuer`` process: the issuer URL it publishes, its JWKS URL and where it listens."""

    process: subprocess.Popen[bytes]
    keys_dir: Path
    issuer: str
    jwks_uri: str
    listening: str

    def stop(self) -> None:
        stop_process(self.process)


def start_issuer(keys_dir: Path, workdir: Path, issuer: str | None = None) -> IssuerProcess:
    """The test issuer on a free port of 127.0.0.1 with the keys of ``keys_dir`` (made on first use), as ``issuer``."""
    command = [str(JWT_CONFORMANCE), "issuer", "--port", "0", "--keys-dir", str(keys_dir)]
    if issuer is not None:
        command += ["--issuer", issuer]
    log = workdir / f"issuer-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    _wait(process, log, None, "jwt-conformance issuer")
    match = BANNER.search(log.read_text(errors="replace"))
    assert match is not None
    return IssuerProcess(process, keys_dir, match.group(1), match.group(2), match.group(3))


def rotate(keys_dir: Path, *args: str) -> str:
    """``jwt-conformance issuer rotate --keys-dir KEYS_DIR ARGS``; its output."""
    done = subprocess.run(
        [str(JWT_CONFORMANCE), "issuer", "rotate", "--keys-dir", str(keys_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"jwt-conformance issuer rotate exited with {done.returncode}:\n{done.stderr}")
    return done.stdout
