"""BEARER-*: pass on the reference server; each fails with its own ID against a twin broken in its way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from conformance.model import Profile

from .harness import Answer, Status, explain, rewrite, run_checks
from .tutorial_app import tutorial_app

IDS = [f"BEARER-{n:03d}" for n in range(1, 15)]
Edit = Callable[[dict[str, Any], Answer], None]


def authorization(scope: dict[str, Any]) -> list[str]:
    return [v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"]


def cookies(scope: dict[str, Any]) -> str:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie"), "")


def me(edit: Edit) -> Edit:
    def chosen(scope: dict[str, Any], answer: Answer) -> None:
        if scope["method"] == "GET" and scope["path"] == "/users/me":
            edit(scope, answer)

    return chosen


def serve(answer: Answer) -> None:
    answer.set_json({"username": "bob", "email": None, "full_name": None, "disabled": False}, status=200)
    answer.set_header("www-authenticate", None)


def challenge(value: str | None) -> Callable[[Answer], None]:
    return lambda answer: answer.set_header("www-authenticate", value)


def if_(predicate: Callable[[dict[str, Any], Answer], bool], edit: Callable[[Answer], None]) -> Edit:
    def chosen(scope: dict[str, Any], answer: Answer) -> None:
        if predicate(scope, answer):
            edit(answer)

    return me(chosen)


NO_AUTH = lambda s, a: not authorization(s) and a.status == 401  # noqa: E731
BAD_TOKEN = lambda s, a: a.status == 401 and "invalid_token" in (a.header("www-authenticate") or "")  # noqa: E731

TWINS: dict[str, tuple[str, Edit, Status]] = {
    "no-challenge": ("BEARER-001", if_(NO_AUTH, challenge(None)), Status.FAIL),
    "basic-challenge": ("BEARER-001", if_(NO_AUTH, challenge('Basic realm="x"')), Status.FAIL),
    "error-without-credentials": (
        "BEARER-002",
        if_(NO_AUTH, challenge('Bearer realm="x", error="invalid_token"')),
        Status.WARN,
    ),
    "bare-bearer": ("BEARER-003", if_(lambda s, a: a.status == 401, challenge("Bearer")), Status.FAIL),
    "realm-twice": ("BEARER-003", if_(NO_AUTH, challenge('Bearer realm="a", realm="b"')), Status.FAIL),
    "unquoted-realm": ("BEARER-003", if_(NO_AUTH, challenge("Bearer realm=x")), Status.FAIL),
    "no-invalid-token": ("BEARER-004", if_(BAD_TOKEN, challenge('Bearer realm="x"')), Status.WARN),
    "basic-accepted": (
        "BEARER-005",
        if_(lambda s, a: authorization(s)[:1] == ["Basic Ym9iOnNlY3JldA=="], serve),
        Status.FAIL,
    ),
    "case-sensitive-scheme": (
        "BEARER-006",
        if_(lambda s, a: any(v.startswith("bearer ") for v in authorization(s)), lambda a: a.set_json({}, status=401)),
        Status.FAIL,
    ),
    "one-space-only": (
        "BEARER-007",
        if_(lambda s, a: any(v.startswith("Bearer  ") for v in authorization(s)), lambda a: a.set_json({}, status=401)),
        Status.FAIL,
    ),
    "tab-accepted": ("BEARER-008", if_(lambda s, a: any("\t" in v for v in authorization(s)), serve), Status.WARN),
    "junk-accepted": ("BEARER-009", if_(lambda s, a: authorization(s) == ["Bearer abc"], serve), Status.FAIL),
    "query-token-accepted": (
        "BEARER-010",
        if_(lambda s, a: not authorization(s) and b"access_token=" in s["query_string"], serve),
        Status.WARN,
    ),
    "two-methods-accepted": (
        "BEARER-011",
        if_(lambda s, a: bool(authorization(s)) and b"access_token=" in s["query_string"], serve),
        Status.WARN,
    ),
    "first-header-wins": (
        "BEARER-012",
        if_(lambda s, a: len(authorization(s)) == 2 and authorization(s)[1] == "Bearer garbage", serve),
        Status.WARN,
    ),
    "cookie-accepted": ("BEARER-013", if_(lambda s, a: "access_token=" in cookies(s), serve), Status.FAIL),
    "huge-header-500": (
        "BEARER-014",
        if_(lambda s, a: any(len(v) > 10_000 for v in authorization(s)), lambda a: a.set_json({}, status=500)),
        Status.FAIL,
    ),
}


def test_bearer_area_passes_on_the_reference_server(reference: FastAPI) -> None:
    results = run_checks(reference, ["BEARER"])
    assert {i: results[i].status for i in IDS} == dict.fromkeys(IDS, Status.PASS), explain(results)


@pytest.mark.parametrize(("check_id", "edit", "expected"), TWINS.values(), ids=TWINS.keys())
def test_each_check_fails_with_its_own_id_against_its_twin(
    reference: FastAPI, check_id: str, edit: Edit, expected: Status
) -> None:
    results = run_checks(rewrite(reference, edit), ["BEARER"])
    assert results[check_id].status is expected, explain(results)
    if expected is Status.WARN:
        assert run_checks(rewrite(reference, edit), [check_id], strict=True)[check_id].status is Status.FAIL
    others = [i for i in IDS if i != check_id and results[i].status in (Status.FAIL, Status.WARN)]
    assert not others or check_id in ("BEARER-003", "BEARER-001"), explain(results)


@pytest.mark.parametrize(("profile", "verdict"), [(Profile.RFC, Status.FAIL), (Profile.FASTAPI, Status.WARN)])
def test_the_tutorial_bare_challenge_is_the_dialect(profile: Profile, verdict: Status) -> None:
    results = run_checks(tutorial_app(), ["BEARER"], profile=profile)
    assert results["BEARER-003"].status is verdict, explain(results)
    assert results["BEARER-004"].status is Status.WARN  # no error="invalid_token": SHOULD in both profiles
    for right in ("BEARER-001", "BEARER-002", "BEARER-005", "BEARER-006", "BEARER-009", "BEARER-013", "BEARER-014"):
        assert results[right].status is Status.PASS, explain(results)


def test_bearer_007_is_the_dialect_when_two_spaces_are_refused(reference: FastAPI) -> None:
    edit = TWINS["one-space-only"][1]
    results = run_checks(rewrite(reference, edit), ["BEARER-007"], profile=Profile.FASTAPI)
    assert results["BEARER-007"].status is Status.WARN, explain(results)
