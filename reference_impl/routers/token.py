"""``POST /token``: the resource-owner password grant (RFC 6749 §4.3) and the refresh grant (§6)."""

from __future__ import annotations

from dataclasses import dataclass

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..dependencies import get_state
from ..forms import read_form
from ..models import MAX_PASSWORD_CHARS, Token, UserInDB
from ..oauth_errors import TOKEN_CACHE_HEADERS, TokenEndpointError
from ..scopes import KNOWN_SCOPES, NOT_GRANTED_BY_DEFAULT, UnknownScopeError, format_scope, parse
from ..state import AppState
from ..store import MAX_USERNAME_CHARS
from ..throttle import Attempt

router = APIRouter(tags=["auth"])

_PASSWORD_REQUIRED = ("grant_type", "username", "password")
KNOWN_PARAMETERS = frozenset((*_PASSWORD_REQUIRED, "scope", "refresh_token"))
INVALID_GRANT = "Incorrect username or password"
INVALID_REFRESH_TOKEN = "The refresh token is invalid"
_DEFINED = ", ".join(KNOWN_SCOPES)


@dataclass(frozen=True)
class Grant:
    """What a successful grant yields: the access token's subject, scope and family, and the refresh token."""

    username: str
    scope: tuple[str, ...]
    family_id: str
    refresh_token: str


def _requested_scope(form: dict[str, str]) -> tuple[str, ...] | None:
    """The scopes asked for (canonical), None when ``scope`` is omitted; an unknown one is ``invalid_scope``."""
    text = form.get("scope", "")
    if not text.strip():
        return None
    try:
        return parse(text)
    except UnknownScopeError:
        # The description never echoes the request: it may hold characters §5.2 does not allow.
        raise TokenEndpointError("invalid_scope", f"Unknown scope: this server defines {_DEFINED}") from None


def _password_scope(requested: tuple[str, ...] | None, user: UserInDB) -> tuple[str, ...]:
    """§3.3: the scopes asked for that the user holds; without ``scope``, the user's except ``admin``."""
    if requested is None:
        granted = tuple(s for s in user.scopes if s not in NOT_GRANTED_BY_DEFAULT)
        if not granted:
            raise TokenEndpointError("invalid_scope", "The user has no scope granted by default: ask for one")
        return granted
    granted = tuple(s for s in requested if s in user.scopes)
    if not granted:
        raise TokenEndpointError("invalid_scope", "The user may not be granted any of the requested scopes")
    return granted


async def _password_grant(state: AppState, form: dict[str, str], client: str) -> Grant:
    missing = [name for name in _PASSWORD_REQUIRED if name not in form]
    if missing:
        raise TokenEndpointError("invalid_request", f"Missing parameter: {', '.join(missing)}")
    requested = _requested_scope(form)
    username, password = form["username"], form["password"]
    retry_after, attempt = await _counted_attempt(state, username, client)
    if attempt is None:
        # Checked before the password, so the answer says nothing about it.
        raise TokenEndpointError(
            "invalid_request",
            f"Too many failed logins: retry after {retry_after} seconds",
            status=429,
            headers={"Retry-After": str(retry_after)},
        )
    try:
        user = await _authenticated(state, username, password)
    except TokenEndpointError:
        raise  # a wrong credential: the attempt stays counted
    except BaseException:
        # rare (an error of the server, a cancellation): not worth a thread; an unavailable database defers it
        state.throttle.abandoned(attempt)
        raise
    if state.throttle.enabled:
        await to_thread.run_sync(state.throttle.succeeded, attempt)
    scope = _password_scope(requested, user)
    family_id, refresh_token = await state.write(state.grants.start_family, user.username, scope)
    return Grant(user.username, scope, family_id, refresh_token)


async def _counted_attempt(state: AppState, username: str, client: str) -> tuple[int, Attempt | None]:
    """The throttle's verdict; a database write, so off the event loop when throttling is on."""
    if not state.throttle.enabled:
        return state.throttle.attempt(username, client)
    return await to_thread.run_sync(state.throttle.attempt, username, client)


async def _authenticated(state: AppState, username: str, password: str) -> UserInDB:
    """The active user these credentials name; ``invalid_grant`` otherwise (with one hash either way)."""
    if len(username) > MAX_USERNAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
        # Too long to be genuine: the same answer (and one hash) as any wrong credential.
        await state.passwords.verify(password[:MAX_PASSWORD_CHARS], None)
        raise TokenEndpointError("invalid_grant", INVALID_GRANT)
    user = await state.db(state.store.get, username)
    result = await state.passwords.verify(password, None if user is None else user.hashed_password)
    if user is None or not result.valid or user.disabled:
        raise TokenEndpointError("invalid_grant", INVALID_GRANT)
    if result.new_hash is not None:  # a legacy bcrypt hash, or outdated parameters: upgrade it
        await state.write(state.store.update_hash, user.username, user.hashed_password, result.new_hash)
    return user


def _refresh_grant(state: AppState, form: dict[str, str]) -> Grant:
    """§6, with rotation: the token is spent, its successor comes with the answer; a reuse ends the family."""
    token = form.get("refresh_token")
    if token is None:
        raise TokenEndpointError("invalid_request", "Missing parameter: refresh_token")
    requested = _requested_scope(form)
    grants = state.grants
    record = grants.find(token)
    if record is None:
        raise TokenEndpointError("invalid_grant", INVALID_REFRESH_TOKEN)
    if record.used:
        # RFC 9700 §4.14.2: one of the attacker and the client holds a stale token; end the family for both.
        grants.revoke_family(record.family_id)
        raise TokenEndpointError("invalid_grant", INVALID_REFRESH_TOKEN)
    if record.expires_at <= grants.now():
        raise TokenEndpointError("invalid_grant", INVALID_REFRESH_TOKEN)
    user = state.store.get(record.username)
    if user is None or user.disabled:
        raise TokenEndpointError("invalid_grant", INVALID_REFRESH_TOKEN)
    if requested is not None and not set(requested) <= set(record.scope):
        raise TokenEndpointError("invalid_scope", "The requested scope exceeds the original grant")
    scope = tuple(s for s in (record.scope if requested is None else requested) if s in user.scopes)
    if not scope:
        raise TokenEndpointError("invalid_scope", "The user may not be granted any of the requested scopes")
    successor = grants.rotate(record)
    if successor is None:  # spent meanwhile by a concurrent request: a reuse like any other
        grants.revoke_family(record.family_id)
        raise TokenEndpointError("invalid_grant", INVALID_REFRESH_TOKEN)
    return Grant(user.username, scope, record.family_id, successor)


@router.post("/token", response_model=None)
async def login_for_access_token(request: Request) -> JSONResponse:
    state = get_state(request)
    try:
        form = await read_form(request, state.settings.max_body_bytes, KNOWN_PARAMETERS)
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            # not counted by the login throttle: no password is guessed
            grant = await state.write(_refresh_grant, state, form)
        elif grant_type is None or grant_type == "password":
            grant = await _password_grant(state, form, request.client.host if request.client else "")
        else:
            raise TokenEndpointError(
                "unsupported_grant_type", "Only grant_type=password and grant_type=refresh_token are supported"
            )
    except TokenEndpointError as exc:
        return exc.response()
    scope = format_scope(grant.scope)
    issued = state.tokens.issue(grant.username, scope=scope, sid=grant.family_id)
    body = Token(
        access_token=issued.token, expires_in=issued.expires_in, refresh_token=grant.refresh_token, scope=scope
    )
    return JSONResponse(body.model_dump(), headers=TOKEN_CACHE_HEADERS)
