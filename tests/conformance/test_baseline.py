"""BASE-*: pass against the reference server; fail, each with its own ID, against a twin broken in that way.

BASE-001 holds every server to the core rules (the me answer names the logged-in user and carries
no credential member) and checks its schema only against the target's own contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from conformance.capabilities import DeclaredCapabilities
from conformance.checks._identity import naming_member, secret_members
from conformance.config import Credentials, Paths
from conformance.contract import schema_errors
from conformance.target_contract import TargetContract

from .harness import PRIMARY, SECOND, Answer, Profile, Status, explain, on, rewrite, run_checks
from .tutorial_app import tutorial_app

ME = "/users/me"


def test_baseline_passes_on_the_reference_server(reference: FastAPI) -> None:
    results = run_checks(reference, ["BASE"])
    assert {r.status for r in results.values()} == {Status.PASS}, explain(results)
    assert results["BASE-001"].message == (
        "the user is named by username; matches the schema of GET /users/me in the kit's contract 1.5.0 (kit:1.5.0)"
    )


def test_without_a_configured_contract_the_reference_server_is_held_to_the_one_it_serves(reference: FastAPI) -> None:
    results = run_checks(reference, ["BASE-001"], contract=None)
    assert results["BASE-001"].status is Status.PASS, explain(results)
    assert results["BASE-001"].message.endswith("matches the schema of GET /users/me in the target's /openapi.json")


def test_base_001_fails_when_users_me_leaks_the_password_hash(reference: FastAPI) -> None:
    def leak(answer: Answer) -> None:
        if answer.status == 200:
            answer.set_json({**answer.json(), "hashed_password": "$argon2id$v=19$m=65536$c2FsdA$aGFzaA"})

    app = rewrite(reference, on("GET", ME, leak))
    for profile in (Profile.RFC, Profile.FASTAPI):  # a security failure: never relaxed
        results = run_checks(app, ["BASE"], profile=profile, contract=None)
        assert results["BASE-001"].status is Status.FAIL, explain(results)
        assert results["BASE-001"].actual == "members present: hashed_password (values withheld)"
        assert "argon2id" not in results["BASE-001"].message + (results["BASE-001"].actual or "")
        assert results["BASE-002"].status is Status.PASS


def test_base_001_finds_a_credential_member_at_any_depth_even_without_a_contract() -> None:
    def nested(answer: Answer) -> None:
        if answer.status == 200:
            answer.set_json({**answer.json(), "account": {"auth": [{"Password_Hash": "$2b$12$abcdefgh"}]}})

    results = run_checks(rewrite(tutorial_app(), on("GET", ME, nested)), ["BASE-001"], contract=None)
    assert results["BASE-001"].status is Status.FAIL, explain(results)
    assert (
        results["BASE-001"].message == "the /users/me answer carries credential members: account.auth[0].Password_Hash"
    )


def test_base_001_fails_when_the_me_answer_names_another_user(reference: FastAPI) -> None:
    def someone_else(answer: Answer) -> None:
        if answer.status == 200:
            answer.set_json({**answer.json(), "username": "mallory", "email": "mallory@example.com"})

    results = run_checks(rewrite(reference, on("GET", ME, someone_else)), ["BASE"], contract=None)
    assert results["BASE-001"].status is Status.FAIL, explain(results)
    assert results["BASE-001"].message == "/users/me did not answer with the logged-in user"
    assert results["BASE-002"].status is Status.PASS


def test_base_001_fails_when_the_me_answer_is_not_a_json_object(reference: FastAPI) -> None:
    def text(answer: Answer) -> None:
        if answer.status == 200:
            answer.body = b"hello bob"
            answer.set_header("content-type", "text/plain")

    results = run_checks(rewrite(reference, on("GET", ME, text)), ["BASE-001"], contract=None)
    assert results["BASE-001"].status is Status.FAIL, explain(results)
    assert results["BASE-001"].message == "/users/me answered 200 without a JSON object"


# -- servers we did not write ----------------------------------------------------------------------


@pytest.mark.parametrize("contract", [None, "kit"])
def test_the_fastapi_tutorial_server_passes_base_001(contract: str | None) -> None:
    # {"username", "email", "full_name", "disabled"}: what FastAPI's tutorial answers.
    for profile in (Profile.RFC, Profile.FASTAPI):
        results = run_checks(tutorial_app(), ["BASE-001"], profile=profile, contract=contract)
        assert results["BASE-001"].status is Status.PASS, explain(results)


def test_the_tutorial_server_is_held_to_the_openapi_it_serves_and_nothing_more() -> None:
    # FastAPI documents its me operation's answer with an empty schema: any extra member is its own business.
    def extra(answer: Answer) -> None:
        if answer.status == 200:
            answer.set_json({**answer.json(), "nickname": "bobby"})

    results = run_checks(rewrite(tutorial_app(), on("GET", ME, extra)), ["BASE-001"], contract=None)
    assert results["BASE-001"].status is Status.PASS, explain(results)
    assert results["BASE-001"].message == (
        "the user is named by username; matches the schema of GET /users/me in the target's /openapi.json"
    )


def test_a_server_without_any_contract_is_held_to_the_core_rules_only() -> None:
    app = tutorial_app()
    app.openapi_url = None  # serves no /openapi.json
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", "") != "/openapi.json"]
    results = run_checks(app, ["BASE-001"], contract=None)
    assert results["BASE-001"].status is Status.PASS, explain(results)
    assert results["BASE-001"].message == "the user is named by username; no contract for the target: core rules only"


def email_login_app(me_body: dict[str, Any] | None = None) -> FastAPI:
    """fastapi-users / the full-stack template: login by e-mail, and the me answer {"id", "email", "is_active", ...}."""
    accounts = {f"{c.username}@example.com": (index, c.password) for index, c in enumerate((PRIMARY, SECOND))}
    app = FastAPI()

    @app.post("/auth/jwt/login")
    async def login(request: Request) -> JSONResponse:
        form = await request.form()
        account = accounts.get(str(form.get("username")))
        if account is None or account[1] != form.get("password"):
            return JSONResponse({"detail": "LOGIN_BAD_CREDENTIALS"}, status_code=400)
        headers = {"Cache-Control": "no-store"}
        return JSONResponse({"access_token": f"token-{account[0]}", "token_type": "bearer"}, headers=headers)

    @app.get("/users/me")
    async def me(request: Request) -> JSONResponse:
        email = next(
            (e for e, (i, _) in accounts.items() if request.headers.get("authorization") == f"Bearer token-{i}"), None
        )
        if email is None:
            return JSONResponse({"detail": "Unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        body = me_body or {"email": email}
        return JSONResponse(
            {"id": f"0000-{email}", **body, "is_active": True, "is_superuser": False, "is_verified": False},
            headers={"Cache-Control": "private"},
        )

    return app


def email_config(**changes: Any) -> dict[str, Any]:
    return {
        "primary": Credentials(f"{PRIMARY.username}@example.com", PRIMARY.password),
        "second": Credentials(f"{SECOND.username}@example.com", SECOND.password),
        "disabled": None,
        "paths": Paths(token="/auth/jwt/login"),
        **changes,
    }


def test_a_server_that_names_the_user_by_email_passes_base_001_and_prot_002() -> None:
    results = run_checks(email_login_app(), ["BASE-001", "PROT-002"], contract=None, **email_config())
    assert results["BASE-001"].status is Status.PASS, explain(results)
    assert results["BASE-001"].message.startswith("the user is named by email; ")
    assert results["PROT-002"].status is Status.PASS, explain(results)


def test_the_identity_setting_names_the_member_that_holds_the_login_name() -> None:
    app = email_login_app(me_body={"profile": {"mail": "bob@example.com"}})
    without = run_checks(app, ["BASE-001"], contract=None, **email_config())
    assert without["BASE-001"].status is Status.FAIL, explain(without)
    assert without["BASE-001"].expected == (
        'the login name "bob@example.com" as the value of one of: username, email, preferred_username, sub, login'
    )
    configured = run_checks(app, ["BASE-001"], contract=None, **email_config(identity="profile.mail"))
    assert configured["BASE-001"].status is Status.PASS, explain(configured)
    assert configured["BASE-001"].message.startswith("the user is named by profile.mail; ")


# -- the target's own contract ---------------------------------------------------------------------


def test_base_001_fails_when_the_server_departs_from_the_contract_it_serves(reference: FastAPI) -> None:
    # The reference serves the kit's contract at /openapi.json: User has additionalProperties: false.
    def extra(answer: Answer) -> None:
        if answer.status == 200:
            answer.set_json({**answer.json(), "nickname": "bobby"})

    results = run_checks(rewrite(reference, on("GET", ME, extra)), ["BASE-001"], contract=None)
    assert results["BASE-001"].status is Status.FAIL, explain(results)
    assert results["BASE-001"].message == "the /users/me body departs from the schema of the target's /openapi.json"
    assert "nickname" in (results["BASE-001"].actual or "")


def test_base_001_holds_a_server_to_the_contract_file_it_is_given(tmp_path: Path) -> None:
    document = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            ME: {
                "get": {
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Me"}}}}
                    }
                }
            }
        },
        "components": {"schemas": {"Me": {"type": "object", "required": ["id", "username"]}}},
    }
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    results = run_checks(tutorial_app(), ["BASE-001"], contract=TargetContract.from_file(path))
    assert results["BASE-001"].status is Status.FAIL, explain(results)
    assert results["BASE-001"].actual == "<body>: 'id' is a required property"
    assert results["BASE-001"].message == f"the /users/me body departs from the schema of the contract {path}"


def test_an_openapi_30_document_is_read_as_30_means_it() -> None:
    # pydantic 1 era: "openapi": "3.0.2", Optional[str] documented as a plain string, nullable elsewhere.
    schema = {
        "type": "object",
        "required": ["username", "disabled"],
        "properties": {
            "username": {"type": "string"},
            "full_name": {"type": "string"},
            "disabled": {"type": "boolean", "nullable": True},
            "age": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
        },
    }
    document = {"openapi": "3.0.2", "paths": {}}
    body = {"username": "bob", "full_name": None, "disabled": None, "age": 1}
    assert schema_errors(document, schema, body) == []
    assert schema_errors(document, schema, {**body, "age": 0}) == ["age: 0 is less than or equal to the minimum of 0"]
    assert schema_errors(document, schema, {**body, "username": None}) == ["username: None is not of type 'string'"]


# -- capability members of the kit's contract -------------------------------------------------------


def _without_scopes(answer: Answer) -> None:
    if answer.status == 200:
        answer.set_json({k: v for k, v in answer.json().items() if k != "scopes"})


def test_a_server_with_the_scopes_capability_must_answer_its_scopes(reference: FastAPI) -> None:
    results = run_checks(rewrite(reference, on("GET", ME, _without_scopes)), ["BASE-001"])
    assert results["BASE-001"].status is Status.FAIL, explain(results)
    assert results["BASE-001"].actual == "<body>: 'scopes' is a required property"


def test_a_server_without_the_scopes_capability_need_not(reference: FastAPI) -> None:
    app = rewrite(reference, on("GET", ME, _without_scopes))
    results = run_checks(app, ["BASE-001"], capabilities=DeclaredCapabilities(operation_scopes={}))
    assert results["BASE-001"].status is Status.PASS, explain(results)


def test_a_tutorial_server_claiming_the_kits_contract_130_is_not_asked_for_scopes() -> None:
    # 1.3.0 listed scopes among User's required members; it belongs to the scopes capability, which
    # the tutorial server does not claim (its /openapi.json names no scopes).
    assert "scopes" in TargetContract.kit("1.3.0")["components"]["schemas"]["User"]["required"]
    results = run_checks(tutorial_app(), ["BASE-001"], contract=TargetContract.kit("1.3.0"))
    assert results["BASE-001"].status is Status.PASS, explain(results)
    assert results["BASE-001"].message.endswith("in the kit's contract 1.3.0 (kit:1.3.0)")


# -- the core rules as functions -------------------------------------------------------------------


def test_credential_members_are_matched_by_exact_normalised_name_and_only_with_a_value() -> None:
    body = {
        "username": "bob",
        "password": "x",
        "hashedPassword": "$2b$",
        "nested": {"salt": "abc", "items": [{"Secret": 1}]},
        "password_set": True,
        "hash": None,
        "passwordless": "yes",
        "secret_question_answered": False,
        "token_hash_algorithm": "sha256",
    }
    assert secret_members(body) == ["password", "hashedPassword", "nested.salt", "nested.items[0].Secret"]


@pytest.mark.parametrize(
    ("body", "identity", "member"),
    [
        ({"username": "bob"}, None, "username"),
        ({"userName": "bob"}, None, "userName"),
        ({"preferred_username": "bob", "sub": "42"}, None, "preferred_username"),
        ({"sub": "bob"}, None, "sub"),
        ({"login": "bob"}, None, "login"),
        ({"username": "bobby", "email": "BOB@example.com"}, None, None),
        ({"name": "bob"}, None, None),
        ({"name": "bob"}, "name", "name"),
        ({"username": "bob"}, "email", None),
        ({"data": {"user": "bob"}}, "data.user", "data.user"),
        (["bob"], None, None),
    ],
)
def test_the_member_that_names_the_user(body: Any, identity: str | None, member: str | None) -> None:
    assert naming_member(body, "bob", identity) == member


def test_an_email_login_name_is_compared_without_case() -> None:
    assert naming_member({"email": "Bob@Example.com"}, "bob@example.com", None) == "email"
    assert naming_member({"username": "Bob"}, "bob", None) is None


def test_base_002_fails_when_users_me_is_served_without_a_token(reference: FastAPI) -> None:
    def serve_anyone(answer: Answer) -> None:
        if answer.status == 401:
            answer.set_json({"username": "bob"}, status=200)

    results = run_checks(rewrite(reference, on("GET", ME, serve_anyone)), ["BASE"])
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
