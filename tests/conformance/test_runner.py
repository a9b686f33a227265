"""The runner: verdicts by level and profile, 5xx as failures, errors without tracebacks, baseline rules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conformance.client import Client, Redactor
from conformance.context import Context
from conformance.contract import load_contract
from conformance.errors import BaselineLoginError, TargetUnreachableError
from conformance.model import Failure, Info, Level, Profile, Skip, Status
from conformance.registry import Check
from conformance.runner import run, verdict

from .harness import BASE_URL, Answer, config_for, on, rewrite


def synthetic(
    check_id: str, func: Any, level: Level = Level.MUST, dialect: bool = False, group: str = "bearer"
) -> Check:
    return Check(check_id, level, ("test",), func, (), dialect, group)


def run_synthetic(app: Any, checks: list[Check], **changes: Any) -> list[Any]:
    config = config_for(**changes)
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as http:
        client = Client(BASE_URL, http=http, redactor=Redactor(config.secrets))
        return list(run(config, checks, contract=load_contract(), client=client))


def fails(message: str, **kwargs: Any) -> Any:
    def check(ctx: Context) -> None:
        raise Failure(message, **kwargs)

    return check


@pytest.mark.parametrize(
    ("level", "dialect", "profile", "strict", "expected"),
    [
        (Level.MUST, False, Profile.RFC, False, Status.FAIL),
        (Level.MUST, False, Profile.FASTAPI, False, Status.FAIL),
        (Level.MUST, True, Profile.RFC, False, Status.FAIL),
        (Level.MUST, True, Profile.FASTAPI, False, Status.WARN),
        (Level.MUST, True, Profile.FASTAPI, True, Status.FAIL),
        (Level.SHOULD, False, Profile.RFC, False, Status.WARN),
        (Level.SHOULD, False, Profile.RFC, True, Status.FAIL),
        (Level.MAY, False, Profile.RFC, True, Status.INFO),
    ],
)
def test_verdicts_follow_level_profile_and_strict(
    level: Level, dialect: bool, profile: Profile, strict: bool, expected: Status
) -> None:
    item = synthetic("TEST-001", fails("x"), level=level, dialect=dialect)
    assert verdict(item, Failure("x"), config_for(profile=profile, strict=strict)) is expected


def test_other_outcomes_map_to_their_verdicts() -> None:
    item = synthetic("TEST-001", fails("x"))
    config = config_for()
    assert verdict(item, None, config) is Status.PASS
    assert verdict(item, Skip("x"), config) is Status.SKIP
    assert verdict(item, Info("x"), config) is Status.INFO
    assert verdict(item, RuntimeError("x"), config) is Status.ERROR
    assert verdict(item, Failure("x", level=Level.SHOULD), config) is Status.WARN
    assert verdict(item, Failure("x", dialect=True), config_for(profile=Profile.FASTAPI)) is Status.WARN


def test_a_crashing_check_is_an_error_result_not_a_traceback(reference: FastAPI) -> None:
    def crash(ctx: Context) -> None:
        raise KeyError("missing")

    [result] = run_synthetic(reference, [synthetic("TEST-001", crash)])
    assert result.status is Status.ERROR
    assert "could not decide" in result.message
    assert "KeyError" in result.message


def test_a_5xx_provoked_by_a_check_is_a_failure(reference: FastAPI) -> None:
    def break_health(answer: Answer) -> None:
        answer.status = 500

    def probe(ctx: Context) -> None:
        ctx.get("/health")

    [result] = run_synthetic(rewrite(reference, on("GET", "/health", break_health)), [synthetic("TEST-001", probe)])
    assert result.status is Status.FAIL
    assert "500" in result.message
    assert result.exchanges[-1].status == 500


def test_evidence_is_kept_for_non_passes_only(reference: FastAPI) -> None:
    def passes(ctx: Context) -> None:
        ctx.get("/health")

    def warns(ctx: Context) -> None:
        ctx.get("/health")
        raise Failure("x", level=Level.SHOULD)

    results = run_synthetic(reference, [synthetic("TEST-001", passes), synthetic("TEST-002", warns)])
    assert results[0].exchanges == ()
    assert results[1].exchanges[0].curl.startswith("curl -i -X GET")


def test_secrets_never_reach_results(reference: FastAPI) -> None:
    def leaky(ctx: Context) -> None:
        token = ctx.token()
        ctx.get(ctx.me_path, token=token)
        ctx.login()
        forged = token.rsplit(".", 1)[0] + "." + token.rsplit(".", 1)[1]
        raise Failure(f"password {ctx.credentials().password} token {token}", actual=forged)

    [result] = run_synthetic(reference, [synthetic("TEST-001", leaky)])
    config = config_for()
    token_part = result.exchanges[0].request_headers
    dumped = repr(result.to_dict())
    assert config.primary.password not in dumped
    assert config.primary.password.replace(" ", "+") not in dumped
    assert "${PASSWORD}" in dumped
    assert "${ACCESS_TOKEN}" in dumped
    assert ("Authorization", "Bearer ${ACCESS_TOKEN}") in token_part
    assert '"Authorization: Bearer ${ACCESS_TOKEN}"' in result.exchanges[0].curl


def test_rejected_credentials_stop_the_run(reference: FastAPI) -> None:
    config_changes = {"primary": replace(config_for().primary, password="wrong password")}
    with pytest.raises(BaselineLoginError, match="rejected the credentials of 'bob'.*--password"):
        run_synthetic(reference, [synthetic("TEST-001", fails("x"))], **config_changes)


def test_a_tutorial_style_401_on_login_also_counts_as_rejected_credentials(reference: FastAPI) -> None:
    def tutorial_401(answer: Answer) -> None:
        if answer.status == 400:
            answer.set_json({"detail": "Incorrect username or password"}, status=401)

    app = rewrite(reference, on("POST", "/token", tutorial_401))
    with pytest.raises(BaselineLoginError, match="401"):
        run_synthetic(app, [], primary=replace(config_for().primary, password="nope"))


def test_an_unreachable_target_names_the_url() -> None:
    config = config_for(base_url="http://127.0.0.1:9", timeout_s=2.0)
    with pytest.raises(TargetUnreachableError, match="http://127.0.0.1:9"):
        list(run(config, [], contract=load_contract()))


def test_a_broken_login_is_not_a_credentials_error_and_dependent_checks_skip(reference: FastAPI) -> None:
    def unprocessable(answer: Answer) -> None:
        answer.set_json({"detail": [{"msg": "field required"}]}, status=422)

    def needs_token(ctx: Context) -> None:
        ctx.token()

    from conformance.registry import all_checks

    all_checks()
    results = run_synthetic(rewrite(reference, on("POST", "/token", unprocessable)), [synthetic("X-001", needs_token)])
    by_id = {r.id: r for r in results}
    assert by_id["X-001"].status is Status.SKIP
    assert "TOKEN-001" in by_id["X-001"].message
    assert by_id["TOKEN-001"].status is Status.FAIL  # added to the run although not selected


def test_a_server_that_revokes_the_token_mid_run_marks_later_results(reference: FastAPI) -> None:
    calls = {"n": 0}

    def revoke_after_first_group(scope: Any, answer: Answer) -> None:
        if scope["path"] == "/users/me" and answer.status == 200:
            calls["n"] += 1
            if calls["n"] > 1:
                answer.set_json({"detail": "revoked"}, status=401)

    def first(ctx: Context) -> None:
        ctx.accepted(ctx.token())

    def later(ctx: Context) -> None:
        return None

    from conformance.registry import REGISTRY, all_checks

    all_checks()
    checks = [
        synthetic("A-001", first, group="signatures"),
        synthetic("B-001", later, group="bearer"),
        REGISTRY["BASE-003"],
    ]
    results = run_synthetic(rewrite(reference, revoke_after_first_group), checks)
    by_id = {r.id: r for r in results}
    assert not by_id["A-001"].low_confidence
    assert by_id["B-001"].low_confidence
    assert by_id["BASE-003"].status is Status.INFO
    assert "signatures" in by_id["BASE-003"].message


def test_a_throttled_check_is_skipped_with_the_way_out_not_failed(reference: FastAPI) -> None:
    def throttle(answer: Answer) -> None:
        if answer.status == 400:
            answer.set_json({"error": "slow_down"}, status=429)
            answer.set_header("retry-after", "60")

    from conformance.registry import REGISTRY, all_checks

    all_checks()
    results = run_synthetic(rewrite(reference, on("POST", "/token", throttle)), [REGISTRY["TOKEN-006"]])
    [result] = [r for r in results if r.id == "TOKEN-006"]
    assert result.status is Status.SKIP
    assert "throttled" in result.message and "Retry-After 60" in result.message


def test_a_throttled_baseline_login_stops_the_run_with_the_way_out(reference: FastAPI) -> None:
    def throttle(answer: Answer) -> None:
        answer.set_json({"error": "invalid_request"}, status=429)
        answer.set_header("retry-after", "120")

    with pytest.raises(BaselineLoginError, match="throttling logins for 'bob' .*Retry-After 120 s"):
        run_synthetic(rewrite(reference, on("POST", "/token", throttle)), [])


def test_a_security_failure_stands_even_when_other_requests_were_throttled(reference: FastAPI) -> None:
    def grant_then_throttle(ctx: Context) -> None:
        ctx.post_token({"grant_type": "password", "username": "x", "password": "y"})
        raise Failure("a token was ISSUED for a wrong password", level=Level.MUST, security=True)

    def throttle(answer: Answer) -> None:
        answer.set_json({"error": "invalid_request"}, status=429)

    app = rewrite(reference, on("POST", "/token", lambda a: throttle(a) if a.status == 400 else None))
    results = run_synthetic(app, [synthetic("TEST-001", grant_then_throttle)])
    assert results[0].status is Status.FAIL


# -- faults are not verdicts -----------------------------------------------------------------------------------------


class Faults(httpx.BaseTransport):
    """The in-process transport, except that the requests ``drop`` picks get no answer (a dropped connection)."""

    def __init__(self, inner: httpx.BaseTransport, drop: Callable[[httpx.Request], bool]) -> None:
        self.inner, self.drop, self.dropped = inner, drop, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.drop(request):
            self.dropped += 1
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return self.inner.handle_request(request)


def run_with_faults(app: Any, checks: list[Check], drop: Callable[[httpx.Request], bool]) -> tuple[list[Any], int]:
    """The results, and how many requests were dropped."""
    config = config_for()
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as http:
        faults = Faults(http._transport, drop)
        http._transport = faults
        client = Client(BASE_URL, http=http, redactor=Redactor(config.secrets))
        return list(run(config, checks, contract=load_contract(), client=client)), faults.dropped


def first(count: int, armed: list[bool], path: str = "/users/me") -> Callable[[httpx.Request], bool]:
    """Drop the first ``count`` token-bearing requests to ``path`` once ``armed`` holds a value."""
    left = [count]

    def drop(request: httpx.Request) -> bool:
        if armed and request.url.path == path and "authorization" in request.headers and left[0] > 0:
            left[0] -= 1
            return True
        return False

    return drop


def probed_after_one_group(armed: list[bool]) -> list[Check]:
    from conformance.registry import REGISTRY, all_checks

    all_checks()
    return [
        synthetic("A-001", lambda ctx: armed.append(True), group="signatures"),
        synthetic("B-001", lambda ctx: None, group="bearer"),
        REGISTRY["BASE-003"],
    ]


def test_one_dropped_connection_is_not_a_revoked_token(reference: FastAPI) -> None:
    armed: list[bool] = []
    results, dropped = run_with_faults(reference, probed_after_one_group(armed), first(1, armed))
    by_id = {r.id: r for r in results}
    assert dropped == 1  # the runner's probe after the signatures group
    assert [r.low_confidence for r in results] == [False, False, False]
    assert (by_id["BASE-003"].status, by_id["BASE-003"].message) == (Status.PASS, "")


def test_a_probe_without_any_answer_is_said_but_marks_nothing_low_confidence(reference: FastAPI) -> None:
    armed: list[bool] = []
    results, dropped = run_with_faults(reference, probed_after_one_group(armed), first(2, armed))
    by_id = {r.id: r for r in results}
    assert dropped == 2  # the probe and its retry
    assert [r.low_confidence for r in results] == [False, False, False]
    assert by_id["BASE-003"].status is Status.PASS
    assert by_id["BASE-003"].message == (
        "after the signatures checks the baseline token could not be re-checked (no HTTP answer, throttled or a "
        "server error): not counted as a revocation"
    )


def test_base_003_without_an_answer_at_the_end_cannot_decide_and_says_why(reference: FastAPI) -> None:
    armed: list[bool] = []
    checks = probed_after_one_group(armed)
    results, dropped = run_with_faults(reference, checks, first(6, armed))
    by_id = {r.id: r for r in results}
    assert dropped == 6  # the probes after both groups, then BASE-003's request, each with its retry
    assert [r.low_confidence for r in results] == [False, False, False]
    assert by_id["BASE-003"].status is Status.ERROR
    message = by_id["BASE-003"].message
    assert message.startswith("the target gave no HTTP answer: the baseline token could not be re-checked at the end")
    assert message.endswith(
        "not counted as a revocation; after the signatures checks the baseline token could not be re-checked "
        "(no HTTP answer, throttled or a server error): not counted as a revocation; after the bearer checks the "
        "baseline token could not be re-checked (no HTTP answer, throttled or a server error): not counted as a "
        "revocation"
    )


@pytest.mark.parametrize(("serve_anyone", "verdict"), [(False, Status.PASS), (True, Status.FAIL)])
def test_a_check_whose_first_request_drops_gets_its_verdict_from_the_retry(
    reference: FastAPI, serve_anyone: bool, verdict: Status
) -> None:
    from conformance.registry import REGISTRY, all_checks

    def anyone(answer: Answer) -> None:
        if serve_anyone and answer.status == 401:
            answer.set_json({"username": "bob"}, status=200)

    unauthenticated = [1]

    def drop(request: httpx.Request) -> bool:
        if request.url.path == "/users/me" and "authorization" not in request.headers and unauthenticated[0]:
            unauthenticated[0] -= 1
            return True
        return False

    all_checks()
    results, dropped = run_with_faults(rewrite(reference, on("GET", "/users/me", anyone)), [REGISTRY["BASE-002"]], drop)
    [result] = [r for r in results if r.id == "BASE-002"]
    assert dropped == 1
    assert result.status is verdict, result.message
    if verdict is Status.FAIL:
        assert [(e.status, (e.error or "").endswith("(retried once)")) for e in result.exchanges] == [
            (None, True),
            (200, False),
        ]


# -- a server that says it is unavailable ------------------------------------------------------------------------------


def unavailable_health(answer: Answer) -> None:
    answer.set_json({"error": "temporarily_unavailable"}, status=503)
    answer.set_header("retry-after", "5")


def test_a_503_with_retry_after_is_no_verdict_either_way(reference: FastAPI) -> None:
    def refused(ctx: Context) -> None:  # a check satisfied by any refusal: a 503 must not pass it
        if ctx.get("/health").status < 400:
            raise Failure("not refused", level=Level.MUST)

    def expects_200(ctx: Context) -> None:  # nor fail it
        if ctx.get("/health").status != 200:
            raise Failure("not 200", level=Level.MUST)

    app = rewrite(reference, on("GET", "/health", unavailable_health))
    results = run_synthetic(app, [synthetic("TEST-001", refused), synthetic("TEST-002", expects_200)])
    assert [r.status for r in results] == [Status.SKIP, Status.SKIP]
    assert all("unavailable (503, Retry-After 5)" in r.message for r in results)
    assert results[1].exchanges[-1].status == 503  # the evidence shows why


def test_a_503_without_retry_after_is_a_server_error(reference: FastAPI) -> None:
    def bare_503(answer: Answer) -> None:
        answer.status = 503

    def probe(ctx: Context) -> None:
        ctx.get("/health")

    [result] = run_synthetic(rewrite(reference, on("GET", "/health", bare_503)), [synthetic("TEST-001", probe)])
    assert result.status is Status.FAIL
    assert "503" in result.message


def test_a_security_failure_stands_even_when_the_server_said_it_was_unavailable(reference: FastAPI) -> None:
    def granted(ctx: Context) -> None:
        ctx.get("/health")
        raise Failure("a token was ISSUED for a wrong password", level=Level.MUST, security=True)

    app = rewrite(reference, on("GET", "/health", unavailable_health))
    [result] = run_synthetic(app, [synthetic("TEST-001", granted)])
    assert result.status is Status.FAIL


def test_an_unavailable_baseline_login_stops_the_run_with_the_way_out(reference: FastAPI) -> None:
    def unavailable_token(answer: Answer) -> None:
        answer.set_json({"error": "temporarily_unavailable"}, status=503)
        answer.set_header("retry-after", "30")

    with pytest.raises(BaselineLoginError, match=r"is unavailable \(503, Retry-After 30 s\): run again"):
        run_synthetic(rewrite(reference, on("POST", "/token", unavailable_token)), [])
