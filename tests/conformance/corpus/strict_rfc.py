"""A small Starlette server written to the RFCs, not derived from the kit's reference server.

RFC 6749 §4.3 / §5: ``POST /token`` takes only a UTF-8 ``application/x-www-form-urlencoded`` body,
requires ``grant_type=password``, treats empty parameters as omitted, refuses repeated ones, and
answers errors as ``400 {"error", "error_description"}``; a success carries ``expires_in`` and
``Cache-Control: no-store`` with ``Pragma: no-cache``. RFC 6750 §2.1 / §3: the ``Bearer`` header
only (``1*SP`` between scheme and token), a ``realm`` on every challenge, ``error="invalid_token"``
for a bad token, ``invalid_request`` (400) for a malformed or duplicated credential, no error code
when none was sent. RFC 8725: HS256 pinned, ``exp``/``iat``/``sub`` required and integer, ``iss``
and ``aud`` checked, ``crit`` refused, a 15-minute lifetime, a unique ``jti``. Unknown users are
verified against a dummy hash, and disabled users get the same ``invalid_grant`` answer.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any
from urllib.parse import unquote_to_bytes

import jwt
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .users import USERS, fast_password_hash, secret_key

ALGORITHM = "HS256"
ISSUER = "http://strict.example"
AUDIENCE = "strict-api"
LIFETIME_S = 900
MAX_BODY = 64 * 1024
REALM = 'realm="strict"'
BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
FORM_PAIR = re.compile(r"(?:[^%&=]|%[0-9A-Fa-f]{2})*(?:=(?:[^%&]|%[0-9A-Fa-f]{2})*)?")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status, headers=NO_STORE)


def bearer_refusal(status: int, error: str | None, description: str) -> JSONResponse:
    challenge = f'Bearer {REALM}, error="{error}", error_description="{description}"' if error else f"Bearer {REALM}"
    body = {"error": error or "unauthorized", "error_description": description}
    return JSONResponse(body, status, headers={"WWW-Authenticate": challenge, "Cache-Control": "no-store"})


class FormError(Exception):
    pass


def parse_form(body: bytes) -> dict[str, list[str]]:
    """application/x-www-form-urlencoded, strictly: valid escapes, UTF-8, ``+`` for space."""
    fields: dict[str, list[str]] = {}
    for pair in body.split(b"&") if body else []:
        text = pair.decode("ascii", errors="strict") if pair.isascii() else None
        if text is None or not FORM_PAIR.fullmatch(text):
            raise FormError("the body is not valid form encoding")
        name, _, value = text.partition("=")
        try:
            key = unquote_to_bytes(name.replace("+", " ")).decode("utf-8")
            fields.setdefault(key, []).append(unquote_to_bytes(value.replace("+", " ")).decode("utf-8"))
        except UnicodeDecodeError:
            raise FormError("the body is not UTF-8") from None
    return fields


def create_app() -> Starlette:
    secret = secret_key()
    password_hash = fast_password_hash()
    dummy_hash = password_hash.hash(secrets.token_urlsafe(16))
    users: dict[str, dict[str, Any]] = {
        user.username: {
            "hash": password_hash.hash(user.password),
            "active": user.active,
            "public": {"sub": user.username, "username": user.username, "name": user.full_name, "email": user.email},
        }
        for user in USERS
    }

    async def token(request: Request) -> Response:
        media, _, params = request.headers.get("content-type", "").partition(";")
        if media.strip().lower() != "application/x-www-form-urlencoded":
            return oauth_error("invalid_request", "the body must be application/x-www-form-urlencoded", 415)
        charset = params.strip().lower()
        if charset and charset.replace(" ", "") not in ("charset=utf-8", 'charset="utf-8"'):
            return oauth_error("invalid_request", "the body must be UTF-8", 415)
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return oauth_error("invalid_request", "the body is too large", 413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return oauth_error("invalid_request", "the body is too large", 413)
        try:
            form = parse_form(body)
        except FormError as exc:
            return oauth_error("invalid_request", str(exc))
        repeated = sorted(name for name, values in form.items() if len(values) > 1)
        if repeated:
            return oauth_error("invalid_request", f"repeated parameter: {repeated[0]}")
        fields = {name: values[0] for name, values in form.items() if values[0] != ""}
        grant_type = fields.get("grant_type")
        if grant_type is None:
            return oauth_error("invalid_request", "grant_type is required")
        if grant_type != "password":
            return oauth_error("unsupported_grant_type", "only the password grant is supported")
        missing = [name for name in ("username", "password") if name not in fields]
        if missing:
            return oauth_error("invalid_request", f"{missing[0]} is required")
        user = users.get(fields["username"])
        valid = password_hash.verify(fields["password"], user["hash"] if user else dummy_hash)
        if not (user and valid and user["active"]):
            return oauth_error("invalid_grant", "the username or password is incorrect")
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": fields["username"],
            "iat": now,
            "exp": now + LIFETIME_S,
            "jti": secrets.token_urlsafe(16),
        }
        access_token = jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"typ": "JWT"})
        answer = {"access_token": access_token, "token_type": "Bearer", "expires_in": LIFETIME_S}
        return JSONResponse(answer, headers=NO_STORE)

    def authenticate(request: Request) -> dict[str, Any] | Response:
        fields = request.headers.getlist("authorization")
        in_query = "access_token" in request.query_params
        if len(fields) > 1 or (fields and in_query):
            return bearer_refusal(400, "invalid_request", "more than one credential was sent")
        if not fields or not fields[0].lower().startswith("bearer"):
            return bearer_refusal(401, None, "a Bearer token is required")
        match = BEARER.fullmatch(fields[0].rstrip(" "))
        if not match:
            return bearer_refusal(400, "invalid_request", "the Authorization header is malformed")
        try:
            header = jwt.get_unverified_header(match.group(1))
            if set(header) - {"alg", "typ"} or header.get("typ") != "JWT":
                raise jwt.InvalidTokenError("unexpected header parameters")
            claims = jwt.decode(
                match.group(1),
                secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
            if not all(type(claims[name]) is int for name in ("exp", "iat")) or not isinstance(claims["sub"], str):
                raise jwt.InvalidTokenError("exp and iat must be integers, sub a string")
        except jwt.InvalidTokenError:
            return bearer_refusal(401, "invalid_token", "the access token is invalid or expired")
        user = users.get(claims["sub"])
        if user is None or not user["active"]:
            return bearer_refusal(401, "invalid_token", "the access token is invalid or expired")
        return user

    async def me(request: Request) -> Response:
        user = authenticate(request)
        if isinstance(user, Response):
            return user
        return JSONResponse(user["public"], headers={"Cache-Control": "no-store"})

    async def protected(request: Request) -> Response:
        user = authenticate(request)
        if isinstance(user, Response):
            return user
        return JSONResponse({"message": "hello", "sub": user["public"]["sub"]}, headers={"Cache-Control": "no-store"})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": "http_error", "error_description": exc.detail}, exc.status_code, exc.headers)

    routes = [
        Route("/token", token, methods=["POST"]),
        Route("/users/me", me, methods=["GET"]),
        Route("/protected-resource", protected, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
