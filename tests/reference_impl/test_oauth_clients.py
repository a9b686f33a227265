"""Real OAuth 2.0 client libraries against ``jwt-reference serve``: the password grant, ``/users/me``, refresh, revoke.

Authlib's ``OAuth2Session`` and requests-oauthlib's ``OAuth2Session`` with oauthlib's ``LegacyApplicationClient``
(the password grant) are what Python clients of such an API use. Each logs in as a public client (no client
secret), calls ``GET /users/me`` with the token it got, refreshes (a new refresh token: rotation), revokes the
refresh token (RFC 7009) and then finds its family refused: the rotated-out and revoked refresh tokens are
``invalid_grant`` and the family's access token is 401. A wrong password reaches each library as its own
``invalid_grant`` error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session as AuthlibSession, OAuthError
from oauthlib.oauth2 import InvalidGrantError, LegacyApplicationClient
from requests_oauthlib import OAuth2Session as RequestsOAuthlibSession

from ..server_process import Server, server_env

pytestmark = pytest.mark.e2e

TIMEOUT = 10.0
CLIENT_ID = "docs-example-client"  # a public client: the server authenticates none


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory: Path = tmp_path_factory.mktemp("oauth-clients")
    process = Server(server_env(directory / "users.db", None), ("--dev", "--demo-users"), directory / "log")
    try:
        yield process.wait_ready()
    finally:
        process.stop()


def authlib_session(token: dict[str, Any] | None = None) -> AuthlibSession:
    session = AuthlibSession(
        client_id=CLIENT_ID,
        token_endpoint_auth_method="none",
        revocation_endpoint_auth_method="none",
        token=token,
        default_timeout=TIMEOUT,
    )
    session.trust_env = False  # 127.0.0.1 only, whatever proxy the environment names
    return session


def requests_oauthlib_session(monkeypatch: pytest.MonkeyPatch) -> RequestsOAuthlibSession:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # oauthlib refuses http:// otherwise; loopback only here
    session = RequestsOAuthlibSession(client=LegacyApplicationClient(client_id=CLIENT_ID))
    session.trust_env = False
    return session


def test_authlib_logs_in_reads_users_me_refreshes_and_revokes(server: Server) -> None:
    token_url, revoke_url = server.base_url + "/token", server.base_url + "/revoke"
    session = authlib_session()
    first = session.fetch_token(token_url, grant_type="password", username="johndoe", password="secret")
    assert first["token_type"].lower() == "bearer" and first["scope"] == "me items:read"

    me = session.get(server.base_url + "/users/me")
    assert (me.status_code, me.json()["username"]) == (200, "johndoe")

    second = session.refresh_token(token_url, refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert session.get(server.base_url + "/users/me").status_code == 200  # the session now sends the new token

    revoked = session.revoke_token(revoke_url, token=second["refresh_token"], token_type_hint="refresh_token")
    assert (revoked.status_code, revoked.content) == (200, b"")

    assert session.get(server.base_url + "/users/me").status_code == 401  # the family's access token is revoked too
    for refresh_token in (first["refresh_token"], second["refresh_token"]):
        with pytest.raises(OAuthError) as refused:
            authlib_session().refresh_token(token_url, refresh_token=refresh_token)
        assert refused.value.error == "invalid_grant"


def test_authlib_sees_a_wrong_password_as_invalid_grant(server: Server) -> None:
    with pytest.raises(OAuthError) as refused:
        authlib_session().fetch_token(
            server.base_url + "/token", grant_type="password", username="johndoe", password="not-the-password"
        )
    assert refused.value.error == "invalid_grant"


def test_requests_oauthlib_logs_in_reads_users_me_refreshes_and_revokes(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_url = server.base_url + "/token"
    session = requests_oauthlib_session(monkeypatch)
    first = session.fetch_token(
        token_url, username="johndoe", password="secret", include_client_id=True, timeout=TIMEOUT
    )
    assert first["token_type"].lower() == "bearer" and first["scope"] == ["me", "items:read"]

    me = session.get(server.base_url + "/users/me", timeout=TIMEOUT)
    assert (me.status_code, me.json()["username"]) == (200, "johndoe")

    second = session.refresh_token(token_url, refresh_token=first["refresh_token"], timeout=TIMEOUT)
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    assert session.get(server.base_url + "/users/me", timeout=TIMEOUT).status_code == 200

    # requests-oauthlib has no revocation call: RFC 7009 is a plain form POST, sent here without credentials.
    with requests.Session() as plain:
        plain.trust_env = False
        revoked = plain.post(
            server.base_url + "/revoke",
            data={"token": second["refresh_token"], "token_type_hint": "refresh_token"},
            timeout=TIMEOUT,
        )
    assert (revoked.status_code, revoked.content) == (200, b"")

    assert session.get(server.base_url + "/users/me", timeout=TIMEOUT).status_code == 401
    for refresh_token in (first["refresh_token"], second["refresh_token"]):
        with pytest.raises(InvalidGrantError):
            requests_oauthlib_session(monkeypatch).refresh_token(
                token_url, refresh_token=refresh_token, timeout=TIMEOUT
            )


def test_requests_oauthlib_sees_a_wrong_password_as_invalid_grant(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidGrantError) as refused:
        requests_oauthlib_session(monkeypatch).fetch_token(
            server.base_url + "/token",
            username="johndoe",
            password="not-the-password",
            include_client_id=True,
            timeout=TIMEOUT,
        )
    assert refused.value.error == "invalid_grant"
