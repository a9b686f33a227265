"""The FastAPI + PyJWT resource server of ``fastapi_pyjwt.py`` with one defect: no refetch cooldown.

Its ``PyJWKClient`` is built with ``cooldown_duration=0``, so that a key the provider rotates in is
picked up at once (the switch PyJWT's docstring offers; PyJWT before the cooldown behaved so too).
The key set is still cached, but every token naming a ``kid`` the set does not hold makes the
server fetch the JWKS again: anyone can make it fetch once per request, a fetch storm against the
provider, with nothing but garbage ``kid`` values.

Rule broken: the refetch on an unknown ``kid`` must be rate-limited (OpenID Connect Core §10.1.1
asks verifiers to re-fetch on an unknown ``kid``; RFC 8725 §3.10 and the availability of the
provider require that untrusted input not drive unbounded requests).

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


def create_app() -> FastAPI:
    issuer, audience = os.environ["ISSUER"], os.environ["AUDIENCE"]
    metadata = discover(issuer)
    lifespan = float(os.environ.get("JWKS_CACHE_SECONDS", 300))
    jwks_client = jwt.PyJWKClient(metadata["jwks_uri"], lifespan=lifespan, cooldown_duration=0)
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
