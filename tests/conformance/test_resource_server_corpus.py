"""The resource servers of the corpus against a real test issuer: each correct one is correct, each twin has its defect.

One ``jwt-conformance issuer`` process (behind a counting proxy of this module, so that JWKS fetches
can be counted; the issuer publishes the proxy's URL as its own) and every server of
``corpus/resource_servers`` and ``corpus/node_rs``, started once for the module. Tokens are minted
by ``conformance.issuer.mint`` from the issuer's keys directory (and from an attacker's keys
directory the issuer does not publish). Every server is primed with a valid RS256 and ES256 token,
then the issuer's ES256 key is rotated out and retired (``jwt-conformance issuer rotate --alg
ES256 --retire``): the rotation tests, last in the module, see which servers take up the new key
and drop the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from cryptography.hazmat.primitives import serialization

from conformance.forge import b64url_encode, encode_json
from conformance.issuer import ensure_keys, mint, public_jwks, read_state
from conformance.issuer.keys import load_private_key

from .corpus.resource_servers.listeners import CountingProxy, KeySetListener
from .corpus.resource_servers.running import (
    FASTAPI_PYJWT_FETCH_STORM,
    FASTAPI_PYJWT_FROZEN_JWKS,
    JOSE_EMBEDDED_JWK,
    JOSE_FOLLOWS_JKU,
    JOSE_NO_AUDIENCE,
    SERVERS,
    IssuerProcess,
    ResourceServer,
    Running,
    launch,
    node_missing,
    rotate,
    start_issuer,
)

pytestmark = pytest.mark.e2e

AUDIENCE = "https://api.corpus.test"
JWKS_PATH = "/.well-known/jwks.json"
ROTATION_TIMEOUT = 45.0  # jose's and PyJWT's refetch cooldown is 30 s from the last fetch
UNKNOWN_KID_TOKENS = 5
NO_TOKEN_CHALLENGE = 'Bearer realm="api"'  # RFC 6750 §3: at least one auth-param
BAD_TOKEN_CHALLENGE = 'Bearer realm="api", error="invalid_token"'


@dataclass
class World:
    issuer: IssuerProcess
    proxy: CountingProxy
    attacker: KeySetListener
    attacker_dir: Path
    kids: dict[str, str]  # "RS256", "EdDSA", "ES256-old", "ES256-new", "attacker" -> kid
    running: dict[str, Running] = field(default_factory=dict)

    @property
    def keys_dir(self) -> Path:
        return self.issuer.keys_dir

    def claims(self, **changes: Any) -> dict[str, Any]:
        """A valid access token's claims (RFC 9068 §2.2), with ``changes`` (``None`` removes a claim)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer.issuer,
            "aud": AUDIENCE,
            "sub": "alice",
            "exp": now + 300,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "scope": "read write",
            "client_id": "corpus-client",
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def token(self, key: str, claims: dict[str, Any] | None = None, keys_dir: Path | None = None, **header: Any) -> str:
        """Signed by the key of kid ``key`` (of the issuer, or of ``keys_dir``); ``header`` overrides the header."""
        payload = self.claims() if claims is None else claims
        return mint(keys_dir or self.keys_dir, payload, kid=key, headers={"typ": "at+jwt", **header})

    def server(self, server: ResourceServer) -> Running:
        if server.name not in self.running:
            pytest.skip(node_missing() or f"{server.name} did not start")
        return self.running[server.name]


def get(running: Running, token: str | None, path: str = "/users/me") -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.get(running.base_url + path, headers=headers, timeout=10.0, trust_env=False)


def accepted(running: Running, token: str) -> bool:
    response = get(running, token)
    assert response.status_code in (200, 401), f"{response.status_code} {response.text}\n{running.output()}"
    return response.status_code == 200


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("resource-servers")
    proxy = CountingProxy()
    issuer = attacker = None
    servers: list[Running] = []
    try:
        issuer = start_issuer(workdir / "keys", workdir, proxy.url)
        proxy.upstream = issuer.listening
        attacker_dir = workdir / "attacker"
        attacker_state = ensure_keys(attacker_dir)
        attacker = KeySetListener(public_jwks(attacker_dir, attacker_state))
        state = read_state(issuer.keys_dir)
        kids = {alg: entry.kid for alg in ("RS256", "ES256", "EdDSA") if (entry := state.active(alg))}
        kids["ES256-old"] = kids.pop("ES256")
        attacker_rs256 = attacker_state.active("RS256")
        assert attacker_rs256 is not None
        kids["attacker"] = attacker_rs256.kid
        world = World(issuer, proxy, attacker, attacker_dir, kids)
        skip_node = node_missing()
        for server in SERVERS:
            if not (server.node and skip_node):
                servers.append(launch(server, issuer.issuer, AUDIENCE, workdir))
        for running in servers:
            world.running[running.server.name] = running.wait_ready()
            for kid in (kids["RS256"], kids["ES256-old"]):
                assert accepted(running, world.token(kid)), f"{running.server.name} refused a valid token"
        rotate(issuer.keys_dir, "--alg", "ES256", "--retire")
        new = read_state(issuer.keys_dir).active("ES256")
        assert new is not None and new.kid != kids["ES256-old"]
        kids["ES256-new"] = new.kid
        yield world
    finally:
        for running in servers:
            running.stop()
        if issuer is not None:
            issuer.stop()
        if attacker is not None:
            attacker.stop()
        proxy.stop()


@pytest.fixture(params=SERVERS, ids=[server.name for server in SERVERS])
def server(request: pytest.FixtureRequest) -> ResourceServer:
    chosen: ResourceServer = request.param
    return chosen


# --- forged tokens -------------------------------------------------------------------------------------------------


def alg_none(world: World, server: ResourceServer) -> str:
    header = {"alg": "none", "typ": "at+jwt", "kid": world.kids["RS256"]}
    return f"{encode_json(header)}.{encode_json(world.claims())}."


def hs256_with_public_key(world: World, server: ResourceServer) -> str:
    """HS256 keyed with the published RS256 key's SPKI PEM (RFC 8725 §2.1 algorithm confusion)."""
    public = load_private_key(world.keys_dir, world.kids["RS256"]).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{encode_json({'alg': 'HS256', 'typ': 'at+jwt', 'kid': world.kids['RS256']})}."
    signing_input += encode_json(world.claims())
    return f"{signing_input}.{b64url_encode(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def jku_path(server: ResourceServer) -> str:
    return f"/{server.name}/jwks.json"


def attacker_token(world: World, **header: Any) -> str:
    return world.token(world.kids["attacker"], keys_dir=world.attacker_dir, **header)


def attacker_jwk(world: World) -> dict[str, Any]:
    jwk: dict[str, Any] = next(
        key for key in public_jwks(world.attacker_dir, read_state(world.attacker_dir))["keys"] if key["alg"] == "RS256"
    )
    return jwk


Forge = Callable[[World, ResourceServer], str]
EVERY = frozenset(server.name for server in SERVERS)
NONE: frozenset[str] = frozenset()

# case -> (how the token is made, the servers that accept it)
CASES: dict[str, tuple[Forge, frozenset[str]]] = {
    "valid-RS256": (lambda w, s: w.token(w.kids["RS256"]), EVERY),
    "valid-EdDSA": (lambda w, s: w.token(w.kids["EdDSA"]), EVERY),
    "aud-another-api": (
        lambda w, s: w.token(w.kids["RS256"], w.claims(aud="https://other.corpus.test")),
        frozenset({JOSE_NO_AUDIENCE.name}),
    ),
    "aud-missing": (lambda w, s: w.token(w.kids["RS256"], w.claims(aud=None)), frozenset({JOSE_NO_AUDIENCE.name})),
    "iss-another-issuer": (lambda w, s: w.token(w.kids["RS256"], w.claims(iss="https://other-issuer.test")), NONE),
    "iss-missing": (lambda w, s: w.token(w.kids["RS256"], w.claims(iss=None)), NONE),
    "expired": (
        lambda w, s: w.token(w.kids["RS256"], w.claims(exp=int(time.time()) - 600, iat=int(time.time()) - 900)),
        NONE,
    ),
    "exp-missing": (lambda w, s: w.token(w.kids["RS256"], w.claims(exp=None)), NONE),
    "sub-missing": (lambda w, s: w.token(w.kids["RS256"], w.claims(sub=None)), NONE),
    "nbf-future": (lambda w, s: w.token(w.kids["RS256"], w.claims(nbf=int(time.time()) + 600)), NONE),
    "typ-JWT": (lambda w, s: w.token(w.kids["RS256"], typ="JWT"), NONE),
    "alg-none": (alg_none, NONE),
    "HS256-public-key": (hs256_with_public_key, NONE),
    "unknown-kid-unpublished-key": (lambda w, s: attacker_token(w), NONE),
    "published-kid-unpublished-key": (lambda w, s: attacker_token(w, kid=w.kids["RS256"]), NONE),
    "jwk-header-attacker-key": (
        lambda w, s: attacker_token(w, jwk=attacker_jwk(w)),
        frozenset({JOSE_EMBEDDED_JWK.name}),
    ),
    "jku-header-attacker-set": (
        lambda w, s: attacker_token(w, jku=w.attacker.url + jku_path(s)),
        frozenset({JOSE_FOLLOWS_JKU.name}),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_server_accepts_exactly_the_tokens_its_defect_lets_through(
    world: World, server: ResourceServer, case: str
) -> None:
    running = world.server(server)
    forge, accepting = CASES[case]
    token = forge(world, server)
    fetched_before = world.attacker.count(jku_path(server))
    response = get(running, token)
    if server.name in accepting:
        assert response.status_code == 200, f"{response.status_code} {response.text}\n{running.output()}"
        body = response.json()
        assert body == {"sub": "alice", "scope": "read write"}
    else:
        assert response.status_code == 401, f"{response.status_code} {response.text}\n{running.output()}"
        assert response.headers["www-authenticate"] == BAD_TOKEN_CHALLENGE
    fetched = world.attacker.count(jku_path(server)) - fetched_before
    expected_fetches = 1 if case == "jku-header-attacker-set" and server == JOSE_FOLLOWS_JKU else 0
    assert fetched == expected_fetches, "only the jku twin fetches the key set a token names"


def test_without_a_token_each_server_challenges_for_one(world: World, server: ResourceServer) -> None:
    running = world.server(server)
    for path in ("/users/me", "/protected-resource"):
        response = get(running, None, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == NO_TOKEN_CHALLENGE, path


def test_the_protected_resource_answers_a_valid_token(world: World, server: ResourceServer) -> None:
    response = get(world.server(server), world.token(world.kids["RS256"]), "/protected-resource")
    assert response.status_code == 200
    assert response.json() == {"message": "Protected resource", "sub": "alice"}


def test_unknown_kids_make_only_the_storm_twin_fetch_the_jwks_every_time(world: World, server: ResourceServer) -> None:
    running = world.server(server)
    before = world.proxy.count(JWKS_PATH)
    for _ in range(UNKNOWN_KID_TOKENS):
        token = attacker_token(world, kid=uuid.uuid4().hex)
        assert not accepted(running, token)
    fetches = world.proxy.count(JWKS_PATH) - before
    if server == FASTAPI_PYJWT_FETCH_STORM:
        assert fetches == UNKNOWN_KID_TOKENS
    elif server == FASTAPI_PYJWT_FROZEN_JWKS:
        assert fetches == 0
    else:
        assert fetches <= 1, "at most one refetch per cooldown"


# --- rotation: last in the module, so that the refetch cooldown has mostly run out ---------------------------------


@dataclass(frozen=True)
class Rotation:
    took_up_new_key: dict[str, float | None]  # server -> seconds until a new-key token was accepted, None: never
    frozen_refused_throughout: bool


@pytest.fixture(scope="module")
def rotation(world: World) -> Rotation:
    """Poll every server with a token of the rotated-in key until all but the frozen twin accept it (bounded)."""
    token = world.token(world.kids["ES256-new"])
    published = {key["kid"] for key in httpx.get(world.issuer.jwks_uri, timeout=5.0, trust_env=False).json()["keys"]}
    assert world.kids["ES256-new"] in published and world.kids["ES256-old"] not in published
    frozen = world.running.get(FASTAPI_PYJWT_FROZEN_JWKS.name)
    took: dict[str, float | None] = {name: None for name in world.running}
    pending = {name for name in world.running if name != FASTAPI_PYJWT_FROZEN_JWKS.name}
    frozen_refused = True
    started = time.monotonic()
    while pending and time.monotonic() - started < ROTATION_TIMEOUT:
        for name in sorted(pending):
            if accepted(world.running[name], token):
                took[name] = time.monotonic() - started
                pending.discard(name)
        if frozen is not None:
            frozen_refused = frozen_refused and not accepted(frozen, token)
        time.sleep(0.25)
    if frozen is not None:
        frozen_refused = frozen_refused and not accepted(frozen, token)
    return Rotation(took, frozen_refused)


def test_a_key_published_after_start_is_taken_up_except_by_the_frozen_twin(
    world: World, server: ResourceServer, rotation: Rotation
) -> None:
    world.server(server)
    if server == FASTAPI_PYJWT_FROZEN_JWKS:
        assert rotation.took_up_new_key[server.name] is None
        assert rotation.frozen_refused_throughout
    else:
        took = rotation.took_up_new_key[server.name]
        assert took is not None, f"{server.name} never accepted the rotated-in key within {ROTATION_TIMEOUT} s"


def test_a_retired_key_is_refused_once_refreshed_except_by_the_frozen_twin(
    world: World, server: ResourceServer, rotation: Rotation
) -> None:
    running = world.server(server)
    token = world.token(world.kids["ES256-old"])
    assert accepted(running, token) == (server == FASTAPI_PYJWT_FROZEN_JWKS)
