"""JWT-SIG-*: pass on the reference server; each fails with its own ID against a verifier broken in its way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from reference_impl.security import Tokens

from .harness import Status, explain, run_checks
from .token_twins import _b64decode, hs256_valid, twin, unverified
from .tutorial_app import tutorial_app

IDS = ["JWT-SIG-001", "JWT-SIG-002", "JWT-SIG-003", "JWT-SIG-004", "JWT-SIG-005", "JWT-SIG-006", "JWT-SIG-008"]
Defect = Callable[[Tokens, str], dict[str, Any] | None]


def test_signature_area_passes_on_the_reference_server(reference: FastAPI) -> None:
    results = run_checks(reference, ["JWT-SIG"])
    assert {i: results[i].status for i in IDS} == dict.fromkeys(IDS, Status.PASS), explain(results)
    assert results["JWT-SIG-009"].status is Status.SKIP
    assert "ES256/384/512" in results["JWT-SIG-009"].message


def test_signature_area_passes_on_the_tutorial_server() -> None:
    results = run_checks(tutorial_app(), ["JWT-SIG"])
    assert {i: results[i].status for i in IDS} == dict.fromkeys(IDS, Status.PASS), explain(results)


def ignores_signature_when_sub_changed(tokens: Tokens, token: str) -> dict[str, Any] | None:
    claims = unverified(token)
    return claims if claims.get("sub") != "bob" else None  # trusts the payload of "other users'" tokens


def checks_a_signature_prefix(tokens: Tokens, token: str) -> dict[str, Any] | None:
    head, _, signature = token.rpartition(".")
    return unverified(token) if len(signature) >= 20 and hs256_valid(tokens, head, signature, length=12) else None


def accepts_an_empty_signature(tokens: Tokens, token: str) -> dict[str, Any] | None:
    return unverified(token) if token.endswith(".") and token.count(".") == 2 else None


def crashes_on_odd_segments(tokens: Tokens, token: str) -> dict[str, Any] | None:
    if token.count(".") != 2:
        raise ValueError("expected three segments")
    return None


def accepts_appended_bytes(tokens: Tokens, token: str) -> dict[str, Any] | None:
    head, _, signature = token.rpartition(".")
    raw = _b64decode(signature)
    return unverified(token) if len(raw) > 32 and hs256_valid(tokens, head, signature, length=32) else None


def accepts_the_empty_key(tokens: Tokens, token: str) -> dict[str, Any] | None:
    import hashlib
    import hmac

    head, _, signature = token.rpartition(".")
    expected = hmac.new(b"", head.encode(), hashlib.sha256).digest()
    return unverified(token) if hmac.compare_digest(expected, _b64decode(signature)) else None


def accepts_zero_ecdsa(tokens: Tokens, token: str) -> dict[str, Any] | None:
    from .token_twins import header_of

    if header_of(token).get("alg", "").startswith("ES") and not any(_b64decode(token.rpartition(".")[2])):
        return unverified(token)
    return None


TWINS: dict[str, tuple[str, Defect]] = {
    "trusts-altered-payload": ("JWT-SIG-001", ignores_signature_when_sub_changed),
    "checks-a-prefix-only": ("JWT-SIG-002", checks_a_signature_prefix),
    "accepts-no-signature": ("JWT-SIG-003", accepts_an_empty_signature),
    "crashes-on-segments": ("JWT-SIG-004", crashes_on_odd_segments),
    "accepts-appended-bytes": ("JWT-SIG-005", accepts_appended_bytes),
    "accepts-empty-key": ("JWT-SIG-006", accepts_the_empty_key),
    "psychic-signature": ("JWT-SIG-008", accepts_zero_ecdsa),
}


@pytest.mark.parametrize(("check_id", "defect"), TWINS.values(), ids=TWINS.keys())
def test_each_check_fails_with_its_own_id_against_its_twin(reference: FastAPI, check_id: str, defect: Defect) -> None:
    results = run_checks(twin(reference, defect), [check_id])
    assert results[check_id].status is Status.FAIL, explain(results)
    assert results["BASE-001" if "BASE-001" in results else check_id] is not None


def test_sig_001_names_the_impact_when_another_users_record_is_served(reference: FastAPI) -> None:
    results = run_checks(twin(reference, ignores_signature_when_sub_changed), ["JWT-SIG-001"])
    assert "served the other user's record" in results["JWT-SIG-001"].message
    assert "carol" in results["JWT-SIG-001"].message
