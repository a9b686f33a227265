"""``create_app(settings)``: wiring only. Services are built here once and kept in ``app.state``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .contract import load_contract
from .database import open_database
from .docs_ui import DOCS_PATHS as UI_PATHS, docs_router
from .errors import DatabaseUnavailableError
from .external_tokens import ExternalTokens
from .grants import GrantStore
from .oauth_errors import BearerError, unavailable_response
from .routers import admin, health, revoke, token, users
from .secret_key import check_secret
from .security import Passwords, Tokens
from .settings import Settings
from .signing_keys import load_key_set
from .state import AppState
from .store import UserStore
from .throttle import LoginThrottle

DOCS_PATHS = ("/openapi.json", *UI_PATHS)
LOG = logging.getLogger("uvicorn.error")  # the server's log, beside uvicorn's own lines


def build_state(settings: Settings) -> AppState:
    key_set = None
    if settings.uses_hmac:
        settings = settings.with_secret(check_secret(settings.secret_key))
    else:
        key_set = load_key_set(settings.algorithm, settings.private_key_file, settings.verify_key_files)
    shared = open_database(settings.database_url) if settings.database_url else None
    try:
        # SQLite: each store has its own connection to the file (revocation lookups do not wait for user
        # lookups); PostgreSQL: one pool of connections for them all.
        store = UserStore(shared or settings.database)
        grants = GrantStore(
            shared or settings.database, settings.refresh_token_ttl, settings.access_token_ttl + settings.leeway
        )
        throttle = LoginThrottle(
            shared or settings.database,
            settings.login_max_failures,
            settings.login_max_failures_per_client,
            settings.login_window,
        )
    except BaseException:
        if shared is not None:
            shared.close()
        raise
    return AppState(
        settings=settings,
        store=store,
        passwords=Passwords(settings.hash_profile, settings.max_concurrent_hashes),
        tokens=Tokens(settings, key_set, revocations=grants),
        throttle=throttle,
        grants=grants,
        database=shared,
        key_set=key_set,
        external=ExternalTokens(settings) if settings.trusted_issuers else None,
    )


def create_app(settings: Settings) -> FastAPI:
    """The reference server. Raises ``WeakSecretError`` unless ``settings.secret_key`` is strong (HS*),
    or ``SettingsError`` unless the private key matches the algorithm (RS256, ES256, EdDSA), or
    ``InstallError`` if Swagger UI's files are not installed.

    The app may be started and stopped several times (test clients do); whoever created it closes
    its resources: ``app.state.reference.close()``.
    """
    contract = load_contract()
    docs = docs_router(contract)  # before anything is opened: a broken install fails here
    state = build_state(settings)

    app = FastAPI(
        title=contract["info"]["title"],
        version=contract["info"]["version"],
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.reference = state
    app.include_router(users.router)  # first: GET /users/me is the hottest route, and routes are tried in order
    app.include_router(token.router)
    app.include_router(revoke.router)
    app.include_router(admin.router)
    app.include_router(health.router)

    @app.exception_handler(BearerError)
    async def bearer_error(_: Request, exc: BearerError) -> JSONResponse:
        return exc.response(state.settings.realm)

    @app.exception_handler(DatabaseUnavailableError)
    async def database_unavailable(request: Request, exc: DatabaseUnavailableError) -> JSONResponse:
        # One line that says why (locked, read-only, full ...): a condition of the moment, not a defect, so no
        # traceback.
        LOG.warning("503 for %s %s: %s", request.method, request.url.path, exc)
        return unavailable_response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": "Invalid request"}, status_code=400)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return contract

    app.include_router(docs)

    return app
