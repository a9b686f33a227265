"""JWT-CLM-*: pass on the reference server (with its key); each fails with its own ID against a verifier
that skips exactly that validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest
from fastapi import FastAPI

import conformance.checks.claims as claims_module
from conformance.config import Keys
from conformance.model import Profile
from reference_impl.security import Tokens

from .harness import Status, explain, run_checks
from .token_twins import twin
from .tutorial_app import tutorial_app

IDS = [f"JWT-CLM-{n:03d}" for n in range(1, 13)]
Defect = Callable[[Tokens, str], dict[str, Any] | None]


def keys(app: FastAPI) -> Keys:
    return Keys(hs_secret=app.state.reference.settings.secret_key)


def decode(tokens: Tokens, token: str, require: tuple[str, ...] = ("exp", "iat", "sub"), **options: Any) -> Any:
    return jwt.decode(
        token,
        tokens._key,
        algorithms=["HS256"],
        audience=tokens._audience if options.get("verify_aud", True) else None,
        issuer=tokens._issuer if options.get("verify_iss", True) else None,
        options={"require": list(require), **options},
    )


def test_claim_area_passes_on_the_reference_server_with_its_key(reference: FastAPI) -> None:
    results = run_checks(reference, ["JWT-CLM"], keys=keys(reference))
    assert {i: results[i].status for i in IDS} == dict.fromkeys(IDS, Status.PASS), explain(results)
    assert "5 s ago is" in results["JWT-CLM-002"].message


def test_without_a_key_the_claim_checks_skip_and_say_how_to_run(reference: FastAPI) -> None:
    results = run_checks(reference, ["JWT-CLM"])
    for check_id in IDS:
        assert results[check_id].status is Status.SKIP, explain(results)
        assert "--hs-secret" in results[check_id].message


def test_a_wrong_key_is_not_mistaken_for_a_conforming_server(reference: FastAPI) -> None:
    results = run_checks(reference, ["JWT-CLM-003"], keys=Keys(hs_secret="not-the-key-" + "x" * 32))
    assert results["JWT-CLM-003"].status is Status.SKIP
    assert "not the server's signing key" in results["JWT-CLM-003"].message


def test_clm_001_waits_out_a_short_lived_token_without_a_key(
    make_reference: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(claims_module, "EXPIRY_MARGIN_S", 1)
    app = make_reference(access_token_ttl=1, leeway=0)
    results = run_checks(app, ["JWT-CLM-001"], max_wait_s=10)
    assert results["JWT-CLM-001"].status is Status.PASS, explain(results)
    assert "waited" in results["JWT-CLM-001"].message


def ignores_exp(tokens: Tokens, token: str) -> Any:
    return decode(tokens, token, verify_exp=False)


def ignores_nbf(tokens: Tokens, token: str) -> Any:
    return decode(tokens, token, verify_nbf=False)


def exp_optional(tokens: Tokens, token: str) -> Any:
    claims = decode(tokens, token, require=("iat", "sub"))
    return claims if "exp" not in claims else None


def subtracts_exp_without_checking_its_type(tokens: Tokens, token: str) -> Any:
    claims = jwt.decode(token, options={"verify_signature": False})
    if claims.get("exp") is not None and claims["exp"] - claims["iat"] > 10**6:  # TypeError on a string: a 500
        return None
    return None


def sub_optional(tokens: Tokens, token: str) -> Any:
    claims = decode(tokens, token, require=("exp", "iat"))
    return {**claims, "sub": "bob"} if "sub" not in claims else None


def crashes_on_unknown_sub(tokens: Tokens, token: str) -> Any:
    claims = decode(tokens, token)
    if str(claims["sub"]).startswith("no-such-user"):
        raise LookupError("user not found")
    return None


def first_element_of_a_sub_array(tokens: Tokens, token: str) -> Any:
    claims = jwt.decode(
        token, tokens._key, algorithms=["HS256"], options={"verify_sub": False}, audience=tokens._audience
    )
    return {**claims, "sub": claims["sub"][0]} if isinstance(claims.get("sub"), list) else None


def ignores_iat(tokens: Tokens, token: str) -> Any:
    return decode(tokens, token, verify_iat=False)


def ignores_iss(tokens: Tokens, token: str) -> Any:
    return decode(tokens, token, verify_iss=False)


def ignores_aud(tokens: Tokens, token: str) -> Any:
    return decode(tokens, token, verify_aud=False)


TWINS: dict[str, tuple[str, Defect, Status]] = {
    "ignores-exp": ("JWT-CLM-001", ignores_exp, Status.FAIL),
    "ignores-exp-by-10-minutes": ("JWT-CLM-002", ignores_exp, Status.FAIL),
    "ignores-nbf": ("JWT-CLM-003", ignores_nbf, Status.FAIL),
    "exp-not-required": ("JWT-CLM-004", exp_optional, Status.FAIL),
    "exp-type-unchecked": ("JWT-CLM-005", subtracts_exp_without_checking_its_type, Status.FAIL),
    "sub-not-required": ("JWT-CLM-006", sub_optional, Status.FAIL),
    "unknown-sub-500": ("JWT-CLM-007", crashes_on_unknown_sub, Status.FAIL),
    "sub-array-first-element": ("JWT-CLM-008", first_element_of_a_sub_array, Status.FAIL),
    "future-iat-accepted": ("JWT-CLM-009", ignores_iat, Status.INFO),
    "iss-not-checked": ("JWT-CLM-010", ignores_iss, Status.FAIL),
    "aud-not-checked": ("JWT-CLM-011", ignores_aud, Status.FAIL),
    "typ-not-checked": ("JWT-CLM-012", lambda tokens, token: decode(tokens, token), Status.WARN),
}


@pytest.mark.parametrize(("check_id", "defect", "expected"), TWINS.values(), ids=TWINS.keys())
def test_each_check_fails_with_its_own_id_against_its_twin(
    reference: FastAPI, check_id: str, defect: Defect, expected: Status
) -> None:
    results = run_checks(twin(reference, defect), [check_id], keys=keys(reference))
    assert results[check_id].status is expected, explain(results)


@pytest.mark.parametrize(("profile", "verdict"), [(Profile.RFC, Status.FAIL), (Profile.FASTAPI, Status.WARN)])
def test_the_tutorial_accepts_tokens_without_exp(profile: Profile, verdict: Status) -> None:
    key = "tutorial-key-" + "k" * 40
    results = run_checks(tutorial_app(secret_key=key), ["JWT-CLM"], keys=Keys(hs_secret=key), profile=profile)
    assert results["JWT-CLM-004"].status is verdict, explain(results)
    assert results["JWT-CLM-012"].status is Status.WARN  # the tutorial takes any typ
    for right in ("JWT-CLM-001", "JWT-CLM-002", "JWT-CLM-003", "JWT-CLM-006", "JWT-CLM-007"):
        assert results[right].status is Status.PASS, explain(results)
    assert results["JWT-CLM-010"].status is Status.SKIP  # the tutorial issues no iss


def _asymmetric_reference(make_reference: Any, tmp_path: Any, algorithm: str) -> tuple[FastAPI, Keys]:
    from .test_jwks import asymmetric

    app = asymmetric(make_reference, tmp_path, algorithm)
    return app, Keys(private_key_file=tmp_path / "key.pem")


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_claim_checks_mint_with_a_private_key(make_reference: Any, tmp_path: Any, algorithm: str) -> None:
    app, private = _asymmetric_reference(make_reference, tmp_path, algorithm)
    results = run_checks(app, ["JWT-CLM"], keys=private)
    assert {i: results[i].status for i in IDS} == dict.fromkeys(IDS, Status.PASS), explain(results)


def test_an_es256_server_that_ignores_exp_fails_clm_001(make_reference: Any, tmp_path: Any) -> None:
    app, private = _asymmetric_reference(make_reference, tmp_path, "ES256")
    public = app.state.reference.key_set.current.public_key

    def ignores_exp(tokens: Tokens, token: str) -> Any:
        return jwt.decode(
            token, public, algorithms=["ES256"], audience="jwt-reference-api", options={"verify_exp": False}
        )

    results = run_checks(twin(app, ignores_exp), ["JWT-CLM-001"], keys=private)
    assert results["JWT-CLM-001"].status is Status.FAIL, explain(results)


def test_a_private_key_of_the_wrong_type_skips_with_the_reason(make_reference: Any, tmp_path: Any) -> None:
    app, _ = _asymmetric_reference(make_reference, tmp_path, "ES256")
    other = tmp_path / "other"
    other.mkdir()
    _asymmetric_reference(make_reference, other, "EdDSA")
    results = run_checks(app, ["JWT-CLM-003"], keys=Keys(private_key_file=other / "key.pem"))
    assert results["JWT-CLM-003"].status is Status.SKIP
    assert "cannot sign ES256" in results["JWT-CLM-003"].message
