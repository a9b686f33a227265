"""Issuer mode against resource servers written the way their ecosystems write them: the exact FAIL and WARN set.

Each server of ``corpus/resource_servers`` (FastAPI + PyJWT's ``PyJWKClient``, express + jose's
``createRemoteJWKSet``; correct, or with one defect) runs as a real process on 127.0.0.1 and trusts a
test issuer of its own (``jwt-conformance issuer``, started before it, so that a server that loads its
key set once knows the issuer's spare key). ``jwt-conformance run --issuer-keys`` (the installed CLI)
then mints every token. The key caches are shortened through the servers' environment
(``JWKS_CACHE_SECONDS``, ``JWKS_COOLDOWN_SECONDS``: the libraries' own settings) so that the rotation
checks finish in seconds; the run's waits are set to match.

``EXPECTED`` says, per server, what the suite must report; every entry is a real departure of that
server with the rule it breaks, and an ID that is absent must pass (or be skipped / informational).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .corpus.resource_servers import running as rs

pytestmark = pytest.mark.e2e

JWT_CONFORMANCE = Path(sys.executable).parent / "jwt-conformance"
AUDIENCE = "https://api.corpus.test"
CACHE = {"JWKS_CACHE_SECONDS": "6", "JWKS_COOLDOWN_SECONDS": "2"}
CONFIG = "max_wait: 30\nissuer:\n  key_refresh_wait: 10\n  key_removal_wait: 15\n"
FAIL, WARN = "fail", "warn"


@dataclass(frozen=True)
class Verdict:
    status: str
    why: str  # the server's real departure and the rule it breaks


# What every server of one stack shows, whatever its defect.
BOTH_METHODS = Verdict(WARN, "a token in the header and in ?access_token= is accepted (RFC 6750 §2: one method)")
TWO_FIELDS = Verdict(WARN, "two Authorization fields: the first one wins (RFC 9110 §5.3 singleton field)")
PYJWT = {
    "JWT-CLM-005": Verdict(WARN, "PyJWT accepts an exp sent as a numeric string, still enforcing it (RFC 7519 §2)"),
    "BEARER-011": BOTH_METHODS,
    "BEARER-012": TWO_FIELDS,
}
EXPRESS = {
    "BEARER-011": BOTH_METHODS,
    "BEARER-012": TWO_FIELDS,
    "PROT-006": Verdict(WARN, "express answers PUT and PATCH on a GET route with 404, not 405 (RFC 9110 §15.5.6)"),
}

EXPECTED: dict[str, dict[str, Verdict]] = {
    rs.FASTAPI_PYJWT.name: PYJWT,
    rs.FASTAPI_PYJWT_FROZEN_JWKS.name: {
        **PYJWT,
        "ISS-003": Verdict(WARN, "a key the issuer publishes later is never accepted (OpenID Connect Core §10.1.1)"),
        "ISS-004": Verdict(FAIL, "a key removed from the issuer's JWK Set is accepted forever (RFC 7517 §5)"),
    },
    rs.FASTAPI_PYJWT_FETCH_STORM.name: {
        **PYJWT,
        "ISS-005": Verdict(WARN, "every unknown kid makes it fetch the issuer's JWK Set again (no cooldown)"),
    },
    rs.JOSE_JWKS.name: EXPRESS,
    rs.JOSE_NO_AUDIENCE.name: {
        **EXPRESS,
        "JWT-CLM-011": Verdict(FAIL, "no audience option: a token for another API is accepted (RFC 9068 §4)"),
    },
    rs.JOSE_EMBEDDED_JWK.name: {
        **EXPRESS,
        "JWT-HDR-001": Verdict(FAIL, "jose's EmbeddedJWK trusts the key in the token's own header (RFC 8725 §3.10)"),
    },
    rs.JOSE_FOLLOWS_JKU.name: {
        **EXPRESS,
        "JWT-HDR-002": Verdict(FAIL, "it fetches the key set the token's jku names (RFC 8725 §3.10: request forgery)"),
    },
}


@dataclass
class Target:
    issuer: rs.IssuerProcess
    server: rs.Running


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Target]]:
    """Every server with an issuer of its own; the node ones only where node and jose are installed."""
    missing = rs.node_missing()
    work = tmp_path_factory.mktemp("rs-corpus")
    started: dict[str, Target] = {}
    try:
        for server in rs.SERVERS:
            if server.node and missing is not None:
                continue
            issuer = rs.start_issuer(work / f"{server.name}-keys", work)
            started[server.name] = Target(issuer, rs.launch(server, issuer.issuer, AUDIENCE, work, CACHE))
        for target in started.values():
            target.server.wait_ready()
        yield started
    finally:
        for target in started.values():
            target.server.stop()
            target.issuer.stop()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_issuer_mode_reports_exactly_each_servers_departures(
    name: str, targets: dict[str, Target], tmp_path: Path
) -> None:
    server = next(s for s in rs.SERVERS if s.name == name)
    if name not in targets:
        pytest.skip(rs.node_missing() or "not started")
    target = targets[name]
    config, report = tmp_path / "conformance.yaml", tmp_path / "report.json"
    config.write_text(CONFIG)
    done = subprocess.run(
        [
            str(JWT_CONFORMANCE),
            "run",
            "--config",
            str(config),
            "--base-url",
            target.server.base_url,
            "--issuer-keys",
            str(target.issuer.keys_dir),
            "--audience",
            AUDIENCE,
            "--subject",
            "alice",
            "--json-report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert report.exists(), done.stdout[-2000:] + done.stderr
    results = json.loads(report.read_text())["results"]
    found = {item["id"]: item["status"] for item in results if item["status"] in (FAIL, WARN, "error")}
    expected = {check_id: verdict.status for check_id, verdict in EXPECTED[name].items()}
    assert found == expected, f"{server.name} ({server.defect or 'correct'}):\n" + "\n".join(
        f"{item['id']} {item['status']}: {item.get('message')}" for item in results if item["id"] in found
    )
    assert done.returncode == (1 if FAIL in expected.values() else 0), done.stderr
