"""POST /token with grant_type=refresh_token: rotation, reuse detection (RFC 9700 §4.14.2), expiry, scope."""

from __future__ import annotations

import threading
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reference_impl.grants import token_digest
from reference_impl.security import REVOKED

from ..conftest import PASSWORD, AppFactory, bearer, password_grant, refresh, validated_client

INVALID_REFRESH = {"error": "invalid_grant", "error_description": "The refresh token is invalid"}


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def assert_invalid_refresh(response: Any) -> None:
    assert response.status_code == 400, response.text
    assert response.json() == INVALID_REFRESH
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def assert_revoked(client: TestClient, access_token: str) -> None:
    response = client.get("/users/me", headers=bearer(access_token))
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": REVOKED, "error": "invalid_token"}


def test_a_password_grant_carries_an_opaque_refresh_token(client: TestClient, app: FastAPI) -> None:
    body = password_grant(client)
    token = body["refresh_token"]
    assert len(token) >= 43  # 32 random bytes, base64url
    with pytest.raises(jwt.DecodeError):
        jwt.get_unverified_header(token)
    record = app.state.reference.grants.find(token)
    assert record is not None
    assert record.username == "bob"
    assert record.scope == ("me", "items:read")
    assert record.family_id == claims_of(body["access_token"])["sid"]
    assert not record.used


def test_a_refresh_issues_a_new_access_token_and_a_new_refresh_token(client: TestClient, app: FastAPI) -> None:
    first = password_grant(client)
    response = refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    second = response.json()
    assert second["token_type"] == "bearer"
    assert second["expires_in"] == app.state.reference.settings.access_token_ttl
    assert second["scope"] == "me items:read"
    assert second["refresh_token"] not in (first["refresh_token"], second["access_token"])
    assert second["access_token"] != first["access_token"]
    old, new = claims_of(first["access_token"]), claims_of(second["access_token"])
    assert new["sid"] == old["sid"]  # the same family
    assert new["jti"] != old["jti"]
    assert new["sub"] == "bob"
    assert new["scope"] == "me items:read"
    me = client.get("/users/me", headers=bearer(second["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "bob"
    # Rotation alone revokes nothing: the earlier access token keeps working until it expires.
    assert client.get("/users/me", headers=bearer(first["access_token"])).status_code == 200


def test_each_refresh_token_of_a_chain_works_once(client: TestClient) -> None:
    token = password_grant(client)["refresh_token"]
    seen = {token}
    for _ in range(5):
        response = refresh(client, token)
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]
        assert token not in seen
        seen.add(token)


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(client: TestClient) -> None:
    first = password_grant(client)
    second = refresh(client, first["refresh_token"]).json()
    third = refresh(client, second["refresh_token"]).json()
    other_family = password_grant(client)

    assert_invalid_refresh(refresh(client, first["refresh_token"]))  # the reuse

    # Every access token of the family is refused now, and the newest refresh token too.
    for access_token in (first["access_token"], second["access_token"], third["access_token"]):
        assert_revoked(client, access_token)
    assert_invalid_refresh(refresh(client, third["refresh_token"]))
    assert_invalid_refresh(refresh(client, second["refresh_token"]))
    # Another login of the same user is another family: untouched.
    assert client.get("/users/me", headers=bearer(other_family["access_token"])).status_code == 200
    assert refresh(client, other_family["refresh_token"]).status_code == 200


def test_the_revocation_of_a_family_reaches_access_tokens_already_in_the_verify_cache(client: TestClient) -> None:
    first = password_grant(client)
    assert client.get("/users/me", headers=bearer(first["access_token"])).status_code == 200  # now cached
    refresh(client, first["refresh_token"])
    assert_invalid_refresh(refresh(client, first["refresh_token"]))
    assert_revoked(client, first["access_token"])


def test_unknown_used_and_expired_refresh_tokens_get_one_identical_answer(
    client: TestClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    grants = app.state.reference.grants
    used = password_grant(client)["refresh_token"]
    refresh(client, used)
    expiring = password_grant(client)["refresh_token"]
    answers = [refresh(client, "x" * 43), refresh(client, used)]
    real_clock = grants.clock
    monkeypatch.setattr(grants, "clock", lambda: real_clock() + grants.refresh_token_ttl + 1)
    answers.append(refresh(client, expiring))
    for response in answers:
        assert_invalid_refresh(response)
    assert len({(r.status_code, r.content) for r in answers}) == 1


def test_a_refresh_token_expires_refresh_token_ttl_seconds_after_its_issue(
    make_app: AppFactory, contract_validator: Any
) -> None:
    app = make_app(refresh_token_ttl=60)
    grants = app.state.reference.grants
    now = [1_700_000_000.0]
    grants.clock = lambda: now[0]
    with validated_client(app, contract_validator) as client:
        first = password_grant(client)["refresh_token"]
        now[0] += 59
        response = refresh(client, first)
        assert response.status_code == 200, response.text
        second = response.json()["refresh_token"]
        now[0] += 59  # the successor lives 60 s from its own issue, not from the login
        third = refresh(client, second).json()["refresh_token"]
        now[0] += 60
        assert_invalid_refresh(refresh(client, third))
        record = grants.find(third)
        assert record is not None
        assert not record.used  # refused for its age: not spent, and its family not revoked
        assert not grants.is_revoked("no-such-jti", record.family_id)


def test_a_refresh_token_is_not_an_access_token(client: TestClient) -> None:
    token = password_grant(client)["refresh_token"]
    response = client.get("/users/me", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"


def test_an_access_token_is_not_a_refresh_token(client: TestClient) -> None:
    body = password_grant(client)
    assert_invalid_refresh(refresh(client, body["access_token"]))
    assert client.get("/users/me", headers=bearer(body["access_token"])).status_code == 200  # nothing revoked


def test_a_refresh_may_narrow_the_scope_and_the_family_keeps_the_original_grant(client: TestClient) -> None:
    first = password_grant(client)
    narrowed = refresh(client, first["refresh_token"], scope="me")
    assert narrowed.status_code == 200, narrowed.text
    body = narrowed.json()
    assert body["scope"] == "me"
    assert claims_of(body["access_token"])["scope"] == "me"
    assert client.get("/users/me", headers=bearer(body["access_token"])).status_code == 200
    assert client.get("/protected-resource", headers=bearer(body["access_token"])).status_code == 403
    # RFC 6749 §6: the successor's scope is the original grant, so the next refresh may ask for all of it.
    again = refresh(client, body["refresh_token"])
    assert again.status_code == 200, again.text
    assert again.json()["scope"] == "me items:read"


def test_a_refresh_may_not_widen_the_scope_and_the_refusal_spends_nothing(client: TestClient) -> None:
    first = password_grant(client, "johndoe", "secret", scope="me")
    for scope in ("me items:read", "admin", "items:read"):
        response = refresh(client, first["refresh_token"], scope=scope)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_scope"
        assert "original grant" in response.json()["error_description"]
    unknown = refresh(client, first["refresh_token"], scope="me write")
    assert unknown.json()["error"] == "invalid_scope"
    response = refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "me"


@pytest.mark.parametrize("data", [{}, {"refresh_token": ""}], ids=["missing", "empty"])
def test_a_refresh_without_a_refresh_token_is_invalid_request(client: TestClient, data: dict[str, str]) -> None:
    response = client.post("/token", data={"grant_type": "refresh_token", **data})
    assert response.status_code == 400, response.text
    assert response.json() == {"error": "invalid_request", "error_description": "Missing parameter: refresh_token"}


def test_a_repeated_refresh_token_is_invalid_request_and_spends_neither(client: TestClient, app: FastAPI) -> None:
    one, two = password_grant(client)["refresh_token"], password_grant(client)["refresh_token"]
    body = f"grant_type=refresh_token&refresh_token={one}&refresh_token={two}"
    response = client.post("/token", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert refresh(client, one).status_code == 200
    assert refresh(client, two).status_code == 200


def test_a_refresh_ignores_password_grant_parameters(client: TestClient) -> None:
    token = password_grant(client)["refresh_token"]
    response = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": token, "username": "johndoe", "password": "secret"},
    )
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["sub"] == "bob"


@pytest.mark.parametrize("change", ["disable", "delete"])
def test_a_refresh_for_a_disabled_or_deleted_user_is_invalid_grant(
    client: TestClient, app: FastAPI, change: str
) -> None:
    token = password_grant(client)["refresh_token"]
    store = app.state.reference.store
    store.set_disabled("bob") if change == "disable" else store.delete("bob")
    assert_invalid_refresh(refresh(client, token))


def test_refreshes_are_not_counted_by_the_login_throttle(make_app: AppFactory, contract_validator: Any) -> None:
    app = make_app(login_max_failures=2, login_max_failures_per_client=3)
    with validated_client(app, contract_validator) as client:
        token = password_grant(client)["refresh_token"]
        for _ in range(5):
            assert_invalid_refresh(refresh(client, "not-a-refresh-token"))
        assert password_grant(client)["access_token"]  # neither the username nor the client is throttled
        for _ in range(3):
            client.post("/token", data={"grant_type": "password", "username": "bob", "password": "wrong"})
        throttled = client.post("/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD})
        assert throttled.status_code == 429
        # A refresh proves possession of a grant, not a password guess: throttling does not apply to it.
        assert refresh(client, token).status_code == 200


def test_two_concurrent_refreshes_with_one_token_cannot_both_succeed(client: TestClient) -> None:
    token = password_grant(client)["refresh_token"]
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def use() -> None:
        barrier.wait()
        results.append(refresh(client, token))

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(r.status_code for r in results) == [200, 400]
    loser = next(r for r in results if r.status_code == 400)
    assert loser.json() == INVALID_REFRESH
    # The loser presented a spent token: a reuse, so the family (and the winner's successor) is revoked.
    winner = next(r for r in results if r.status_code == 200).json()
    assert_invalid_refresh(refresh(client, winner["refresh_token"]))
    assert_revoked(client, winner["access_token"])


def test_losing_the_race_between_the_lookup_and_the_rotation_counts_as_a_reuse(
    client: TestClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interleaving of two processes (or connections) on one database: the loser read the token
    # unused, and the winner spent it before the loser's rotation.
    grants = app.state.reference.grants
    token = password_grant(client)["refresh_token"]
    stale = grants.find(token)
    winner = refresh(client, token).json()
    monkeypatch.setattr(grants, "find", lambda presented: stale if presented == token else None)
    assert_invalid_refresh(refresh(client, token))
    monkeypatch.undo()
    assert_invalid_refresh(refresh(client, winner["refresh_token"]))
    assert_revoked(client, winner["access_token"])


def test_refresh_tokens_are_stored_only_as_sha256_digests(client: TestClient, app: FastAPI) -> None:
    token = password_grant(client)["refresh_token"]
    grants = app.state.reference.grants
    if grants.path is not None:  # SQLite: nowhere in the file (or its WAL)
        raw = b"".join(path.read_bytes() for path in grants.path.parent.glob(grants.path.name + "*"))
        assert token.encode() not in raw
    rows = grants.fetchall("SELECT * FROM refresh_tokens")
    assert not [value for row in rows for value in row if token in str(value)]
    hashes = [row[0] for row in grants.fetchall("SELECT token_hash FROM refresh_tokens")]
    assert hashes == [token_digest(token)]
    assert len(hashes[0]) == 64


def test_refresh_tokens_and_revocations_survive_a_restart(make_app: AppFactory, contract_validator: Any) -> None:
    first_app = make_app()
    with validated_client(first_app, contract_validator) as client:
        kept = password_grant(client)
        reused = password_grant(client)
        refresh(client, reused["refresh_token"])
        assert_invalid_refresh(refresh(client, reused["refresh_token"]))
    first_app.state.reference.close()

    second_app = make_app()  # the same database file and secret
    with validated_client(second_app, contract_validator) as client:
        assert_revoked(client, reused["access_token"])
        response = refresh(client, kept["refresh_token"])
        assert response.status_code == 200, response.text
        assert claims_of(response.json()["access_token"])["sid"] == claims_of(kept["access_token"])["sid"]
