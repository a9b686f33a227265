"""Servers the kit did not write, as the fuzzer meets them: no kit contract, their own layout and dialect.

- ``express_style``: the shape of a Node.js express + passport-jwt server, in Python: no OpenAPI
  document, only ``POST /token`` and ``GET /users/me``, error bodies ``{"message": ...}`` (not RFC
  6749 §5.2), a me body of its own, express's ``404 Cannot DELETE /users/me`` (HTML) for any other
  method or path, an empty 401 without ``Content-Type`` for a request without a token (as RFC 6750
  §3 shows it); otherwise correct: 400 for a refused login, JSON answers, ``Cache-Control:
  no-store`` on tokens, a Bearer challenge on every 401. ``defect`` adds one real defect:
  - ``"500-on-content-type"``: the token endpoint crashes on a body that is not form-encoded
    (a body parser that throws on a content type nobody declared);
  - ``"401-without-challenge"``: refused tokens get a 401 without ``WWW-Authenticate``.
- ``fastapi_served``: a FastAPI app in the tutorial's style that serves its own ``/openapi.json``,
  with operations the kit's contract does not have (``GET /items``) and none of the kit's others.

No ``from __future__ import annotations`` here: FastAPI must evaluate the local ``Depends`` annotations.
"""

import secrets
import time
from typing import Annotated, Any
from urllib.parse import parse_qs

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel

from ..harness import PRIMARY

ALGORITHM = "HS256"
TTL_S = 900
DEFECTS = ("500-on-content-type", "401-without-challenge")
FORM = "application/x-www-form-urlencoded"


def _message(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status, headers=headers)


def _issue(key: str, username: str) -> dict[str, Any]:
    now = int(time.time())
    token = jwt.encode({"sub": username, "iat": now, "exp": now + TTL_S}, key, algorithm=ALGORITHM)
    return {"access_token": token, "token_type": "bearer", "expires_in": TTL_S}


def _express_routing(app: FastAPI, routes: set[tuple[str, str]]) -> Any:
    """``app`` behind express's router: a method or path it has no route for gets 404 ``Cannot METHOD /path``."""

    async def router(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) not in routes:
            body = f"<pre>Cannot {scope['method']} {scope['path']}</pre>".encode()
            headers = [(b"content-type", b"text/html; charset=utf-8")]
            await send({"type": "http.response.start", "status": 404, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return router


def express_style(defect: str | None = None) -> Any:
    """The express + passport-jwt server's twin; ``defect`` is one of ``DEFECTS`` or ``None``."""
    assert defect in (None, *DEFECTS), defect
    key = secrets.token_urlsafe(48)
    users = {PRIMARY.username: {"password": PRIMARY.password, "email": f"{PRIMARY.username}@example.com"}}
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/token")
    async def token(request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != FORM:
            if defect == "500-on-content-type" and media:
                return PlainTextResponse("Internal Server Error", status_code=500)
            return _message(400, "the body must be form-encoded")
        try:
            form = parse_qs((await request.body()).decode("utf-8"), strict_parsing=False)
        except UnicodeDecodeError:
            return _message(400, "the body is not UTF-8")
        fields = {name: values[0] for name, values in form.items() if len(values) == 1 and values[0]}
        if fields.get("grant_type") != "password":
            return _message(400, "unsupported grant type")
        username, password = fields.get("username"), fields.get("password")
        if not username or not password:
            return _message(400, "username and password are required")
        user = users.get(username)
        if user is None or not secrets.compare_digest(user["password"].encode(), password.encode()):
            return _message(400, "invalid credentials")
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        return JSONResponse(_issue(key, username), headers=headers)

    def refuse(error: str | None) -> Response:
        challenge = "Bearer" if error is None else f'Bearer error="{error}"'
        headers = None if defect == "401-without-challenge" else {"WWW-Authenticate": challenge}
        if error is None:  # no token: an empty answer, which needs no Content-Type
            return Response(status_code=401, headers=headers)
        return _message(401, "Unauthorized", headers)

    @app.get("/users/me")
    async def me(request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return refuse(None)
        try:
            claims = jwt.decode(token.strip(), key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
        except jwt.InvalidTokenError:
            return refuse("invalid_token")
        user = users.get(str(claims["sub"]))
        if user is None:
            return refuse("invalid_token")
        return JSONResponse({"username": claims["sub"], "email": user["email"]}, headers={"Cache-Control": "no-store"})

    return _express_routing(app, {("POST", "/token"), ("GET", "/users/me"), ("HEAD", "/users/me")})


class Item(BaseModel):
    name: str
    owner: str


class Token(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


class Me(BaseModel):
    username: str
    email: str


def fastapi_served() -> FastAPI:
    """A FastAPI app with its own ``/openapi.json``: ``POST /token``, ``GET /users/me``, ``GET /items``."""
    key = secrets.token_urlsafe(48)
    oauth2 = OAuth2PasswordBearer(tokenUrl="token")
    app = FastAPI(title="Items")

    def current_user(token: Annotated[str, Depends(oauth2)]) -> str:
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
        except jwt.InvalidTokenError:
            raise HTTPException(401, "Could not validate credentials", {"WWW-Authenticate": "Bearer"}) from None
        if claims["sub"] != PRIMARY.username:
            raise HTTPException(401, "Could not validate credentials", {"WWW-Authenticate": "Bearer"})
        return str(claims["sub"])

    @app.post("/token", response_model=Token)
    def token(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> JSONResponse:
        if form.username != PRIMARY.username or not secrets.compare_digest(
            form.password.encode(), PRIMARY.password.encode()
        ):
            raise HTTPException(400, "Incorrect username or password")
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        return JSONResponse(_issue(key, form.username), headers=headers)

    @app.get("/users/me", response_model=Me)
    def me(user: Annotated[str, Depends(current_user)]) -> Me:
        return Me(username=user, email=f"{user}@example.com")

    @app.get("/items", response_model=list[Item])
    def items(user: Annotated[str, Depends(current_user)]) -> list[Item]:
        return [Item(name="lamp", owner=user)]

    return app
