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
    # PyJWT reads exp with int(): a numeric string in the future passes, a past one is refused (lenient, not a bypass).
    assert results["JWT-CLM-005"].status is Status.WARN, explain(results)
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


# -- JWT-CLM-005: severity by impact -----------------------------------------------------------------------------


def narrow(defect: Defect) -> Defect:
    """The defect decides only for the tokens it reads; any other token defers to the real verification."""

    def decide(tokens: Tokens, token: str) -> dict[str, Any] | None:
        try:
            return defect(tokens, token)
        except jwt.InvalidTokenError:
            return None

    return decide


@narrow
def pyjwt_defaults(tokens: Tokens, token: str) -> Any:
    """A PyJWT server with default options: exp verified when present, read with int() (a numeric string passes)."""
    claims = jwt.decode(token, tokens._key, algorithms=["HS256"], audience=tokens._audience, issuer=tokens._issuer)
    return claims if isinstance(claims.get("exp"), str) else None


@narrow
def string_exp_never_expires(tokens: Tokens, token: str) -> Any:
    """Lenient parsing gone wrong: a string exp is taken as valid and its time never compared."""
    claims = decode(tokens, token, verify_exp=False)
    return claims if isinstance(claims.get("exp"), str) else None


@narrow
def null_exp_is_no_expiry(tokens: Tokens, token: str) -> Any:
    """exp must be present, but null passes as 'no expiry'."""
    claims = decode(tokens, token, require=("iat", "sub"), verify_exp=False)
    return claims if "exp" in claims and claims["exp"] is None else None


@narrow
def exp_optional_and_null_is_none(tokens: Tokens, token: str) -> Any:
    """A token without exp is accepted (JWT-CLM-004's defect), and so is exp null, the same thing to this server."""
    claims = decode(tokens, token, require=("iat", "sub"), verify_exp=False)
    return claims if claims.get("exp") is None else None


@narrow
def non_positive_exp_never_expires(tokens: Tokens, token: str) -> Any:
    """exp <= 0 taken as 'never expires', as some libraries do with 0."""
    claims = decode(tokens, token, verify_exp=False)
    exp = claims.get("exp")
    return claims if isinstance(exp, int | float) and exp <= 0 else None


def test_clm_005_only_warns_on_a_pyjwt_server_that_parses_exp_leniently(reference: FastAPI) -> None:
    results = run_checks(twin(reference, pyjwt_defaults), ["JWT-CLM"], keys=keys(reference))
    assert {i: results[i].status for i in IDS} == {
        **dict.fromkeys(IDS, Status.PASS),
        "JWT-CLM-005": Status.WARN,
    }, explain(results)
    assert "numeric string (in the future) was accepted" in results["JWT-CLM-005"].message
    strict = run_checks(twin(reference, pyjwt_defaults), ["JWT-CLM-005"], keys=keys(reference), strict=True)
    assert strict["JWT-CLM-005"].status is Status.FAIL


@pytest.mark.parametrize(
    ("defect", "bypassed"),
    [
        (
            string_exp_never_expires,
            "exp a numeric string in the past, exp a date string in the past (no usable expiry)",
        ),
        (null_exp_is_no_expiry, "exp null (no usable expiry)"),
        (non_positive_exp_never_expires, "exp negative (1969)"),
    ],
)
@pytest.mark.parametrize("profile", [Profile.RFC, Profile.FASTAPI])
def test_clm_005_fails_when_an_odd_exp_bypasses_the_expiry(
    reference: FastAPI, defect: Defect, bypassed: str, profile: Profile
) -> None:
    results = run_checks(twin(reference, defect), ["JWT-CLM"], keys=keys(reference), profile=profile)
    alarms = {i: results[i].status for i in IDS if results[i].status is not Status.PASS}
    assert alarms == {"JWT-CLM-005": Status.FAIL}, explain(results)
    assert results["JWT-CLM-005"].message == f"a token whose exp has passed or cannot be read was ACCEPTED: {bypassed}"


def test_clm_005_leaves_a_null_exp_to_clm_004_when_tokens_without_exp_pass_too(reference: FastAPI) -> None:
    results = run_checks(twin(reference, exp_optional_and_null_is_none), ["JWT-CLM"], keys=keys(reference))
    alarms = {i: results[i].status for i in IDS if results[i].status is not Status.PASS}
    assert alarms == {"JWT-CLM-004": Status.FAIL}, explain(results)
    assert "reported by JWT-CLM-004" in results["JWT-CLM-005"].message
