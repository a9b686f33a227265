"""ENUM-001, ENUM-003, TLS-*: pass (or skip, as the catalog says) on the reference server; fail on broken twins."""

from __future__ import annotations

import time
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.middleware.httpsredirect import HTTPSRedirectMiddleware

import conformance.checks.enumeration as enumeration
from conformance.checks.enumeration import (
    cleartext_exposure,
    cleartext_twin,
    comparable,
    differences,
    is_loopback,
    username_variants,
)
from conformance.client import Client, Redactor, Response
from conformance.contract import load_contract
from conformance.model import Result
from conformance.registry import all_checks, select
from conformance.runner import run
from reference_impl.oauth_errors import TokenEndpointError
from reference_impl.security import Passwords, VerifyResult

from .harness import Answer, Profile, Status, config_for, explain, rewrite, run_checks, with_components
from .tutorial_app import tutorial_app

IDS = ["ENUM-001", "ENUM-003", "TLS-001", "TLS-002", "TLS-003"]
HTTPS_URL = "https://api.example.com"


def run_over_https(app: Any, select_ids: list[str], **changes: Any) -> dict[str, Result]:
    """Like ``run_checks``, with the target at an https URL (the in-process transport ignores the host)."""
    config = config_for(base_url=HTTPS_URL, **changes)
    with TestClient(app, base_url=HTTPS_URL, raise_server_exceptions=False) as http:
        client = Client(HTTPS_URL, http=http, redactor=Redactor(config.secrets))
        results = run(config, select(all_checks(), select_ids), contract=load_contract(), client=client)
        return {result.id: result for result in results}


def test_enumeration_area_on_the_reference_server(reference: FastAPI) -> None:
    results = run_checks(reference, IDS)
    statuses = {check_id: results[check_id].status for check_id in IDS}
    expected = dict.fromkeys(["ENUM-001", "ENUM-003", "TLS-001"], Status.PASS)
    assert statuses == expected | {"TLS-002": Status.SKIP, "TLS-003": Status.SKIP}, explain(results)
    assert "disabled user" in results["ENUM-001"].message
    assert "loopback" in results["TLS-001"].message
    for check_id in ("TLS-002", "TLS-003"):
        assert "--base-url" in results[check_id].message and "https" in results[check_id].message


# -- ENUM-001 ------------------------------------------------------------------------------------


class _NamesUnknownUsers(Passwords):
    """The reference's password service, except that it says when the user does not exist."""

    async def verify(self, password: str, hashed: str | None) -> VerifyResult:
        if hashed is None:
            raise TokenEndpointError("invalid_grant", "No such user")
        return await super().verify(password, hashed)


def test_enum_001_warns_when_an_unknown_user_gets_another_answer(reference: FastAPI) -> None:
    app = with_components(reference, passwords=_NamesUnknownUsers("fast", 2))
    results = run_checks(app, IDS)
    assert results["ENUM-001"].status is Status.WARN, explain(results)
    assert "an unknown user" in results["ENUM-001"].message and "No such user" in results["ENUM-001"].message
    assert "disabled user" not in results["ENUM-001"].message  # alice still gets the common answer
    assert results["ENUM-003"].status is Status.PASS
    assert run_checks(app, ["ENUM-001"], strict=True)["ENUM-001"].status is Status.FAIL


def test_enum_001_compares_two_cases_without_a_disabled_user(reference: FastAPI) -> None:
    results = run_checks(reference, ["ENUM-001"], disabled=None)
    assert results["ENUM-001"].status is Status.PASS, explain(results)
    assert "users.disabled" in results["ENUM-001"].message


def test_enum_001_warns_on_the_tutorials_disabled_user_in_every_profile() -> None:
    for profile in (Profile.RFC, Profile.FASTAPI):
        results = run_checks(tutorial_app(), IDS, profile=profile)
        assert results["ENUM-001"].status is Status.WARN, explain(results)
        message = results["ENUM-001"].message
        assert "the disabled user" in message and "an unknown user" not in message
        assert "eyJ" not in message  # the issued token is redacted before excerpting
        assert results["ENUM-003"].status is Status.PASS
        assert results["TLS-001"].status is Status.PASS


def test_differences_mask_each_answers_own_username() -> None:
    def answer(status: int, body: str, request_id: str = "1") -> Response:
        headers = httpx.Headers({"date": request_id, "x-request-id": request_id, "content-length": str(len(body))})
        return Response(status, headers, body.encode(), False, 0.0)

    bob = comparable(answer(400, '{"detail": "bad login for bob"}'), "bob")
    other = comparable(answer(400, '{"detail": "bad login for bob1234"}', request_id="2"), "bob1234")
    assert differences(bob, other) == []
    assert differences(bob, comparable(answer(401, "{}"), "x")) == [
        "status 401 vs 400",
        "body '{}' vs '{\"detail\": \"bad login for <username>\"}'",
    ]


# -- ENUM-003 ------------------------------------------------------------------------------------


class _LenientStore:
    """The reference store, with usernames trimmed and case-folded on lookup."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def get(self, username: str) -> Any:
        return self.inner.get(username.strip().lower())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_enum_003_reports_usernames_that_log_in_when_altered(reference: FastAPI) -> None:
    app = with_components(reference, store=_LenientStore(reference.state.reference.store))
    results = run_checks(app, IDS)
    assert results["ENUM-003"].status is Status.INFO, explain(results)
    assert "' bob' (leading space): logs in" in results["ENUM-003"].message
    assert results["ENUM-001"].status is Status.PASS


def test_enum_003_reports_inconsistent_refusals(reference: FastAPI) -> None:
    def space_is_invalid(scope: Any, answer: Answer) -> None:
        if scope["path"] == "/token" and answer.status == 400 and scope.get("_spaced"):
            answer.set_json({"error": "invalid_request"})

    async def mark(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/token":
            body = await receive()
            scope = {**scope, "_spaced": b"username=+" in body["body"] or b"+&" in body["body"]}

            async def replay() -> Any:
                return body

            await app(scope, replay, send)
            return
        await app(scope, receive, send)

    app = rewrite(reference, space_is_invalid)
    results = run_checks(mark, ["ENUM-003"])
    assert results["ENUM-003"].status is Status.INFO, explain(results)
    assert "refused in different ways" in results["ENUM-003"].message


def test_username_variants() -> None:
    assert username_variants("johndoe") == [
        ("case changed", "Johndoe"),
        ("leading space", " johndoe"),
        ("trailing space", "johndoe "),
    ]
    assert username_variants("Bob")[0] == ("case changed", "bOB")
    assert [change for change, _ in username_variants("42")] == ["leading space", "trailing space"]


# -- TLS-001 -------------------------------------------------------------------------------------


def test_tls_001_fails_for_plain_http_to_a_network_host(reference: FastAPI) -> None:
    results = run_checks(reference, ["TLS-001"], base_url="http://api.example.com")
    assert results["TLS-001"].status is Status.FAIL, explain(results)
    assert "api.example.com" in results["TLS-001"].message
    relaxed = run_checks(reference, ["TLS-001"], base_url="http://api.example.com", profile=Profile.FASTAPI)
    assert relaxed["TLS-001"].status is Status.FAIL


@pytest.mark.parametrize(
    ("base_url", "exposed"),
    [
        ("http://127.0.0.1:8000", False),
        ("http://127.8.9.1", False),
        ("http://localhost:8000", False),
        ("http://api.localhost", False),
        ("http://[::1]:8000", False),
        ("https://api.example.com", False),
        ("http://api.example.com", True),
        ("http://10.0.0.5:8000", True),
        ("http://[2001:db8::1]", True),
        ("http://localhost.example.com", True),
    ],
)
def test_cleartext_exposure(base_url: str, exposed: bool) -> None:
    assert (cleartext_exposure(base_url) is not None) is exposed


def test_cleartext_twin() -> None:
    assert cleartext_twin("https://api.example.com") == "http://api.example.com"
    assert cleartext_twin("https://api.example.com:443/v1") == "http://api.example.com/v1"
    assert cleartext_twin("https://api.example.com:8443") == "http://api.example.com:8443"
    assert cleartext_twin("https://[2001:db8::1]") == "http://[2001:db8::1]"
    assert cleartext_twin("http://api.example.com") is None
    assert is_loopback("LOCALHOST.") and not is_loopback("example.com")


# -- TLS-002, TLS-003 (the target at an https URL) ------------------------------------------------


def _hsts(scope: Any, answer: Answer) -> None:
    answer.set_header("strict-transport-security", "max-age=31536000; includeSubDomains")


def test_tls_002_fails_and_tls_003_reports_when_http_is_served_alongside_https(reference: FastAPI) -> None:
    results = run_over_https(reference, ["TLS"])
    assert results["TLS-001"].status is Status.PASS, explain(results)
    assert results["TLS-002"].status is Status.FAIL
    assert "plain http" in results["TLS-002"].message
    sent = [exchange for exchange in results["TLS-002"].exchanges if exchange.url.startswith("http://")]
    assert sent and "decoy-" in (sent[0].request_body or "")  # the real password never goes in clear text
    assert results["TLS-003"].status is Status.INFO
    assert "Strict-Transport-Security" in results["TLS-003"].message


def test_tls_002_and_tls_003_pass_behind_an_https_redirect_with_hsts(reference: FastAPI) -> None:
    results = run_over_https(HTTPSRedirectMiddleware(rewrite(reference, _hsts)), ["TLS"])
    assert {r.status for r in results.values()} == {Status.PASS}, explain(results)
    assert "redirected" in results["TLS-002"].message


def test_tls_002_fails_when_cleartext_answers_like_https_in_the_tutorial_dialect() -> None:
    results = run_over_https(tutorial_app(), ["TLS-002"], profile=Profile.FASTAPI)
    assert results["TLS-002"].status is Status.FAIL, explain(results)


def test_tls_002_passes_when_cleartext_is_refused(reference: FastAPI) -> None:
    async def refuse_http(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["scheme"] == "http":
            await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"TLS required"})
            return
        await reference(scope, receive, send)

    results = run_over_https(refuse_http, ["TLS-002"])
    assert results["TLS-002"].status is Status.PASS, explain(results)
    assert "refused" in results["TLS-002"].message


# -- ENUM-002: timing ------------------------------------------------------------------------------


def _slow_for_known_users(delay: float) -> Any:

    def edit(form: dict[str, list[str]], raw: bytes, scope: dict[str, Any], answer: Answer) -> None:
        if answer.status == 400 and form.get("username") == ["bob"]:
            time.sleep(delay)  # a hash is computed only for users that exist

    return edit


def test_enum_002_passes_on_the_reference_server_which_hashes_a_dummy(
    reference: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(enumeration, "TIMING_SAMPLES", 20)
    results = run_checks(reference, ["ENUM-002"])
    assert results["ENUM-002"].status is Status.PASS, explain(results)
    assert "Mann-Whitney" in results["ENUM-002"].message


def test_enum_002_warns_when_unknown_users_skip_the_hash(reference: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_token_endpoint import form_rewrite

    monkeypatch.setattr(enumeration, "TIMING_SAMPLES", 20)
    twin = form_rewrite(reference, _slow_for_known_users(0.04))
    results = run_checks(twin, ["ENUM-002"])
    assert results["ENUM-002"].status is Status.WARN, explain(results)
    assert "gap" in (results["ENUM-002"].actual or "")
    assert run_checks(twin, ["ENUM-002"], strict=True)["ENUM-002"].status is Status.FAIL


def test_enum_002_does_not_cry_wolf_on_a_small_difference(reference: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_token_endpoint import form_rewrite

    monkeypatch.setattr(enumeration, "TIMING_SAMPLES", 20)
    results = run_checks(form_rewrite(reference, _slow_for_known_users(0.004)), ["ENUM-002"])
    assert results["ENUM-002"].status is Status.PASS, explain(results)  # significant, but under 25 ms


def test_mann_whitney_matches_the_textbook_values() -> None:
    from conformance.stats import mann_whitney

    result = mann_whitney([1, 2, 2, 3, 3, 3], [2, 3, 4, 4, 5, 5])
    assert abs(result.p_value - 0.047967873742731) < 1e-9  # scipy.stats.mannwhitneyu, asymptotic, two-sided
    assert result.u == 5.5
    assert mann_whitney([5.0] * 10, [5.0] * 10).p_value == 1.0
    with pytest.raises(ValueError, match="both samples"):
        mann_whitney([], [1.0])


def test_enum_002_skips_when_the_samples_are_throttled(reference: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    from .test_token_endpoint import form_rewrite

    monkeypatch.setattr(enumeration, "TIMING_SAMPLES", 10)

    def throttle_bob(form: dict[str, list[str]], raw: bytes, scope: dict[str, Any], answer: Answer) -> None:
        if answer.status == 400 and form.get("username") == ["bob"]:
            answer.set_json({"error": "invalid_request"}, status=429)

    results = run_checks(form_rewrite(reference, throttle_bob), ["ENUM-002"])
    assert results["ENUM-002"].status is Status.SKIP, explain(results)
    assert "throttled" in results["ENUM-002"].message and "429" in results["ENUM-002"].message
