"""JWT-ALG-*: pass on the reference server; each fails with its own ID against a verifier broken in its way."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from conformance.config import Keys
from reference_impl.security import Tokens

from .harness import Status, explain, run_checks
from .token_twins import _b64decode, header_of, twin, unverified
from .tutorial_app import tutorial_app

BLACK_BOX = ["JWT-ALG-001", "JWT-ALG-002", "JWT-ALG-003", "JWT-ALG-004", "JWT-ALG-005", "JWT-ALG-010"]
KEYED = ["JWT-ALG-006", "JWT-ALG-008", "JWT-ALG-009"]
Defect = Callable[[Tokens, str], dict[str, Any] | None]


def key_of(app: FastAPI) -> Keys:
    return Keys(hs_secret=app.state.reference.settings.secret_key)


def test_algorithm_area_passes_on_the_reference_server(reference: FastAPI) -> None:
    results = run_checks(reference, ["JWT-ALG"])
    assert {i: results[i].status for i in BLACK_BOX} == dict.fromkeys(BLACK_BOX, Status.PASS), explain(results)
    for check_id in KEYED:  # without the key: never PASS, and the message says how to run the rest
        assert results[check_id].status is Status.SKIP
        assert "--hs-secret" in results[check_id].message


def test_keyed_checks_pass_on_the_reference_server_with_its_key(reference: FastAPI) -> None:
    results = run_checks(reference, KEYED, keys=key_of(reference))
    assert {i: results[i].status for i in KEYED} == dict.fromkeys(KEYED, Status.PASS), explain(results)


def test_algorithm_area_passes_on_the_tutorial_server() -> None:
    results = run_checks(tutorial_app(), ["JWT-ALG"])
    assert {i: results[i].status for i in BLACK_BOX} == dict.fromkeys(BLACK_BOX, Status.PASS), explain(results)


def hmac_ok(tokens: Tokens, signing_input: str, signature: str, digest: Any = hashlib.sha256) -> bool:
    expected = hmac.new(tokens._key.encode(), signing_input.encode(), digest).digest()
    return hmac.compare_digest(expected, _b64decode(signature))


def accepts_exactly_none(tokens: Tokens, token: str) -> dict[str, Any] | None:
    return unverified(token) if header_of(token).get("alg") == "none" and token.endswith(".") else None


def accepts_none_in_any_case_but_lower(tokens: Tokens, token: str) -> dict[str, Any] | None:
    alg = header_of(token).get("alg")
    return unverified(token) if isinstance(alg, str) and alg.lower() == "none" and alg != "none" else None


def accepts_none_with_a_signature(tokens: Tokens, token: str) -> dict[str, Any] | None:
    return unverified(token) if header_of(token).get("alg") == "none" and not token.endswith(".") else None


def crashes_on_odd_alg(tokens: Tokens, token: str) -> dict[str, Any] | None:
    header = header_of(token)
    if "alg" in header:
        header["alg"].upper()  # AttributeError on null or an array: a 500
    return None


def trusts_the_family(tokens: Tokens, token: str) -> dict[str, Any] | None:
    return unverified(token) if header_of(token).get("alg") in ("HS384", "HS512") else None


def ignores_crit(tokens: Tokens, token: str) -> dict[str, Any] | None:
    head, _, signature = token.rpartition(".")
    return unverified(token) if "crit" in header_of(token) and hmac_ok(tokens, head, signature) else None


def first_duplicate_wins(tokens: Tokens, token: str) -> dict[str, Any] | None:
    head, _, signature = token.rpartition(".")
    first = header_of(token, first_wins=True)
    if first != header_of(token) and first.get("alg") == "HS256" and hmac_ok(tokens, head, signature):
        return unverified(token)
    return None


def crashes_on_a_bom(tokens: Tokens, token: str) -> dict[str, Any] | None:
    if _b64decode(token.split(".")[0]).startswith(b"\xef\xbb\xbf"):
        raise UnicodeDecodeError("utf-8", b"", 0, 1, "BOM")
    return None


def any_hmac_algorithm(tokens: Tokens, token: str) -> dict[str, Any] | None:
    alg = header_of(token).get("alg")
    digest = {"HS384": hashlib.sha384, "HS512": hashlib.sha512}.get(alg) if isinstance(alg, str) else None
    head, _, signature = token.rpartition(".")
    return unverified(token) if digest and hmac_ok(tokens, head, signature, digest) else None


TWINS: dict[str, tuple[str, Defect, bool]] = {
    "any-hmac-algorithm": ("JWT-ALG-006", any_hmac_algorithm, True),
    "accepts-none": ("JWT-ALG-001", accepts_exactly_none, False),
    "accepts-None-NONE": ("JWT-ALG-002", accepts_none_in_any_case_but_lower, False),
    "accepts-none-with-signature": ("JWT-ALG-003", accepts_none_with_a_signature, False),
    "crashes-on-odd-alg": ("JWT-ALG-004", crashes_on_odd_alg, False),
    "trusts-alg-family": ("JWT-ALG-005", trusts_the_family, False),
    "ignores-crit": ("JWT-ALG-008", ignores_crit, True),
    "first-duplicate-wins": ("JWT-ALG-009", first_duplicate_wins, True),
    "crashes-on-bom": ("JWT-ALG-010", crashes_on_a_bom, False),
}


@pytest.mark.parametrize(("check_id", "defect", "keyed"), TWINS.values(), ids=TWINS.keys())
def test_each_check_fails_with_its_own_id_against_its_twin(
    reference: FastAPI, check_id: str, defect: Defect, keyed: bool
) -> None:
    keys = key_of(reference) if keyed else Keys()
    results = run_checks(twin(reference, defect), ["JWT-ALG"], keys=keys)
    assert results[check_id].status is Status.FAIL, explain(results)
    # A server that accepts alg "none" with a signature also takes the duplicate {"alg":..., "alg":"none"}.
    also = {"JWT-ALG-003": {"JWT-ALG-009"}}.get(check_id, set())
    others = [i for i in BLACK_BOX + KEYED if i != check_id and i not in also and results[i].status is Status.FAIL]
    assert not others, explain(results)


def test_a_key_cracked_by_jwt_fmt_010_unlocks_the_keyed_checks(
    make_reference: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    weak = make_reference(secret_key="x" * 4 + "-weak-but-long-enough-0123456789abcdef")
    from conformance.context import RunState

    original = RunState.__init__

    def cracked(self: RunState, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.cracked_secret = weak.state.reference.settings.secret_key.encode()

    monkeypatch.setattr(RunState, "__init__", cracked)
    results = run_checks(weak, KEYED)
    assert {i: results[i].status for i in KEYED} == dict.fromkeys(KEYED, Status.PASS), explain(results)
