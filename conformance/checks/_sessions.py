"""Logins of a check's own: an access token and a refresh token that no other check shares.

The refresh and revocation checks rotate, reuse and revoke tokens, which may end a whole family:
each starts from a login of its own, never from the run's baseline token.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..client import Response
from ..context import Context
from ..model import Failure, throttled
from ._capabilities import capabilities
from ._expect import describe, issued_token

REFRESH_PLACEHOLDER = "${REFRESH_TOKEN}"


@dataclass(frozen=True)
class Session:
    access_token: str
    refresh_token: str | None
    answer: Response


def remember(ctx: Context, response: Response) -> Session:
    """The tokens of a token-endpoint answer, added to the redaction list."""
    body = response.json()
    access = body.get("access_token") if isinstance(body, dict) else None
    refresh = body.get("refresh_token") if isinstance(body, dict) else None
    if not isinstance(access, str) or not access:
        raise Failure("the token endpoint answered without an access_token", actual=describe(response))
    ctx.state.client.redact.add_token(access, "${ACCESS_TOKEN}")
    if isinstance(refresh, str) and refresh:
        ctx.state.client.redact.add_token(refresh, REFRESH_PLACEHOLDER)
        return Session(access, refresh, response)
    return Session(access, None, response)


def own_session(ctx: Context, *, scope: str | None = None, need_refresh: bool = True) -> Session:
    """A fresh password-grant login of the primary user (``scope`` asked for when given)."""
    login = ctx.login("primary", **({"scope": scope} if scope is not None else {}))
    if login.response.status == 429:
        raise throttled(login.response.header("retry-after"))
    if not issued_token(login.response):
        raise Failure(
            "a second login of the primary user got no token",
            expected="200 with an access token, as for the baseline login",
            actual=describe(login.response),
        )
    session = remember(ctx, login.response)
    if need_refresh and session.refresh_token is None:
        raise Failure(
            f"the target declares refresh tokens ({capabilities(ctx).source}) but its token answer has none",
            expected="a refresh_token member in the token response (RFC 6749 §5.1)",
            actual=describe(login.response),
            hint="Issue a refresh token with every password grant, or stop declaring the refresh grant.",
        )
    return session


def own_refresh_token(ctx: Context) -> tuple[Session, str]:
    """A fresh login and its refresh token (the check fails if the answer has none)."""
    session = own_session(ctx)
    if session.refresh_token is None:  # own_session has failed the check already; this narrows the type
        raise Failure("the token answer has no refresh_token", actual=describe(session.answer))
    return session, session.refresh_token


def refresh(ctx: Context, token: str, **extra: str) -> Response:
    """``grant_type=refresh_token`` (RFC 6749 §6)."""
    return ctx.post_token([("grant_type", "refresh_token"), ("refresh_token", token), *extra.items()])


def revoke(ctx: Context, path: str, token: str, hint: str | None = None) -> Response:
    """``POST path`` with ``token`` (and ``token_type_hint``), form-encoded (RFC 7009 §2.1)."""
    form = [("token", token), *((("token_type_hint", hint),) if hint else ())]
    return ctx.request("POST", path, data=form)
