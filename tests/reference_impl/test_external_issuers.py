"""The reference server as a resource server: access tokens of a trusted OpenID issuer, verified against its
published keys (discovery, JWK Set, bounded refresh), beside the server's own password grant."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reference_impl.errors import SettingsError
from reference_impl.issuer_keys import key_algorithm
from reference_impl.settings import TrustedIssuer, load_settings, parse_trusted_issuers

from ..conftest import AppFactory, bearer, login
from ..jwt_craft import sign, unsigned
from ..server_process import StartServer, server_env, start_server
from .oidc_issuer import ATTACKER_JWKS_PATH, JWKS_PATH, Issuer, IssuerServer, SigningKey, free_port, new_key

__all__ = ["start_server"]  # the fixture, imported for the tests below

AUDIENCE = "resource-api"
DISCOVERY = "/.well-known/openid-configuration"
BOB = {
    "username": "bob",
    "email": "bob@example.com",
    "full_name": "Bob",
    "disabled": False,
    "scopes": ["me", "items:read"],
}


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    state = Issuer(keys=[new_key("RS256"), new_key("ES256")])
    server = IssuerServer(state)
    server.start()
    yield state
    server.stop()


ResourceApp = Callable[..., TestClient]


@pytest.fixture
def resource_client(make_app: AppFactory, issuer: Issuer, contract_validator: Any) -> ResourceApp:
    """A client of the reference app trusting ``issuer`` (refresh interval and key-set age as given)."""

    def factory(interval: int = 1, max_age: int = 300, url: str | None = None) -> TestClient:
        trusted = (TrustedIssuer(url or issuer.url, AUDIENCE),)
        app = make_app(trusted_issuers=trusted, jwks_refresh_interval=interval, jwks_max_age=max_age, issuer_timeout=2)
        client = TestClient(app, base_url="http://127.0.0.1")
        client.event_hooks = {"request": [], "response": [contract_validator.validate_response]}
        return client

    return factory


def assert_invalid_token(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


@pytest.mark.parametrize("index", [0, 1], ids=["RS256", "ES256"])
def test_a_valid_token_of_the_trusted_issuer_acts_for_the_local_user_its_sub_names(
    index: int, issuer: Issuer, resource_client: ResourceApp
) -> None:
    client = resource_client()
    token = issuer.sign(issuer.keys[index])
    me = client.get("/users/me", headers=bearer(token))
    assert me.status_code == 200 and me.json() == BOB
    resource = client.get("/protected-resource", headers=bearer(token))
    assert resource.status_code == 200 and resource.json()["user"] == {"username": "bob"}
    assert issuer.fetches == {DISCOVERY: 1, JWKS_PATH: 1}  # cached: the second request fetched nothing


def test_the_servers_own_password_grant_keeps_working_beside_it(issuer: Issuer, resource_client: ResourceApp) -> None:
    client = resource_client()
    assert client.get("/users/me", headers=bearer(login(client))).json() == BOB
    assert issuer.fetches == {}  # its own tokens never reach the issuer


def test_scopes_of_scope_and_scp_map_onto_the_scope_checks(issuer: Issuer, resource_client: ResourceApp) -> None:
    client = resource_client()
    key = issuer.keys[0]
    only_me = issuer.sign(key, scope=None, scp=["me"])
    assert client.get("/users/me", headers=bearer(only_me)).status_code == 200
    refused = client.get("/protected-resource", headers=bearer(only_me))
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    assert (
        client.get("/protected-resource", headers=bearer(issuer.sign(key, scope=None, scp="items:read"))).status_code
        == 200
    )
    none = client.get("/users/me", headers=bearer(issuer.sign(key, scope=None)))
    assert none.status_code == 403 and none.json()["error"] == "insufficient_scope"
    # A scope the local user does not hold is not granted by the token alone.
    admin = client.get("/users", headers=bearer(issuer.sign(key, scope="admin")))
    assert admin.status_code == 403 and admin.json()["error"] == "insufficient_scope"


def _public_pem(key: SigningKey) -> bytes:
    pem: bytes = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def _claims(issuer: Issuer, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "bob", "exp": now + 300, "iat": now, "scope": "me"}
    claims.update(changes)
    return claims


REFUSED: dict[str, Callable[[Issuer], str]] = {
    "wrong iss": lambda i: i.sign(i.keys[0], iss="http://127.0.0.1:1/other"),
    "iss with a trailing slash": lambda i: i.sign(i.keys[0], iss=i.url + "/"),
    "no iss": lambda i: i.sign(i.keys[0], iss=None),
    "wrong aud": lambda i: i.sign(i.keys[0], aud="another-api"),
    "no aud": lambda i: i.sign(i.keys[0], aud=None),
    "expired": lambda i: i.sign(i.keys[0], exp=int(time.time()) - 60),
    "no exp": lambda i: i.sign(i.keys[0], exp=None),
    "exp as a string": lambda i: i.sign(i.keys[0], exp=str(int(time.time()) + 300)),
    "nbf in the future": lambda i: i.sign(i.keys[0], nbf=int(time.time()) + 600),
    "no sub": lambda i: i.sign(i.keys[0], sub=None),
    "sub of no local user": lambda i: i.sign(i.keys[0], sub="mallory"),
    "typ JWT": lambda i: i.sign(i.keys[0], headers={"typ": "JWT"}),
    "unknown crit": lambda i: i.sign(i.keys[0], headers={"crit": ["exp"], "exp": 1}),
    "no kid": lambda i: i.sign(i.keys[0], headers={"kid": None}),
    "RS256 key, ES256 kid": lambda i: i.sign(i.keys[0], headers={"kid": i.keys[1].kid}),
    "alg none": lambda i: unsigned({"alg": "none", "typ": "at+jwt", "kid": i.keys[0].kid}, _claims(i)),
    "HS256 keyed with the public key (PEM)": lambda i: sign(
        {"alg": "HS256", "typ": "at+jwt", "kid": i.keys[0].kid}, _claims(i), _public_pem(i.keys[0])
    ),
    "HS256 keyed with the public JWK": lambda i: sign(
        {"alg": "HS256", "typ": "at+jwt", "kid": i.keys[0].kid}, _claims(i), json.dumps(i.keys[0].jwk())
    ),
    "signature of another key": lambda i: i.sign(new_key("RS256"), headers={"kid": i.keys[0].kid}),
    "garbage signature": lambda i: i.sign(i.keys[0])[:-8] + "AAAAAAAA",
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_token_of_the_issuer_that_is_not_valid_is_refused(
    case: str, issuer: Issuer, resource_client: ResourceApp
) -> None:
    client = resource_client()
    assert_invalid_token(client.get("/users/me", headers=bearer(REFUSED[case](issuer))))


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk"])
def test_a_key_the_token_names_is_never_fetched_nor_used(
    header: str, issuer: Issuer, resource_client: ResourceApp
) -> None:
    client = resource_client(interval=60)
    attacker = new_key("RS256")
    value: Any = issuer.url + ATTACKER_JWKS_PATH if header != "jwk" else attacker.jwk()
    for kid in (attacker.kid, issuer.keys[0].kid):  # an unknown kid, then the kid of a published key
        token = issuer.sign(attacker, headers={header: value, "kid": kid})
        assert_invalid_token(client.get("/users/me", headers=bearer(token)))
    assert issuer.fetches[ATTACKER_JWKS_PATH] == 0
    assert issuer.fetches[JWKS_PATH] == 1


def test_an_unknown_kid_refreshes_the_key_set_once_then_is_refused(
    issuer: Issuer, resource_client: ResourceApp
) -> None:
    client = resource_client(interval=1)
    assert client.get("/users/me", headers=bearer(issuer.sign(issuer.keys[0]))).status_code == 200
    time.sleep(1.1)
    stranger = issuer.sign(new_key("ES256"))
    assert_invalid_token(client.get("/users/me", headers=bearer(stranger)))
    assert issuer.fetches[JWKS_PATH] == 2  # one refresh for the unknown kid
    assert_invalid_token(client.get("/users/me", headers=bearer(stranger)))
    assert issuer.fetches[JWKS_PATH] == 2  # and no second one within the interval


def test_a_key_rotated_in_is_accepted_after_the_refresh(issuer: Issuer, resource_client: ResourceApp) -> None:
    client = resource_client(interval=1)
    assert client.get("/users/me", headers=bearer(issuer.sign(issuer.keys[0]))).status_code == 200
    rotated = new_key("ES256")
    issuer.keys.append(rotated)
    time.sleep(1.1)
    assert client.get("/users/me", headers=bearer(issuer.sign(rotated))).json() == BOB
    assert issuer.fetches[JWKS_PATH] == 2


def test_a_removed_key_is_refused_once_the_key_set_is_older_than_its_maximum_age(
    issuer: Issuer, resource_client: ResourceApp
) -> None:
    client = resource_client(interval=1, max_age=1)
    removed = issuer.keys[0]
    assert client.get("/users/me", headers=bearer(issuer.sign(removed))).status_code == 200
    issuer.keys.remove(removed)
    time.sleep(1.1)
    assert_invalid_token(client.get("/users/me", headers=bearer(issuer.sign(removed))))
    assert issuer.fetches[JWKS_PATH] == 2
    assert client.get("/users/me", headers=bearer(issuer.sign(issuer.keys[0]))).status_code == 200


def test_many_unknown_kids_at_once_cause_one_refresh(issuer: Issuer, resource_client: ResourceApp) -> None:
    client = resource_client(interval=2)
    app: FastAPI = client.app  # type: ignore[assignment]
    valid = issuer.sign(issuer.keys[0])
    strangers = [issuer.sign(new_key("ES256")) for _ in range(40)]

    async def storm() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            # A cold start under load: every request waits for the one fetch, none is refused for want of keys.
            first = await asyncio.gather(*(http.get("/users/me", headers=bearer(valid)) for _ in range(20)))
            assert [answer.status_code for answer in first] == [200] * 20
            assert issuer.fetches[JWKS_PATH] == 1
            await asyncio.sleep(2.1)
            answers = await asyncio.gather(*(http.get("/users/me", headers=bearer(t)) for t in strangers))
            answers += await asyncio.gather(*(http.get("/users/me", headers=bearer(t)) for t in strangers))
            return [answer.status_code for answer in answers]

    assert asyncio.run(storm()) == [401] * 80
    assert issuer.fetches[JWKS_PATH] == 2  # the first fetch, and one refresh for 80 unknown kids
    assert issuer.fetches[DISCOVERY] == 2


def test_an_unreachable_issuer_gives_401_and_the_servers_own_tokens_keep_working(
    issuer: Issuer, resource_client: ResourceApp
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = resource_client(url=down)
    token = issuer.sign(issuer.keys[0], iss=down)
    for _ in range(2):
        assert_invalid_token(client.get("/users/me", headers=bearer(token)))
    assert client.get("/users/me", headers=bearer(login(client))).json() == BOB


def test_the_keys_fetched_last_stay_in_use_while_the_issuer_is_down(
    issuer: Issuer, resource_client: ResourceApp
) -> None:
    client = resource_client(interval=1, max_age=1)
    token = issuer.sign(issuer.keys[1])
    assert client.get("/users/me", headers=bearer(token)).status_code == 200
    real = issuer.url
    issuer.url = real + "/elsewhere"  # the discovery document now names another issuer: the refresh fails
    time.sleep(1.1)
    assert client.get("/users/me", headers=bearer(token)).status_code == 200  # refresh refused, old keys kept
    assert issuer.fetches[DISCOVERY] == 2 and issuer.fetches[JWKS_PATH] == 1
    issuer.url = real


def test_discovery_must_name_the_configured_issuer(issuer: Issuer, resource_client: ResourceApp) -> None:
    client = resource_client()
    real = issuer.url
    issuer.url = real + "/elsewhere"  # discovery and jwks_uri now name another issuer
    token = issuer.sign(issuer.keys[0], iss=real)
    assert_invalid_token(client.get("/users/me", headers=bearer(token)))
    assert issuer.fetches == {DISCOVERY: 1}


@pytest.mark.parametrize(
    ("jwk", "algorithm"),
    [
        ({"kty": "RSA", "n": "x", "e": "AQAB"}, "RS256"),
        ({"kty": "RSA", "n": "x", "e": "AQAB", "alg": "PS256"}, "PS256"),
        ({"kty": "RSA", "n": "x", "e": "AQAB", "alg": "HS256"}, None),
        ({"kty": "RSA", "n": "x", "e": "AQAB", "alg": "none"}, None),
        ({"kty": "RSA", "n": "x", "e": "AQAB", "use": "enc"}, None),
        ({"kty": "RSA", "n": "x", "e": "AQAB", "d": "x"}, None),
        ({"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}, "ES256"),
        ({"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "alg": "ES384"}, None),
        ({"kty": "OKP", "crv": "Ed25519", "x": "x"}, "EdDSA"),
        ({"kty": "oct", "k": "c2VjcmV0"}, None),
        ({"kty": "oct", "alg": "HS256"}, None),
    ],
)
def test_the_published_key_decides_the_one_algorithm_it_verifies(jwk: dict[str, Any], algorithm: str | None) -> None:
    assert key_algorithm(jwk) == algorithm


def test_trusted_issuers_are_read_from_one_json_setting() -> None:
    raw = json.dumps([{"issuer": "https://id.example", "audience": "api", "user_claim": "preferred_username"}])
    settings = load_settings({"JWT_REF_TRUSTED_ISSUERS": raw, "JWT_REF_JWKS_REFRESH_INTERVAL": "10"})
    assert settings.trusted_issuers == (TrustedIssuer("https://id.example", "api", "preferred_username"),)
    assert settings.jwks_refresh_interval == 10
    assert load_settings({}).trusted_issuers == ()


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        '{"issuer": "https://id.example", "audience": "api"}',
        '[{"issuer": "http://id.example", "audience": "api"}]',
        '[{"issuer": "https://id.example?x=1", "audience": "api"}]',
        '[{"issuer": "https://id.example", "audience": ""}]',
        '[{"issuer": "https://id.example"}]',
        '[{"issuer": "https://id.example", "audience": "api", "jwks_uri": "https://elsewhere"}]',
        '[{"issuer": "https://id.example", "audience": "a"}, {"issuer": "https://id.example", "audience": "b"}]',
        '[{"issuer": "jwt-reference", "audience": "api"}]',
    ],
)
def test_an_invalid_trusted_issuers_setting_stops_the_start(raw: str) -> None:
    with pytest.raises(SettingsError, match="JWT_REF_TRUSTED_ISSUERS"):
        parse_trusted_issuers(raw, "jwt-reference")


def test_a_served_reference_server_trusts_the_issuer_its_environment_names(
    issuer: Issuer, tmp_path: Path, start_server: StartServer
) -> None:
    env = server_env(tmp_path / "users.db", secrets.token_urlsafe(48))
    env["JWT_REF_TRUSTED_ISSUERS"] = json.dumps([{"issuer": issuer.url, "audience": AUDIENCE}])
    server = start_server(env, "--demo-users")
    with server.client() as client:
        me = client.get("/users/me", headers=bearer(issuer.sign(issuer.keys[1], sub="johndoe")))
        assert me.status_code == 200 and me.json()["username"] == "johndoe"
        assert_invalid_token(client.get("/users/me", headers=bearer(issuer.sign(issuer.keys[1], aud="other"))))
        disabled = issuer.sign(issuer.keys[1], sub="alice")  # a demo user, disabled
        assert_invalid_token(client.get("/users/me", headers=bearer(disabled)))
        own = client.post("/token", data={"grant_type": "password", "username": "johndoe", "password": "secret"})
        assert client.get("/users/me", headers=bearer(own.json()["access_token"])).json()["username"] == "johndoe"
    assert issuer.fetches == {DISCOVERY: 1, JWKS_PATH: 1}
    server.stop_gracefully()
