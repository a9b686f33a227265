"""BASE-*: pass against the reference server; fail, each with its own ID, against a twin broken in that way."""

from __future__ import annotations

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
