"""Swagger UI at ``/docs`` works with no network: its files come with the install, and a real browser logs in with it.

The browser test runs ``jwt-reference serve --dev --demo-users`` and a headless chromium that reaches nothing
but loopback (tests/browser.py). It logs in through Authorize (the password flow), calls ``GET /users/me``,
then refreshes and revokes through "Try it out" on ``POST /token`` and ``POST /revoke``: Swagger UI's
Authorize keeps only the access token (it never shows nor uses the refresh token), so the refresh token
comes from a password grant made in the page itself. Screenshots of each step go to
``test-artifacts/swagger-ui/`` (tokens masked).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reference_impl import Settings, create_app, docs_ui
from reference_impl.contract import load_contract
from reference_impl.docs_ui import ASSETS, ASSETS_DIR, DOCS_CONTRACT_URL, REDIRECT_URL
from reference_impl.errors import InstallError

from ..browser import browser, console_errors
from ..server_process import StartServer, server_env, start_server
from .swagger_ui_page import SwaggerUI

__all__ = ["browser", "start_server"]  # the fixtures, imported for the tests below

ATTRIBUTE = re.compile(r'(?:src|href)="([^"]*)"')  # what the page loads by itself
QUOTED = re.compile(r"'([^']*)'")  # the strings Swagger UI is configured with: the contract, the redirect page
CONTENT_TYPES = {
    "/docs/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "/docs/swagger-ui.css": "text/css; charset=utf-8",
    "/docs/favicon.png": "image/png",
    DOCS_CONTRACT_URL: "application/json",
    REDIRECT_URL: "text/html; charset=utf-8",
}


def page_references(html: str) -> set[str]:
    return set(ATTRIBUTE.findall(html)) | set(QUOTED.findall(html))


def test_docs_page_loads_only_local_files_each_served_with_its_type(raw_client: TestClient) -> None:
    page = raw_client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "http://" not in page.text and "https://" not in page.text
    assert page_references(page.text) == set(CONTENT_TYPES)  # all local: none is absolute nor protocol-relative
    for url, content_type in CONTENT_TYPES.items():
        answer = raw_client.get(url)
        assert (url, answer.status_code, answer.headers["content-type"]) == (url, 200, content_type)
    for url, (name, _) in ASSETS.items():  # the installed files, as they are
        assert raw_client.get(url).content == (ASSETS_DIR / name).read_bytes()
    assert b"SwaggerUIBundle" in raw_client.get("/docs/swagger-ui-bundle.js").content


def test_a_missing_swagger_ui_file_stops_the_server_before_it_opens_anything(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(docs_ui, "ASSETS_DIR", tmp_path / "static")
    with pytest.raises(InstallError, match=r"swagger-ui-bundle\.js is missing: reinstall"):
        create_app(settings)
    assert not settings.database.exists()


def test_oauth2_redirect_page_loads_nothing(raw_client: TestClient) -> None:
    page = raw_client.get(REDIRECT_URL).text
    assert "window.opener.swaggerUIRedirectOauth2" in page
    assert ATTRIBUTE.findall(page) == []
    assert "http://" not in page and "https://" not in page


def test_docs_contract_is_the_contract_with_this_server_first(raw_client: TestClient) -> None:
    """A relative server, so Try it out reaches the server the page came from, whatever its host and port."""
    contract = load_contract()
    served = raw_client.get(DOCS_CONTRACT_URL).json()
    assert (
        served["servers"]
        == [{"url": "/", "description": "This server (the one serving these docs)."}] + contract["servers"]
    )
    assert {**served, "servers": contract["servers"]} == contract
    assert raw_client.get("/openapi.json").json() == contract  # the contract itself stays verbatim


@pytest.mark.e2e
def test_the_browser_catches_a_page_that_needs_the_network(browser: Any) -> None:
    """The guard of the test below can fail: a page loading a script from off loopback is seen and reported."""
    browser.get("data:text/html,<script src='http://assets.example.invalid/ui.js'></script>")
    page = SwaggerUI(browser, "")
    assert page.requests_off_loopback() == ["http://assets.example.invalid/ui.js"]
    assert any("assets.example.invalid/ui.js" in error for error in console_errors(browser))


@pytest.mark.e2e
def test_swagger_ui_logs_in_and_calls_the_api_with_no_network(
    browser: Any, start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server(server_env(tmp_path / "users.db", None), "--dev", "--demo-users")
    page = SwaggerUI(browser, server.base_url)

    page.open()
    page.screenshot("01-docs")
    assert {"/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", DOCS_CONTRACT_URL} <= set(page.resources())

    page.authorize_password("johndoe", "secret")
    assert page.auth_errors() == []
    page.screenshot("02-authorized")
    page.close_dialog()
    assert page.authorized()

    users_me = page.operation("users", "readUsersMe")
    me = page.execute(users_me)
    page.screenshot("03-users-me")
    assert me.status == 200, me.body
    assert me.json()["username"] == "johndoe"

    page.typed_secrets.append("secret")
    token = page.operation("auth", "issueToken")
    page.set_body(token, {"grant_type": "password", "username": "johndoe", "password": "secret"})
    login = page.execute(token)
    assert login.status == 200
    first_refresh = login.json()["refresh_token"]
    page.secrets.append(first_refresh)
    page.screenshot("04-password-grant")

    page.set_body(token, {"grant_type": "refresh_token", "refresh_token": first_refresh})
    refreshed = page.execute(token)
    assert refreshed.status == 200
    second_refresh = refreshed.json()["refresh_token"]
    page.secrets.append(second_refresh)
    assert second_refresh != first_refresh and refreshed.json()["token_type"].lower() == "bearer"
    page.screenshot("05-refreshed")

    revoke = page.operation("auth", "revokeToken")
    page.set_form_field(revoke, "token", second_refresh)
    page.set_form_field(revoke, "token_type_hint", "refresh_token")
    revoked = page.execute(revoke)
    page.screenshot("06-revoked")
    assert revoked.status == 200

    page.set_body(token, {"grant_type": "refresh_token", "refresh_token": second_refresh})
    refused = page.execute(token)
    page.screenshot("07-revoked-token-refused")
    assert (refused.status, refused.json()["error"]) == (400, "invalid_grant")

    assert page.execute(users_me).status == 200  # the Authorize login is another grant: still valid

    assert page.requests_off_loopback() == []
    # Chromium logs every 4xx answer to a page's request as an error: the refused refresh above is the only one.
    assert console_errors(browser) == [
        f"{server.base_url}/token - Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
