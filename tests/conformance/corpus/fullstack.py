"""A server in the style of FastAPI's full-stack template: email login under ``/api/v1``, UUID subjects, PyJWT.

Follows the template's backend: ``OAuth2PasswordBearer`` whose token URL is
``/api/v1/login/access-token``; the login takes ``OAuth2PasswordRequestForm`` (the username field
holds the email), answers 400 "Incorrect email or password" or 400 "Inactive user", and issues
``{"access_token", "token_type": "bearer"}`` with ``sub`` = the user's id and an eight-day ``exp``;
the dependency that reads the token answers a bad one with 403 "Could not validate credentials"
(no challenge), an unknown subject with 404 and an inactive user with 400; ``GET /api/v1/users/me``
answers ``{"email", "is_active", "is_superuser", "full_name", "id"}`` and ``GET /api/v1/items/``
the user's items. The template keeps users in
Postgres through SQLModel; a dict stands in for the database here. Its default secret is
``secrets.token_urlsafe(32)``, which the test supplies through the environment.

No ``from __future__ import annotations``: FastAPI evaluates the dependency annotations.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from jwt.exceptions import InvalidTokenError
from pydantic import BaseModel, ValidationError

from .users import USERS, fast_password_hash, secret_key

API_V1_STR = "/api/v1"
ALGORITHM = "HS256"
ACCESS_TOKEN_EXPIRE_MINUTES = 60 * 24 * 8


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class TokenPayload(BaseModel):
    sub: str | None = None


class UserPublic(BaseModel):
    email: str
    is_active: bool = True
    is_superuser: bool = False
    full_name: str | None = None
    id: uuid.UUID


class UserInDB(UserPublic):
    hashed_password: str


def create_app() -> FastAPI:
    secret = secret_key()
    password_hash = fast_password_hash()
    dummy_hash = password_hash.hash("dummypassword")
    by_id: dict[uuid.UUID, UserInDB] = {}
    for user in USERS:
        record = UserInDB(
            email=user.email,
            is_active=user.active,
            full_name=user.full_name,
            id=uuid.uuid4(),
            hashed_password=password_hash.hash(user.password),
        )
        by_id[record.id] = record
    by_email = {user.email: user for user in by_id.values()}
    reusable_oauth2 = OAuth2PasswordBearer(tokenUrl=f"{API_V1_STR}/login/access-token")

    def create_access_token(subject: str | Any, expires_delta: timedelta) -> str:
        expire = datetime.now(UTC) + expires_delta
        return jwt.encode({"exp": expire, "sub": str(subject)}, secret, algorithm=ALGORITHM)

    def authenticate(email: str, password: str) -> UserInDB | None:
        db_user = by_email.get(email)
        if not db_user:
            password_hash.verify(password, dummy_hash)
            return None
        if not password_hash.verify(password, db_user.hashed_password):
            return None
        return db_user

    def get_current_user(token: Annotated[str, Depends(reusable_oauth2)]) -> UserInDB:
        try:
            payload = jwt.decode(token, secret, algorithms=[ALGORITHM])
            token_data = TokenPayload(**payload)
        except (InvalidTokenError, ValidationError):
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN, detail="Could not validate credentials"
            ) from None
        try:
            user = by_id.get(uuid.UUID(token_data.sub or ""))
        except ValueError:
            user = None
        if not user:
            raise HTTPException(status_code=404, detail="User not found")
        if not user.is_active:
            raise HTTPException(status_code=400, detail="Inactive user")
        return user

    current_user = Annotated[UserInDB, Depends(get_current_user)]
    login = APIRouter(tags=["login"])
    users = APIRouter(prefix="/users", tags=["users"])
    items = APIRouter(prefix="/items", tags=["items"])

    @login.post("/login/access-token")
    def login_access_token(form_data: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
        user = authenticate(email=form_data.username, password=form_data.password)
        if not user:
            raise HTTPException(status_code=400, detail="Incorrect email or password")
        if not user.is_active:
            raise HTTPException(status_code=400, detail="Inactive user")
        expires = timedelta(minutes=ACCESS_TOKEN_EXPIRE_MINUTES)
        return Token(access_token=create_access_token(user.id, expires_delta=expires))

    @login.post("/login/test-token", response_model=UserPublic)
    def test_token(user: current_user) -> Any:
        return user

    @users.get("/me", response_model=UserPublic)
    def read_user_me(user: current_user) -> Any:
        return user

    @items.get("/")
    def read_items(user: current_user) -> dict[str, Any]:
        return {"data": [], "count": 0}

    app = FastAPI(openapi_url=f"{API_V1_STR}/openapi.json")
    app.include_router(login, prefix=API_V1_STR)
    app.include_router(users, prefix=API_V1_STR)
    app.include_router(items, prefix=API_V1_STR)
    return app
