"""BEARER-*: pass on the reference server; each fails with its own ID against a twin broken in its way."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conformance.client import Client
from conformance.config import Keys
from conformance.contract import load_contract
from conformance.model import Profile, Result
from conformance.registry import all_checks, select
from conformance.runner import run

from .harness import BASE_URL, PRIMARY, Answer, Status, config_for, explain, rewrite, run_checks
from .tutorial_app import tutorial_app

IDS = [f"BEARER-{n:03d}" for n in range(1, 15)]
Scope = MutableMapping[str, Any]
Edit = Callable[[Scope, Answer], None]
Predicate = Callable[[Scope, Answer], bool]


def authorization(scope: Scope) -> list[str]:
    return [v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"]


def cookie(scope: Scope) -> str:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie"), "")


def claims_of(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        value = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def when(predicate: Predicate, edit: Callable[[Answer], None]) -> Edit:
    """Apply ``edit`` to the answers of GET /users/me that ``predicate`` picks."""

    def chosen(scope: Scope, answer: Answer) -> None:
        if scope["method"] == "GET" and scope["path"] == "/users/me" and predicate(scope, answer):
            edit(answer)

    return chosen


def serve(username: str = PRIMARY.username) -> Callable[[Answer], None]:
    """Turn the answer into a 2xx for ``username``: the server 'accepted' the request."""

    def edit(answer: Answer) -> None:
        answer.set_json({"username": username, "email": None, "full_name": None, "disabled": False}, status=200)
        answer.set_header("www-authenticate", None)

    return edit


def challenge(value: str | None, status: int | None = None) -> Callable[[Answer], None]:
    def edit(answer: Answer) -> None:
        answer.set_header("www-authenticate", value)
        if status is not None:
            answer.status = status

    return edit


def status(code: int) -> Callable[[Answer], None]:
    return lambda answer: answer.set_json({"detail": "changed"}, status=code)


def no_credentials(scope: Scope, answer: Answer) -> bool:
    return not authorization(scope) and answer.status == 401


def invalid_token(scope: Scope, answer: Answer) -> bool:
    return answer.status == 401 and 'error="invalid_token"' in (answer.header("www-authenticate") or "")


def sent(value: Callable[[str], bool]) -> Predicate:
    return lambda scope, answer: any(value(v) for v in authorization(scope))


def first_valid_of_two(scope: Scope, answer: Answer) -> None:
    """Two Authorization fields: the first one holding a JWT counts (either order gives a 2xx)."""
    if scope["path"] != "/users/me" or len(authorization(scope)) != 2:
        return
    tokens = [v.split(" ", 1)[-1] for v in authorization(scope) if v.count(".") == 2]
    if tokens:
        serve(str(claims_of(tokens[0]).get("sub")))(answer)


# twin: (the ID it breaks, the edit, the verdict in the rfc profile, other IDs it may move)
TWINS: dict[str, tuple[str, Edit, Status, set[str]]] = {
    "no-challenge": ("BEARER-001", when(no_credentials, challenge(None)), Status.FAIL, set()),
    "basic-challenge": ("BEARER-001", when(no_credentials, challenge('Basic realm="api"')), Status.FAIL, set()),
    "error-without-credentials": (
        "BEARER-002",
        when(no_credentials, challenge('Bearer realm="api", error="invalid_token"')),
        Status.WARN,
        set(),
    ),
    "bare-bearer": (
        "BEARER-003",
        when(lambda s, a: a.status == 401, challenge("Bearer")),
        Status.FAIL,
        {"BEARER-004"},  # no error="invalid_token" either
    ),
    "realm-twice": ("BEARER-003", when(no_credentials, challenge('Bearer realm="a", realm="b"')), Status.FAIL, set()),
    "unquoted-realm": ("BEARER-003", when(no_credentials, challenge("Bearer realm=api")), Status.FAIL, set()),
    "description-outside-charset": (
        "BEARER-003",
        when(invalid_token, challenge(r'Bearer realm="api", error="invalid_token", error_description="bad \"token\""')),
        Status.FAIL,
        set(),
    ),
    "challenge-syntax": (
        "BEARER-003",
        when(invalid_token, challenge('Bearer realm="api" error="invalid_token"')),
        Status.FAIL,
        {"BEARER-004"},  # the malformed challenge does not say invalid_token to a parser either
    ),
    "no-invalid-token": ("BEARER-004", when(invalid_token, challenge('Bearer realm="api"')), Status.WARN, set()),
    "forged-token-accepted": (
        "BEARER-004",
        when(invalid_token, serve()),
        Status.FAIL,
        {"BEARER-009", "BEARER-014"},  # they send invalid tokens too
    ),
    "basic-accepted": ("BEARER-005", when(sent(lambda v: v.startswith("Basic ")), serve()), Status.FAIL, set()),
    "jwt-scheme-400": ("BEARER-005", when(sent(lambda v: v.startswith("JWT ")), status(400)), Status.FAIL, set()),
    "error-for-unsupported-scheme": (
        "BEARER-005",
        when(sent(lambda v: v.startswith("Token ")), challenge('Bearer realm="api", error="invalid_request"')),
        Status.WARN,
        set(),
    ),
    "case-sensitive-scheme": (
        "BEARER-006",
        when(sent(lambda v: v.startswith("bearer ")), challenge('Bearer realm="api"', status=401)),
        Status.FAIL,
        set(),
    ),
    "one-space-only": (
        "BEARER-007",
        when(sent(lambda v: v.startswith("Bearer  ")), challenge('Bearer realm="api"', status=401)),
        Status.FAIL,
        set(),
    ),
    "tab-accepted": ("BEARER-008", when(sent(lambda v: "\t" in v), serve()), Status.WARN, set()),
    "quoted-token-accepted": ("BEARER-008", when(sent(lambda v: '"' in v), serve()), Status.WARN, set()),
    "comma-422": ("BEARER-008", when(sent(lambda v: "," in v), status(422)), Status.WARN, set()),
    "junk-accepted": ("BEARER-009", when(sent(lambda v: v == "Bearer abc"), serve()), Status.FAIL, set()),
    "empty-token-403": ("BEARER-009", when(sent(lambda v: v == "Bearer"), status(403)), Status.WARN, set()),
    "400-without-invalid-request": (
        "BEARER-009",
        when(sent(lambda v: v == "Bearer"), challenge('Bearer realm="api"', status=400)),
        Status.WARN,
        set(),
    ),
    "query-token-accepted": (
        "BEARER-010",
        when(lambda s, a: not authorization(s) and b"access_token=" in s["query_string"], serve()),
        Status.WARN,
        set(),
    ),
    "two-methods-accepted": (
        "BEARER-011",
        when(lambda s, a: bool(authorization(s)) and b"access_token=" in s["query_string"], serve()),
        Status.WARN,
        set(),
    ),
    "two-methods-401": (
        "BEARER-011",
        when(lambda s, a: b"access_token=" in s["query_string"], challenge('Bearer realm="api"', status=401)),
        Status.WARN,
        set(),
    ),
    "first-header-wins": (
        "BEARER-012",
        when(lambda s, a: len(authorization(s)) == 2 and authorization(s)[1] == "Bearer garbage", serve()),
        Status.WARN,
        set(),
    ),
    "first-valid-header-wins": ("BEARER-012", first_valid_of_two, Status.WARN, set()),
    "cookie-accepted": (
        "BEARER-013",
        when(lambda s, a: "access_token=" in cookie(s), serve()),
        Status.INFO,  # RFC 6750 §5.3 is a security consideration: the catalog reports it as INFO
        set(),
    ),
    "huge-header-500": ("BEARER-014", when(sent(lambda v: len(v) > 10_000), status(500)), Status.FAIL, set()),
    "huge-header-accepted": ("BEARER-014", when(sent(lambda v: len(v) > 10_000), serve()), Status.FAIL, set()),
    "huge-header-403": ("BEARER-014", when(sent(lambda v: len(v) > 10_000), status(403)), Status.WARN, set()),
}


def test_bearer_area_passes_on_the_reference_server(reference: FastAPI) -> None:
    results = run_checks(reference, ["BEARER"])
    expected = dict.fromkeys(IDS, Status.PASS)
    # In-process, the trailing space reaches the app (a real HTTP parser strips it): the reference
    # refuses it, which the catalog reports as INFO.
    expected["BEARER-008"] = Status.INFO
    assert {i: results[i].status for i in IDS} == expected, explain(results)
    assert "trailing space" in results["BEARER-008"].message
    assert "signing key" in results["BEARER-004"].message  # only the forged token without a key


def test_bearer_004_also_sends_an_expired_token_when_the_key_is_known(reference: FastAPI) -> None:
    keys = Keys(hs_secret=reference.state.reference.settings.secret_key)
    results = run_checks(reference, ["BEARER-004"], keys=keys)
    assert results["BEARER-004"].status is Status.PASS, explain(results)
    assert results["BEARER-004"].message == ""

    def expired(scope: Scope, answer: Answer) -> bool:
        tokens = [v.split(" ", 1)[-1] for v in authorization(scope)]
        return any(claims_of(t).get("exp", time.time() + 60) < time.time() for t in tokens)

    twin = rewrite(reference, when(expired, challenge('Bearer realm="api"')))
    results = run_checks(twin, ["BEARER-004"], keys=keys)
    assert results["BEARER-004"].status is Status.WARN, explain(results)
    assert "exp an hour ago" in results["BEARER-004"].message


@pytest.mark.parametrize(("check_id", "edit", "expected", "side_effects"), TWINS.values(), ids=TWINS.keys())
def test_each_check_fails_with_its_own_id_against_its_twin(
    reference: FastAPI, check_id: str, edit: Edit, expected: Status, side_effects: set[str]
) -> None:
    results = run_checks(rewrite(reference, edit), ["BEARER"])
    assert results[check_id].status is expected, explain(results)
    alarms = {i for i in IDS if results[i].status in (Status.FAIL, Status.WARN)} - {check_id} - side_effects
    assert not alarms, explain(results)
    if expected is Status.WARN:
        strict = run_checks(rewrite(reference, edit), [check_id], strict=True)
        assert strict[check_id].status is Status.FAIL, explain(strict)


def test_bearer_008_passes_when_a_trailing_space_is_tolerated(reference: FastAPI) -> None:
    strip = when(sent(lambda v: v.endswith(" ") and v.count(".") == 2), serve())
    results = run_checks(rewrite(reference, strip), ["BEARER-008"])
    assert results["BEARER-008"].status is Status.PASS, explain(results)


def test_bearer_010_names_the_missing_cache_control_and_accepts_private(reference: FastAPI) -> None:
    query_only = lambda s, a: not authorization(s) and b"access_token=" in s["query_string"]  # noqa: E731
    results = run_checks(rewrite(reference, when(query_only, serve())), ["BEARER-010"])
    assert "Cache-Control: private" in results["BEARER-010"].message, explain(results)

    def private(answer: Answer) -> None:
        serve()(answer)
        answer.set_header("cache-control", "private")

    results = run_checks(rewrite(reference, when(query_only, private)), ["BEARER-010"])
    assert results["BEARER-010"].status is Status.WARN, explain(results)  # accepted: still a SHOULD failure
    assert "Cache-Control" not in results["BEARER-010"].message


def test_bearer_012_without_a_second_user_notes_what_it_did_not_try(reference: FastAPI) -> None:
    results = run_checks(reference, ["BEARER-012"], second=None)
    assert results["BEARER-012"].status is Status.PASS, explain(results)
    assert "users.second" in results["BEARER-012"].message


def run_with_contract(app: Any, ids: Iterable[str], contract: dict[str, Any]) -> dict[str, Result]:
    config = config_for()
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as http:
        client = Client(BASE_URL, http=http)
        return {r.id: r for r in run(config, select(all_checks(), tuple(ids)), contract=contract, client=client)}


def test_bearer_013_accepts_cookies_the_contract_declares(reference: FastAPI) -> None:
    contract = load_contract()
    schemes = contract["components"]["securitySchemes"]
    schemes["cookieAuth"] = {"type": "apiKey", "in": "cookie", "name": "access_token"}
    twin = rewrite(reference, TWINS["cookie-accepted"][1])
    results = run_with_contract(twin, ["BEARER-013"], contract)
    assert results["BEARER-013"].status is Status.PASS, explain(results)
    assert "declares cookie" in results["BEARER-013"].message


# -- BEARER-014 when the connection drops or hangs: an in-memory transport plays the server --------------------


def transport_server(huge: Callable[[httpx.Request], httpx.Response], *, dies: bool = False) -> Client:
    """A fake target: logs bob in, serves his token, and lets ``huge`` handle oversized Authorization headers."""
    dead: list[bool] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if dead:
            raise httpx.ConnectError("connection refused", request=request)
        if request.method == "POST":
            return httpx.Response(200, json={"access_token": "a.b.c", "token_type": "bearer", "expires_in": 900})
        if len(request.headers.get("authorization", "")) > 10_000:
            if dies:
                dead.append(True)
            return huge(request)
        if request.headers.get("authorization") == "Bearer a.b.c":
            return httpx.Response(200, json={"username": PRIMARY.username})
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="api"'})

    return Client(BASE_URL, http=httpx.Client(transport=httpx.MockTransport(handle)))


def run_bearer_014(client: Client) -> Result:
    config = config_for()
    return next(r for r in run(config, select(all_checks(), ("BEARER-014",)), contract={}, client=client))


def hang(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


def reset(request: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)


def test_bearer_014_reports_a_hang() -> None:
    result = run_bearer_014(transport_server(hang))
    assert result.status is Status.WARN, result.message
    assert "hung" in result.message


def test_bearer_014_accepts_a_dropped_connection_when_the_server_stays_up() -> None:
    result = run_bearer_014(transport_server(reset))
    assert result.status is Status.PASS, result.message
    assert "connection closed" in result.message


def test_bearer_014_fails_when_the_server_stops_answering() -> None:
    result = run_bearer_014(transport_server(reset, dies=True))
    assert result.status is Status.FAIL, result.message
    assert "stopped answering" in result.message


# -- the FastAPI tutorial dialect ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "verdict"), [(Profile.RFC, Status.FAIL), (Profile.FASTAPI, Status.WARN)])
def test_the_tutorial_bare_challenge_is_the_dialect(profile: Profile, verdict: Status) -> None:
    results = run_checks(tutorial_app(), ["BEARER"], profile=profile)
    assert results["BEARER-003"].status is verdict, explain(results)
    assert "bare 'Bearer'" in results["BEARER-003"].message
    # SHOULD-level in both profiles: no error="invalid_token"; the header+query request is served
    # (the query is ignored); Starlette reads the first of two Authorization fields.
    for should in ("BEARER-004", "BEARER-011", "BEARER-012"):
        assert results[should].status is Status.WARN, explain(results)
    # What the tutorial does right, including two spaces after Bearer (FastAPI's parser tolerates them).
    right = set(IDS) - {"BEARER-003", "BEARER-004", "BEARER-011", "BEARER-012"}
    assert {i: results[i].status for i in right} == dict.fromkeys(right, Status.PASS), explain(results)


def test_bearer_007_is_the_dialect_when_two_spaces_are_refused(reference: FastAPI) -> None:
    twin = rewrite(reference, TWINS["one-space-only"][1])
    results = run_checks(twin, ["BEARER-007"], profile=Profile.FASTAPI)
    assert results["BEARER-007"].status is Status.WARN, explain(results)


# -- RFC 6750 §3 on every refusal: one defect, reported once by BEARER-001 -----------------------------------------

FORGED_TOKEN_AREAS = ["BASE", "BEARER", "PROT", "JWT-SIG", "JWT-ALG", "JWT-HDR", "JWT-CLM"]


def bearer_sent(scope: Scope) -> bool:
    return any(v.lower().startswith("bearer") for v in authorization(scope))


def forbid_bad_tokens(scope: Scope, answer: Answer) -> None:
    """Every refused Bearer token gets 403 with a JSON body and no challenge; a missing token still gets 401."""
    if answer.status == 401 and bearer_sent(scope):
        answer.set_json({"detail": "Forbidden"}, status=403)
        answer.set_header("www-authenticate", None)


def test_invalid_tokens_refused_with_403_and_no_challenge_fail_bearer_001_alone(reference: FastAPI) -> None:
    keys = Keys(hs_secret=reference.state.reference.settings.secret_key)
    before = run_checks(reference, FORGED_TOKEN_AREAS, keys=keys)
    after = run_checks(rewrite(reference, forbid_bad_tokens), FORGED_TOKEN_AREAS, keys=keys)
    changed = {i: r.status for i, r in after.items() if r.status is not before[i].status}
    assert changed == {"BEARER-001": Status.FAIL}, explain(after)
    message = after["BEARER-001"].message
    assert "a token with a flipped signature bit was refused with HTTP 403, no WWW-Authenticate" in message
    assert "a token re-signed with exp an hour ago was refused with HTTP 403" in message
    assert "reported by BEARER-001" in after["BEARER-004"].message


def test_a_403_with_an_invalid_token_challenge_warns_bearer_004_alone(reference: FastAPI) -> None:
    def forbid_with_challenge(scope: Scope, answer: Answer) -> None:
        if answer.status == 401 and bearer_sent(scope):
            answer.status = 403  # the reference's Bearer realm="...", error="invalid_token" challenge stays

    results = run_checks(rewrite(reference, forbid_with_challenge), ["BEARER"])
    alarms = {i: r.status for i, r in results.items() if r.status in (Status.FAIL, Status.WARN)}
    assert alarms == {"BEARER-004": Status.WARN}, explain(results)
    assert (
        results["BEARER-004"].message
        == "the refusal of a token with a flipped signature bit answered 403 instead of 401"
    )


def test_bearer_001_calls_every_protected_path_without_credentials(reference: FastAPI) -> None:
    def unchallenged(scope: Scope, answer: Answer) -> None:
        if scope["path"] == "/protected-resource" and not authorization(scope):
            answer.set_header("www-authenticate", None)

    results = run_checks(rewrite(reference, unchallenged), ["BEARER"])
    alarms = {i: r.status for i, r in results.items() if r.status in (Status.FAIL, Status.WARN)}
    assert alarms == {"BEARER-001": Status.FAIL}, explain(results)
    assert results["BEARER-001"].message == (
        "refusals without a Bearer challenge: /protected-resource without credentials answered HTTP 401, "
        "no WWW-Authenticate"
    )


def test_bearer_001_sends_an_expired_token_when_the_key_is_known(reference: FastAPI) -> None:
    def expired(scope: Scope, answer: Answer) -> None:
        tokens = [v.split(" ", 1)[-1] for v in authorization(scope)]
        if any(claims_of(t).get("exp", time.time() + 60) < time.time() for t in tokens):
            answer.set_json({"detail": "Token expired"}, status=400)
            answer.set_header("www-authenticate", None)

    twin = rewrite(reference, expired)
    assert run_checks(twin, ["BEARER-001"])["BEARER-001"].status is Status.PASS  # no key: no expired token to send
    keys = Keys(hs_secret=reference.state.reference.settings.secret_key)
    results = run_checks(twin, ["BEARER"], keys=keys)
    alarms = {i: r.status for i, r in results.items() if r.status in (Status.FAIL, Status.WARN)}
    assert alarms == {"BEARER-001": Status.FAIL}, explain(results)
    assert results["BEARER-001"].message == (
        "refusals without a Bearer challenge: a token re-signed with exp an hour ago was refused with HTTP 400, "
        "no WWW-Authenticate"
    )
