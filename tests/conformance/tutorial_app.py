"""A server in the FastAPI-tutorial dialect (fastapi docs ``tutorial004``, PyJWT + pwdlib), with its users.

What it does like the tutorial, and the RFCs would not: wrong credentials get 401 ``{"detail"}``; a
missing form field gets 422; ``grant_type`` is optional; the token answer has no ``Cache-Control``
or ``Pragma``; challenges are a bare ``Bearer``; tokens carry only ``sub`` and ``exp`` with
``typ: JWT``; a disabled user gets a token and then 400 "Inactive user". It signs with a strong
random secret and hashes a dummy for unknown users, as the tutorial does.

No ``from __future__ import annotations`` here: FastAPI must evaluate the local ``Depends`` annotations.
"""

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from .harness import DISABLED, PRIMARY, SECOND

ALGORITHM = "HS256"


def tutorial_app(secret_key: str | None = None, ttl_minutes: int = 30, cache_headers: bool = False) -> FastAPI:
    """The tutorial's app. ``cache_headers=True`` adds the RFC 6749 §5.1 cache headers it lacks."""
    key = secret_key or secrets.token_urlsafe(48)
    password_hash = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1),))
    dummy_hash = password_hash.hash("dummypassword")
    users: dict[str, dict[str, Any]] = {
        creds.username: {
            "username": creds.username,
            "full_name": creds.username.title(),
            "email": f"{creds.username}@example.com",
            "hashed_password": password_hash.hash(creds.password),
            "disabled": creds is DISABLED,
        }
        for creds in (PRIMARY, SECOND, DISABLED)
    }
    oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")
    app = FastAPI()

    def authenticate_user(username: str, password: str) -> dict[str, Any] | None:
        user = users.get(username)
        if not user:
            password_hash.verify(password, dummy_hash)
            return None
        if not password_hash.verify(password, user["hashed_password"]):
            return None
        return user

    async def get_current_user(token: Annotated[str, Depends(oauth2_scheme)]) -> dict[str, Any]:
        credentials_exception = HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Could not validate credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )
        try:
            payload = jwt.decode(token, key, algorithms=[ALGORITHM])
            username = payload.get("sub")
            if username is None:
                raise credentials_exception
        except jwt.InvalidTokenError:
            raise credentials_exception from None
        user = users.get(username)
        if user is None:
            raise credentials_exception
        return user

    async def get_current_active_user(
        current_user: Annotated[dict[str, Any], Depends(get_current_user)],
    ) -> dict[str, Any]:
        if current_user["disabled"]:
            raise HTTPException(status_code=400, detail="Inactive user")
        return current_user

    @app.post("/token")
    async def login_for_access_token(form_data: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Any:
        user = authenticate_user(form_data.username, form_data.password)
        if not user:
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="Incorrect username or password",
                headers={"WWW-Authenticate": "Bearer"},
            )
        expire = datetime.now(UTC) + timedelta(minutes=ttl_minutes)
        token = jwt.encode({"sub": user["username"], "exp": expire}, key, algorithm=ALGORITHM)
        body = {"access_token": token, "token_type": "bearer"}
        if cache_headers:
            from fastapi.responses import JSONResponse

            return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
        return body

    @app.get("/users/me")
    async def read_users_me(current_user: Annotated[dict[str, Any], Depends(get_current_active_user)]) -> Any:
        return {k: v for k, v in current_user.items() if k != "hashed_password"}

    @app.get("/protected-resource")
    async def protected_resource(current_user: Annotated[dict[str, Any], Depends(get_current_active_user)]) -> Any:
        return {"message": "This is a protected resource", "user": {"username": current_user["username"]}}

    return app
