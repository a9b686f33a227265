"""FastAPI's security tutorial005 (OAuth2 scopes), as the docs wrote it in the python-jose era.

The same shape as those docs: ``from jose import JWTError, jwt``, ``OAuth2PasswordBearer`` declaring
the scopes ``me`` and ``items``, a login at ``POST /token`` that answers a bad login with 400
"Incorrect username or password" and puts ``form_data.scopes`` (whatever the client asked for)
into the token's ``scopes`` claim, ``get_current_user`` taking ``SecurityScopes`` and answering
401 with ``WWW-Authenticate: Bearer scope="..."`` on a bad token or a missing scope, 400 "Inactive
user" for a disabled account, and ``/users/me/`` (scope ``me``), ``/users/me/items/`` (scopes ``me``
and ``items``) and ``/status/`` (any user). Hashing is pwdlib rather than the era's passlib (the
only change); the secret comes from the environment.

No ``from __future__ import annotations``: FastAPI evaluates the dependency annotations.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Security, status
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm, SecurityScopes
from jose import JWTError, jwt  # type: ignore[import-untyped]
from pydantic import BaseModel, ValidationError

from .users import USERS, fast_password_hash, secret_key

ALGORITHM = "HS256"
ACCESS_TOKEN_EXPIRE_MINUTES = 30


class Token(BaseModel):
    access_token: str
    token_type: str


class TokenData(BaseModel):
    username: str | None = None
    scopes: list[str] = []


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
    oauth2_scheme = OAuth2PasswordBearer(
        tokenUrl="token",
        scopes={"me": "Read information about the current user.", "items": "Read items."},
    )
    app = FastAPI()

    def get_user(username: str) -> UserInDB | None:
        if username in fake_users_db:
            return UserInDB(**fake_users_db[username])
        return None

    def authenticate_user(username: str, password: str) -> UserInDB | None:
        user = get_user(username)
        if not user:
            return None
        if not password_hash.verify(password, user.hashed_password):
            return None
        return user

    def create_access_token(data: dict[str, object], expires_delta: timedelta) -> str:
        to_encode = data.copy()
        to_encode.update({"exp": datetime.now(UTC) + expires_delta})
        encoded: str = jwt.encode(to_encode, secret, algorithm=ALGORITHM)
        return encoded

    async def get_current_user(security_scopes: SecurityScopes, token: Annotated[str, Depends(oauth2_scheme)]) -> User:
        if security_scopes.scopes:  # noqa: SIM108 - as the tutorial writes it
            authenticate_value = f'Bearer scope="{security_scopes.scope_str}"'
        else:
            authenticate_value = "Bearer"
        credentials_exception = HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Could not validate credentials",
            headers={"WWW-Authenticate": authenticate_value},
        )
        try:
            payload = jwt.decode(token, secret, algorithms=[ALGORITHM])
            username = payload.get("sub")
            if username is None:
                raise credentials_exception
            token_scopes = payload.get("scopes", [])
            token_data = TokenData(scopes=token_scopes, username=username)
        except (JWTError, ValidationError):
            raise credentials_exception from None
        user = get_user(username=token_data.username or "")
        if user is None:
            raise credentials_exception
        for scope in security_scopes.scopes:
            if scope not in token_data.scopes:
                raise HTTPException(
                    status_code=status.HTTP_401_UNAUTHORIZED,
                    detail="Not enough permissions",
                    headers={"WWW-Authenticate": authenticate_value},
                )
        return user

    async def get_current_active_user(current_user: Annotated[User, Security(get_current_user, scopes=["me"])]) -> User:
        if current_user.disabled:
            raise HTTPException(status_code=400, detail="Inactive user")
        return current_user

    @app.post("/token")
    async def login_for_access_token(form_data: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
        user = authenticate_user(form_data.username, form_data.password)
        if not user:
            raise HTTPException(status_code=400, detail="Incorrect username or password")
        access_token = create_access_token(
            data={"sub": user.username, "scopes": form_data.scopes},
            expires_delta=timedelta(minutes=ACCESS_TOKEN_EXPIRE_MINUTES),
        )
        return Token(access_token=access_token, token_type="bearer")

    @app.get("/users/me/", response_model=User)
    async def read_users_me(current_user: Annotated[User, Depends(get_current_active_user)]) -> User:
        return current_user

    @app.get("/users/me/items/")
    async def read_own_items(
        current_user: Annotated[User, Security(get_current_active_user, scopes=["items"])],
    ) -> list[dict[str, str]]:
        return [{"item_id": "Foo", "owner": current_user.username}]

    @app.get("/status/")
    async def read_system_status(current_user: Annotated[User, Depends(get_current_user)]) -> dict[str, str]:
        return {"status": "ok"}

    return app
