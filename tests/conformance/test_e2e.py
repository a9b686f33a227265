"""End to end: ``jwt-conformance run`` as a real process against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from conformance.config import PASSWORD_ENV
from conformance.contract import load_contract  # noqa: F401 - imported so a broken package fails here first

from ..conftest import PASSWORD
from ..server_process import Server, free_port, stop_process

pytestmark = pytest.mark.e2e

JWT_CONFORMANCE = Path(sys.executable).parent / "jwt-conformance"
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "conformance" / "report.schema.json").read_text("utf-8"))


def conformance(*args: str, password: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(Path(sys.executable).parent), PASSWORD_ENV: password, "HOME": str(Path.home())}
    return subprocess.run(
        [str(JWT_CONFORMANCE), "run", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


class UvicornApp:
    """Any ASGI app factory served by uvicorn in its own process (stopped by PID)."""

    def __init__(self, factory: str, log: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            factory,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2]
            )

    def wait_ready(self) -> UvicornApp:
        import time

        import httpx2 as httpx

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the server exited"
            try:
                httpx.get(self.base_url + "/docs", timeout=1, trust_env=False)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail("the server did not start")

    def stop(self) -> None:
        stop_process(self.process)


def test_the_reference_server_passes_and_the_reports_are_valid(reference_server: Server, tmp_path: Path) -> None:
    result = conformance(
        "--base-url",
        reference_server.base_url,
        "--username",
        "johndoe",
        "--json-report",
        str(tmp_path / "r.json"),
        "--junit-report",
        str(tmp_path / "r.xml"),
        "--markdown-report",
        str(tmp_path / "r.md"),
        password="secret",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, SCHEMA)
    assert document["summary"]["fail"] == 0 and document["summary"]["warn"] == 0, result.stdout
    assert ET.parse(tmp_path / "r.xml").getroot().attrib["failures"] == "0"
    assert (tmp_path / "r.md").read_text(encoding="utf-8").startswith("# JWT conformance report")
    assert "secret" not in (tmp_path / "r.json").read_text(encoding="utf-8").replace("secretalice", "")


# The tutorial's dialect under --profile fastapi, with no key and no second or disabled user: every FAIL and WARN,
# each a real departure of the tutorial (tests/conformance/test_corpus.py runs the same server shape with more).
TUTORIAL_UNDER_FASTAPI = {
    "TOKEN-003": "fail",  # no Cache-Control: no-store on the token answer (RFC 6749 §5.1), in every profile
    "TOKEN-004": "warn",  # no Pragma: no-cache
    "TOKEN-005": "warn",  # no expires_in
    "TOKEN-006": "warn",  # a wrong password: 401 {"detail"}, not 400 invalid_grant (the dialect)
    "TOKEN-007": "warn",  # an unknown user: the same
    "TOKEN-008": "warn",  # {"detail"} error bodies, not {"error"}
    "TOKEN-009": "warn",  # a missing password: 422
    "TOKEN-010": "warn",  # a missing username: 422
    "TOKEN-011": "warn",  # grant_type optional
    "TOKEN-012": "warn",  # an unsupported grant_type: 422
    "TOKEN-013": "warn",  # an empty password: 422
    "TOKEN-014": "warn",  # a repeated password: the last one wins
    "JWT-FMT-007": "warn",  # no iat
    "BEARER-003": "warn",  # a bare "Bearer" challenge
    "BEARER-004": "warn",  # no error="invalid_token"
    "BEARER-011": "warn",  # a token in the header and the query is accepted
    "BEARER-012": "warn",  # two Authorization fields: the first wins
}


def test_a_tutorial_style_server_gets_exactly_its_failures_and_warnings(tmp_path: Path) -> None:
    server = UvicornApp("tests.conformance.tutorial_app:tutorial_app", tmp_path / "log").wait_ready()
    try:
        # ENUM-002 (a timing statistic) is skipped: noisy on a shared core; ENUM-001 still runs.
        result = conformance(
            "--base-url",
            server.base_url,
            "--username",
            "bob",
            "--profile",
            "fastapi",
            "--skip",
            "ENUM-002",
            "--json-report",
            str(tmp_path / "r.json"),
            password=PASSWORD,
        )
    finally:
        server.stop()
    document = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    verdicts = {item["id"]: item["status"] for item in document["results"] if item["status"] in ("fail", "warn")}
    assert verdicts == TUTORIAL_UNDER_FASTAPI, result.stdout
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_wrong_credentials_exit_2_with_one_line(reference_server: Server) -> None:
    result = conformance("--base-url", reference_server.base_url, "--username", "johndoe", password="wrong")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "rejected the credentials of 'johndoe'" in result.stderr
