"""``POST /revoke``: token revocation (RFC 7009) for refresh tokens (their whole family) and access tokens."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request, Response

from ..dependencies import get_state
from ..forms import read_form
from ..oauth_errors import TOKEN_CACHE_HEADERS, TokenEndpointError
from ..state import AppState

router = APIRouter(tags=["auth"])

KNOWN_PARAMETERS = frozenset(("token", "token_type_hint"))
TOKEN_TYPE_HINTS = ("access_token", "refresh_token")


def _revoke_refresh_token(state: AppState, token: str) -> bool:
    return state.grants.revoke_refresh_token(token)


def _revoke_access_token(state: AppState, token: str) -> bool:
    claims = state.tokens.genuine_claims(token)
    if claims is None:
        return False  # not ours, or expired already: nothing to revoke
    state.grants.revoke_access_token(claims["jti"], int(claims["exp"]) + state.settings.leeway)
    return True


Lookup = Callable[[AppState, str], bool]


@router.post("/revoke", response_model=None)
async def revoke_token(request: Request) -> Response:
    """§2.2: 200 with no body whether or not the token was known, so the answer reveals nothing."""
    state = get_state(request)
    try:
        form = await read_form(request, state.settings.max_body_bytes, KNOWN_PARAMETERS)
        token = form.get("token")
        if token is None:
            raise TokenEndpointError("invalid_request", "Missing parameter: token")
        hint = form.get("token_type_hint")
        if hint is not None and hint not in TOKEN_TYPE_HINTS:
            raise TokenEndpointError("unsupported_token_type", "token_type_hint must be access_token or refresh_token")
    except TokenEndpointError as exc:
        return exc.response()
    # The hint only says where to look first (§2.1): the search goes on across both types.
    lookups: tuple[Lookup, Lookup] = (
        (_revoke_access_token, _revoke_refresh_token)
        if hint == "access_token"
        else (_revoke_refresh_token, _revoke_access_token)
    )
    for lookup in lookups:
        if await state.write(lookup, state, token):
            break
    return Response(status_code=200, headers=TOKEN_CACHE_HEADERS)
