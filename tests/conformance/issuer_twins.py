"""A resource server that trusts an OpenID issuer (PyJWT + its JWK Set over real HTTP), correct or broken one way.

``resource_server(...)`` verifies access tokens as RFC 9068 §4 asks: the key named by ``kid`` in the
issuer's JWK Set (cached, refetched on an unknown kid at most once per ``cooldown`` seconds, dropped
after ``max_age`` seconds), the algorithm that key allows, ``typ: at+jwt``, and ``iss``, ``aud``,
``exp`` and ``sub`` required; the subject must be a known user. Each ``defect`` breaks exactly one
of these, the way hand-written verifiers get it wrong:

* ``unverified``: decodes without checking the signature (``verify_signature: False``), claims still checked;
* ``optional_iss_aud``: compares ``iss`` and ``aud`` only when the token carries them, and ``iss`` by prefix;
* ``ignores_aud``: never looks at ``aud`` (``verify_aud: False``), everything else checked;
* ``never_refresh``: fetches the key set once and keeps it (a key published later is never accepted);
* ``never_forget``: refetches on an unknown kid but adds keys to its cache and never drops one;
* ``storm``: refetches the key set for every unknown kid, with no cooldown.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx2 as httpx
import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

DEFECTS = ("unverified", "optional_iss_aud", "ignores_aud", "never_refresh", "never_forget", "storm")


class KeySet:
    """The issuer's JWK Set as the server caches it."""

    def __init__(self, jwks_uri: str, *, cooldown: float, max_age: float, defect: str | None) -> None:
        self.jwks_uri, self.cooldown, self.max_age, self.defect = jwks_uri, cooldown, max_age, defect
        self.keys: dict[str, dict[str, Any]] = {}
        self.fetched_at: float | None = None
        self.lock = threading.Lock()

    def _fetch(self) -> None:
        document = httpx.get(self.jwks_uri, timeout=5, trust_env=False).json()
        fresh = {key["kid"]: key for key in document["keys"] if isinstance(key, dict) and "kid" in key}
        self.keys = {**self.keys, **fresh} if self.defect == "never_forget" else fresh
        self.fetched_at = time.monotonic()

    def key(self, kid: str) -> dict[str, Any] | None:
        with self.lock:
            now = time.monotonic()
            if self.fetched_at is None:
                self._fetch()
            elif self.defect != "never_refresh":
                stale = self.defect != "never_forget" and now - self.fetched_at > self.max_age
                may_refetch = self.defect == "storm" or now - self.fetched_at > self.cooldown
                if stale or (kid not in self.keys and may_refetch):
                    self._fetch()
            return self.keys.get(kid)


def resource_server(
    *,
    issuer: str,
    endpoint: str,
    audience: str,
    users: set[str] | None,
    defect: str | None = None,
    cooldown: float = 1.0,
    max_age: float = 3.0,
) -> FastAPI:
    if defect is not None and defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r}")
    keys = KeySet(f"{endpoint}/.well-known/jwks.json", cooldown=cooldown, max_age=max_age, defect=defect)
    app = FastAPI()

    def refuse(description: str | None = None) -> JSONResponse:
        challenge = 'Bearer realm="api"' + (
            f', error="invalid_token", error_description="{description}"' if description else ""
        )
        return JSONResponse(
            {"error": "invalid_token" if description else "unauthorized"}, 401, headers={"WWW-Authenticate": challenge}
        )

    def verify(request: Request) -> dict[str, Any] | JSONResponse:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return refuse()
        try:
            header = jwt.get_unverified_header(token)
            if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
                return refuse("not an access token")
            if defect == "unverified":
                claims = jwt.decode(token, options={"verify_signature": False, "require": ["exp", "iss", "aud", "sub"]})
                if claims["iss"] != issuer or audience not in (
                    [claims["aud"]] if isinstance(claims["aud"], str) else claims["aud"]
                ):
                    return refuse("wrong issuer or audience")
                if claims["exp"] < time.time():
                    return refuse("expired")
            else:
                kid = header.get("kid")
                jwk = keys.key(kid) if isinstance(kid, str) else None
                if jwk is None:
                    return refuse("unknown key")
                key = jwt.PyJWK(jwk)
                if defect == "optional_iss_aud":
                    claims = jwt.decode(
                        token,
                        key.key,
                        algorithms=[jwk["alg"]],
                        options={"verify_aud": False, "require": ["exp", "sub"]},
                    )
                    if "iss" in claims and not str(claims["iss"]).startswith(issuer):
                        return refuse("wrong issuer")
                    if "aud" in claims and claims["aud"] != audience:
                        return refuse("wrong audience")
                elif defect == "ignores_aud":
                    only = {"verify_aud": False, "require": ["exp", "iss", "sub"]}
                    claims = jwt.decode(token, key.key, algorithms=[jwk["alg"]], issuer=issuer, options=only)
                else:
                    claims = jwt.decode(
                        token,
                        key.key,
                        algorithms=[jwk["alg"]],
                        issuer=issuer,
                        audience=audience,
                        options={"require": ["exp", "iss", "aud", "sub"]},
                    )
        except (jwt.PyJWTError, ValueError, KeyError, TypeError):
            return refuse("invalid token")
        if users is not None and claims.get("sub") not in users:  # None: serves any subject the issuer vouches for
            return refuse("unknown user")
        return claims

    @app.get("/users/me")
    def users_me(request: Request) -> Any:
        claims = verify(request)
        if isinstance(claims, JSONResponse):
            return claims
        return JSONResponse({"username": claims["sub"]}, headers={"Cache-Control": "no-store"})

    @app.get("/protected-resource")
    def protected(request: Request) -> Any:
        claims = verify(request)
        if isinstance(claims, JSONResponse):
            return claims
        return JSONResponse({"owner": claims["sub"]}, headers={"Cache-Control": "no-store"})

    return app
