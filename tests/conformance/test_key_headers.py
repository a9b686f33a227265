"""JWT-HDR-*: pass against the reference server; fail, each with its own ID, against a twin that takes its key
from the token header in the way the check probes.

The twins are the reference app with its token service replaced by a subclass that, for the header member
it mishandles, picks the verification key from the token (embedded jwk, fetched jku/x5u, x5c, a file named
by kid, an injectable key table, ...) and otherwise verifies like the reference.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from fastapi import FastAPI

from conformance.checks import key_headers
from conformance.forge import ParsedToken, b64url_decode, parse
from conformance.listener import Document, Listener
from reference_impl.security import InvalidTokenError, Tokens

from .harness import Answer, Profile, Status, explain, rewrite, run_checks, with_components
from .tutorial_app import tutorial_app

HDR = "JWT-HDR"
HDR_IDS = [f"JWT-HDR-{n:03d}" for n in range(1, 8)]
SLOW_ID = "JWT-HDR-006"


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """A short fetch grace and a short sleep probe, so that twin runs take well under a second."""
    monkeypatch.setattr(key_headers, "FETCH_GRACE_S", 0.15)
    monkeypatch.setattr(key_headers, "SLEEP_PROBE_SECONDS", 0.3)
    monkeypatch.setattr(key_headers, "SLOWDOWN_THRESHOLD_S", 0.2)


def run_hdr(app: Any, ids: list[str] | None = None, **changes: Any) -> dict[str, Any]:
    return run_checks(app, ids or [HDR], workers=8, **changes)


def only_fails(results: dict[str, Any], check_id: str) -> None:
    """``check_id`` fails; every other HDR check passes (the twin breaks exactly one rule)."""
    assert results[check_id].status is Status.FAIL, explain(results)
    others = {i: results[i].status for i in HDR_IDS if i != check_id}
    assert set(others.values()) == {Status.PASS}, explain(results)


# -- twins -----------------------------------------------------------------------------------------
class Twin(Tokens):
    """The reference token service, except that ``key_from_header`` may hand out the verification key."""

    def key_from_header(self, token: ParsedToken) -> Any:
        return None

    def verify(self, token: str) -> Mapping[str, Any]:
        parsed = parse(token)
        key = self.key_from_header(parsed) if parsed.header is not None else None
        if key is None:
            return super().verify(token)
        try:
            if isinstance(key, bytes):  # HMAC, by hand: PyJWT refuses empty or short keys
                expected = hmac.new(key, parsed.signing_input.encode(), hashlib.sha256).digest()
                if not hmac.compare_digest(expected, b64url_decode(parsed.signature)):
                    raise InvalidTokenError("bad signature")
                return parsed.claims or {}
            return jwt.decode(token, key, algorithms=["RS256", "ES256"], options={"verify_aud": False})
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidTokenError("The access token is invalid") from exc


def twin(reference: FastAPI, cls: type[Twin], **kwargs: Any) -> FastAPI:
    tokens = cls(reference.state.reference.settings, **kwargs)
    return with_components(reference, tokens=tokens)


class TrustsEmbeddedJwk(Twin):
    def __init__(self, settings: Any, kty: str) -> None:
        super().__init__(settings)
        self.kty = kty

    def key_from_header(self, token: ParsedToken) -> Any:
        jwk = (token.header or {}).get("jwk")
        return jwt.PyJWK(jwk).key if isinstance(jwk, dict) and jwk.get("kty") == self.kty else None


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own listener
            return int(answer.status)
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - the twin's whole defect
        body: bytes = answer.read()
        return body


class FetchesJku(Twin):
    def key_from_header(self, token: ParsedToken) -> Any:
        header = token.header or {}
        if "jku" not in header:
            return None
        keys = jwt.PyJWKSet.from_dict(json.loads(fetch(header["jku"])))
        return keys[header["kid"]].key


class FetchesJkuLaterAndRefuses(Twin):
    """Answers 401 at once, then fetches the jku URL in the background (a key-cache warmer)."""

    def key_from_header(self, token: ParsedToken) -> Any:
        url = (token.header or {}).get("jku")
        if isinstance(url, str):

            def later() -> None:
                time.sleep(0.05)
                with contextlib.suppress(Exception):
                    fetch(url)

            threading.Thread(target=later, daemon=True).start()
        return None


class FetchesX5u(Twin):
    def key_from_header(self, token: ParsedToken) -> Any:
        url = (token.header or {}).get("x5u")
        return x509.load_pem_x509_certificate(fetch(url)).public_key() if isinstance(url, str) else None


class TrustsX5c(Twin):
    def key_from_header(self, token: ParsedToken) -> Any:
        chain = (token.header or {}).get("x5c")
        if not isinstance(chain, list) or not chain:
            return None
        return x509.load_der_x509_certificate(base64.b64decode(chain[0])).public_key()


class ReadsKidFile(Twin):
    """Reads the HMAC key from the file the kid names, relative to a key directory."""

    def __init__(self, settings: Any, key_dir: Path) -> None:
        super().__init__(settings)
        self.key_dir = key_dir

    def key_from_header(self, token: ParsedToken) -> Any:
        kid = (token.header or {}).get("kid")
        if not isinstance(kid, str) or not kid:
            return None
        try:
            return (self.key_dir / kid).read_bytes()
        except OSError:
            raise InvalidTokenError("unknown key") from None


class QueriesKeyTable(Twin):
    """Looks the HMAC key up with SQL built by string formatting."""

    def key_from_header(self, token: ParsedToken) -> Any:
        header = token.header or {}
        if "kid" not in header:
            return None
        with contextlib.closing(sqlite3.connect(":memory:")) as db:
            db.execute("CREATE TABLE keys (kid TEXT, secret TEXT)")
            db.execute("INSERT INTO keys VALUES ('main', ?)", ("a" * 48,))
            row = db.execute(f"SELECT secret FROM keys WHERE kid = '{header['kid']}'").fetchone()  # noqa: S608
        if row is None:
            raise InvalidTokenError("unknown key")
        return str(row[0]).encode()


class CrashesOnOddKid(Twin):
    def key_from_header(self, token: ParsedToken) -> Any:
        kid = (token.header or {}).get("kid")
        if kid is not None:
            kid.strip()  # an object kid: AttributeError, a 500
        return None


class SleepsOnKid(Twin):
    """Hands the kid to something that runs ``sleep`` (the delay it asks for, on the event loop)."""

    def key_from_header(self, token: ParsedToken) -> Any:
        kid = (token.header or {}).get("kid")
        if isinstance(kid, str) and kid.startswith("|sleep "):
            time.sleep(float(kid.split()[1]))
        return None


class SlowsDownAfterFirst(Twin):
    """Every kid'd request after the first is slow, whatever the kid: a server that got slow, not an injection."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.count = 0

    def key_from_header(self, token: ParsedToken) -> Any:
        if "kid" in (token.header or {}):
            self.count += 1
            if self.count > 1:
                time.sleep(0.3)
        return None


class AcceptsWildcardKid(Twin):
    def verify(self, token: str) -> Mapping[str, Any]:
        parsed = parse(token)
        if (parsed.header or {}).get("kid") == "*":
            return parsed.claims or {}
        return super().verify(token)


# -- the reference and the tutorial ----------------------------------------------------------------
def test_key_headers_pass_on_the_reference_server(reference: FastAPI) -> None:
    results = run_hdr(reference)
    assert {results[i].status for i in HDR_IDS} == {Status.PASS}, explain(results)
    for check_id in ("JWT-HDR-002", "JWT-HDR-003"):
        assert "no request reached the listener" in results[check_id].message


def test_key_headers_pass_on_the_tutorial_in_both_profiles(quick: None) -> None:
    for profile in (Profile.RFC, Profile.FASTAPI):
        results = run_hdr(tutorial_app(), profile=profile)
        assert {results[i].status for i in HDR_IDS} == {Status.PASS}, explain(results)


def test_fetch_half_is_reported_unobservable_for_a_remote_target(reference: FastAPI, quick: None) -> None:
    results = run_hdr(reference, ["JWT-HDR-002", "JWT-HDR-003"], base_url="https://api.example.com")
    for check_id in ("JWT-HDR-002", "JWT-HDR-003"):
        assert results[check_id].status is Status.PASS, explain(results)
        assert "not observable" in results[check_id].message


# -- one twin per rule -----------------------------------------------------------------------------
@pytest.mark.parametrize("kty", ["RSA", "EC"])
def test_hdr_001_fails_when_the_server_trusts_an_embedded_jwk(reference: FastAPI, quick: None, kty: str) -> None:
    results = run_hdr(twin(reference, TrustsEmbeddedJwk, kty=kty))
    only_fails(results, "JWT-HDR-001")
    assert "ACCEPTED" in results["JWT-HDR-001"].message
    assert ("ES256" if kty == "EC" else "RS256") in results["JWT-HDR-001"].message


def test_hdr_002_fails_when_the_server_verifies_with_the_jku_key_set(reference: FastAPI, quick: None) -> None:
    results = run_hdr(twin(reference, FetchesJku))
    only_fails(results, "JWT-HDR-002")
    message = results["JWT-HDR-002"].message
    assert "ACCEPTED" in message and "GET /jwks.json" in message, message


def test_hdr_002_fails_when_the_server_fetches_jku_even_if_it_refuses(reference: FastAPI, quick: None) -> None:
    results = run_hdr(twin(reference, FetchesJkuLaterAndRefuses), ["JWT-HDR-002"])
    assert results["JWT-HDR-002"].status is Status.FAIL, explain(results)
    assert "server-side request forgery" in results["JWT-HDR-002"].message
    assert "GET /jwks.json" in (results["JWT-HDR-002"].actual or "")


def test_hdr_003_fails_when_the_server_verifies_with_the_x5u_certificate(reference: FastAPI, quick: None) -> None:
    results = run_hdr(twin(reference, FetchesX5u))
    only_fails(results, "JWT-HDR-003")
    assert "x5u" in results["JWT-HDR-003"].message and "GET /x5u.pem" in results["JWT-HDR-003"].message


def test_hdr_003_fails_when_the_server_trusts_an_x5c_certificate(reference: FastAPI, quick: None) -> None:
    results = run_hdr(twin(reference, TrustsX5c))
    only_fails(results, "JWT-HDR-003")
    assert "x5c" in results["JWT-HDR-003"].message


def test_hdr_004_fails_when_the_server_reads_the_key_file_named_by_kid(
    reference: FastAPI, quick: None, tmp_path: Path
) -> None:
    (tmp_path / "main").write_bytes(b"a" * 48)
    results = run_hdr(twin(reference, ReadsKidFile, key_dir=tmp_path))
    only_fails(results, "JWT-HDR-004")
    assert "dev/null" in results["JWT-HDR-004"].message


def test_hdr_005_fails_when_kid_is_formatted_into_sql(reference: FastAPI, quick: None) -> None:
    results = run_hdr(twin(reference, QueriesKeyTable))
    only_fails(results, "JWT-HDR-005")
    assert "UNION SELECT" in results["JWT-HDR-005"].message and "ACCEPTED" in results["JWT-HDR-005"].message


def test_hdr_005_names_injection_when_an_object_kid_makes_the_server_fail(reference: FastAPI, quick: None) -> None:
    results = run_hdr(twin(reference, CrashesOnOddKid), ["JWT-HDR-005"])
    assert results["JWT-HDR-005"].status is Status.FAIL, explain(results)
    message = results["JWT-HDR-005"].message
    assert "500" in message and "NoSQL" in message and "injection" in message, message


def test_hdr_006_fails_when_kid_reaches_a_shell(reference: FastAPI, quick: None) -> None:
    results = run_hdr(twin(reference, SleepsOnKid), [SLOW_ID])
    assert results[SLOW_ID].status is Status.FAIL, explain(results)
    assert "command injection" in results[SLOW_ID].message


def test_hdr_006_does_not_blame_the_kid_when_the_server_is_slow_anyway(reference: FastAPI, quick: None) -> None:
    results = run_hdr(twin(reference, SlowsDownAfterFirst), [SLOW_ID])
    assert results[SLOW_ID].status is Status.INFO, explain(results)
    assert "could not be attributed" in results[SLOW_ID].message


def test_hdr_006_keeps_its_real_probe_bounded() -> None:
    worst = key_headers.BASELINE_TIMEOUT_S * 2 + key_headers.SLEEP_PROBE_SECONDS + key_headers.PROBE_MARGIN_S
    assert key_headers.SLEEP_PROBE_SECONDS - key_headers.SLOWDOWN_THRESHOLD_S >= 1.5
    assert worst <= 15


def test_hdr_007_fails_when_a_wildcard_kid_skips_verification(reference: FastAPI, quick: None) -> None:
    results = run_hdr(twin(reference, AcceptsWildcardKid))
    only_fails(results, "JWT-HDR-007")
    assert '"*"' in results["JWT-HDR-007"].message and "ACCEPTED" in results["JWT-HDR-007"].message


def test_hdr_007_fails_when_a_long_kid_makes_the_server_fail(reference: FastAPI, quick: None) -> None:
    def crash_on_long_credentials(scope: Any, answer: Answer) -> None:
        authorization = dict(scope["headers"]).get(b"authorization", b"")
        if len(authorization) > 8192:
            answer.set_json({"detail": "Internal Server Error"}, status=500)

    results = run_hdr(rewrite(reference, crash_on_long_credentials), ["JWT-HDR-007"])
    assert results["JWT-HDR-007"].status is Status.FAIL, explain(results)
    assert "8 KB kid" in results["JWT-HDR-007"].message and "500" in results["JWT-HDR-007"].message


# -- the attacker keys and the listener ------------------------------------------------------------
def test_attacker_tokens_verify_with_their_published_keys() -> None:
    keys = key_headers.attacker_keys()
    claims = {"sub": "bob"}
    rs = key_headers.make_signed({"alg": "RS256"}, claims, keys)
    es = key_headers.make_signed({"alg": "ES256"}, claims, keys)
    assert jwt.decode(rs, jwt.PyJWK(keys.rsa_jwk).key, algorithms=["RS256"]) == claims
    assert jwt.decode(es, jwt.PyJWK(keys.ec_jwk).key, algorithms=["ES256"]) == claims
    certificate = x509.load_pem_x509_certificate(keys.certificate_pem)
    assert jwt.decode(rs, certificate.public_key(), algorithms=["RS256"]) == claims  # type: ignore[arg-type]
    assert key_headers.attacker_keys() is keys


@pytest.mark.parametrize(
    ("base_url", "local"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.1.2.3", True),
        ("http://localhost:8000", True),
        ("http://[::1]:8000", True),
        ("https://api.example.com", False),
        ("http://10.0.0.5:8000", False),
    ],
)
def test_target_is_local_only_on_loopback(base_url: str, local: bool) -> None:
    assert key_headers.target_is_local(base_url) is local


def test_listener_serves_records_and_stops() -> None:
    with Listener({"/jwks.json": Document("application/json", b'{"keys": []}')}, max_hits=2) as listener:
        url = listener.url("/jwks.json")
        assert listener.wait_for_hit(0) == ()
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own listener
            assert answer.read() == b'{"keys": []}'
            assert answer.headers["Content-Type"] == "application/json"
        assert status_of(listener.url("/other?x=1")) == 404
        assert status_of(listener.url("/third")) == 404
        hits = listener.wait_for_hit(1)
        assert [hit.path for hit in hits] == ["/jwks.json", "/other?x=1"]  # bounded: max_hits=2
        assert listener.seen == 3
        assert hits[0].method == "GET" and hits[0].client == "127.0.0.1"
        assert "Python-urllib" in hits[0].describe()
    with pytest.raises(RuntimeError):
        listener.url("/jwks.json")


def test_listener_wait_returns_as_soon_as_a_request_arrives() -> None:
    with Listener({}) as listener:

        def request_soon() -> None:
            time.sleep(0.05)
            status_of(listener.url("/x"))

        thread = threading.Thread(target=request_soon)
        started = time.perf_counter()
        thread.start()
        hits = listener.wait_for_hit(5)
        thread.join()
    assert len(hits) == 1 and time.perf_counter() - started < 2


def test_listener_bounds_concurrent_connections() -> None:
    with Listener({}, max_connections=1, socket_timeout_s=0.5) as listener:
        silent = socket.create_connection(("127.0.0.1", listener.port), timeout=2)  # holds the only slot
        try:
            time.sleep(0.05)
            with contextlib.suppress(OSError, http.client.HTTPException):
                status_of(listener.url("/x"))
            assert listener.wait_for_hit(1) == () and listener.seen == 1  # dropped unanswered, but counted
        finally:
            silent.close()
