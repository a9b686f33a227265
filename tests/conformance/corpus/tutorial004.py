"""FastAPI's security tutorial004 (OAuth2 password flow with JWT), as its current docs write it: PyJWT and pwdlib.

The same shape as the docs: a fake users dict of ``UserInDB`` records, ``OAuth2PasswordBearer``
with ``tokenUrl="token"``, ``OAuth2PasswordRequestForm`` at ``POST /token``, a dummy hash verified
for unknown users, tokens of ``sub`` and ``exp`` (30 minutes) signed HS256, 401 "Incorrect username
or password" with ``WWW-Authenticate: Bearer`` on a bad login, 401 "Could not validate credentials"
on a bad token, 400 "Inactive user" for a disabled account, and the routes ``/users/me/`` and
``/users/me/items/`` with their trailing slashes. The docs tell readers to generate their own
secret (``openssl rand -hex 32``), so the secret comes from the environment, never the docs' value.

No ``from __future__ import annotations``: FastAPI evaluates the dependency annotations.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from jwt.exceptions import InvalidTokenError
from pydantic import BaseModel

from .users import USERS, fast_password_hash, secret_key

ALGORITHM = "HS256"
ACCESS_TOKEN_EXPIRE_MINUTES = 30


class Token(BaseModel):
    access_token: str
    token_type: str


class TokenData(BaseModel):
    username: str | None = None


class User(BaseModel):
    username: str
    email: str | None = None
    full_name: str | None = None
    disabled: bool | None = None


class UserInDB(User):
    hashed_password: str


def create_app() -> FastAPI:
    secret = secret_key()
    password_hash = fast_password_hash()
    dummy_hash = password_hash.hash("dummypassword")
    fake_users_db: dict[str, dict[str, Any]] = {
        user.username: {
            "username": user.username,
            "full_name": user.full_name,
            "email": user.email,
            "hashed_password": password_hash.hash(user.password),
            "disabled": not user.active,
        }
        for user in USERS
    }
    oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")
    app = FastAPI()

    def get_user(username: str) -> UserInDB | None:
        if username in fake_users_db:
            return UserInDB(**fake_users_db[username])
        return None

    def authenticate_user(username: str, password: str) -> UserInDB | None:
        user = get_user(username)
        if not user:
            password_hash.verify(password, dummy_hash)
            return None
        if not password_hash.verify(password, user.hashed_password):
            return None
        return user

    def create_access_token(data: dict[str, object], expires_delta: timedelta) -> str:
        to_encode = data.copy()
        to_encode.update({"exp": datetime.now(UTC) + expires_delta})
        return jwt.encode(to_encode, secret, algorithm=ALGORITHM)

    async def get_current_user(token: Annotated[str, Depends(oauth2_scheme)]) -> UserInDB:
        credentials_exception = HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Could not validate credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )
        try:
            payload = jwt.decode(token, secret, algorithms=[ALGORITHM])
            username = payload.get("sub")
            if username is None:
                raise credentials_exception
            token_data = TokenData(username=username)
        except InvalidTokenError:
            raise credentials_exception from None
        user = get_user(username=token_data.username or "")
        if user is None:
            raise credentials_exception
        return user

    async def get_current_active_user(current_user: Annotated[User, Depends(get_current_user)]) -> User:
        if current_user.disabled:
            raise HTTPException(status_code=400, detail="Inactive user")
        return current_user

    @app.post("/token")
    async def login_for_access_token(form_data: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
        user = authenticate_user(form_data.username, form_data.password)
        if not user:
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="Incorrect username or password",
                headers={"WWW-Authenticate": "Bearer"},
            )
        access_token = create_access_token(
            data={"sub": user.username}, expires_delta=timedelta(minutes=ACCESS_TOKEN_EXPIRE_MINUTES)
        )
        return Token(access_token=access_token, token_type="bearer")

    @app.get("/users/me/", response_model=User)
    async def read_users_me(current_user: Annotated[User, Depends(get_current_active_user)]) -> User:
        return current_user

    @app.get("/users/me/items/")
    async def read_own_items(current_user: Annotated[User, Depends(get_current_active_user)]) -> list[dict[str, str]]:
        return [{"item_id": "Foo", "owner": current_user.username}]

    return app
