"""JWT-JWKS-* and JWT-ALG-007 against the reference server with each public-key algorithm."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import FastAPI

from conformance.config import Keys
from reference_impl.security import Tokens

from .harness import Answer, Status, explain, on, rewrite, run_checks
from .token_twins import _b64decode, header_of, twin, unverified

JWKS_IDS = ["JWT-JWKS-001", "JWT-JWKS-002", "JWT-JWKS-003"]
KEYS = {
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


def asymmetric(make_reference: Any, tmp_path: Path, algorithm: str) -> FastAPI:
    key = KEYS[algorithm]()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "key.pem").write_bytes(pem)
    app: FastAPI = make_reference(secret_key=None, algorithm=algorithm, private_key_file=tmp_path / "key.pem")
    return app


@pytest.mark.parametrize("algorithm", KEYS)
def test_the_whole_suite_passes_on_a_public_key_reference_server(
    make_reference: Any, tmp_path: Path, algorithm: str
) -> None:
    results = run_checks(asymmetric(make_reference, tmp_path, algorithm), [""])
    bad = {i: r.status for i, r in results.items() if r.status in (Status.FAIL, Status.WARN, Status.ERROR)}
    assert not bad, explain(results)
    assert results["JWT-ALG-007"].status is Status.PASS
    assert {i: results[i].status for i in JWKS_IDS} == dict.fromkeys(JWKS_IDS, Status.PASS)


def test_an_hmac_server_publishes_an_empty_set_and_skips_alg_007(reference: FastAPI) -> None:
    results = run_checks(reference, ["JWT-JWKS", "JWT-ALG-007"])
    assert {i: results[i].status for i in JWKS_IDS} == dict.fromkeys(JWKS_IDS, Status.PASS), explain(results)
    assert results["JWT-ALG-007"].status is Status.SKIP


def test_without_a_key_set_the_checks_skip_and_say_how_to_point_at_one(reference: FastAPI) -> None:
    def gone(answer: Answer) -> None:
        answer.set_json({"detail": "Not Found"}, status=404)

    results = run_checks(rewrite(reference, on("GET", "/.well-known/jwks.json", gone)), ["JWT-JWKS"])
    for check_id in JWKS_IDS:
        assert results[check_id].status is Status.SKIP, explain(results)
        assert "--jwks-url" in results[check_id].message


def edit_keys(edit: Any) -> Any:
    def chosen(answer: Answer) -> None:
        document = answer.json()
        document["keys"] = edit(document["keys"])
        answer.set_json(document)

    return chosen


TWINS = {
    "private-member": ("JWT-JWKS-001", lambda keys: [{**keys[0], "d": "c2VjcmV0"}], Status.FAIL),
    "duplicate-kid": ("JWT-JWKS-002", lambda keys: [keys[0], {**keys[0], "x": keys[0].get("x", "AA")}], Status.WARN),
    "kty-does-not-fit-alg": ("JWT-JWKS-003", lambda keys: [{**keys[0], "alg": "RS256"}], Status.FAIL),
}


@pytest.mark.parametrize(("check_id", "edit", "expected"), TWINS.values(), ids=TWINS.keys())
def test_each_jwks_check_fails_with_its_own_id(
    make_reference: Any, tmp_path: Path, check_id: str, edit: Any, expected: Status
) -> None:
    app = rewrite(asymmetric(make_reference, tmp_path, "ES256"), on("GET", "/.well-known/jwks.json", edit_keys(edit)))
    results = run_checks(app, ["JWT-JWKS"])
    assert results[check_id].status is expected, explain(results)


def test_the_jwks_url_can_be_given(make_reference: Any, tmp_path: Path) -> None:
    app = asymmetric(make_reference, tmp_path, "ES256")
    results = run_checks(app, ["JWT-JWKS-001"], keys=Keys(jwks_url="/.well-known/jwks.json"))
    assert results["JWT-JWKS-001"].status is Status.PASS
    wrong = run_checks(app, ["JWT-JWKS-001"], keys=Keys(jwks_url="/nowhere.json"))
    assert wrong["JWT-JWKS-001"].status is Status.SKIP and "/nowhere.json" in wrong["JWT-JWKS-001"].message


def test_alg_007_fails_when_hs256_keyed_with_the_public_key_is_accepted(make_reference: Any, tmp_path: Path) -> None:
    app = asymmetric(make_reference, tmp_path, "RS256")
    public_pem = app.state.reference.key_set.current.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def confused(tokens: Tokens, token: str) -> dict[str, Any] | None:
        if header_of(token).get("alg") != "HS256":
            return None
        head, _, signature = token.rpartition(".")
        expected = hmac.new(public_pem, head.encode(), hashlib.sha256).digest()
        return unverified(token) if hmac.compare_digest(expected, _b64decode(signature)) else None

    results = run_checks(twin(app, confused), ["JWT-ALG-007"])
    assert results["JWT-ALG-007"].status is Status.FAIL, explain(results)
    assert "SPKI PEM" in results["JWT-ALG-007"].message
    assert json.dumps(results["JWT-ALG-007"].to_dict())  # evidence serialises


def test_sig_007_runs_at_thorough_only_and_refuses_published_secrets(make_reference: Any, tmp_path: Path) -> None:
    app = asymmetric(make_reference, tmp_path, "ES256")
    assert "JWT-SIG-007" not in run_checks(app, ["JWT-SIG-007"], level="standard")
    results = run_checks(app, ["JWT-SIG-007"], level="thorough")
    assert results["JWT-SIG-007"].status is Status.PASS, explain(results)
    assert "guesses refused" in results["JWT-SIG-007"].message


def test_sig_007_fails_when_a_published_secret_is_accepted(make_reference: Any, tmp_path: Path) -> None:
    app = asymmetric(make_reference, tmp_path, "ES256")

    def accepts_changeme(tokens: Tokens, token: str) -> dict[str, Any] | None:
        head, _, signature = token.rpartition(".")
        expected = hmac.new(b"changeme", head.encode(), hashlib.sha256).digest()
        return unverified(token) if hmac.compare_digest(expected, _b64decode(signature)) else None

    results = run_checks(twin(app, accepts_changeme), ["JWT-SIG-007"], level="thorough")
    assert results["JWT-SIG-007"].status is Status.FAIL, explain(results)
    assert "changeme" not in results["JWT-SIG-007"].message  # the guess is named by its list position only
