"""A FastAPI resource server that accepts an OpenID provider's access tokens, verified the way PyJWT's docs do.

OpenID discovery at ``$ISSUER/.well-known/openid-configuration`` (its ``issuer`` must be ``$ISSUER``)
names the ``jwks_uri`` that feeds a ``PyJWKClient`` with PyJWT's default caching: the key set is
kept 5 minutes and refetched on an unknown ``kid`` at most once per 30 s cooldown. The key named by
the token's ``kid`` verifies it with that key's own algorithm only (so ``none`` and HS256 never do);
``iss`` and ``aud`` are pinned, ``exp``, ``iss``, ``aud`` and ``sub`` required, and the header's
``typ`` must be ``at+jwt`` (RFC 9068 §4). A request without a bearer token gets 401
``WWW-Authenticate: Bearer realm="api"`` (``HTTPBearer`` alone would send a bare ``Bearer``, which
RFC 6750 §3 does not allow); a bad token gets 401 ``Bearer realm="api", error="invalid_token"``.

Correct.

No ``from __future__ import annotations``: FastAPI evaluates the dependency annotations.
"""

import os
from typing import Annotated, Any

import jwt
import requests
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


def discover(issuer: str) -> dict[str, Any]:
    """The provider's OpenID metadata; it must name ``issuer`` as its issuer (OpenID Discovery §4.3)."""
    response = requests.get(issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=10)
    response.raise_for_status()
    metadata: dict[str, Any] = response.json()
    if metadata.get("issuer") != issuer:
        raise RuntimeError(f"the provider says its issuer is {metadata.get('issuer')!r}, not {issuer!r}")
    return metadata


def cache_settings() -> dict[str, float]:
    """PyJWT's defaults (5 min key set, 30 s cooldown) unless the environment shortens them (the tests do)."""
    settings = {}
    if "JWKS_CACHE_SECONDS" in os.environ:
        settings["lifespan"] = float(os.environ["JWKS_CACHE_SECONDS"])
    if "JWKS_COOLDOWN_SECONDS" in os.environ:
        settings["cooldown_duration"] = float(os.environ["JWKS_COOLDOWN_SECONDS"])
    return settings


def create_app() -> FastAPI:
    issuer, audience = os.environ["ISSUER"], os.environ["AUDIENCE"]
    metadata = discover(issuer)
    jwks_client = jwt.PyJWKClient(metadata["jwks_uri"], **cache_settings())
    bearer = HTTPBearer(auto_error=False)
    app = FastAPI()

    def verified_claims(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> dict[str, Any]:
        if credentials is None:
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="Not authenticated",
                headers={"WWW-Authenticate": 'Bearer realm="api"'},
            )
        token = credentials.credentials
        try:
            if str(jwt.get_unverified_header(token).get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
                raise jwt.InvalidTokenError("not an access token")
            signing_key = jwks_client.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key,
                algorithms=[signing_key.algorithm_name],
                audience=audience,
                issuer=issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="Could not validate credentials",
                headers={"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'},
            ) from exc
        return claims

    Claims = Annotated[dict[str, Any], Depends(verified_claims)]

    @app.get("/users/me")
    def read_users_me(claims: Claims) -> dict[str, Any]:
        return {"sub": claims["sub"], "scope": claims.get("scope", "")}

    @app.get("/protected-resource")
    def protected_resource(claims: Claims) -> dict[str, Any]:
        return {"message": "Protected resource", "sub": claims["sub"]}

    return app
