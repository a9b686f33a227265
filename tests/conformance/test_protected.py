"""PROT-*: pass against the reference server; each fails, with its own ID, against a twin broken in that way."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from reference_impl.models import UserInDB

from .harness import Answer, Profile, Scope, Status, explain, on, rewrite, run_checks, with_components
from .tutorial_app import tutorial_app

IDS = ["PROT-001", "PROT-002", "PROT-003", "PROT-005", "PROT-006", "PROT-007", "PROT-008"]


def mine(results: dict[str, Any]) -> dict[str, Status]:
    return {check_id: results[check_id].status for check_id in IDS}


def test_protected_area_passes_on_the_reference_server(reference: FastAPI) -> None:
    results = run_checks(reference, IDS)
    expected = dict.fromkeys(IDS, Status.PASS) | {"PROT-006": Status.INFO}
    assert mine(results) == expected, explain(results)
    # FastAPI answers HEAD on a GET route with 405 (and Allow): an observation, not a failure.
    assert "HEAD is not supported" in results["PROT-006"].message
    assert "DELETE without a token: 405 before authentication" in results["PROT-006"].message
    assert "PUT: 405 (Allow: GET)" in results["PROT-006"].message
    assert "307" in results["PROT-007"].message


def test_cross_user_checks_skip_with_how_to_when_users_are_not_configured(reference: FastAPI) -> None:
    results = run_checks(reference, ["PROT-002", "PROT-003"], second=None, disabled=None)
    assert results["PROT-002"].status is Status.SKIP, explain(results)
    assert "users.second" in results["PROT-002"].message
    assert results["PROT-003"].status is Status.SKIP
    assert "users.disabled" in results["PROT-003"].message


# -- PROT-001 ------------------------------------------------------------------------------------


def test_prot_001_fails_when_a_protected_path_serves_anyone(reference: FastAPI) -> None:
    def serve_anyone(answer: Answer) -> None:
        if answer.status == 401:
            answer.set_json({"message": "This is a protected resource", "user": {"username": "bob"}}, status=200)

    results = run_checks(rewrite(reference, on("GET", "/protected-resource", serve_anyone)), ["BASE", *IDS])
    assert results["PROT-001"].status is Status.FAIL, explain(results)
    assert "GET /protected-resource" in results["PROT-001"].message
    assert results["BASE-002"].status is Status.PASS  # the me path is still guarded
    assert results["PROT-005"].status is Status.PASS


# -- PROT-002 ------------------------------------------------------------------------------------


def test_prot_002_fails_when_every_token_gets_the_first_users_record(reference: FastAPI) -> None:
    def always_bob(answer: Answer) -> None:
        if answer.status == 200:
            answer.set_json({**answer.json(), "username": "bob", "email": "bob@example.com"})

    results = run_checks(rewrite(reference, on("GET", "/users/me", always_bob)), ["PROT-002"])
    assert results["PROT-002"].status is Status.FAIL, explain(results)
    assert "FIRST user" in results["PROT-002"].message


def test_prot_002_warns_when_authenticated_answers_are_cacheable(reference: FastAPI) -> None:
    def public(answer: Answer) -> None:
        answer.set_header("cache-control", "public, max-age=60")

    app = rewrite(reference, on("GET", "/users/me", public))
    results = run_checks(app, IDS)
    assert results["PROT-002"].status is Status.WARN, explain(results)
    assert "public, max-age=60" in (results["PROT-002"].actual or "")
    others = {check_id: status for check_id, status in mine(results).items() if check_id != "PROT-002"}
    assert Status.FAIL not in others.values() and Status.WARN not in others.values(), explain(results)
    assert run_checks(app, ["PROT-002"], strict=True)["PROT-002"].status is Status.FAIL


# -- PROT-003 ------------------------------------------------------------------------------------


class _IgnoresDisabledFlag:
    """The reference store, except that nobody is disabled."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def get(self, username: str) -> UserInDB | None:
        user = self.inner.get(username)
        return None if user is None else user.model_copy(update={"disabled": False})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_prot_003_fails_when_the_disabled_user_is_served(reference: FastAPI) -> None:
    app = with_components(reference, store=_IgnoresDisabledFlag(reference.state.reference.store))
    for profile in (Profile.RFC, Profile.FASTAPI):
        results = run_checks(app, ["PROT-003"], profile=profile)
        assert results["PROT-003"].status is Status.FAIL, explain(results)
        assert "ACCEPTED" in results["PROT-003"].message


def test_prot_003_leaves_the_wording_of_a_refused_login_to_the_token_checks(reference: FastAPI) -> None:
    # The disabled user gets no token: that is all PROT-003 asks. A 401 {"detail"} refusal is one
    # defect of the token endpoint, reported once, by TOKEN-006 (and TOKEN-008 for its body).
    def tutorial_refusal(answer: Answer) -> None:
        if answer.status == 400:
            answer.set_json({"detail": "Incorrect username or password"}, status=401)
            answer.set_header("www-authenticate", "Bearer")

    app = rewrite(reference, on("POST", "/token", tutorial_refusal))
    for profile in (Profile.RFC, Profile.FASTAPI):
        results = run_checks(app, ["PROT-003", "TOKEN-006"], profile=profile)
        assert results["PROT-003"].status is Status.PASS, explain(results)
        assert results["PROT-003"].message == "the disabled user's login is refused (401)"
    assert run_checks(app, ["TOKEN-006"])["TOKEN-006"].status is Status.FAIL


def test_prot_003_fails_when_the_disabled_users_login_succeeds_without_a_token(reference: FastAPI) -> None:
    def disabled_login(answer: Answer) -> None:
        if answer.status == 400:
            answer.set_json({"message": "logged in"}, status=200)

    results = run_checks(rewrite(reference, on("POST", "/token", disabled_login)), ["PROT-003"])
    assert results["PROT-003"].status is Status.FAIL, explain(results)
    assert "a success, though without an access token" in results["PROT-003"].message


def test_prot_003_passes_when_an_issued_token_is_refused_with_401() -> None:
    def unauthorized(answer: Answer) -> None:
        if answer.status == 400:
            answer.set_json({"detail": "Inactive user"}, status=401)

    results = run_checks(rewrite(tutorial_app(), on("GET", "/users/me", unauthorized)), ["PROT-003"])
    assert results["PROT-003"].status is Status.PASS, explain(results)
    assert "refused on use with 401" in results["PROT-003"].message


# -- PROT-005 ------------------------------------------------------------------------------------


def test_prot_005_fails_when_refusals_depart_from_the_error_schema(reference: FastAPI) -> None:
    def other_shape(answer: Answer) -> None:
        if answer.status == 401:
            answer.set_json({"status": 401, "message": "Unauthorized"})

    results = run_checks(rewrite(reference, on("GET", "/users/me", other_shape)), ["PROT-005"])
    assert results["PROT-005"].status is Status.FAIL, explain(results)
    assert "detail" in (results["PROT-005"].actual or "")


def test_prot_005_fails_when_refusals_are_not_json(reference: FastAPI) -> None:
    def plain(answer: Answer) -> None:
        if answer.status == 401:
            answer.body = b"Unauthorized"
            answer.set_header("content-type", "text/plain")

    results = run_checks(rewrite(reference, on("GET", "/users/me", plain)), ["PROT-005"])
    assert results["PROT-005"].status is Status.FAIL, explain(results)
    assert "not a JSON body" in (results["PROT-005"].actual or "")


def _plain_refusals(answer: Answer) -> None:
    if answer.status == 401:
        answer.body = b"Unauthorized"
        answer.set_header("content-type", "text/plain")


def test_prot_005_holds_refusals_to_an_error_schema_only_when_the_target_documents_one() -> None:
    # FastAPI's served document says nothing of its 401s: only the core rules apply, JSON not required.
    app = rewrite(tutorial_app(), on("GET", "/users/me", _plain_refusals))
    results = run_checks(app, ["PROT-005"], contract=None)
    assert results["PROT-005"].status is Status.PASS, explain(results)
    assert results["PROT-005"].message == "4 refusal(s) checked: no stack trace, no token echo"
    claimed = run_checks(app, ["PROT-005"])  # the same server, claiming the kit's contract (BearerError)
    assert claimed["PROT-005"].status is Status.FAIL, explain(claimed)
    kit = "the kit's contract 1.5.0 (kit:1.5.0)"
    assert claimed["PROT-005"].message == f"3 refusal(s) depart from the error body of {kit}"  # the me path's three


def test_prot_005_uses_the_error_schema_of_the_document_the_target_serves(reference: FastAPI) -> None:
    app = rewrite(reference, on("GET", "/users/me", _plain_refusals))
    results = run_checks(app, ["PROT-005"], contract=None)
    assert results["PROT-005"].status is Status.FAIL, explain(results)
    # the two 401s of the me path (the malformed Bearer value gets 400 invalid_request, left as it is)
    assert results["PROT-005"].message == "2 refusal(s) depart from the error body of the target's /openapi.json"
    passing = run_checks(reference, ["PROT-005"], contract=None)["PROT-005"]
    assert passing.status is Status.PASS
    assert passing.message == (
        "4 refusal(s) checked: 4 against the error schema of the target's /openapi.json; no stack trace, no token echo"
    )


def test_prot_005_warns_on_a_stack_trace_without_any_contract() -> None:
    def traceback(answer: Answer) -> None:
        if answer.status == 401:
            answer.body = b'Traceback (most recent call last):\n  File "/app/auth.py", line 42, in decode\n'
            answer.set_header("content-type", "text/plain")

    results = run_checks(rewrite(tutorial_app(), on("GET", "/users/me", traceback)), ["PROT-005"], contract=None)
    assert results["PROT-005"].status is Status.WARN, explain(results)
    assert results["PROT-005"].message.startswith("401 at /users/me: the body carries a Python traceback")


def test_prot_005_warns_when_a_refusal_carries_a_stack_trace(reference: FastAPI) -> None:
    def traceback(answer: Answer) -> None:
        if answer.status == 401:
            trace = 'Traceback (most recent call last):\n  File "/app/auth.py", line 42, in decode\n'
            answer.set_json({**answer.json(), "detail": trace + "jwt.exceptions.DecodeError"})

    app = rewrite(reference, on("GET", "/users/me", traceback))
    results = run_checks(app, ["PROT-005"])
    assert results["PROT-005"].status is Status.WARN, explain(results)
    assert "Python traceback" in results["PROT-005"].message
    assert run_checks(app, ["PROT-005"], strict=True)["PROT-005"].status is Status.FAIL


def test_prot_005_warns_when_a_refusal_echoes_the_token(reference: FastAPI) -> None:
    def echo(scope: Scope, answer: Answer) -> None:
        sent = dict(scope["headers"]).get(b"authorization", b"").decode()
        if scope["path"] == "/users/me" and answer.status == 401 and sent:
            answer.set_json({**answer.json(), "detail": f"rejected {sent}"})

    results = run_checks(rewrite(reference, echo), IDS)
    assert results["PROT-005"].status is Status.WARN, explain(results)
    assert "echoes the access token" in results["PROT-005"].message
    assert results["PROT-001"].status is Status.PASS


# -- PROT-006 ------------------------------------------------------------------------------------


def test_prot_006_fails_when_405_has_no_allow(reference: FastAPI) -> None:
    def no_allow(scope: Scope, answer: Answer) -> None:
        if answer.status == 405:
            answer.set_header("allow", None)

    results = run_checks(rewrite(reference, no_allow), IDS)
    assert results["PROT-006"].status is Status.FAIL, explain(results)
    assert "without an Allow header" in results["PROT-006"].message
    assert results["PROT-001"].status is Status.PASS


def test_prot_006_warns_when_an_undeclared_method_succeeds(reference: FastAPI) -> None:
    def patches(answer: Answer) -> None:
        if answer.status == 405:
            answer.status, answer.body = 204, b""
            answer.set_header("allow", None)
            answer.set_header("content-type", None)

    results = run_checks(rewrite(reference, on("PATCH", "/users/me", patches)), ["PROT-006"])
    assert results["PROT-006"].status is Status.WARN, explain(results)
    assert "PATCH answered 204" in results["PROT-006"].message


def test_prot_006_fails_when_delete_without_a_token_succeeds(reference: FastAPI) -> None:
    def deletes(answer: Answer) -> None:
        answer.status, answer.body = 204, b""
        answer.set_header("allow", None)

    results = run_checks(rewrite(reference, on("DELETE", "/users/me", deletes)), ["PROT-006"])
    assert results["PROT-006"].status is Status.FAIL, explain(results)
    assert "WITHOUT credentials" in results["PROT-006"].message


def test_prot_006_never_sends_delete_with_a_token(reference: FastAPI) -> None:
    def writes(scope: Scope, answer: Answer) -> None:
        authenticated = b"authorization" in dict(scope["headers"])
        if scope["method"] in ("PUT", "PATCH") and answer.status == 405 and authenticated:
            answer.set_json({"username": "bob"}, status=200)
            answer.set_header("allow", None)

    results = run_checks(rewrite(reference, writes), ["PROT-006"])
    assert results["PROT-006"].status is Status.WARN, explain(results)
    deletes = [e for e in results["PROT-006"].exchanges if e.method == "DELETE"]
    assert deletes and all(name.lower() != "authorization" for e in deletes for name, _ in e.request_headers)


def _head_as_get(app: Any, drop: tuple[str, ...] = ()) -> Any:
    """Serve HEAD like GET without content (dropping the ``drop`` header fields from HEAD answers)."""

    async def wrapper(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return

        async def head(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message["headers"] if k.decode("latin-1").lower() not in drop]
                message = {**message, "headers": kept}
            elif message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await app({**scope, "method": "GET"}, receive, head)

    return wrapper


def test_prot_006_passes_when_head_mirrors_get(reference: FastAPI) -> None:
    results = run_checks(_head_as_get(reference), ["PROT-006"])
    assert results["PROT-006"].status is Status.PASS, explain(results)


def test_prot_006_warns_when_head_drops_cache_control(reference: FastAPI) -> None:
    app = _head_as_get(reference, drop=("cache-control",))
    results = run_checks(app, ["PROT-006"])
    assert results["PROT-006"].status is Status.WARN, explain(results)
    assert "HEAD lacks cache-control" in results["PROT-006"].message
    assert run_checks(app, ["PROT-006"], strict=True)["PROT-006"].status is Status.FAIL


# -- PROT-007 ------------------------------------------------------------------------------------


def test_prot_007_fails_when_the_slash_redirect_leaves_the_origin(reference: FastAPI) -> None:
    def elsewhere(answer: Answer) -> None:
        if 300 <= answer.status < 400:
            answer.set_header("location", "https://login.example.net/users/me")

    results = run_checks(rewrite(reference, on("GET", "/users/me/", elsewhere)), IDS)
    assert results["PROT-007"].status is Status.FAIL, explain(results)
    assert "login.example.net" in results["PROT-007"].message
    assert results["PROT-001"].status is Status.PASS


def test_prot_007_fails_on_a_scheme_downgrade(reference: FastAPI) -> None:
    def downgrade(answer: Answer) -> None:
        if 300 <= answer.status < 400:
            answer.set_header("location", "http://127.0.0.1:8080/users/me")

    results = run_checks(rewrite(reference, on("GET", "/users/me/", downgrade)), ["PROT-007"])
    assert results["PROT-007"].status is Status.FAIL, explain(results)


def test_prot_007_passes_when_the_slash_path_is_not_found(reference: FastAPI) -> None:
    def not_found(answer: Answer) -> None:
        answer.set_json({"detail": "Not Found"}, status=404)
        answer.set_header("location", None)

    results = run_checks(rewrite(reference, on("GET", "/users/me/", not_found)), ["PROT-007"])
    assert results["PROT-007"].status is Status.PASS, explain(results)
    assert "404" in results["PROT-007"].message


# -- PROT-008 ------------------------------------------------------------------------------------


def test_prot_008_reports_an_answer_that_is_neither_406_nor_json(reference: FastAPI) -> None:
    def unsupported(scope: Scope, answer: Answer) -> None:
        accept = dict(scope["headers"]).get(b"accept", b"")
        if scope["path"] == "/users/me" and accept == b"application/xml":
            answer.set_json({"detail": "Unsupported Media Type"}, status=415)

    results = run_checks(rewrite(reference, unsupported), IDS)
    assert results["PROT-008"].status is Status.INFO, explain(results)
    assert "415" in results["PROT-008"].message
    assert results["PROT-002"].status is Status.PASS


def test_prot_008_passes_on_406(reference: FastAPI) -> None:
    def not_acceptable(scope: Scope, answer: Answer) -> None:
        if scope["path"] == "/users/me" and dict(scope["headers"]).get(b"accept") == b"application/xml":
            answer.set_json({"detail": "Not Acceptable"}, status=406)

    results = run_checks(rewrite(reference, not_acceptable), ["PROT-008"])
    assert results["PROT-008"].status is Status.PASS, explain(results)


# -- the FastAPI tutorial dialect ------------------------------------------------------------------


def test_tutorial_dialect_in_both_profiles() -> None:
    # PROT-002 (no Cache-Control) and PROT-003 (a disabled user gets a token, then 400 "Inactive
    # user") are NON-STRICT in the catalog: warn in every profile, fail only with --strict.
    expected = dict.fromkeys(IDS, Status.PASS) | {
        "PROT-002": Status.WARN,
        "PROT-003": Status.WARN,
        "PROT-006": Status.INFO,
    }
    for profile in (Profile.RFC, Profile.FASTAPI):
        results = run_checks(tutorial_app(), IDS, profile=profile)
        assert mine(results) == expected, explain(results)
    assert "Inactive user" in (run_checks(tutorial_app(), ["PROT-003"])["PROT-003"].actual or "")
    strict = run_checks(tutorial_app(), ["PROT-002", "PROT-003"], strict=True)
    assert strict["PROT-002"].status is Status.FAIL and strict["PROT-003"].status is Status.FAIL
