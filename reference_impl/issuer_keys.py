"""The published keys of a trusted issuer: OpenID discovery, then its JWK Set, cached and refreshed at a bounded rate.

Keys are fetched in a small thread pool (never on the event loop), each request bounded by a timeout.
Per issuer, at most one fetch starts per refresh interval, whatever the number of tokens naming unknown
keys; requests arriving while a fetch runs wait for that fetch instead of starting another. When a fetch
fails, the keys fetched last stay in use. Only the issuer's discovery document names where keys are: a
token's ``jku``, ``x5u`` or ``jwk`` header is never read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import jwt

from .settings import TrustedIssuer

logger = logging.getLogger("reference_impl.issuer_keys")

DISCOVERY_PATH = "/.well-known/openid-configuration"
MAX_DOCUMENT_BYTES = 262_144
MIN_RSA_BITS = 2048
FETCH_THREADS = 4
# The algorithms a key may verify, by key type (and curve): RFC 7518 §3.1, RFC 8037. Never HS* or none.
_RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_CURVE_ALGORITHMS = {
    ("EC", "P-256"): "ES256",
    ("EC", "P-384"): "ES384",
    ("EC", "P-521"): "ES512",
    ("OKP", "Ed25519"): "EdDSA",
}
_PRIVATE_MEMBERS = frozenset(("d", "p", "q", "dp", "dq", "qi", "k"))


class KeyFetchError(Exception):
    """Discovery or the key set could not be fetched or read; the message names the step."""


def key_algorithm(jwk: dict[str, Any]) -> str | None:
    """The one algorithm a published JWK verifies, decided by its ``kty`` (and ``crv``) and its ``alg`` if it has
    one; None for a key this server does not use (symmetric, private, encryption-only, unknown, inconsistent)."""
    kty, alg = jwk.get("kty"), jwk.get("alg")
    if _PRIVATE_MEMBERS & set(jwk) or jwk.get("use", "sig") != "sig":
        return None
    if kty == "RSA":
        default: str | None = "RS256"
        allowed: tuple[str, ...] = _RSA_ALGORITHMS
    else:
        default = _CURVE_ALGORITHMS.get((str(kty), str(jwk.get("crv"))))
        allowed = (default,) if default else ()
    if alg is None:
        return default
    return alg if alg in allowed else None


def _usable_keys(document: Any) -> dict[str, jwt.PyJWK]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeyFetchError("the JWK Set has no 'keys' array")
    keys: dict[str, jwt.PyJWK] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or jwk["kid"] in keys:
            continue  # keys are looked up by kid: one without (or with a repeated) kid is never chosen
        algorithm = key_algorithm(jwk)
        if algorithm is None:
            continue
        try:
            key = jwt.PyJWK(jwk, algorithm=algorithm)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
        if algorithm in _RSA_ALGORITHMS and getattr(key.key, "key_size", 0) < MIN_RSA_BITS:
            continue
        keys[jwk["kid"]] = key
    return keys


def _get_json(client: httpx.Client, url: str, what: str) -> Any:
    try:
        response = client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise KeyFetchError(f"{what}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise KeyFetchError(f"{what}: HTTP {response.status_code}")
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise KeyFetchError(f"{what}: larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return response.json()
    except ValueError:
        raise KeyFetchError(f"{what}: not JSON") from None


class IssuerKeys:
    """The verification keys of one trusted issuer, by ``kid``."""

    def __init__(
        self, trusted: TrustedIssuer, pool: ThreadPoolExecutor, *, refresh_interval: int, max_age: int, timeout: int
    ) -> None:
        self.trusted = trusted
        self._pool = pool
        self._refresh_interval = refresh_interval
        self._max_age = max_age
        self._timeout = timeout
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # when the keys in use were fetched
        self._last_attempt: float | None = None  # when the last fetch started (successful or not)
        self._in_flight: Future[None] | None = None

    def _lookup(self, kid: str) -> tuple[jwt.PyJWK | None, bool]:
        with self._lock:
            fresh = self._fetched_at is not None and time.monotonic() - self._fetched_at < self._max_age
            return self._keys.get(kid), fresh

    def _start_refresh(self) -> Future[None] | None:
        """The fetch to wait for: the one running, a new one, or None when the refresh interval forbids one."""
        with self._lock:
            if self._in_flight is not None and not self._in_flight.done():
                return self._in_flight
            now = time.monotonic()
            if self._last_attempt is not None and now - self._last_attempt < self._refresh_interval:
                return None
            self._last_attempt = now
            self._in_flight = self._pool.submit(self._refresh)
            return self._in_flight

    async def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The key named ``kid``; fetches the key set first if it is unknown or the keys are older than the
        maximum age (within the refresh rate). None when the issuer does not publish it (or cannot be reached)."""
        key, fresh = self._lookup(kid)
        if key is not None and fresh:
            return key
        fetch = self._start_refresh()
        if fetch is not None:
            await asyncio.shield(asyncio.wrap_future(fetch))  # a cancelled request leaves the fetch running
        return self._lookup(kid)[0]

    def _refresh(self) -> None:
        try:
            keys = self._fetch()
        except KeyFetchError as exc:
            logger.warning("keys of issuer %s not refreshed: %s", self.trusted.issuer, exc)
            return
        with self._lock:
            self._keys = keys
            self._fetched_at = time.monotonic()

    def _fetch(self) -> dict[str, jwt.PyJWK]:
        issuer = self.trusted.issuer
        with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
            discovery = _get_json(client, issuer.rstrip("/") + DISCOVERY_PATH, "discovery")
            if not isinstance(discovery, dict) or discovery.get("issuer") != issuer:
                # OpenID Connect Discovery §4.3: the document's issuer must be exactly the configured one.
                raise KeyFetchError("discovery: 'issuer' does not match")
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme != urlsplit(issuer).scheme:
                raise KeyFetchError("discovery: 'jwks_uri' is missing or uses another scheme than the issuer")
            return _usable_keys(_get_json(client, jwks_uri, "JWK Set"))


def fetch_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="issuer-keys")
