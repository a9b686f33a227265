"""Servers with one defect each, of the kinds fuzzing must name: the reference app behind a wrapper.

- ``crashes_on_malformed_token``: a hand-rolled header parse, unguarded: a three-segment token whose
  header is not base64 JSON gets a 500 (a token that is not three segments still gets a proper 401);
- ``leaks_password_hash``: ``/users/me`` returns the stored record, ``hashed_password`` included;
- ``serves_without_token``: ``/protected-resource`` answers 200 whatever the credentials;
- ``undocumented_status``: the token endpoint's ``invalid_request`` is FastAPI's 422;
- ``ignores_signature``: a token with the issued header and claims is accepted under any signature
  (``jwt.decode(..., options={"verify_signature": False})``), yet an unreadable one is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import FastAPI

from ..harness import Answer, ASGIApp, answer, on, rewrite

Scope = dict[str, Any]


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization" and value[:7].lower() == b"bearer ":
            return str(value[7:].decode("latin-1"))
    return None


async def _send_text(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def _header_json(token: str) -> Any:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def crashes_on_malformed_token(app: FastAPI, path: str | None = None) -> ASGIApp:
    """``path``: only that path crashes (by default every one)."""

    async def wrapper(scope: Scope, receive: Any, send: Any) -> None:
        chosen = scope["type"] == "http" and path in (None, scope["path"])
        token = _bearer(scope) if chosen else None
        if token is not None and token.count(".") == 2:
            try:
                _header_json(token)
            except (ValueError, binascii.Error):
                await _send_text(send, 500, b"Internal Server Error")
                return
        await app(scope, receive, send)

    return wrapper


def leaks_password_hash(app: FastAPI) -> ASGIApp:
    def leak(answer: Answer) -> None:
        if answer.status == 200:
            record = answer.json()
            record["hashed_password"] = "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"
            answer.set_json(record)

    return rewrite(app, on("GET", "/users/me", leak))


def serves_without_token(app: FastAPI) -> ASGIApp:
    async def wrapper(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/protected-resource" and scope["method"] == "GET":
            body = {"message": "This is a protected resource", "user": {"username": "johndoe"}}
            await answer(send, 200, body, {"Cache-Control": "private, no-store"})
            return
        await app(scope, receive, send)

    return wrapper


def undocumented_status(app: FastAPI) -> ASGIApp:
    def as_422(answer: Answer) -> None:
        if answer.status == 400 and answer.json().get("error") == "invalid_request":
            answer.status = 422

    return rewrite(app, on("POST", "/token", as_422))


def ignores_signature(app: FastAPI) -> ASGIApp:
    issued: dict[str, str] = {}  # "header.claims" of each token the server issued -> the token

    def remember(answer: Answer) -> None:
        if answer.status == 200:
            token = answer.json()["access_token"]
            issued[token.rsplit(".", 1)[0]] = token

    inner = rewrite(app, on("POST", "/token", remember))

    async def wrapper(scope: Scope, receive: Any, send: Any) -> None:
        token = _bearer(scope) if scope["type"] == "http" else None
        if token is not None and token.count(".") == 2 and token.rsplit(".", 1)[0] in issued:
            real = issued[token.rsplit(".", 1)[0]]  # the claims are all it reads: any signature will do
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"authorization"]
            scope = {**scope, "headers": [*headers, (b"authorization", b"Bearer " + real.encode())]}
        await inner(scope, receive, send)

    return wrapper


def refuses_bad_tokens_with_400(app: FastAPI) -> ASGIApp:
    """Every refused token gets a 400 ``invalid_request`` (documented, though RFC 6750 §3.1 says 401)."""

    def as_invalid_request(answer: Answer) -> None:
        challenge = answer.header("www-authenticate") or ""
        if answer.status == 401 and 'error="invalid_token"' in challenge:
            answer.status = 400
            answer.set_header("www-authenticate", challenge.replace("invalid_token", "invalid_request"))
            answer.set_json({"detail": "The access token is malformed", "error": "invalid_request"})

    def chosen(scope: Scope, answer: Answer) -> None:
        if scope["path"] in ("/users/me", "/protected-resource"):
            as_invalid_request(answer)

    return rewrite(app, chosen)
