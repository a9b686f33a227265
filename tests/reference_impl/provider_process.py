"""panva's oidc-provider (``oidc_provider/provider.js``) as a real node process on 127.0.0.1, stopped by its PID."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from ..server_process import free_port, stop_process

PROVIDER_DIR = Path(__file__).parent / "oidc_provider"
READY_TIMEOUT = 20.0
READY = "oidc-provider listening on "


def provider_missing() -> str | None:
    """Why the provider cannot run here, or ``None`` when it can."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed on this machine"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"oidc-provider is not installed: run `npm ci` in {PROVIDER_DIR}"
    return None


class ProviderProcess:
    """One ``node provider.js``; its settings come from ``settings`` (see provider.js), its output goes to
    ``log_path``."""

    def __init__(self, settings: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.issuer = settings.get("ISSUER", self.url)
        self.log_path = log_path
        env = {**os.environ, **settings, "PORT": str(self.port), "NODE_ENV": "production"}
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["node", "provider.js"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=PROVIDER_DIR,
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self) -> ProviderProcess:
        """Wait for its ready line; fail with its output if it exits or never prints it."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                pytest.fail(f"the OpenID provider exited with {code} before it was ready:\n{self.log()}")
            if READY in self.log():
                return self
            time.sleep(0.05)
        pytest.fail(f"the OpenID provider was not ready within {READY_TIMEOUT} s:\n{self.log()}")

    def stop(self) -> int:
        return stop_process(self.process)

    def get(self, path: str) -> Any:
        response = httpx.get(self.url + path, timeout=10.0, trust_env=False)
        assert response.status_code == 200, response.text
        return response.json()

    def token_request(self, client_id: str, client_secret: str, **form: str) -> httpx.Response:
        """``POST`` to the token endpoint its discovery document names, the client authenticated by
        ``client_secret_basic``."""
        endpoint = self.get("/.well-known/openid-configuration")["token_endpoint"]
        assert endpoint == self.url + "/token"  # built from the address asked, whatever issuer it names
        data = {"grant_type": "client_credentials", **form}
        return httpx.post(endpoint, data=data, auth=(client_id, client_secret), timeout=10.0, trust_env=False)
