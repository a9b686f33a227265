"""Request dependencies: the current user from the ``Authorization: Bearer`` header (RFC 6750 §2.1)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from .external_tokens import granted_scopes
from .models import UserInDB
from .oauth_errors import BearerError
from .security import InvalidTokenError
from .state import AppState

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1).
_BEARER = re.compile(r"(?i:bearer) +([A-Za-z0-9\-._~+/]+=*)")
_SCHEME = re.compile(r"(?i:bearer)(?:[ \t]|$)")
MAX_TOKEN_CHARS = 8192


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.reference
    return state


def bearer_token(request: Request) -> str:
    """The access token of the request, or a ``BearerError`` saying why there is none."""
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        raise BearerError("Send exactly one Authorization header", "invalid_request")
    # The query string is parsed only when there is one: most requests have none.
    in_query = bool(request.scope.get("query_string")) and "access_token" in request.query_params
    if not values:
        if in_query:
            raise BearerError("Send the access token in the Authorization header, not in the URI", "invalid_request")
        raise BearerError("Not authenticated")
    value = values[0]
    if not _SCHEME.match(value):
        raise BearerError("Not authenticated")  # another scheme: RFC 6750 §3.1, no error code
    if in_query:
        raise BearerError("Use exactly one method to send the access token", "invalid_request")
    match = _BEARER.fullmatch(value)
    if match is None:
        raise BearerError("The Authorization header is not 'Bearer <token>'", "invalid_request")
    token = match.group(1)
    if len(token) > MAX_TOKEN_CHARS:
        raise BearerError("The access token is invalid", "invalid_token")
    return token


Identity = tuple[str, set[str], UserInDB | None]  # local user name, granted scopes, the user as stored now


def _own_token_identity(state: AppState, token: str) -> Identity:
    """The identity of one of this server's access tokens: verified (revocations included), then its user
    read; ``InvalidTokenError`` if it is not valid. Blocking database reads: one ``AppState.db`` call."""
    claims: Mapping[str, Any] = state.tokens.verify(token)
    username: str = claims["sub"]
    return username, set(claims["scope"].split(" ")), state.store.get(username)


async def _identity(state: AppState, token: str) -> Identity:
    """The identity of a valid access token: one of this server's, or one of a trusted issuer's (mapped to the
    local user named by its configured claim); ``InvalidTokenError`` otherwise."""
    keys = state.external.issuer_of(token) if state.external is not None else None
    if state.external is None or keys is None:
        if not state.remote:  # the hot path: a plain call, not even a coroutine's
            return _own_token_identity(state, token)
        return await state.db(_own_token_identity, state, token)
    trusted, external = await state.external.verify(token, keys)
    username = external.get(trusted.user_claim)
    if not isinstance(username, str) or not username:
        raise InvalidTokenError("The access token names no user of this server")
    return username, granted_scopes(external), await state.db(state.store.get, username)


async def get_current_user(request: Request, scope: str) -> UserInDB:
    """The active user the request's access token was issued to, if it grants ``scope``; raises ``BearerError``
    otherwise: 401 for a missing or invalid (also revoked) token, 403 ``insufficient_scope`` for a valid one
    without the scope (RFC 6750 §3.1).

    Async and hop-free on SQLite: verification and the primary-key lookups (user, revocations) run on the event
    loop (microseconds), so a protected request costs no thread-pool round trip; on PostgreSQL the lookups
    are round trips, made together in one worker-thread call (``AppState.db``). A trusted issuer's token may wait
    for its issuer's keys, fetched off the loop.
    """
    state = get_state(request)
    token = bearer_token(request)
    try:
        _, granted, user = await _identity(state, token)
    except InvalidTokenError as exc:
        raise BearerError(str(exc), "invalid_token") from None
    if user is None or user.disabled:
        # The same answer for a deleted and a disabled user: the token no longer grants anything.
        raise BearerError("The access token is invalid", "invalid_token")
    # The token must grant the scope, and the user still hold it (as a disabled user's tokens stop working).
    if scope not in granted or scope not in user.scopes:
        raise BearerError(f"The access token does not grant the {scope} scope", "insufficient_scope", scope)
    return user
