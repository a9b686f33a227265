"""RATE-*: brute-force protection, only with --allow-destructive and a throwaway account."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from conformance.config import Credentials
from reference_impl.models import UserInDB
from reference_impl.security import password_hash_for

from .harness import Answer, Status, explain, run_checks

THROWAWAY = Credentials("dave", "dave's throwaway password")


def with_throwaway(app: FastAPI) -> FastAPI:
    hashed = password_hash_for("fast").hash(THROWAWAY.password)
    app.state.reference.store.add(UserInDB(username=THROWAWAY.username, hashed_password=hashed))
    return app


def destructive(app: Any, **changes: Any) -> dict[str, Any]:
    return run_checks(app, ["RATE"], throwaway=THROWAWAY, allow_destructive=True, **changes)


def test_without_the_flag_the_rate_checks_skip_and_say_how_to_run(reference: FastAPI) -> None:
    results = run_checks(with_throwaway(reference), ["RATE"], throwaway=THROWAWAY)
    for check_id in ("RATE-001", "RATE-002"):
        assert results[check_id].status is Status.SKIP
        assert "--allow-destructive" in results[check_id].message


def test_the_reference_throttle_passes_both(make_reference: Any) -> None:
    app = with_throwaway(make_reference(login_max_failures=5, login_max_failures_per_client=1000))
    results = destructive(app)
    assert results["RATE-001"].status is Status.PASS, explain(results)
    assert "after 6 wrong passwords: 429" in results["RATE-001"].message
    assert results["RATE-002"].status is Status.PASS, explain(results)
    assert "Retry-After" in results["RATE-002"].message
    assert app.state.reference.throttle.retry_after("bob", "") == 0  # the primary account was never touched


def test_no_throttle_warns(reference: FastAPI) -> None:
    results = destructive(with_throwaway(reference))
    assert results["RATE-001"].status is Status.WARN, explain(results)
    assert results["RATE-002"].status is Status.SKIP
    assert destructive(reference, strict=True)["RATE-001"].status is Status.FAIL  # dave exists already


def test_a_lockout_without_an_end_is_noted(make_reference: Any) -> None:
    from .harness import rewrite

    app = with_throwaway(make_reference(login_max_failures=5, login_max_failures_per_client=1000))

    def locked(scope: dict[str, Any], answer: Answer) -> None:
        if scope["path"] == "/token" and answer.status == 429:
            answer.set_json({"error": "account_locked"}, status=423)
            answer.set_header("retry-after", None)

    results = destructive(rewrite(app, locked))
    assert results["RATE-001"].status is Status.PASS, explain(results)
    assert results["RATE-002"].status is Status.INFO
    assert "malicious lockout" in results["RATE-002"].message
