"""TOKEN-*: pass on the reference server; each fails with its own ID against a twin broken in its way."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
from fastapi import FastAPI

from conformance.model import Profile, Result
from conformance.registry import all_checks

from .harness import DISABLED, PRIMARY, SECOND, Answer, Status, explain, rewrite, run_checks
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


def non_passing(results: dict[str, Result]) -> dict[str, Status]:
    """Every verdict but pass, by ID: what a twin test asserts exactly."""
    return {i: r.status for i, r in results.items() if r.status is not Status.PASS}


RFC_AND_FASTAPI = [Profile.RFC, Profile.FASTAPI]


def test_token_area_passes_on_the_reference_server(reference: FastAPI) -> None:
    results = run_checks(reference, ["TOKEN"])
    expected = dict.fromkeys(IDS, Status.PASS) | {"TOKEN-023": Status.INFO}
    assert {i: results[i].status for i in IDS} == expected, explain(results)
    assert "413" in results["TOKEN-019"].message
    assert "RFC 9700" in results["TOKEN-023"].message
    assert results["TOKEN-008"].message == "6 error answers, each an RFC 6749 §5.2 body"
    assert results["TOKEN-016"].message == "405, Allow: POST"


# What the FastAPI tutorial gets wrong, each once: 401 {"detail"} for wrong credentials (TOKEN-006/007:
# the status), 422 for malformed forms (TOKEN-009/010/012/013: the status), {"detail"} bodies
# (TOKEN-008, once for all of them), grant_type optional (TOKEN-011), no Cache-Control (TOKEN-003,
# in every profile), no Pragma, no expires_in, the last repeated password wins (SHOULDs).
TUTORIAL_DIALECT = [
    "TOKEN-006",
    "TOKEN-007",
    "TOKEN-008",
    "TOKEN-009",
    "TOKEN-010",
    "TOKEN-011",
    "TOKEN-012",
    "TOKEN-013",
]
TUTORIAL_SHOULDS = {"TOKEN-004": Status.WARN, "TOKEN-005": Status.WARN, "TOKEN-014": Status.WARN}


@pytest.mark.parametrize(("profile", "dialect_verdict"), [(Profile.RFC, Status.FAIL), (Profile.FASTAPI, Status.WARN)])
def test_the_fastapi_tutorial_dialect_fails_under_rfc_and_warns_under_fastapi(
    profile: Profile, dialect_verdict: Status
) -> None:
    results = run_checks(tutorial_app(), ["TOKEN"], profile=profile)
    expected = (
        dict.fromkeys(TUTORIAL_DIALECT, dialect_verdict)
        | TUTORIAL_SHOULDS
        | {"TOKEN-003": Status.FAIL, "TOKEN-022": Status.SKIP, "TOKEN-023": Status.INFO, "TOKEN-024": Status.SKIP}
    )
    assert non_passing(results) == expected, explain(results)
    assert results["TOKEN-008"].message.startswith("6 of 6 error answers are not RFC 6749 §5.2 bodies: ")
    assert "a wrong password (401): no string 'error' member" in results["TOKEN-008"].message
    assert results["TOKEN-006"].message == "a wrong password: answered 401"


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


def status_text(status: int, text: str) -> Callable[[Answer], None]:
    def edit(answer: Answer) -> None:
        answer.status, answer.body = status, text.encode()
        answer.set_header("content-type", "text/plain")

    return edit


def drop(header: str) -> Callable[[Answer], None]:
    return lambda answer: answer.set_header(header, None)


def with_body_member(name: str, value: Any) -> Callable[[Answer], None]:
    return lambda answer: answer.set_json({**answer.json(), name: value} if value is not None else {
        k: v for k, v in answer.json().items() if k != name
    })  # fmt: skip


KNOWN_PASSWORDS = ("", PRIMARY.password, SECOND.password, DISABLED.password)
WRONG = lambda form, raw: len(form.get("password", [])) == 1 and the_password(form) not in KNOWN_PASSWORDS  # noqa: E731
WRONG_FOR_PRIMARY = lambda form, raw: form.get("username") == [PRIMARY.username] and WRONG(form, raw)  # noqa: E731
UNKNOWN_USER = lambda form, raw: form.get("username", [""])[0].startswith("no-such-user")  # noqa: E731
MALFORMED = lambda form, raw: "username" not in form or form.get("password", [""]) == [""]  # noqa: E731
FULL = lambda form: "username" in form and "password" in form  # noqa: E731
DETAIL = {"detail": "Incorrect username or password"}
VALIDATION = {"detail": [{"type": "missing", "loc": ["body", "password"], "msg": "Field required"}]}
F, W, S, I = Status.FAIL, Status.WARN, Status.SKIP, Status.INFO  # noqa: E741
NO_TOKEN = {"TOKEN-002": S, "TOKEN-003": S, "TOKEN-004": S, "TOKEN-005": S, "TOKEN-023": S, "TOKEN-024": S}


Verdicts = dict[str, Status]


def both(edit: FormEdit, rfc: Verdicts, fastapi: Verdicts | None = None) -> tuple[FormEdit, Verdicts, Verdicts]:
    """A twin and its exact verdicts (besides pass) under --profile rfc and under --profile fastapi (as rfc
    unless given); TOKEN-023's info on the password grant is in both unless the login failed."""
    info = {"TOKEN-023": I}
    return edit, info | rfc, info | (rfc if fastapi is None else fastapi)


# Each twin: the reference app with one defect at POST /token, and every verdict but pass that it gets
# under each profile (the fastapi column is the rfc one where it is not given).
TWINS: dict[str, tuple[FormEdit, Verdicts, Verdicts]] = {
    # The login refused: TOKEN-001 fails; TOKEN-015's valid login (plus foo=bar) is refused too.
    "login-422": both(on_success(status_json(422, VALIDATION)), {"TOKEN-001": F, "TOKEN-015": F} | NO_TOKEN),
    "login-no-token-type": both(on_success(with_body_member("token_type", "mac")), {"TOKEN-001": F}),
    "text-plain": both(on_success(lambda a: a.set_header("content-type", "text/plain")), {"TOKEN-002": F}),
    "no-cache-control": both(on_success(drop("cache-control")), {"TOKEN-003": F}),
    "no-pragma": both(on_success(drop("pragma")), {"TOKEN-004": W}),
    "no-expires-in": both(on_success(with_body_member("expires_in", None)), {"TOKEN-005": W}),
    "expires-in-disagrees": both(on_success(with_body_member("expires_in", 60)), {"TOKEN-005": W}),
    "expires-in-absurd": both(on_success(with_body_member("expires_in", 10**9)), {"TOKEN-005": F}),
    # The tutorial's refusal for the primary user only: the status (TOKEN-006) and the body (TOKEN-008).
    "wrong-password-401-detail": both(
        when(WRONG_FOR_PRIMARY, status_json(401, DETAIL)),
        {"TOKEN-006": F, "TOKEN-008": F},
        {"TOKEN-006": W, "TOKEN-008": W},
    ),
    # The ecosystem's 400 {"detail"}: the status is right, the body is TOKEN-008's alone.
    "wrong-credentials-400-detail": both(when(WRONG, status_json(400, DETAIL)), {"TOKEN-008": F}, {"TOKEN-008": W}),
    # RFC errors for missing parameters, the tutorial's 401 {"detail"} for wrong credentials: each
    # answer is judged on its own, so nothing fails under --profile fastapi.
    "mixed-rfc-and-detail": both(
        when(WRONG, status_json(401, DETAIL)),
        {"TOKEN-006": F, "TOKEN-007": F, "TOKEN-008": F},
        {"TOKEN-006": W, "TOKEN-007": W, "TOKEN-008": W},
    ),
    # FastAPI's 422 for every malformed form: the statuses (TOKEN-009/010/013) and the bodies (TOKEN-008).
    "malformed-forms-422": both(
        when(MALFORMED, status_json(422, VALIDATION)),
        {"TOKEN-008": F, "TOKEN-009": F, "TOKEN-010": F, "TOKEN-013": F},
        {"TOKEN-008": W, "TOKEN-009": W, "TOKEN-010": W, "TOKEN-013": W},
    ),
    # A 401 with an RFC body is not the FastAPI dialect: the status fails in every profile.
    "wrong-password-401-invalid-grant": both(
        when(WRONG_FOR_PRIMARY, status_json(401, {"error": "invalid_grant"})), {"TOKEN-006": F}
    ),
    "wrong-password-invalid-request": both(
        when(WRONG_FOR_PRIMARY, status_json(400, INVALID_REQUEST)), {"TOKEN-006": F}
    ),
    "unknown-user-404": both(when(UNKNOWN_USER, status_json(404, {"error": "x"})), {"TOKEN-007": F}),
    "error-description-charset": both(
        when(WRONG, status_json(400, {"error": "invalid_grant", "error_description": 'bad "quote" \\ here'})),
        {"TOKEN-008": F},
    ),
    # A non-JSON body is no dialect: TOKEN-008 fails under both profiles, whatever the others answer.
    "missing-password-text": both(
        when(lambda f, r: "password" not in f, status_text(400, "bad request")), {"TOKEN-008": F}
    ),
    "missing-password-422": both(
        when(lambda f, r: "password" not in f, status_json(422, VALIDATION)),
        {"TOKEN-008": F, "TOKEN-009": F},
        {"TOKEN-008": W, "TOKEN-009": W},
    ),
    "missing-password-gets-token": both(
        when(lambda f, r: "password" not in f and "username" in f, status_json(200, FAKE_TOKEN)), {"TOKEN-009": F}
    ),
    "missing-username-invalid-grant": both(
        when(lambda f, r: "username" not in f and "password" in f, status_json(400, {"error": "invalid_grant"})),
        {"TOKEN-010": F},
    ),
    "no-grant-type-gets-token": both(
        when(lambda f, r: "grant_type" not in f and FULL(f), status_json(200, FAKE_TOKEN)),
        {"TOKEN-011": F},
        {"TOKEN-011": W},
    ),
    "client-credentials-invalid-request": both(
        when(lambda f, r: f.get("grant_type") == ["client_credentials"], status_json(400, INVALID_REQUEST)),
        {"TOKEN-012": F},
    ),
    "empty-password-invalid-grant": both(
        when(lambda f, r: f.get("password") == [""], status_json(400, {"error": "invalid_grant"})), {"TOKEN-013": F}
    ),
    "repeated-password-last-wins": both(
        when(lambda f, r: r.count(b"password=") > 1, status_json(200, FAKE_TOKEN)), {"TOKEN-014": W}
    ),
    "unknown-parameter-refused": both(
        when(lambda f, r: "foo" in f, status_json(400, INVALID_REQUEST)), {"TOKEN-015": F}
    ),
    "json-body-404": both(when(lambda f, r: r.startswith(b"{"), status_json(404, {"error": "x"})), {"TOKEN-018": W}),
    "bad-escape-200": both(when(lambda f, r: b"%zz" in r, status_json(200, FAKE_TOKEN)), {"TOKEN-019": F}),
    "near-miss-password-accepted": both(
        when(lambda f, r: the_password(f) == PRIMARY.password.swapcase(), status_json(200, FAKE_TOKEN)),
        {"TOKEN-020": F},
    ),
}
CASES = [
    pytest.param(edit, profile, fastapi if profile is Profile.FASTAPI else rfc, id=f"{name}-{profile}")
    for name, (edit, rfc, fastapi) in TWINS.items()
    for profile in RFC_AND_FASTAPI
]


@pytest.mark.parametrize(("edit", "profile", "expected"), CASES)
def test_each_twin_gets_exactly_its_verdicts_under_each_profile(
    reference: FastAPI, edit: FormEdit, profile: Profile, expected: dict[str, Status]
) -> None:
    results = run_checks(form_rewrite(reference, edit), ["TOKEN"], profile=profile)
    assert non_passing(results) == expected, explain(results)
    if Status.WARN in expected.values():
        strict = run_checks(form_rewrite(reference, edit), ["TOKEN"], profile=profile, strict=True)
        assert non_passing(strict) == {i: F if s is W else s for i, s in expected.items()}, explain(strict)


def test_token_008_fails_under_fastapi_when_one_departing_answer_is_not_the_dialect(reference: FastAPI) -> None:
    def two_dialects(form: dict[str, list[str]], raw: bytes, scope: dict[str, Any], answer: Answer) -> None:
        if WRONG(form, raw):
            answer.set_json(DETAIL, status=400)  # the FastAPI ecosystem's refusal: a warning
        elif "password" not in form and "username" in form:
            status_text(400, "password missing")(answer)  # no dialect at all: a failure

    results = run_checks(form_rewrite(reference, two_dialects), ["TOKEN"], profile=Profile.FASTAPI)
    assert non_passing(results) == {"TOKEN-008": F, "TOKEN-023": I}, explain(results)
    message = results["TOKEN-008"].message
    assert message.startswith("3 of 6 error answers are not RFC 6749 §5.2 bodies: "), message
    assert "a missing password (400): Content-Type text/plain, no string 'error' member" in message
    assert "a wrong password (400): no string 'error' member" in message
    assert (results["TOKEN-008"].actual or "").startswith("a missing password: HTTP 400 password missing")


def test_token_012_accepts_invalid_client_when_client_credentials_need_client_authentication(
    reference: FastAPI,
) -> None:
    invalid_client = {"error": "invalid_client", "error_description": "Client authentication failed"}
    edit = when(lambda f, r: f.get("grant_type") == ["client_credentials"], status_json(401, invalid_client))
    results = run_checks(form_rewrite(reference, edit), ["TOKEN-012"])
    assert results["TOKEN-012"].status is Status.PASS, explain(results)
    assert results["TOKEN-012"].message == "client_credentials: 401 invalid_client (client authentication required)"


def refused_logins_as_401_detail(form: dict[str, list[str]], raw: bytes, scope: dict[str, Any], answer: Answer) -> None:
    """Every refused password grant (wrong password, unknown or disabled user) answered like FastAPI's tutorial."""
    if (
        form.get("grant_type") == ["password"]
        and answer.status == 400
        and answer.json().get("error") == "invalid_grant"
    ):
        answer.set_json(DETAIL, status=401)


@pytest.mark.parametrize(
    ("profile", "verdict"), [(Profile.RFC, Status.FAIL), (Profile.FASTAPI, Status.WARN)], ids=["rfc", "fastapi"]
)
def test_a_server_mixing_rfc_errors_and_detail_bodies_is_judged_answer_by_answer(
    reference: FastAPI, profile: Profile, verdict: Status
) -> None:
    """RFC errors for malformed requests, 401 {"detail"} for refused logins: over the whole suite only the
    status (TOKEN-006/007) and the body (TOKEN-008) depart, and under --profile fastapi nothing fails.
    (PROT-003 judges the disabled user's refusal by a rule of its own and is left out.)"""
    everything = [c.id for c in all_checks() if c.id != "PROT-003"]
    results = run_checks(form_rewrite(reference, refused_logins_as_401_detail), everything, profile=profile)
    departures = {i: s for i, s in non_passing(results).items() if s in (Status.FAIL, Status.WARN)}
    assert departures == dict.fromkeys(("TOKEN-006", "TOKEN-007", "TOKEN-008"), verdict), explain(results)


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


def get_token_answers(edit: Callable[[dict[str, Any], Answer], None]) -> Callable[[Any], Any]:
    """A twin whose ``GET /token`` answers are changed by ``edit(scope, answer)``."""

    def chosen(scope: dict[str, Any], answer: Answer) -> None:
        if scope["method"] == "GET" and scope["path"] == "/token":
            edit(scope, answer)

    return lambda app: rewrite(app, chosen)


def with_credentials(scope: dict[str, Any]) -> bool:
    return b"username=" in scope["query_string"]


GET_TWINS = {
    # No GET route at all: nothing processed, and a 404 owes no Allow.
    "404-no-route": (lambda s, a: a.set_json(NOT_FOUND, status=404), Status.PASS, "404 and no token"),
    "405-without-allow": (lambda s, a: a.set_header("allow", None), Status.FAIL, "answered 405 without Allow"),
    "400-invalid-grant": (
        lambda s, a: a.set_json({"error": "invalid_grant"}, status=400),
        Status.FAIL,
        "with credentials in the query was processed (400)",
    ),
    "token-issued": (
        lambda s, a: a.set_json(FAKE_TOKEN, status=200),
        Status.FAIL,
        "with a WRONG password in the query was granted a token",
    ),
    # 401 only when credentials are in the query: they were checked.
    "401-for-the-credentials": (
        lambda s, a: a.set_json(DETAIL, status=401) if with_credentials(s) else None,
        Status.FAIL,
        "with credentials in the query was processed (401)",
    ),
    # 401 to every GET (a bearer token demanded everywhere): the credentials were not read.
    "401-for-every-get": (lambda s, a: a.set_json({"detail": "Not authenticated"}, status=401), Status.PASS, "401 and"),
}


@pytest.mark.parametrize("profile", RFC_AND_FASTAPI)
@pytest.mark.parametrize(("edit", "expected", "message"), GET_TWINS.values(), ids=GET_TWINS.keys())
def test_token_016_judges_get_on_the_token_endpoint(
    reference: FastAPI,
    edit: Callable[[dict[str, Any], Answer], None],
    expected: Status,
    message: str,
    profile: Profile,
) -> None:
    results = run_checks(get_token_answers(edit)(reference), ["TOKEN-016"], profile=profile)
    assert results["TOKEN-016"].status is expected, explain(results)
    assert message in results["TOKEN-016"].message


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
