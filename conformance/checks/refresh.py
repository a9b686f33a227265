"""REFRESH-*: refresh tokens. RFC 6749 §6 <https://www.rfc-editor.org/rfc/rfc6749#section-6>, RFC 9700
§4.14 <https://www.rfc-editor.org/rfc/rfc9700#section-4.14>, RFC 8725 §3.12.

They run when the target declares the refresh grant (see ``conformance/capabilities.py``). Each
check starts from a login of its own (``_sessions.py``): rotating and reusing a refresh token may
revoke a whole family, which must never be the run's baseline.
"""

from __future__ import annotations

import secrets

from ..context import Context
from ..model import Failure, Level, Need
from ..registry import check
from ._capabilities import require
from ._expect import describe, expect_oauth_error, expect_refused, is_success, issued_token
from ._sessions import own_refresh_token, refresh, remember

ROTATE_HINT = (
    "Issue a new refresh token with every refresh, mark the old one used, and answer a used one with "
    "invalid_grant (RFC 9700 §4.14.2)."
)


def _tampered(token: str) -> str:
    """``token`` with one character in its middle changed (it stays a well-formed parameter value)."""
    middle = len(token) // 2
    replacement = "A" if token[middle] != "A" else "B"
    return token[:middle] + replacement + token[middle + 1 :]


@check("REFRESH-001", level=Level.MUST, spec=["RFC 6749 §6", "RFC 6749 §5.1"], needs=[Need.CAPABILITY])
def refresh_token_gets_a_new_access_token(ctx: Context) -> str | None:
    """A refresh token gets a new, working access token, in an answer that must not be cached.

    Impact: A refresh that does not give a working token leaves clients logged out; a cacheable answer leaks it.
    """
    # RFC 6749 §6: "If valid and authorized, the authorization server issues an access token as
    # described in Section 5.1"; §5.1: "Cache-Control header field with a value of "no-store"".
    require(ctx, "refresh")
    _, refresh_token = own_refresh_token(ctx)
    response = refresh(ctx, refresh_token)
    if not issued_token(response):
        raise Failure(
            f"a fresh refresh token got no access token ({response.status})",
            expected="200 with a new access token (RFC 6749 §6)",
            actual=describe(response),
            hint="Accept grant_type=refresh_token with the refresh token the password grant issued.",
        )
    renewed = remember(ctx, response)
    cache = ",".join(response.header_values("cache-control")).lower()
    if "no-store" not in cache:
        raise Failure(
            "the refresh answer may be cached: no Cache-Control: no-store",
            expected="Cache-Control: no-store on the token answer (RFC 6749 §5.1)",
            actual=f"Cache-Control: {cache or '(none)'}",
            hint="Send Cache-Control: no-store and Pragma: no-cache with every token answer.",
            security=True,
        )
    used = ctx.accepted(renewed.access_token)
    if not is_success(used):
        raise Failure(
            f"the refreshed access token is refused at {ctx.me_path} ({used.status})",
            expected="2xx: a refreshed access token works like the first one",
            actual=describe(used),
        )
    return "the refresh grant issued a working access token, not cacheable"


@check("REFRESH-002", level=Level.MUST, spec=["RFC 6749 §5.2", "RFC 6749 §6"], needs=[Need.CAPABILITY])
def bad_refresh_tokens_are_invalid_grant(ctx: Context) -> str | None:
    """A tampered or unknown refresh token, or an access token in its place, gets 400 invalid_grant.

    Impact: A tampered or unknown refresh token accepted is a way to mint access tokens.
    """
    # RFC 6749 §5.2 invalid_grant: "The provided authorization grant (e.g., authorization code,
    # resource owner credentials) or refresh token is invalid, expired, revoked, ...".
    require(ctx, "refresh")
    session, refresh_token = own_refresh_token(ctx)
    cases = (
        ("a tampered refresh token", _tampered(refresh_token)),
        ("an unknown refresh token", secrets.token_urlsafe(32)),
        ("an access token sent as the refresh token", session.access_token),
    )
    for what, token in cases:
        expect_oauth_error(
            refresh(ctx, token),
            ("invalid_grant",),
            what=what,
            hint="Look refresh tokens up exactly (stored hashed); anything else is invalid_grant.",
        )
    return "tampered, unknown and access tokens were refused with invalid_grant (expiry needs a short lifetime)"


@check("REFRESH-003", level=Level.MUST, spec=["RFC 8725 §3.12", "RFC 6750 §3.1"], needs=[Need.CAPABILITY])
def refresh_token_is_not_an_access_token(ctx: Context) -> str | None:
    """A refresh token sent as a bearer access token is refused with 401.

    Impact: A refresh token accepted as an access token makes the long-lived credential a bearer one.
    """
    # RFC 8725 §3.12: use mutually exclusive validation rules for different kinds of JWTs; a
    # refresh token is a credential for the token endpoint only.
    require(ctx, "refresh")
    _, refresh_token = own_refresh_token(ctx)
    for path in ctx.protected_paths:
        expect_refused(
            ctx.accepted(refresh_token, path),
            what=f"the refresh token, sent as an access token to {path}",
            hint="Make refresh tokens opaque (or typed differently) and accept only access tokens as bearer tokens.",
        )
    return "the refresh token was refused as a bearer token"


@check("REFRESH-004", level=Level.MUST, spec=["RFC 9700 §4.14.2", "RFC 6749 §6"], needs=[Need.CAPABILITY])
def rotated_refresh_token_is_refused(ctx: Context) -> str | None:
    """Refresh tokens are rotated; the old one is refused, and its reuse revokes the family.

    Impact: Without rotation a stolen refresh token keeps minting tokens unnoticed.
    """
    # RFC 9700 §4.14.2: refresh tokens for public clients MUST be sender-constrained or use
    # refresh token rotation; on reuse the AS "will revoke the active refresh token".
    require(ctx, "refresh")
    _, first = own_refresh_token(ctx)
    response = refresh(ctx, first)
    if not issued_token(response):
        raise Failure(f"a fresh refresh token got no access token ({response.status})", actual=describe(response))
    second = remember(ctx, response).refresh_token
    if second is None or second == first:
        raise Failure(
            "the refresh token was not rotated: the refresh answer " + ("has none" if second is None else "repeats it"),
            expected="a new refresh_token in every refresh answer",
            actual=describe(response),
            hint=ROTATE_HINT,
        )
    reused = refresh(ctx, first)
    if issued_token(reused):
        raise Failure(
            "the rotated refresh token was ACCEPTED again",
            expected="400 invalid_grant: a refresh token is single-use",
            actual=describe(reused),
            hint=ROTATE_HINT,
            security=True,
        )
    expect_oauth_error(reused, ("invalid_grant",), what="the rotated refresh token, used again", hint=ROTATE_HINT)
    family = refresh(ctx, second)
    if issued_token(family):
        raise Failure(
            "after the reuse, the newest refresh token of the family still works",
            expected="400 invalid_grant: reuse of a rotated token revokes every token of its family",
            actual=describe(family),
            hint="On reuse, revoke the whole family: the legitimate client and the attacker cannot be told apart.",
            level=Level.SHOULD,
        )
    return "rotated on every refresh; the old token was refused and its reuse revoked the family"
