"""``POST /token``: the resource-owner password grant (RFC 6749 §4.3)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..dependencies import get_state
from ..models import Token, UserInDB
from ..oauth_errors import TOKEN_CACHE_HEADERS, TokenEndpointError
from ..state import AppState
from ..store import MAX_USERNAME_CHARS

router = APIRouter(tags=["auth"])

FORM_TYPE = "application/x-www-form-urlencoded"
_REQUIRED = ("grant_type", "username", "password")
_KNOWN = frozenset((*_REQUIRED, "scope"))
MAX_PASSWORD_BYTES = 1024
INVALID_GRANT = "Incorrect username or password"


def _check_content_type(value: str | None) -> None:
    media_type, *params = (value or "").split(";")
    if media_type.strip().lower() != FORM_TYPE:
        raise TokenEndpointError("invalid_request", f"Send the parameters as {FORM_TYPE}")
    for param in params:
        name, _, charset = param.strip().partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise TokenEndpointError("invalid_request", "The form must be encoded in UTF-8")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TokenEndpointError("invalid_request", "The request body is too large", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TokenEndpointError("invalid_request", "The request body is too large", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_form(body: bytes) -> dict[str, str]:
    """RFC 6749 §3.2: a parameter without a value counts as omitted, and none may be sent twice."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise TokenEndpointError("invalid_request", "The form is not valid UTF-8 form encoding") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name not in _KNOWN or value == "":
            continue  # unknown parameters MUST be ignored; empty ones count as omitted
        if name in form:
            raise TokenEndpointError("invalid_request", f"The parameter {name} is repeated")
        if "\x00" in value:
            raise TokenEndpointError("invalid_request", f"The parameter {name} contains a NUL character")
        form[name] = value
    return form


async def _authenticate(state: AppState, form: dict[str, str], client: str) -> UserInDB:
    missing = [name for name in _REQUIRED if name not in form]
    if "grant_type" not in missing and form["grant_type"] != "password":
        raise TokenEndpointError("unsupported_grant_type", "Only grant_type=password is supported")
    if missing:
        raise TokenEndpointError("invalid_request", f"Missing parameter: {', '.join(missing)}")
    if form.get("scope", "").strip():
        raise TokenEndpointError("invalid_scope", "This server grants no scopes")
    username, password = form["username"], form["password"]
    retry_after = state.throttle.retry_after(username, client)
    if retry_after:
        # Checked before the password, so the answer says nothing about it.
        raise TokenEndpointError(
            "invalid_request",
            f"Too many failed logins: retry after {retry_after} seconds",
            status=429,
            headers={"Retry-After": str(retry_after)},
        )
    if len(username) > MAX_USERNAME_CHARS or len(password.encode()) > MAX_PASSWORD_BYTES:
        # Too long to be genuine: the same answer (and one hash) as any wrong credential.
        await state.passwords.verify(password[:MAX_PASSWORD_BYTES], None)
        state.throttle.failed(username, client)
        raise TokenEndpointError("invalid_grant", INVALID_GRANT)
    user = state.store.get(username)
    result = await state.passwords.verify(password, None if user is None else user.hashed_password)
    if user is None or not result.valid or user.disabled:
        state.throttle.failed(username, client)
        raise TokenEndpointError("invalid_grant", INVALID_GRANT)
    state.throttle.succeeded(username)
    if result.new_hash is not None:  # a legacy bcrypt hash, or outdated parameters: upgrade it
        state.store.update_hash(user.username, user.hashed_password, result.new_hash)
    return user


@router.post("/token", response_model=None)
async def login_for_access_token(request: Request) -> JSONResponse:
    state = get_state(request)
    try:
        _check_content_type(request.headers.get("content-type"))
        form = parse_form(await _read_body(request, state.settings.max_body_bytes))
        user = await _authenticate(state, form, request.client.host if request.client else "")
    except TokenEndpointError as exc:
        return exc.response()
    issued = state.tokens.issue(user.username)
    body = Token(access_token=issued.token, expires_in=issued.expires_in)
    return JSONResponse(body.model_dump(), headers=TOKEN_CACHE_HEADERS)
