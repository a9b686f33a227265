"""Access tokens of trusted issuers (this server as a resource server): verified against the issuer's JWK Set.

A token is routed here when its (unverified) ``iss`` is a trusted issuer; it is then verified like this
server's own tokens, but with the issuer's published key named by its ``kid``: the algorithm is the one
that key allows, ``typ`` must be ``at+jwt`` (RFC 9068 §4), and ``iss``, ``aud``, ``exp`` and ``sub`` are
required. Any failure, the issuer being unreachable included, is an ``InvalidTokenError`` (401).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

from .issuer_keys import IssuerKeys, fetch_pool
from .security import InvalidTokenError
from .settings import Settings, TrustedIssuer

REQUIRED_CLAIMS = ["exp", "iss", "aud", "sub"]
_ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
INVALID = "The access token is invalid"


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def granted_scopes(claims: Mapping[str, Any]) -> set[str]:
    """The scopes an external token grants: ``scope`` (space-delimited, RFC 9068 §2.2.3) or else ``scp`` (a list or
    a space-delimited string, as some providers send it)."""
    value = claims.get("scope", claims.get("scp"))
    if isinstance(value, str):
        return {s for s in value.split(" ") if s}
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return set(value)
    return set()


class ExternalTokens:
    """Verifies access tokens of the configured trusted issuers."""

    def __init__(self, settings: Settings) -> None:
        self._pool = fetch_pool()
        self._leeway = settings.leeway
        self._issuers = {
            trusted.issuer: IssuerKeys(
                trusted,
                self._pool,
                refresh_interval=settings.jwks_refresh_interval,
                max_age=settings.jwks_max_age,
                timeout=settings.issuer_timeout,
            )
            for trusted in settings.trusted_issuers
        }
        self._decoder = jwt.PyJWT(options={"require": REQUIRED_CLAIMS, "verify_signature": True})

    def issuer_of(self, token: str) -> IssuerKeys | None:
        """The trusted issuer the token claims to come from, or None (then it can only be one of this server's)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            return None
        issuer = claims.get("iss") if isinstance(claims, dict) else None
        return self._issuers.get(issuer) if isinstance(issuer, str) else None

    async def verify(self, token: str, keys: IssuerKeys) -> tuple[TrustedIssuer, dict[str, Any]]:
        """The verified claims of a token of ``keys.trusted``; ``InvalidTokenError`` otherwise."""
        trusted = keys.trusted
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise InvalidTokenError(INVALID) from None
        if "crit" in header:
            raise InvalidTokenError(INVALID)  # RFC 7515 §4.1.11: no extension is understood here
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidTokenError("The access token names no key of its issuer")
        key = await keys.key_for(kid)
        if key is None:
            raise InvalidTokenError("The access token was not signed by a key its issuer publishes")
        try:
            decoded = self._decoder.decode_complete(
                token,
                key,
                algorithms=[str(key.algorithm_name)],
                audience=trusted.audience,
                issuer=trusted.issuer,
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("The access token expired") from None
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError, RecursionError):
            raise InvalidTokenError(INVALID) from None
        typ = decoded["header"].get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
            raise InvalidTokenError("The access token is not of type at+jwt")
        claims: dict[str, Any] = decoded["payload"]
        if not isinstance(claims["sub"], str) or not claims["sub"] or not _numeric(claims["exp"]):
            raise InvalidTokenError(INVALID)
        if any(name in claims and not _numeric(claims[name]) for name in ("iat", "nbf")):
            raise InvalidTokenError(INVALID)
        return trusted, claims

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
