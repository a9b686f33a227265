"""fastapi-users wired as its SQLAlchemy "full example" wires it: JWT strategy, bearer transport, async SQLite.

Follows the library's documentation: a ``User`` table from ``SQLAlchemyBaseUserTableUUID`` on an
``aiosqlite`` engine, a ``UserManager`` with the UUID id mixin, ``BearerTransport`` whose token URL
is ``auth/jwt/login``, a ``JWTStrategy`` with a one-hour lifetime, one ``AuthenticationBackend``
named ``jwt``, and the auth, register, reset-password, verify and users routers under their
documented prefixes (so the current user is ``GET /users/me``). Users log in with their email.
Seeding the three users at startup and the cheap Argon2 hasher are the only additions.

What the library does on the wire, and the suite judges: a wrong login is ``400 {"detail":
"LOGIN_BAD_CREDENTIALS"}``; the login answer carries no ``Cache-Control``; a missing or invalid
token is a bare ``401 {"detail": "Unauthorized"}`` with no ``WWW-Authenticate`` challenge; tokens
carry ``sub`` (the user's UUID), ``aud: ["fastapi-users:auth"]`` and ``exp``, signed HS256 with
PyJWT.

No ``from __future__ import annotations``: FastAPI evaluates the dependency annotations.
"""

import os
import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, JWTStrategy
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from fastapi_users.password import PasswordHelper
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from .users import DATABASE_ENV, USERS, fast_password_hash, secret_key


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


class UserUpdate(schemas.BaseUserUpdate):
    pass


def create_app() -> FastAPI:
    secret = secret_key()
    engine = create_async_engine(f"sqlite+aiosqlite:///{os.environ[DATABASE_ENV]}")
    async_session_maker = async_sessionmaker(engine, expire_on_commit=False)
    password_helper = PasswordHelper(fast_password_hash())

    async def get_async_session() -> AsyncGenerator[AsyncSession, None]:
        async with async_session_maker() as session:
            yield session

    async def get_user_db(session: Annotated[AsyncSession, Depends(get_async_session)]) -> AsyncGenerator[Any, None]:
        yield SQLAlchemyUserDatabase(session, User)

    class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
        reset_password_token_secret = secret
        verification_token_secret = secret

    async def get_user_manager(user_db: Annotated[Any, Depends(get_user_db)]) -> AsyncGenerator[UserManager, None]:
        yield UserManager(user_db, password_helper)

    bearer_transport = BearerTransport(tokenUrl="auth/jwt/login")

    def get_jwt_strategy() -> JWTStrategy[User, uuid.UUID]:
        return JWTStrategy(secret=secret, lifetime_seconds=3600)

    auth_backend = AuthenticationBackend(name="jwt", transport=bearer_transport, get_strategy=get_jwt_strategy)
    fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])
    current_active_user = fastapi_users.current_user(active=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None, None]:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with async_session_maker() as session:
            manager = UserManager(SQLAlchemyUserDatabase(session, User), password_helper)
            for user in USERS:
                await manager.create(UserCreate(email=user.email, password=user.password, is_active=user.active))
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth/jwt", tags=["auth"])
    app.include_router(fastapi_users.get_register_router(UserRead, UserCreate), prefix="/auth", tags=["auth"])
    app.include_router(fastapi_users.get_reset_password_router(), prefix="/auth", tags=["auth"])
    app.include_router(fastapi_users.get_verify_router(UserRead), prefix="/auth", tags=["auth"])
    app.include_router(fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users", tags=["users"])

    @app.get("/authenticated-route")
    async def authenticated_route(user: Annotated[User, Depends(current_active_user)]) -> dict[str, str]:
        return {"message": f"Hello {user.email}!"}

    return app
