"""A small ES256 server (PyJWT + cryptography) for the checks that only apply to ECDSA tokens.

``accept_der=True`` is the broken twin: it also verifies signatures sent DER-encoded instead of the
raw r||s that RFC 7518 §3.4 prescribes.
"""

import base64
import time
from typing import Annotated, Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, Form, Header, HTTPException
from fastapi.responses import JSONResponse

from .harness import PRIMARY

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="es", error="invalid_token"'}


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def es256_app(accept_der: bool = False) -> FastAPI:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    app = FastAPI()

    @app.post("/token")
    async def token(
        grant_type: Annotated[str, Form()], username: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> Any:
        if grant_type != "password" or (username, password) != (PRIMARY.username, PRIMARY.password):
            return JSONResponse({"error": "invalid_grant"}, status_code=400, headers={"Cache-Control": "no-store"})
        now = int(time.time())
        claims = {"sub": username, "iat": now, "exp": now + 300}
        issued = jwt.encode(claims, key, algorithm="ES256", headers={"typ": "at+jwt"})
        body = {"access_token": issued, "token_type": "bearer", "expires_in": 300}
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def verify(token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(token, public, algorithms=["ES256"])
            return claims
        except jwt.PyJWTError:
            if not accept_der:
                raise
        head, _, signature = token.rpartition(".")
        try:  # the defect: a DER signature is handed to cryptography as is
            public.verify(_b64decode(signature), head.encode(), ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise jwt.InvalidSignatureError("bad signature") from None
        return jwt.decode(token, options={"verify_signature": False})

    @app.get("/users/me")
    async def me(authorization: Annotated[str | None, Header()] = None) -> Any:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": 'Bearer realm="es"'})
        try:
            claims = verify(authorization.removeprefix("Bearer "))
        except (jwt.PyJWTError, ValueError):
            raise HTTPException(401, "Invalid token", headers=CHALLENGE) from None
        return {"username": claims["sub"], "email": None, "full_name": None, "disabled": False}

    return app
