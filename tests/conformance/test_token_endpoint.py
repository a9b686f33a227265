"""TOKEN-*: pass on the reference server; each fails with its own ID against a twin broken in its way."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
from fastapi import FastAPI

from conformance.model import Profile

from .harness import PRIMARY, Answer, Status, explain, on, rewrite, run_checks
from .tutorial_app import tutorial_app

IDS = [f"TOKEN-{n:03d}" for n in range(1, 21)] + ["TOKEN-023"]
INVALID_REQUEST = {"error": "invalid_request"}
NOT_FOUND = {"detail": "Not Found"}
FAKE_TOKEN = {"access_token": "not-a-real-token", "token_type": "bearer", "expires_in": 900}

FormEdit = Callable[[dict[str, list[str]], bytes, dict[str, Any], Answer], None]


def form_rewrite(app: Any, edit: FormEdit) -> Any:
    """Like ``rewrite`` for POST /token, but ``edit`` also sees the request's form and raw body."""
    seen: dict[int, bytes] = {}

    def chosen(scope: dict[str, Any], answer: Answer) -> None:
        if scope["method"] == "POST" and scope["path"] == "/token":
            raw = seen.pop(id(scope), b"")
            try:
                form = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError:
                form = {}
            edit(form, raw, scope, answer)

    inner = rewrite(app, chosen)

    async def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await inner(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:  # the whole body first, even when the app would refuse without reading it
            message = await receive()
            chunks.append(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        seen[id(scope)] = b"".join(chunks)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": seen.get(id(scope), b""), "more_body": False}
            return await receive()

        await inner(scope, replay, send)

    return wrapper


def the_password(form: dict[str, list[str]]) -> str | None:
    values = form.get("password")
    return values[-1] if values else None


def test_token_area_passes_on_the_reference_server(reference: FastAPI) -> None:
    results = run_checks(reference, ["TOKEN"])
    expected = dict.fromkeys(IDS, Status.PASS) | {"TOKEN-023": Status.INFO}
    assert {i: results[i].status for i in IDS} == expected, explain(results)
    assert "413" in results["TOKEN-019"].message
    assert "RFC 9700" in results["TOKEN-023"].message


DIALECT = ["TOKEN-006", "TOKEN-007", "TOKEN-008", "TOKEN-009", "TOKEN-010", "TOKEN-011", "TOKEN-012", "TOKEN-013"]


@pytest.mark.parametrize(("profile", "dialect_verdict"), [(Profile.RFC, Status.FAIL), (Profile.FASTAPI, Status.WARN)])
def test_the_fastapi_tutorial_dialect_fails_under_rfc_and_warns_under_fastapi(
    profile: Profile, dialect_verdict: Status
) -> None:
    results = run_checks(tutorial_app(), ["TOKEN"], profile=profile)
    got = {i: results[i].status for i in IDS}
    assert {i: got[i] for i in DIALECT} == dict.fromkeys(DIALECT, dialect_verdict), explain(results)
    assert got["TOKEN-003"] is Status.FAIL  # no Cache-Control: no-store fails in every profile
    assert got["TOKEN-004"] is Status.WARN and got["TOKEN-005"] is Status.WARN and got["TOKEN-014"] is Status.WARN
    for right in (
        "TOKEN-001",
        "TOKEN-002",
        "TOKEN-015",
        "TOKEN-016",
        "TOKEN-017",
        "TOKEN-018",
        "TOKEN-019",
        "TOKEN-020",
    ):
        assert got[right] is Status.PASS, explain(results)


def test_the_tutorial_with_cache_headers_passes_token_003_and_004() -> None:
    results = run_checks(tutorial_app(cache_headers=True), ["TOKEN-003", "TOKEN-004"], profile=Profile.FASTAPI)
    assert results["TOKEN-003"].status is Status.PASS and results["TOKEN-004"].status is Status.PASS


def on_success(edit: Callable[[Answer], None]) -> FormEdit:
    def chosen(form: dict[str, list[str]], raw: bytes, scope: dict[str, Any], answer: Answer) -> None:
        if answer.status == 200:
            edit(answer)

    return chosen


def when(predicate: Callable[[dict[str, list[str]], bytes], bool], edit: Callable[[Answer], None]) -> FormEdit:
    def chosen(form: dict[str, list[str]], raw: bytes, scope: dict[str, Any], answer: Answer) -> None:
        if predicate(form, raw):
            edit(answer)

    return chosen


def status_json(status: int, body: Any) -> Callable[[Answer], None]:
    return lambda answer: answer.set_json(body, status=status)


def drop(header: str) -> Callable[[Answer], None]:
    return lambda answer: answer.set_header(header, None)


def with_body_member(name: str, value: Any) -> Callable[[Answer], None]:
    return lambda answer: answer.set_json({**answer.json(), name: value} if value is not None else {
        k: v for k, v in answer.json().items() if k != name
    })  # fmt: skip


WRONG = lambda form, raw: len(form.get("password", [])) == 1 and the_password(form) not in ("", PRIMARY.password)  # noqa: E731
FULL = lambda form: "username" in form and "password" in form  # noqa: E731
TWINS: dict[str, tuple[str, FormEdit, Status]] = {
    "login-422": ("TOKEN-001", on_success(status_json(422, {"detail": [{"msg": "field required"}]})), Status.FAIL),
    "login-no-token-type": ("TOKEN-001", on_success(with_body_member("token_type", "mac")), Status.FAIL),
    "text-plain": ("TOKEN-002", on_success(lambda a: a.set_header("content-type", "text/plain")), Status.FAIL),
    "no-cache-control": ("TOKEN-003", on_success(drop("cache-control")), Status.FAIL),
    "no-pragma": ("TOKEN-004", on_success(drop("pragma")), Status.WARN),
    "no-expires-in": ("TOKEN-005", on_success(with_body_member("expires_in", None)), Status.WARN),
    "expires-in-disagrees": ("TOKEN-005", on_success(with_body_member("expires_in", 60)), Status.WARN),
    "expires-in-absurd": ("TOKEN-005", on_success(with_body_member("expires_in", 10**9)), Status.FAIL),
    "wrong-password-401": (
        "TOKEN-006",
        when(lambda f, r: f.get("username") == [PRIMARY.username] and WRONG(f, r), status_json(401, {"detail": "no"})),
        Status.FAIL,
    ),
    "unknown-user-404": (
        "TOKEN-007",
        when(lambda f, r: f.get("username", [""])[0].startswith("no-such-user"), status_json(404, {"error": "x"})),
        Status.FAIL,
    ),
    "error-description-charset": (
        "TOKEN-008",
        when(WRONG, status_json(400, {"error": "invalid_grant", "error_description": 'bad "quote" \\ here'})),
        Status.FAIL,
    ),
    "missing-password-422": (
        "TOKEN-009",
        when(lambda f, r: "password" not in f, status_json(422, {"detail": [{"msg": "field required"}]})),
        Status.FAIL,
    ),
    "missing-username-invalid-grant": (
        "TOKEN-010",
        when(lambda f, r: "username" not in f and "password" in f, status_json(400, {"error": "invalid_grant"})),
        Status.FAIL,
    ),
    "no-grant-type-gets-token": (
        "TOKEN-011",
        when(lambda f, r: "grant_type" not in f and FULL(f), status_json(200, FAKE_TOKEN)),
        Status.FAIL,
    ),
    "client-credentials-invalid-request": (
        "TOKEN-012",
        when(
            lambda f, r: f.get("grant_type") == ["client_credentials"], status_json(400, {"error": "invalid_request"})
        ),
        Status.FAIL,
    ),
    "empty-password-invalid-grant": (
        "TOKEN-013",
        when(lambda f, r: f.get("password") == [""], status_json(400, {"error": "invalid_grant"})),
        Status.FAIL,
    ),
    "repeated-password-last-wins": (
        "TOKEN-014",
        when(lambda f, r: r.count(b"password=") > 1, status_json(200, FAKE_TOKEN)),
        Status.WARN,
    ),
    "unknown-parameter-refused": (
        "TOKEN-015",
        when(lambda f, r: "foo" in f, status_json(400, {"error": "invalid_request"})),
        Status.FAIL,
    ),
    "json-body-404": (
        "TOKEN-018",
        when(lambda f, r: r.startswith(b"{"), status_json(404, {"error": "x"})),
        Status.WARN,
    ),
    "bad-escape-200": ("TOKEN-019", when(lambda f, r: b"%zz" in r, status_json(200, FAKE_TOKEN)), Status.FAIL),
    "near-miss-password-accepted": (
        "TOKEN-020",
        when(lambda f, r: the_password(f) == PRIMARY.password.swapcase(), status_json(200, FAKE_TOKEN)),
        Status.FAIL,
    ),
}


# Defects that rightly break a second rule too (the same wrong answer is seen by both checks).
ALSO_BROKEN = {
    "wrong-password-401": {"TOKEN-008", "TOKEN-013"},
    "error-description-charset": {"TOKEN-006"},
    "missing-password-422": {"TOKEN-008"},
}


@pytest.mark.parametrize(("check_id", "edit", "expected"), TWINS.values(), ids=TWINS.keys())
def test_each_check_fails_with_its_own_id_against_its_twin(
    request: pytest.FixtureRequest, reference: FastAPI, check_id: str, edit: FormEdit, expected: Status
) -> None:
    results = run_checks(form_rewrite(reference, edit), ["TOKEN"])
    assert results[check_id].status is expected, explain(results)
    if expected is Status.WARN:
        strict = run_checks(form_rewrite(reference, edit), [check_id], strict=True)
        assert strict[check_id].status is Status.FAIL
    also = ALSO_BROKEN.get(request.node.callspec.id, set())
    others = {
        i: r.status
        for i, r in results.items()
        if i != check_id and i not in also and r.status in (Status.FAIL, Status.WARN)
    }
    if check_id != "TOKEN-001":  # without a token, TOKEN-002..005 skip rather than fail
        assert not others, explain(results)


def test_token_006_fails_in_every_profile_when_a_wrong_password_gets_a_token(reference: FastAPI) -> None:
    twin = form_rewrite(reference, when(WRONG, status_json(200, FAKE_TOKEN)))
    results = run_checks(twin, ["TOKEN-006"], profile=Profile.FASTAPI)
    assert results["TOKEN-006"].status is Status.FAIL, explain(results)
    assert "ISSUED" in results["TOKEN-006"].message


def test_token_001_is_reported_even_when_not_selected(reference: FastAPI) -> None:
    twin = form_rewrite(reference, on_success(status_json(500, {"oops": True})))
    results = run_checks(twin, ["BASE-001"])
    assert results["TOKEN-001"].status is Status.FAIL, explain(results)
    assert results["BASE-001"].status is Status.SKIP


def test_token_016_fails_when_get_is_not_405_with_allow(reference: FastAPI) -> None:
    def no_allow(answer: Answer) -> None:
        answer.set_header("allow", None)

    results = run_checks(rewrite(reference, on("GET", "/token", no_allow)), ["TOKEN-016"])
    assert results["TOKEN-016"].status is Status.FAIL, explain(results)
    processed = rewrite(reference, on("GET", "/token", status_json(400, {"error": "invalid_grant"})))
    assert run_checks(processed, ["TOKEN-016"])["TOKEN-016"].status is Status.FAIL


def test_token_017_warns_when_credentials_in_the_uri_are_checked(reference: FastAPI) -> None:
    def checks_query(form: dict[str, list[str]], raw: bytes, scope: dict[str, Any], answer: Answer) -> None:
        if b"username=" in scope["query_string"]:
            answer.set_json({"error": "invalid_grant"}, status=400)

    results = run_checks(form_rewrite(reference, checks_query), ["TOKEN-017"])
    assert results["TOKEN-017"].status is Status.WARN, explain(results)


def test_token_018_is_info_when_a_json_body_gets_a_token(reference: FastAPI) -> None:
    twin = form_rewrite(reference, when(lambda f, r: r.startswith(b"{"), status_json(200, FAKE_TOKEN)))
    results = run_checks(twin, ["TOKEN-018"])
    assert results["TOKEN-018"].status is Status.INFO, explain(results)


def test_token_019_fails_on_a_server_error_for_a_malformed_form(reference: FastAPI) -> None:
    twin = form_rewrite(reference, when(lambda f, r: b"\xff" in r, status_json(500, {"detail": "boom"})))
    results = run_checks(twin, ["TOKEN-019"])
    assert results["TOKEN-019"].status is Status.FAIL, explain(results)


def test_token_023_skips_without_a_token(reference: FastAPI) -> None:
    twin = form_rewrite(reference, on_success(status_json(200, {"token_type": "bearer"})))
    results = run_checks(twin, ["TOKEN-023"])
    assert results["TOKEN-023"].status is Status.SKIP
    assert "TOKEN-001" in results["TOKEN-023"].message


def test_error_evidence_never_shows_the_password(reference: FastAPI) -> None:
    twin = form_rewrite(reference, when(WRONG, status_json(401, {"detail": "no"})))
    results = run_checks(twin, ["TOKEN"])
    dumped = json.dumps([r.to_dict() for r in results.values()])
    assert PRIMARY.password not in dumped and PRIMARY.password.replace(" ", "+") not in dumped


def test_token_017_does_not_blame_a_server_that_answers_401_to_every_bad_request(reference: FastAPI) -> None:
    def always_401(form: dict[str, list[str]], raw: bytes, scope: dict[str, Any], answer: Answer) -> None:
        if answer.status == 400:
            answer.set_json({"detail": "Incorrect username or password"}, status=401)

    results = run_checks(form_rewrite(reference, always_401), ["TOKEN-017"], profile=Profile.FASTAPI)
    assert results["TOKEN-017"].status is Status.PASS, explain(results)


def test_throttled_refusals_are_skipped_with_the_way_out_never_passed(reference: FastAPI) -> None:
    def throttle(form: dict[str, list[str]], raw: bytes, scope: dict[str, Any], answer: Answer) -> None:
        if answer.status == 400:  # every refused request, from the first failed login on
            answer.set_json({"error": "invalid_request", "error_description": "slow down"}, status=429)
            answer.set_header("retry-after", "60")

    results = run_checks(form_rewrite(reference, throttle), ["TOKEN"])
    for refused in ("TOKEN-006", "TOKEN-017", "TOKEN-019", "TOKEN-020"):
        assert results[refused].status is Status.SKIP, explain(results)
        assert "429, Retry-After 60" in results[refused].message and "run again" in results[refused].message
    assert results["TOKEN-001"].status is Status.PASS and results["TOKEN-015"].status is Status.PASS
