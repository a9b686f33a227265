"""Passwords (pwdlib: Argon2id, legacy bcrypt) and access tokens (PyJWT, RFC 9068 profile)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from pwdlib import PasswordHash
from pwdlib.exceptions import PwdlibError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from .settings import HashProfile, Settings
from .signing_keys import KeySet

ACCESS_TOKEN_TYPE = "at+jwt"
BCRYPT_MAX_BYTES = 72
_ACCESS_TOKEN_TYPES = (ACCESS_TOKEN_TYPE, "application/" + ACCESS_TOKEN_TYPE)
VERIFIED_CACHE_SIZE = 4096
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud", "jti", "scope", "sid"]
REVOKED = "The access token was revoked"


# Argon2id with argon2-cffi's time and memory cost (t=3, 64 MiB) on one lane: each hash keeps one
# core busy, so the hashing pool (one thread per allowed concurrent hash) bounds CPU and memory
# exactly. "fast" is for tests only.
ARGON2_PARAMETERS: dict[str, tuple[int, int, int]] = {  # (time cost, memory KiB, lanes)
    "default": (3, 65_536, 1),
    "fast": (1, 8_192, 1),
}
HASH_THREAD_NICE = 10


def password_hash_for(profile: HashProfile) -> PasswordHash:
    """Argon2id for new hashes; bcrypt hashes still verify (and are upgraded by ``verify_and_update``)."""
    time_cost, memory_cost, parallelism = ARGON2_PARAMETERS[profile]
    argon2 = Argon2Hasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
    return PasswordHash((argon2, BcryptHasher()))


def _lower_thread_priority() -> None:
    """Hashing threads yield to the event loop: on Linux the nice value is per thread."""
    with contextlib.suppress(AttributeError, OSError):  # unsupported here: hashing still runs off the loop
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICE)


@dataclass(frozen=True)
class VerifyResult:
    valid: bool
    new_hash: str | None = None


class Passwords:
    """Hashes and verifies passwords off the event loop, in a bounded pool of low-priority threads."""

    def __init__(self, profile: HashProfile, max_concurrent: int) -> None:
        self._hash = password_hash_for(profile)
        self._pool = ThreadPoolExecutor(
            max_workers=max_concurrent, thread_name_prefix="password-hash", initializer=_lower_thread_priority
        )
        # An unknown or disabled user is verified against this hash, so every failed login costs
        # one hash of the current parameters: timing does not reveal whether the user exists.
        self._dummy_hash = self._hash.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hash.hash(password)

    async def hash_off_loop(self, password: str) -> str:
        """``hash`` in the hashing pool, for request handlers."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._hash.hash, password)

    def verify_sync(self, password: str, hashed: str | None) -> VerifyResult:
        """Verify exactly (no truncation); ``hashed=None`` pays a dummy verification and fails."""
        if hashed is None:
            self._hash.verify(password, self._dummy_hash)
            return VerifyResult(False)
        if hashed.startswith("$2") and len(password.encode()) > BCRYPT_MAX_BYTES:
            # bcrypt only reads 72 bytes (bcrypt >= 5 raises): such a password cannot match exactly.
            self._hash.verify(password, self._dummy_hash)
            return VerifyResult(False)
        try:
            valid, new_hash = self._hash.verify_and_update(password, hashed)
        except (PwdlibError, ValueError, TypeError):  # corrupt or unknown stored hash: refuse, never a 500
            self._hash.verify(password, self._dummy_hash)
            return VerifyResult(False)
        return VerifyResult(valid, new_hash)

    async def verify(self, password: str, hashed: str | None) -> VerifyResult:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self.verify_sync, password, hashed)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class InvalidTokenError(Exception):
    """Raised when an access token fails verification; the message is safe to show the client."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int


class RevocationList(Protocol):
    """Where revoked access tokens (by ``jti``) and revoked refresh-token families (by ``sid``) are kept."""

    def is_revoked(self, jti: str, sid: str) -> bool: ...


class Tokens:
    """Issues and verifies access tokens: algorithm pinned, claims required, typ checked, revocations refused."""

    def __init__(
        self, settings: Settings, key_set: KeySet | None = None, revocations: RevocationList | None = None
    ) -> None:
        if settings.uses_hmac and not settings.secret_key:
            raise ValueError("Tokens needs a checked secret key")
        if not settings.uses_hmac and key_set is None:
            raise ValueError("Tokens needs the key set for an asymmetric algorithm")
        self._key = settings.secret_key or ""
        self._key_set = key_set
        self._algorithm = settings.algorithm
        self._ttl = settings.access_token_ttl
        self._issuer = settings.issuer
        self._audience = settings.audience
        self._leeway = settings.leeway
        self._revocations = revocations
        self._decoder = jwt.PyJWT(options={"require": REQUIRED_CLAIMS, "verify_signature": True})
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_lock = threading.Lock()

    def issue(self, subject: str, *, scope: str, sid: str, now: float | None = None) -> IssuedToken:
        """An access token for ``subject`` granting ``scope`` (space-delimited), of the refresh-token family ``sid``."""
        issued_at = int(time.time() if now is None else now)
        claims = {
            "iss": self._issuer,
            "sub": subject,
            "aud": self._audience,
            "exp": issued_at + self._ttl,
            "iat": issued_at,
            "jti": uuid.uuid4().hex,
            "scope": scope,
            "sid": sid,
        }
        if self._key_set is None:
            token = jwt.encode(claims, self._key, algorithm=self._algorithm, headers={"typ": ACCESS_TOKEN_TYPE})
        else:
            headers = {"typ": ACCESS_TOKEN_TYPE, "kid": self._key_set.current.kid}
            token = jwt.encode(claims, self._key_set.signing, algorithm=self._algorithm, headers=headers)
        return IssuedToken(token, self._ttl)

    def _verification_key(self, token: str) -> tuple[Any, str]:
        """(key, algorithm): the HMAC secret, or the public key named by the token's kid."""
        if self._key_set is None:
            return self._key, self._algorithm
        key = self._key_set.by_kid(jwt.get_unverified_header(token).get("kid"))
        if key is None:
            raise InvalidTokenError("The access token was not signed by a key of this server")
        return key.public_key, key.algorithm

    def verify(self, token: str) -> Mapping[str, Any]:
        """Return the claims of a valid access token; raise ``InvalidTokenError`` otherwise.

        A token that verified once is remembered (bounded LRU) until its ``exp``: the signature and
        claims of that exact string cannot change, so later requests only re-check the clock. Its
        revocation can happen at any time, so it is looked up on every call, cached or not.
        """
        with self._cache_lock:
            cached = self._verified.get(token)
            if cached is not None:
                self._verified.move_to_end(token)
        if cached is not None:
            if cached["exp"] + self._leeway <= time.time():
                with self._cache_lock:
                    self._verified.pop(token, None)
                raise InvalidTokenError("The access token expired")
            claims = cached
        else:
            claims = self._verify_uncached(token)
            with self._cache_lock:
                self._verified[token] = claims
                if len(self._verified) > VERIFIED_CACHE_SIZE:
                    self._verified.popitem(last=False)
        if self._revocations is not None and self._revocations.is_revoked(claims["jti"], claims["sid"]):
            raise InvalidTokenError(REVOKED)
        return claims

    def genuine_claims(self, token: str) -> dict[str, Any] | None:
        """For revocation: the claims of an unexpired access token of this server, else None (nothing to revoke)."""
        try:
            return self._verify_uncached(token)
        except InvalidTokenError:
            return None

    def _verify_uncached(self, token: str) -> dict[str, Any]:
        try:
            key, algorithm = self._verification_key(token)
            decoded = self._decoder.decode_complete(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
            )
        except InvalidTokenError:
            raise
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("The access token expired") from None
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError, RecursionError):
            raise InvalidTokenError("The access token is invalid") from None
        typ = decoded["header"].get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
            # RFC 9068 §4: resource servers MUST verify that the typ header is at+jwt.
            raise InvalidTokenError("The access token is not of type at+jwt")
        claims: dict[str, Any] = decoded["payload"]
        if not all(isinstance(claims[c], str) and claims[c] for c in ("sub", "jti", "sid")):
            raise InvalidTokenError("The access token is invalid")
        if not isinstance(claims["scope"], str):
            raise InvalidTokenError("The access token is invalid")
        if not all(isinstance(claims[c], int | float) and not isinstance(claims[c], bool) for c in ("exp", "iat")):
            # PyJWT reads NumericDates with int(), which takes the string "1795000000": not a NumericDate.
            raise InvalidTokenError("The access token is invalid")
        if claims["exp"] - claims["iat"] > self._ttl + self._leeway:
            # Longer-lived than this server issues: not one of ours, whatever its signature says.
            raise InvalidTokenError("The access token is invalid")
        return claims
