"""TOKEN-022, PROT-004, REFRESH-*, REVOKE-*: they pass on the reference server, fail on a twin broken in
their way, and skip with the way out when the target declares no such capability."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from conformance.capabilities import DeclaredCapabilities, from_document
from conformance.config import build_config
from conformance.contract import load_contract
from conformance.errors import ConfigError

from . import capability_twins as twins
from .harness import PRIMARY, Profile, Status, explain, run_checks
from .tutorial_app import tutorial_app

CAPABILITY_CHECKS = ["TOKEN-022", "TOKEN-024", "PROT-004", "REFRESH", "REVOKE"]


def test_the_kits_contract_declares_refresh_revocation_and_scopes() -> None:
    found = from_document(load_contract(), "/token", "the kit's contract")
    assert found.refresh_tokens and found.revocation_path == "/revoke" and found.logout_path is None
    assert found.operation_scopes["GET /users"] == ("admin",)
    assert found.operation_scopes["GET /users/me"] == ("me",)
    assert set(found.defined_scopes) == {"me", "items:read", "admin"}


def test_a_contract_without_them_declares_nothing() -> None:
    document = {"paths": {"/token": {"post": {"requestBody": {}}}, "/users/me": {"get": {"security": [{"b": []}]}}}}
    found = from_document(document, "/token", "x")
    assert not found.refresh_tokens and found.revocation_path is None and not found.scopes


def test_every_capability_check_passes_on_the_reference_server(reference: FastAPI) -> None:
    results = run_checks(reference, CAPABILITY_CHECKS)
    assert len(results) == 12
    skipped = {check_id for check_id, result in results.items() if result.status is Status.SKIP}
    assert skipped == {"REVOKE-005"}, explain(results)  # the reference server has no /logout
    assert all(r.status is Status.PASS for i, r in results.items() if i not in skipped), explain(results)
    assert "capabilities.logout" in results["REVOKE-005"].message


def test_a_target_that_declares_nothing_skips_them_with_the_way_out() -> None:
    results = run_checks(tutorial_app(), CAPABILITY_CHECKS)
    assert {r.status for r in results.values()} == {Status.SKIP}, explain(results)
    assert "capabilities.refresh_tokens: true" in results["REFRESH-001"].message
    assert "capabilities.revocation: /revoke" in results["REVOKE-002"].message
    assert "capabilities.scopes" in results["PROT-004"].message
    assert results["TOKEN-024"].message == results["TOKEN-022"].message
    assert results["TOKEN-024"].message.startswith(
        'the target declares no scopes: set capabilities.scopes: {"GET /users"'
    )


def test_the_config_file_overrides_what_the_contract_says(reference: FastAPI) -> None:
    declared = DeclaredCapabilities(refresh_tokens=False, revocation_path="")
    results = run_checks(reference, ["REFRESH", "REVOKE-002"], capabilities=declared)
    assert {r.status for r in results.values()} == {Status.SKIP}, explain(results)


@pytest.mark.parametrize(
    ("twin", "check_id", "status"),
    [
        (twins.cacheable_refresh_answers, "REFRESH-001", Status.FAIL),
        (twins.any_refresh_token_will_do, "REFRESH-002", Status.FAIL),
        (twins.refresh_token_as_access_token, "REFRESH-003", Status.FAIL),
        (twins.reusable_refresh_tokens, "REFRESH-004", Status.FAIL),
        (twins.ignores_revocation, "REVOKE-004", Status.FAIL),
        (twins.ignores_revocation, "REVOKE-001", Status.WARN),
        (twins.revoke_errors_on_unknown_tokens, "REVOKE-002", Status.FAIL),
        (twins.hint_stops_the_search, "REVOKE-003", Status.FAIL),
        (twins.unknown_scope_silently_dropped, "TOKEN-022", Status.FAIL),
        (twins.scope_not_enforced, "PROT-004", Status.FAIL),
        (twins.insufficient_scope_not_said, "PROT-004", Status.WARN),
    ],
    ids=[
        "refresh-answer-cacheable",
        "unknown-refresh-token-accepted",
        "refresh-token-as-access-token",
        "refresh-reusable-after-rotation",
        "revocation-ignored",
        "revoked-access-token-accepted",
        "revoke-errors-on-unknown",
        "hint-stops-the-search",
        "unknown-scope-hidden",
        "scope-not-enforced",
        "insufficient-scope-missing",
    ],
)
def test_each_check_fails_on_its_broken_twin(
    reference: FastAPI, twin: Callable[[Any], Any], check_id: str, status: Status
) -> None:
    results = run_checks(twin(reference), [check_id])
    assert results[check_id].status is status, explain(results)


def test_a_warning_is_a_failure_under_strict(reference: FastAPI) -> None:
    results = run_checks(twins.insufficient_scope_not_said(reference), ["PROT-004"], strict=True)
    assert results["PROT-004"].status is Status.FAIL, explain(results)


def test_capabilities_in_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "base_url: http://127.0.0.1:1\nusers: {primary: {username: u, password: p}}\n"
        "capabilities:\n  refresh_tokens: true\n  revocation: /oauth/revoke\n  logout: false\n"
        "  scopes: {GET /admin: admin, get /me: [me, profile]}\n",
        encoding="utf-8",
    )
    declared = build_config({}, env={}, config_file=path).capabilities
    assert declared.refresh_tokens is True and declared.revocation_path == "/oauth/revoke"
    assert declared.logout_path == ""  # declared absent
    assert declared.operation_scopes == {"GET /admin": ("admin",), "GET /me": ("me", "profile")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("capabilities: {refresh_tokens: yes please}", "capabilities.refresh_tokens must be true or false"),
        ("capabilities: {revocation: revoke}", "capabilities.revocation must be a path"),
        ("capabilities: {scopes: [admin]}", "capabilities.scopes must map operations"),
        ("capabilities: {scopes: {users: admin}}", "is not an operation like 'GET /users'"),
        ("capabilities: {refresh: true}", "unknown key capabilities.'refresh'"),
    ],
)
def test_bad_capabilities_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("base_url: http://127.0.0.1:1\nusers: {primary: {username: u, password: p}}\n" + text, "utf-8")
    with pytest.raises(ConfigError, match=message):
        build_config({}, env={}, config_file=path)


@pytest.mark.parametrize(("revokes", "status"), [(True, Status.PASS), (False, Status.INFO)])
def test_a_logout_that_outlives_the_token_is_noted(reference: FastAPI, revokes: bool, status: Status) -> None:
    app = twins.with_logout(reference, revokes=revokes)
    results = run_checks(app, ["REVOKE-005"], capabilities=DeclaredCapabilities(logout_path="/logout"))
    assert results["REVOKE-005"].status is status, explain(results)


# -- TOKEN-024: a scope beyond the default grant, asked for -------------------------------------------

BOTH_PROFILES = [Profile.RFC, Profile.FASTAPI]
ESCALATION = {
    # The reference server: bob may be granted me and items:read; admin is refused.
    "reference": (
        lambda app: app,
        Status.PASS,
        "default grant items:read me (from the login's scope); scope=admin: 400 invalid_scope, no token",
    ),
    # Narrowing to the default grant, and saying so, is RFC 6749 §3.3 as written.
    "default-grant-instead": (
        twins.admin_asked_for_gets_the_default_grant,
        Status.PASS,
        "default grant items:read me (from the login's scope); scope=admin: a token without it (items:read me); "
        "GET /users: 403",
    ),
    "default-grant-from-the-claim": (
        twins.scope_never_said,
        Status.PASS,
        "default grant items:read me (from the token's scope claim); scope=admin: 400 invalid_scope, no token",
    ),
    "grants-any-scope": (
        twins.grants_any_scope_asked_for,
        Status.FAIL,
        "scope=admin, which the primary user's default grant (items:read me) lacks, was GRANTED "
        "(the answer's scope: admin)",
    ),
    "grants-any-scope-silently": (
        lambda app: twins.grants_any_scope_asked_for(app, says_so=False),
        Status.FAIL,
        "scope=admin, which the primary user's default grant (items:read me) lacks, was GRANTED "
        "(its scope claim: admin)",
    ),
}


def authorized_methods(app: Any, seen: set[tuple[str, str]]) -> Any:
    """``app``, noting the method and path of every request that carries an Authorization header."""

    async def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and any(name == b"authorization" for name, _ in scope["headers"]):
            seen.add((scope["method"], scope["path"]))
        await app(scope, receive, send)

    return wrapper


@pytest.mark.parametrize("profile", BOTH_PROFILES)
@pytest.mark.parametrize(("twin", "status", "message"), ESCALATION.values(), ids=ESCALATION.keys())
def test_token_024_scope_escalation(
    reference: FastAPI, twin: Callable[[Any], Any], status: Status, message: str, profile: Profile
) -> None:
    seen: set[tuple[str, str]] = set()
    results = run_checks(authorized_methods(twin(reference), seen), ["TOKEN-024"], profile=profile)
    assert results["TOKEN-024"].status is status, explain(results)
    assert results["TOKEN-024"].message == message
    assert {method for method, _ in seen} == {"GET"}  # never an unsafe method with a token


OPAQUE = DeclaredCapabilities(operation_scopes={"GET /users/me": ("me",), "GET /users": ("admin",)})


@pytest.mark.parametrize("profile", BOTH_PROFILES)
@pytest.mark.parametrize(
    ("escalates", "status", "message"),
    [
        (
            True,
            Status.FAIL,
            "a token asked for with scope=admin REACHED GET /users, which needs it and which the default token "
            "may not reach (200)",
        ),
        (
            False,
            Status.PASS,
            "default grant me (from probing GET operations with the default token); scope=admin: a token that "
            "does not say its scope; GET /users: 403",
        ),
    ],
    ids=["escalates", "refused"],
)
def test_token_024_learns_the_default_grant_by_probing_when_nothing_says_it(
    escalates: bool, status: Status, message: str, profile: Profile
) -> None:
    seen: set[tuple[str, str]] = set()
    app = authorized_methods(twins.opaque_token_server(escalates=escalates), seen)
    results = run_checks(app, ["TOKEN-024"], profile=profile, capabilities=OPAQUE)
    assert results["TOKEN-024"].status is status, explain(results)
    assert results["TOKEN-024"].message == message
    assert seen == {("GET", "/users/me"), ("GET", "/users")}


def test_token_024_skips_when_the_user_may_be_granted_every_scope(reference: FastAPI) -> None:
    store = reference.state.reference.store
    bob = store.get(PRIMARY.username)
    store.delete(PRIMARY.username)
    store.add(bob.model_copy(update={"scopes": ["me", "items:read", "admin"]}))
    results = run_checks(reference, ["TOKEN-024"])
    assert results["TOKEN-024"].status is Status.SKIP, explain(results)
    assert results["TOKEN-024"].message == (
        "no scope the target names (admin items:read me) is beyond the primary user's reach (default grant from "
        "the login's scope: items:read me; its me answer's scopes: admin items:read me): set users.primary to a "
        "user without one of them, or declare capabilities.scopes for the operations that need them"
    )
