"""The reference server as a resource server of a real OpenID provider: panva's oidc-provider, run with node,
issues JWT access tokens through the client_credentials grant for a resource indicator.

The provider's client is a service, and a client_credentials token names no person: its ``sub`` (and its
``client_id``) is the client's id. The server maps tokens to local users by the default claim, ``sub``, so the
service gets a local user of that very name (``jwt-reference users add``), holding the scopes it may use: the
token then acts for that user, and a token whose ``sub`` names anyone else (a person included) is not the
service's. ``client_id`` would map the same way here; ``sub`` is the claim RFC 9068 requires and every provider
sends.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ..jwt_craft import b64url, encode_segment
from ..server_process import JWT_REFERENCE, Server, server_env
from .provider_process import ProviderProcess, provider_missing

_missing = provider_missing()
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(_missing is not None, reason=_missing or "")]

CLIENT_ID = "reporting-service"
CLIENT_SECRET = secrets.token_urlsafe(32)
RESOURCE = "urn:jwt-reference:api"
SHORT_RESOURCE = "urn:jwt-reference:api:short-lived"  # the same audience; its tokens live SHORT_TTL seconds
OTHER_RESOURCE = "urn:jwt-reference:another-api"
SHORT_TTL = 3
SCOPE = "me items:read"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderProcess]:
    """The provider the reference server trusts; it signs with an RS256 key it generates at start."""
    settings = {
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "RESOURCE": RESOURCE,
        "SHORT_RESOURCE": SHORT_RESOURCE,
        "SHORT_TTL": str(SHORT_TTL),
        "OTHER_RESOURCE": OTHER_RESOURCE,
    }
    process = ProviderProcess(settings, tmp_path_factory.mktemp("provider") / "log")
    try:
        yield process.wait_ready()
    finally:
        process.stop()


@pytest.fixture(scope="module")
def impostor(provider: ProviderProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderProcess]:
    """A second provider naming the same issuer, signing with another key under the trusted key's ``kid``, and
    defaulting to the resource when a request names none."""
    (published,) = provider.get("/jwks")["keys"]
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private, as_dict=True)
    settings = {
        "ISSUER": provider.issuer,
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "RESOURCE": RESOURCE,
        "DEFAULT_RESOURCE": RESOURCE,
        "PROVIDER_JWK": json.dumps({**jwk, "kid": published["kid"]}),
    }
    process = ProviderProcess(settings, tmp_path_factory.mktemp("impostor") / "log")
    try:
        yield process.wait_ready()
    finally:
        process.stop()


@pytest.fixture(scope="module")
def server(provider: ProviderProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``jwt-reference serve`` with the demo users and the service's user, trusting the provider for the resource
    (no leeway, so that an expired token is refused the second it expires)."""
    directory = tmp_path_factory.mktemp("reference")
    env = server_env(directory / "users.db", secrets.token_urlsafe(48))
    env["JWT_REF_TRUSTED_ISSUERS"] = json.dumps([{"issuer": provider.issuer, "audience": RESOURCE}])
    env["JWT_REF_LEEWAY"] = "0"
    added = subprocess.run(
        [str(JWT_REFERENCE), "users", "add", CLIENT_ID, "--scopes", SCOPE, "--password-stdin"],
        input=secrets.token_urlsafe(24) + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    process = Server(env, ("--demo-users",), directory / "log")
    try:
        yield process.wait_ready()
    finally:
        process.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def access_token(provider: ProviderProcess, **form: str) -> str:
    response = provider.token_request(CLIENT_ID, CLIENT_SECRET, scope=SCOPE, **form)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    token: str = body["access_token"]
    return token


def me(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/users/me", headers={"Authorization": f"Bearer {token}"})


INVALID = "The access token is invalid"


def assert_refused(response: httpx.Response, description: str = INVALID) -> None:
    """401 with ``invalid_token`` and ``description`` in the body and in the Bearer challenge."""
    assert response.status_code == 401, response.text
    assert response.json() == {"error": "invalid_token", "detail": description}
    challenge = f'Bearer realm="jwt-reference", error="invalid_token", error_description="{description}"'
    assert response.headers["www-authenticate"] == challenge


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def test_the_provider_issues_an_rs256_at_jwt_naming_the_resource_as_audience(provider: ProviderProcess) -> None:
    token = access_token(provider, resource=RESOURCE)
    header, claims = parts(token)
    (published,) = provider.get("/jwks")["keys"]
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": published["kid"]}
    assert published["kty"] == "RSA" and "d" not in published
    assert claims["iss"] == provider.issuer and claims["aud"] == RESOURCE
    assert claims["sub"] == CLIENT_ID and claims["client_id"] == CLIENT_ID
    assert claims["scope"] == SCOPE and claims["exp"] - claims["iat"] == 300
    jwt.decode(token, jwt.PyJWK(published).key, algorithms=["RS256"], audience=RESOURCE, issuer=provider.issuer)


def test_the_provider_refuses_a_resource_indicator_it_does_not_know(provider: ProviderProcess) -> None:
    response = provider.token_request(CLIENT_ID, CLIENT_SECRET, scope=SCOPE, resource="urn:jwt-reference:unknown")
    assert response.status_code == 400 and response.json()["error"] == "invalid_target"


def test_the_reference_server_accepts_the_providers_token_for_the_mapped_user(
    provider: ProviderProcess, client: httpx.Client
) -> None:
    token = access_token(provider, resource=RESOURCE)
    answer = me(client, token)
    assert answer.status_code == 200, answer.text
    assert answer.json()["username"] == CLIENT_ID
    resource = client.get("/protected-resource", headers={"Authorization": f"Bearer {token}"})
    assert resource.status_code == 200 and resource.json()["user"] == {"username": CLIENT_ID}


def _flip_signature_bit(token: str) -> str:
    head, payload, signature = token.split(".")
    raw = bytearray(jwt.utils.base64url_decode(signature))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{payload}.{b64url(bytes(raw))}"


def _with_claims(token: str, **changes: Any) -> str:
    """The token with its payload changed and its header and signature kept."""
    head, _, signature = token.split(".")
    return f"{head}.{encode_segment({**parts(token)[1], **changes})}.{signature}"


def _alg_none(token: str) -> str:
    header, claims = parts(token)
    return f"{encode_segment({**header, 'alg': 'none'})}.{encode_segment(claims)}."


TAMPERED: dict[str, Callable[[str], str]] = {
    "one bit of the signature flipped": _flip_signature_bit,
    "sub of another local user, signature kept": lambda t: _with_claims(t, sub="johndoe"),
    "aud of another API, signature kept": lambda t: _with_claims(t, aud=OTHER_RESOURCE),
    "exp a day later, signature kept": lambda t: _with_claims(t, exp=parts(t)[1]["exp"] + 86400),
    "alg none, no signature": _alg_none,
}


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_copy_of_the_providers_token_is_refused(
    case: str, provider: ProviderProcess, client: httpx.Client
) -> None:
    token = access_token(provider, resource=RESOURCE)
    assert me(client, token).status_code == 200  # the original is good: only the change is refused
    assert_refused(me(client, TAMPERED[case](token)))


def test_a_token_of_the_provider_for_another_resource_is_refused(
    provider: ProviderProcess, client: httpx.Client
) -> None:
    token = access_token(provider, resource=OTHER_RESOURCE)
    header, claims = parts(token)
    assert header["typ"] == "at+jwt" and claims["aud"] == OTHER_RESOURCE and claims["iss"] == provider.issuer
    assert_refused(me(client, token))


def test_a_token_without_a_resource_indicator_is_opaque_and_refused(
    provider: ProviderProcess, client: httpx.Client
) -> None:
    token = access_token(provider)
    assert token.count(".") == 0  # not a JWT: the provider issues one only for a resource server that asks
    assert_refused(me(client, token))


def test_a_token_of_another_provider_naming_the_same_issuer_and_kid_is_refused(
    impostor: ProviderProcess, provider: ProviderProcess, client: httpx.Client
) -> None:
    token = access_token(impostor)  # no resource parameter: its default resource makes it a JWT
    header, claims = parts(token)
    (published,) = provider.get("/jwks")["keys"]
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": published["kid"]}
    assert claims["iss"] == provider.issuer and claims["aud"] == RESOURCE and claims["sub"] == CLIENT_ID
    assert_refused(me(client, token))


def test_a_short_lived_token_is_accepted_then_refused_once_expired(
    provider: ProviderProcess, client: httpx.Client
) -> None:
    token = access_token(provider, resource=SHORT_RESOURCE)
    claims = parts(token)[1]
    assert claims["aud"] == RESOURCE and claims["exp"] - claims["iat"] == SHORT_TTL
    assert me(client, token).status_code == 200
    wait = claims["exp"] - time.time() + 0.2
    assert wait <= SHORT_TTL + 0.2
    time.sleep(max(wait, 0))
    assert_refused(me(client, token), "The access token expired")


def test_the_servers_own_password_grant_keeps_working_beside_it(client: httpx.Client) -> None:
    grant = client.post("/token", data={"grant_type": "password", "username": "johndoe", "password": "secret"})
    assert grant.status_code == 200, grant.text
    answer = me(client, grant.json()["access_token"])
    assert answer.status_code == 200 and answer.json()["username"] == "johndoe"


# -- the suite in a token run: its token printed by a client-credentials command to the real provider ------------

FETCH_TOKEN = """\
import sys

import httpx2 as httpx

token_endpoint, client_id, client_secret, resource, scope = sys.argv[1:]
form = {"grant_type": "client_credentials", "resource": resource, "scope": scope}
answer = httpx.post(token_endpoint, data=form, auth=(client_id, client_secret), timeout=10.0, trust_env=False)
answer.raise_for_status()
print(answer.json()["access_token"])
"""


def test_the_suite_runs_with_tokens_a_command_gets_from_the_provider(
    provider: ProviderProcess, server: Server, tmp_path: Any
) -> None:
    """``run --token-command``: the black-box run against an API that trusts a real identity provider."""
    script = tmp_path / "fetch_token.py"
    script.write_text(FETCH_TOKEN)
    command = f"{sys.executable} {script} {provider.url}/token {CLIENT_ID} {CLIENT_SECRET} {RESOURCE} '{SCOPE}'"
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "jwt-conformance"),
            "run",
            "--base-url",
            server.base_url,
            "--token-command",
            command,
            "--json-report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    statuses = {item["id"]: item["status"] for item in json.loads(report.read_text())["results"]}
    assert set(statuses.values()) <= {"pass", "info", "skip"}
    for check_id in ("BASE-001", "JWT-SIG-001", "JWT-SIG-002", "JWT-ALG-001", "JWT-HDR-001", "BEARER-001"):
        assert statuses[check_id] == "pass", (check_id, done.stdout[-3000:])
    outputs = done.stdout + done.stderr + report.read_text()
    assert CLIENT_SECRET not in outputs and "eyJ" not in outputs.replace("${", "")
