"""The FastAPI + PyJWT resource server of ``fastapi_pyjwt.py`` with one defect: its key set never changes.

It fetches the provider's JWKS once, when it starts, and keeps the keys in a dict by ``kid`` for
as long as it runs ("the provider rarely rotates"). A key the provider publishes later is refused
forever (every token of the new key fails until a restart), and a key the provider removed,
perhaps because it leaked, is accepted forever.

Rule broken: the key set must follow the provider's (OpenID Connect Core §10.1.1: rotation is
signalled by publishing the new key and is picked up by re-fetching the JWKS; RFC 7517 §5); a
removed key must stop verifying within a bounded time.

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
    response = requests.get(metadata["jwks_uri"], timeout=10)
    response.raise_for_status()
    signing_keys = {key.key_id: key for key in jwt.PyJWKSet.from_dict(response.json()).keys}
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
            signing_key = signing_keys.get(jwt.get_unverified_header(token).get("kid"))
            if signing_key is None:
                raise jwt.InvalidTokenError("unknown signing key")
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
