"""The contract itself: a valid OpenAPI 3.1 document, served verbatim, and in step with the app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from reference_impl.contract import load_contract
from reference_impl.main import DOCS_PATHS

from .contract_validation import ContractValidator, ContractViolation

REPO_ROOT = Path(__file__).resolve().parent.parent
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
TOKEN_HEADERS = {"cache-control": "no-store", "pragma": "no-cache"}
JSON = {"content-type": "application/json"}


def contract_operations() -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in load_contract()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # FastAPI >= 0.160 keeps included routers as nodes
            found += _api_routes(route.original_router.routes)
    return found


def app_operations(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (route.path, method)
        for route in _api_routes(app.routes)
        if route.path not in DOCS_PATHS
        for method in route.methods
    }


def test_contract_is_valid_openapi_3_1() -> None:
    document = load_contract()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_contract_has_a_version_and_a_changelog_entry() -> None:
    version = load_contract()["info"]["version"]
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"contract {version}" in changelog.lower(), "every contract version needs a CHANGELOG.md line"


def test_every_contract_operation_is_served_and_nothing_else(app: FastAPI) -> None:
    assert app_operations(app) == contract_operations()


PUBLIC_PATHS = ("/token", "/revoke", "/health", "/.well-known/jwks.json")
ADMIN_PATHS = ("/users",)


def test_protected_operations_use_an_http_bearer_scheme() -> None:
    document = load_contract()
    bearer = {
        name
        for name, scheme in document["components"]["securitySchemes"].items()
        if scheme["type"] == "http" and scheme["scheme"] == "bearer"
    }
    for path, method in contract_operations():
        operation = document["paths"][path][method.lower()]
        security = operation.get("security", document.get("security", []))
        if path in PUBLIC_PATHS:
            assert security == [] or path == "/token", (path, security)
            continue
        assert any(bearer & set(requirement) for requirement in security), (path, method)
        assert "401" in operation["responses"], (path, method)
        assert "403" in operation["responses"], (path, method)  # every protected operation names a scope
        assert all(requirement for requirement in security), (path, method, security)
        if path in ADMIN_PATHS:
            assert all(names == ["admin"] for requirement in security for names in requirement.values()), (path, method)


def test_every_scope_an_operation_needs_is_a_scope_the_server_defines() -> None:
    from reference_impl.scopes import KNOWN_SCOPES

    document = load_contract()
    defined = document["components"]["securitySchemes"]["oauth2Password"]["flows"]["password"]["scopes"]
    assert tuple(defined) == KNOWN_SCOPES
    assert document["components"]["schemas"]["Scope"]["enum"] == list(KNOWN_SCOPES)
    for path, method in contract_operations():
        for requirement in document["paths"][path][method.lower()].get("security", []):
            for names in requirement.values():
                assert set(names) <= set(KNOWN_SCOPES), (path, method, names)


def test_served_openapi_json_is_the_contract(raw_client: TestClient) -> None:
    response = raw_client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == load_contract()


def test_swagger_ui_is_served_and_points_at_the_contract(raw_client: TestClient) -> None:
    response = raw_client.get("/docs")
    assert response.status_code == 200
    assert "/openapi.json" in response.text
    assert "/docs/oauth2-redirect" in response.text
    assert raw_client.get("/docs/oauth2-redirect").status_code == 200


INSUFFICIENT = 'Bearer realm="r", error="insufficient_scope", error_description="needs admin"'
ADMIN_BODY = b'{"detail":"needs admin","error":"insufficient_scope"}'


@pytest.mark.parametrize(
    ("method", "path", "status", "headers", "body", "fragment"),
    [
        ("GET", "/users/me", 200, {"cache-control": "no-store"}, b'{"username":"x"}', "email"),
        ("GET", "/users/me", 200, {}, b"{}", "Cache-Control is required"),
        ("GET", "/users/me", 500, {}, b"", "status not documented"),
        ("GET", "/nowhere", 200, {}, b"", "no such operation"),
        (
            "GET",
            "/users/me",
            200,
            {"cache-control": "private"},
            b'{"username":"x","email":null,"full_name":null,"disabled":false,"scopes":[],"hashed_password":"h"}',
            "hashed_password",
        ),
        (
            "GET",
            "/users/me",
            200,
            {"cache-control": "private"},
            b'{"username":"x","email":null,"full_name":null,"disabled":false,"scopes":"me"}',
            "scopes",
        ),
        (
            "GET",
            "/users",
            200,
            {"cache-control": "private"},
            b'[{"username":"x","email":null,"full_name":null,"disabled":false,"scopes":["root"]}]',
            "root",
        ),
        ("GET", "/users/me", 401, {"www-authenticate": "Bearer"}, b'{"detail":"x"}', "WWW-Authenticate"),
        ("GET", "/users", 403, {"www-authenticate": INSUFFICIENT}, ADMIN_BODY, "WWW-Authenticate"),  # no scope=
        ("GET", "/users", 403, {"www-authenticate": INSUFFICIENT + ', scope="admin"'}, b'{"error":"x"}', "detail"),
        ("POST", "/revoke", 200, {"cache-control": "no-store"}, b'{"revoked":true}', "without a body"),
        ("POST", "/revoke", 200, {}, b"", "Cache-Control is required"),
        ("POST", "/revoke", 204, {"cache-control": "no-store"}, b"", "status not documented"),
        (
            "POST",
            "/revoke",
            400,
            {"cache-control": "no-store"},
            b'{"error":"invalid_token"}',
            "invalid_token",
        ),
        ("POST", "/token", 200, TOKEN_HEADERS, b'{"access_token":"a","token_type":"bearer","expires_in":1,"x":1}', "x"),
        ("POST", "/users", 409, {}, b'{"error":"exists"}', "detail"),
    ],
)
def test_the_contract_validator_rejects_what_the_contract_forbids(
    contract_validator: ContractValidator,
    method: str,
    path: str,
    status: int,
    headers: dict[str, Any],
    body: bytes,
    fragment: str,
) -> None:
    headers = {"content-type": "application/json", **headers}
    with pytest.raises(ContractViolation, match=fragment):
        contract_validator.validate(method, path, status, httpx.Headers(headers), body)


@pytest.mark.parametrize(
    ("method", "path", "status", "headers", "body"),
    [
        ("POST", "/revoke", 200, {"cache-control": "no-store", "pragma": "no-cache"}, b""),
        ("GET", "/users", 403, {**JSON, "www-authenticate": INSUFFICIENT + ', scope="admin"'}, ADMIN_BODY),
        (
            "POST",
            "/token",
            200,
            {**JSON, **TOKEN_HEADERS},
            b'{"access_token":"a","token_type":"bearer","expires_in":1,"refresh_token":"r","scope":"me"}',
        ),
    ],
)
def test_the_contract_validator_accepts_what_the_contract_allows(
    contract_validator: ContractValidator, method: str, path: str, status: int, headers: dict[str, Any], body: bytes
) -> None:
    # Without this, every rejection above could pass for the wrong reason.
    contract_validator.validate(method, path, status, httpx.Headers(headers), body)
