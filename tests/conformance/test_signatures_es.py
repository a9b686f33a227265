"""Checks that apply to ECDSA (ES256) servers: JWT-SIG-008, JWT-SIG-009, JWT-ALG-005 in the ES family."""

from __future__ import annotations

from .es256_app import es256_app
from .harness import Status, explain, run_checks


def test_an_es256_server_passes_and_its_high_s_acceptance_is_noted() -> None:
    results = run_checks(es256_app(), ["JWT-SIG-008", "JWT-SIG-009", "JWT-ALG-005", "JWT-SIG-001"])
    assert results["JWT-SIG-008"].status is Status.PASS, explain(results)
    assert results["JWT-ALG-005"].status is Status.PASS, explain(results)
    assert results["JWT-SIG-001"].status is Status.PASS, explain(results)
    # ECDSA is malleable: cryptography (hence PyJWT) accepts the high-S twin. An observation only.
    assert results["JWT-SIG-009"].status is Status.INFO, explain(results)
    assert "high-S" in results["JWT-SIG-009"].message


def test_sig_009_fails_when_a_der_encoded_signature_is_accepted() -> None:
    results = run_checks(es256_app(accept_der=True), ["JWT-SIG-009"])
    assert results["JWT-SIG-009"].status is Status.FAIL, explain(results)
    assert "DER" in results["JWT-SIG-009"].message
