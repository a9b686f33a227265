"""Passwords (pwdlib: Argon2id, legacy bcrypt) and access tokens (PyJWT, RFC 9068 profile)."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import jwt
from anyio import CapacityLimiter
from pwdlib import PasswordHash
from pwdlib.exceptions import PwdlibError
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from .settings import HashProfile, Settings

ACCESS_TOKEN_TYPE = "at+jwt"
BCRYPT_MAX_BYTES = 72
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud", "jti"]


def password_hash_for(profile: HashProfile) -> PasswordHash:
    """Argon2id for new hashes (argon2-cffi's defaults, or a cheap profile for tests); bcrypt verifies."""
    argon2 = Argon2Hasher() if profile == "default" else Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1)
    return PasswordHash((argon2, BcryptHasher()))


@dataclass(frozen=True)
class VerifyResult:
    valid: bool
    new_hash: str | None = None


class Passwords:
    """Hashes and verifies passwords off the event loop, with a bound on concurrent hashes."""

    def __init__(self, profile: HashProfile, max_concurrent: int) -> None:
        self._hash = password_hash_for(profile)
        self._limiter = CapacityLimiter(max_concurrent)
        # An unknown or disabled user is verified against this hash, so every failed login costs
        # one hash of the current parameters: timing does not reveal whether the user exists.
        self._dummy_hash = self._hash.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hash.hash(password)

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
        return await anyio.to_thread.run_sync(self.verify_sync, password, hashed, limiter=self._limiter)

    async def hash_async(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self.hash, password, limiter=self._limiter)


class InvalidTokenError(Exception):
    """Raised when an access token fails verification; the message is safe to show the client."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int


class Tokens:
    """Issues and verifies access tokens: algorithm pinned, claims required, typ checked."""

    def __init__(self, settings: Settings) -> None:
        if not settings.secret_key:
            raise ValueError("Tokens needs a checked secret key")
        self._key = settings.secret_key
        self._algorithm = settings.algorithm
        self._ttl = settings.access_token_ttl
        self._issuer = settings.issuer
        self._audience = settings.audience
        self._leeway = settings.leeway
        self._decoder = jwt.PyJWT(options={"require": REQUIRED_CLAIMS, "verify_signature": True})

    def issue(self, subject: str, now: float | None = None) -> IssuedToken:
        issued_at = int(time.time() if now is None else now)
        claims = {
            "iss": self._issuer,
            "sub": subject,
            "aud": self._audience,
            "exp": issued_at + self._ttl,
            "iat": issued_at,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._key, algorithm=self._algorithm, headers={"typ": ACCESS_TOKEN_TYPE})
        return IssuedToken(token, self._ttl)

    def verify(self, token: str) -> Mapping[str, Any]:
        """Return the claims of a valid access token; raise ``InvalidTokenError`` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
            typ = header.get("typ")
            if not isinstance(typ, str) or typ.lower() not in (ACCESS_TOKEN_TYPE, "application/" + ACCESS_TOKEN_TYPE):
                # RFC 9068 §4: resource servers MUST verify that the typ header is at+jwt.
                raise InvalidTokenError("The access token is not of type at+jwt")
            claims = self._decoder.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
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
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidTokenError("The access token is invalid")
        if claims["exp"] - claims["iat"] > self._ttl + self._leeway:
            # Longer-lived than this server issues: not one of ours, whatever its signature says.
            raise InvalidTokenError("The access token is invalid")
        return claims
