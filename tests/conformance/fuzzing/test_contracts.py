"""Which contract fuzz follows by default, and the operations a target does not have."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient

from conformance.capabilities import Capabilities
from conformance.client import Client, Redactor
from conformance.config import PASSWORD_ENV, Paths, RunConfig
from conformance.contract import default_contract_path, load_contract, operations
from conformance.fuzzing import build_fuzz_config
from conformance.fuzzing.collector import Collector
from conformance.fuzzing.contracts import (
    BEARER_CHALLENGE,
    JSON,
    choose_contract,
    core_document,
    with_implied_responses,
)
from conformance.fuzzing.model import AbsentOperation, Finding

from ..harness import BASE_URL, PRIMARY

KIT = load_contract(default_contract_path())
CONFIG = RunConfig(base_url="http://127.0.0.1:9", primary=PRIMARY)


def labels(document: dict[str, Any]) -> list[str]:
    return [f"{method} {path}" for method, path, _ in operations(document)]


def test_the_core_document_has_the_core_operations_judged_by_the_core_rules() -> None:
    document, left_out = core_document(KIT, CONFIG, Capabilities())
    assert labels(document) == ["POST /token", "GET /users/me", "GET /protected-resource"] and left_out == ()
    token = document["paths"]["/token"]["post"]
    body = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert body == {"$ref": "#/components/schemas/PasswordGrantRequest"}  # no refresh grant without the capability
    assert token["responses"]["200"]["content"] == {JSON: {"schema": {}}}  # RFC 6749 §5.1: JSON, any members
    assert set(token["responses"]["200"]["headers"]) == {"Cache-Control"}  # Pragma is a SHOULD (RFC 9111 §5.4)
    assert token["responses"]["400"]["content"] == {JSON: {"schema": {}}} and "headers" not in token["responses"]["400"]
    me = document["paths"]["/users/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert me["responses"]["200"] == {
        "description": "The user the access token was issued to.",
        "content": {"*/*": {"schema": {}}},
    }
    assert me["responses"]["401"]["headers"] == {"WWW-Authenticate": BEARER_CHALLENGE}
    assert "headers" not in me["responses"]["403"]  # 403 for a missing scope owes no challenge here


def test_the_core_document_follows_the_configured_paths_and_the_claimed_capabilities() -> None:
    config = replace(CONFIG, paths=Paths(token="/auth/token", me="/me", protected=("/api/a", "/api/b")))
    claimed = Capabilities(
        refresh_tokens=True,
        revocation_path="/oauth/revoke",
        logout_path="/logout",
        operation_scopes={
            "GET /users": ("admin",),
            "GET /stats": ("ops",),
            "DELETE /users/x": ("admin",),
            "GET /me": ("me",),
        },
    )
    document, left_out = core_document(KIT, config, claimed)
    assert labels(document) == [
        "POST /auth/token",
        "GET /me",
        "GET /api/a",
        "GET /api/b",
        "POST /oauth/revoke",
        "GET /users",
        "GET /stats",
    ]
    assert document["paths"]["/auth/token"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"][
        "schema"
    ] == {"$ref": "#/components/schemas/TokenRequest"}
    revoke = document["paths"]["/oauth/revoke"]["post"]
    assert revoke["security"] == [] and "headers" not in revoke["responses"]["200"]  # RFC 7009 asks no no-store
    assert revoke["responses"]["400"]["content"] == {JSON: {"schema": {}}}  # RFC 7009 §2.2.1
    assert document["paths"]["/stats"]["get"]["security"] == [{"bearerAuth": ["ops"]}]
    assert document["paths"]["/me"]["get"]["security"] == [{"bearerAuth": ["me"]}]
    assert document["components"]["securitySchemes"]["oauth2Password"]["flows"]["password"]["tokenUrl"] == "/auth/token"
    assert left_out == (
        "POST /logout (logout) is not fuzzed: it would end the fuzzer's own token",
        "DELETE /users/x (capabilities.scopes) is not fuzzed: the kit's contract does not describe its request; "
        "fuzz it with your own --contract",
    )


FASTAPI_STYLE: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/token": {"post": {"responses": {"200": {"description": "ok"}, "422": {"description": "invalid"}}}},
        "/items": {
            "get": {
                "security": [{"OAuth2PasswordBearer": []}],
                "responses": {"200": {"description": "ok"}},
            }
        },
        "/documented": {
            "get": {
                "security": [{"OAuth2PasswordBearer": []}],
                "responses": {"200": {"description": "ok"}, "401": {"description": "no"}},
            }
        },
        "/open": {"get": {"responses": {"200": {"description": "ok"}}}},
    },
    "components": {
        "securitySchemes": {"OAuth2PasswordBearer": {"type": "oauth2", "flows": {"password": {"tokenUrl": "token"}}}}
    },
}


def test_a_document_that_lists_no_refusal_gets_the_ones_the_rfcs_allow() -> None:
    document = with_implied_responses(FASTAPI_STYLE, CONFIG)
    paths = document["paths"]
    assert set(paths["/token"]["post"]["responses"]) == {"200", "422", "400", "401", "429"}
    assert set(paths["/items"]["get"]["responses"]) == {"200", "401", "403"}
    assert paths["/items"]["get"]["responses"]["401"]["headers"] == {"WWW-Authenticate": BEARER_CHALLENGE}
    assert set(paths["/documented"]["get"]["responses"]) == {"200", "401"}  # it says how it refuses
    assert set(paths["/open"]["get"]["responses"]) == {"200"}  # no security, nothing implied
    assert "400" not in FASTAPI_STYLE["paths"]["/token"]["post"]["responses"]  # the input is not changed


def test_the_kits_contract_lists_its_refusals_so_nothing_is_implied() -> None:
    assert with_implied_responses(KIT, CONFIG) == KIT


def recorder(label: str, answers: Iterable[tuple[str, int]]) -> Any:
    interactions = {
        str(i): SimpleNamespace(request=SimpleNamespace(method=method), response=SimpleNamespace(status_code=status))
        for i, (method, status) in enumerate(answers)
    }
    return SimpleNamespace(label=label, interactions=interactions, checks={})


def finding(operation: str, check: str) -> Finding:
    return Finding(operation, check, "ST000", "t", "m", "coverage", "curl x")


@pytest.mark.parametrize(
    ("label", "answers", "absent"),
    [
        ("GET /health", [("GET", 404)] * 3, True),
        ("GET /health", [("GET", 404), ("OPTIONS", 204)], True),  # a CORS layer answers OPTIONS on any path
        ("POST /revoke", [("POST", 404), ("POST", 400), ("POST", 415)], True),  # a body parser answers first
        ("GET /users", [("GET", 401), ("GET", 404)], True),  # an authentication layer answers first
        ("POST /users", [("POST", 405)] * 2, True),  # the path is there, not the method
        ("POST /users", [("POST", 404), ("POST", 500)], True),  # the 5xx stays a finding
        ("GET /users", [("GET", 403)] * 3 + [("PUT", 404)], False),  # the 404 was an undeclared-method probe
        ("GET /users/me", [("GET", 404), ("GET", 200)], False),
        ("GET /users/me", [("GET", 404), ("GET", 422)], False),
        ("GET /users/{id}", [("GET", 404)] * 3, False),  # no such user, not no such operation
        ("GET /x", [], False),
    ],
)
def test_an_operation_is_absent_when_only_404_or_405_and_answers_before_routing_come_back(
    label: str, answers: list[tuple[str, int]], absent: bool
) -> None:
    collector = Collector(Redactor())
    collector.scenario("coverage", recorder(label, answers))
    found = collector.absent_operations([label])
    assert [a.operation for a in found] == ([label] if absent else [])


def test_the_findings_of_an_absent_operation_are_left_out_but_its_5xx() -> None:
    collector = Collector(Redactor())
    collector.scenario("coverage", recorder("GET /health", [("GET", 404), ("GET", 500)]))
    collector.scenario("coverage", recorder("GET /users/me", [("GET", 200)]))
    for f in (
        finding("GET /health", "status_code_conformance"),
        finding("GET /health", "not_a_server_error"),
        finding("GET /users/me", "content_type_conformance"),
    ):
        collector.findings[(f.operation, f.check, "", "")] = f
    absent = collector.absent_operations(["GET /health", "GET /users/me"])
    assert absent == [AbsentOperation("GET /health", requests=2, not_found=1, left_out=1)]
    kept = {(f.operation, f.check) for f in collector.kept(absent)}
    assert kept == {("GET /health", "not_a_server_error"), ("GET /users/me", "content_type_conformance")}


def serving_openapi(status: int, body: bytes, media: str = "application/json") -> Client:
    """A client of an in-process app whose ``/openapi.json`` answers ``status`` and ``body``."""
    app = FastAPI(openapi_url=None)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return Response(body, status_code=status, media_type=media)

    return Client(BASE_URL, http=TestClient(app, base_url=BASE_URL))


@pytest.mark.parametrize(
    ("status", "body", "media"),
    [
        (404, b'{"detail": "Not Found"}', JSON),
        (200, b"<html>a catch-all page</html>", "text/html"),
        (200, b'{"openapi": "3.1.0", "info": {}}', JSON),  # no paths: not a document to fuzz
    ],
)
def test_without_a_served_document_the_core_operations_are_fuzzed(status: int, body: bytes, media: str) -> None:
    contract = choose_contract(CONFIG, serving_openapi(status, body, media))
    assert contract.source == "core" and contract.core_rules and contract.location.startswith("the kit's contract ")
    assert labels(contract.document) == ["POST /token", "GET /users/me", "GET /protected-resource"]


def test_a_served_document_is_the_contract() -> None:
    body = json.dumps(FASTAPI_STYLE).encode()
    contract = choose_contract(CONFIG, serving_openapi(200, body))
    assert contract.source == "served" and not contract.core_rules
    assert contract.location == f"{BASE_URL}/openapi.json" and labels(contract.document) == labels(FASTAPI_STYLE)
    assert "401" in contract.document["paths"]["/items"]["get"]["responses"]  # read with the implied refusals


def test_the_kits_contract_at_a_version_is_a_contract_of_the_target() -> None:
    config = build_fuzz_config(
        {"base_url": "http://127.0.0.1:9", "username": "bob", "contract": "kit:1.3.0"}, env={PASSWORD_ENV: "p"}
    )
    contract = choose_contract(config.target, serving_openapi(404, b""))
    assert contract.source == "contract" and contract.document["info"]["version"] == "1.3.0"
    assert contract.description.endswith("1.3.0.yaml (--contract): all of it")
