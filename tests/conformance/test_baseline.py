"""BASE-*: pass against the reference server; fail, each with its own ID, against a twin broken in that way."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from .harness import Answer, Status, explain, on, rewrite, run_checks


def test_baseline_passes_on_the_reference_server(reference: FastAPI) -> None:
    results = run_checks(reference, ["BASE"])
    assert {r.status for r in results.values()} == {Status.PASS}, explain(results)


def test_base_001_fails_when_users_me_leaks_the_password_hash(reference: FastAPI) -> None:
    def leak(answer: Answer) -> None:
        if answer.status == 200:
            answer.set_json({**answer.json(), "hashed_password": "$argon2id$..."})

    results = run_checks(rewrite(reference, on("GET", "/users/me", leak)), ["BASE"])
    assert results["BASE-001"].status is Status.FAIL, explain(results)
    assert "hashed_password" in results["BASE-001"].actual
    assert results["BASE-002"].status is Status.PASS


def test_base_002_fails_when_users_me_is_served_without_a_token(reference: FastAPI) -> None:
    def serve_anyone(answer: Answer) -> None:
        if answer.status == 401:
            answer.set_json({"username": "bob"}, status=200)

    results = run_checks(rewrite(reference, on("GET", "/users/me", serve_anyone)), ["BASE"])
    assert results["BASE-002"].status is Status.FAIL, explain(results)
    assert results["BASE-001"].status is Status.PASS


def after_first_success(status: int) -> Any:
    """/users/me serves the token once (BASE-001), then answers ``status`` to it (BASE-003 runs last)."""
    served: list[bool] = []

    def edit(answer: Answer) -> None:
        if answer.status == 200:
            if served:
                answer.set_json({"detail": "changed"}, status=status)
            served.append(True)

    return on("GET", "/users/me", edit)


def test_base_003_reports_a_token_refused_with_an_http_answer(reference: FastAPI) -> None:
    results = run_checks(rewrite(reference, after_first_success(401)), ["BASE"])
    assert {i: r.status for i, r in results.items()} == {
        "BASE-001": Status.PASS,
        "BASE-002": Status.PASS,
        "BASE-003": Status.INFO,
    }, explain(results)
    assert results["BASE-003"].message == (
        "the baseline token was refused at the end of the run (HTTP 401): token revoked or account locked by the "
        "last checks"
    )


def test_base_003_does_not_call_a_throttled_answer_a_revocation(reference: FastAPI) -> None:
    results = run_checks(rewrite(reference, after_first_success(429)), ["BASE"])
    assert results["BASE-003"].status is Status.INFO, explain(results)
    assert results["BASE-003"].message == (
        "the baseline token could not be re-checked at the end of the run (HTTP 429): not counted as a revocation"
    )
