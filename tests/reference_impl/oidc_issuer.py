"""A tiny OpenID issuer for tests: discovery and a JWK Set on 127.0.0.1 (uvicorn in a thread), keys it can rotate,
tokens it signs, and a record of every path fetched from it."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from reference_impl.signing_keys import public_jwk

JWKS_PATH = "/keys"
ATTACKER_JWKS_PATH = "/attacker/jwks.json"  # never published in discovery: a resource server must never fetch it


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    def jwk(self) -> dict[str, str]:
        return {**public_jwk(self.private.public_key()), "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def new_key(algorithm: str) -> SigningKey:
    private: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return SigningKey(uuid.uuid4().hex, algorithm, private)


@dataclass
class Issuer:
    """The issuer's state: the published keys, and the paths clients fetched (in order)."""

    keys: list[SigningKey] = field(default_factory=list)
    fetches: Counter[str] = field(default_factory=Counter)
    url: str = ""

    def sign(self, key: SigningKey, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        """A token signed by ``key``, valid for the resource API unless ``claims`` say otherwise (None drops one)."""
        now = int(time.time())
        payload = {"iss": self.url, "aud": "resource-api", "sub": "bob", "exp": now + 300, "iat": now}
        payload["scope"] = "me items:read"
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        header = {"typ": "at+jwt", "kid": key.kid, **(headers or {})}
        header = {name: value for name, value in header.items() if value is not None}
        return jwt.encode(payload, key.private, algorithm=key.algorithm, headers=header)

    def app(self) -> Starlette:
        async def discovery(request: Request) -> JSONResponse:
            self.fetches[request.url.path] += 1
            return JSONResponse({"issuer": self.url, "jwks_uri": self.url + JWKS_PATH})

        async def jwks(request: Request) -> JSONResponse:
            self.fetches[request.url.path] += 1
            return JSONResponse({"keys": [key.jwk() for key in self.keys]})

        async def attacker(request: Request) -> JSONResponse:
            self.fetches[request.url.path] += 1
            return JSONResponse({"keys": []})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route(JWKS_PATH, jwks),
                Route(ATTACKER_JWKS_PATH, attacker),
            ]
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class IssuerServer:
    """``Issuer`` served by uvicorn on 127.0.0.1 in a thread; ``stop`` ends it (the port is then closed)."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        port = free_port()
        issuer.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(issuer.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="test-issuer", daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test issuer did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
