"""REVOKE-*: token revocation. RFC 7009 <https://www.rfc-editor.org/rfc/rfc7009>.

They run when the target declares a revocation endpoint (see ``conformance/capabilities.py``),
each with tokens of its own login (``_sessions.py``).
"""

from __future__ import annotations

import secrets

from ..client import Response
from ..context import Context
from ..model import Failure, Info, Level, Need, Skip
from ..registry import check
from ._capabilities import endpoint, require
from ._expect import describe, is_success, issued_token, oauth_error_code
from ._sessions import own_refresh_token, own_session, refresh, revoke

HINT_200 = "RFC 7009 §2.2: answer 200 when the token was revoked, and also when it was invalid or unknown."


def _revoked(response: Response, what: str) -> None:
    if response.status != 200:
        raise Failure(
            f"revoking {what} was answered {response.status}",
            expected="HTTP 200 (RFC 7009 §2.2)",
            actual=describe(response),
            hint=HINT_200,
        )


def _refresh_still_works(ctx: Context, token: str) -> bool:
    return issued_token(refresh(ctx, token))


def _revoke_and_confirm(
    ctx: Context, path: str, token: str, hint: str, what: str, fix: str, *, may_decline: bool = False
) -> bool:
    """Revoke the refresh ``token`` (with ``hint``); the check fails unless 200 and the refresh grant refuses it.

    With ``may_decline``, 400 ``unsupported_token_type`` is an answer too: True is returned for it.
    """
    response = revoke(ctx, path, token, hint)
    if may_decline and response.status == 400 and oauth_error_code(response) == "unsupported_token_type":
        return True
    _revoked(response, what)
    if _refresh_still_works(ctx, token):
        raise Failure(
            f"{what} still works after {path} answered 200: the revocation was ignored",
            expected="400 invalid_grant for a revoked refresh token",
            actual="the refresh grant still issued a token",
            hint=fix,
            security=True,
        )
    return False


@check("REVOKE-001", level=Level.SHOULD, spec=["RFC 7009 §2.1", "RFC 7009 §2.2"], needs=[Need.CAPABILITY])
def revoked_access_token_is_refused(ctx: Context) -> str | None:
    """A revoked access token is refused from then on (or the endpoint says it cannot revoke one)."""
    # RFC 7009 §2: implementations "SHOULD support the revocation of access tokens"; §2.2.1
    # unsupported_token_type: "The authorization server does not support the revocation of the
    # presented token type."
    path = endpoint(ctx, "revocation")
    session = own_session(ctx, need_refresh=False)
    response = revoke(ctx, path, session.access_token, "access_token")
    if response.status == 400 and oauth_error_code(response) == "unsupported_token_type":
        raise Info("the server does not revoke access tokens (unsupported_token_type): they live until exp")
    _revoked(response, "an access token")
    used = ctx.accepted(session.access_token)
    if is_success(used):
        raise Failure(
            "the revoked access token is still ACCEPTED",
            expected="401 invalid_token once the token is revoked",
            actual=describe(used),
            hint="Keep a denylist of revoked jti until their exp, or answer unsupported_token_type for access tokens.",
        )
    return f"revoked with 200, then refused ({used.status})"


@check("REVOKE-002", level=Level.MUST, spec=["RFC 7009 §2.2"], needs=[Need.CAPABILITY])
def revoking_an_unknown_token_is_200(ctx: Context) -> str | None:
    """Revoking an unknown or garbage token is answered 200 (the client cannot act on an error).

    Impact: Clients cannot act on an error for an unknown token; a 4xx there breaks logout flows.
    """
    # RFC 7009 §2.2: "invalid tokens do not cause an error response since the client cannot handle
    # such an error in a reasonable way".
    path = endpoint(ctx, "revocation")
    for what, token in (("an unknown token", secrets.token_urlsafe(32)), ("garbage", "not.a.token")):
        _revoked(revoke(ctx, path, token), what)
    return "unknown and garbage tokens: 200"


@check("REVOKE-003", level=Level.MUST, spec=["RFC 7009 §2.1", "RFC 7009 §2.2.1"], needs=[Need.CAPABILITY])
def token_type_hint_does_not_stop_the_search(ctx: Context) -> str | None:
    """A wrong token_type_hint still finds the token; an unknown one is ignored or unsupported_token_type.

    Impact: A token that survives revocation because of a wrong hint is a logout that did not happen.
    """
    # RFC 7009 §2.1: "If the server is unable to locate the token using the given hint, it MUST
    # extend its search across all of its supported token types."
    path = endpoint(ctx, "revocation")
    require(ctx, "refresh")
    _, refresh_token = own_refresh_token(ctx)
    _revoke_and_confirm(
        ctx,
        path,
        refresh_token,
        "access_token",
        "a refresh token sent with token_type_hint=access_token",
        "Treat token_type_hint as where to look first, never as where to look only.",
    )
    _, other_refresh = own_refresh_token(ctx)
    declined = _revoke_and_confirm(
        ctx,
        path,
        other_refresh,
        "jwt-conformance-hint",
        "a refresh token sent with an unknown token_type_hint",
        "Ignore an unknown hint and search every type, or answer unsupported_token_type.",
        may_decline=True,
    )
    if declined:
        return "a wrong hint still found the token; an unknown hint got unsupported_token_type"
    return "a wrong or unknown hint still found the token"


@check("REVOKE-004", level=Level.MUST, spec=["RFC 7009 §2.1", "RFC 7009 §2"], needs=[Need.CAPABILITY])
def revoked_refresh_token_ends_its_grant(ctx: Context) -> str | None:
    """A revoked refresh token is refused, and the access tokens it produced should be too.

    Impact: A revoked refresh token that still works is a logout that did not happen.
    """
    # RFC 7009 §2: implementations "MUST support the revocation of refresh tokens"; §2.1: "If the
    # particular token is a refresh token and the authorization server supports the revocation of
    # access tokens, then the authorization server SHOULD also invalidate all access tokens based
    # on the same authorization grant".
    path = endpoint(ctx, "revocation")
    require(ctx, "refresh")
    session, refresh_token = own_refresh_token(ctx)
    _revoke_and_confirm(  # RFC 7009 §2: refresh tokens MUST be revocable
        ctx,
        path,
        refresh_token,
        "refresh_token",
        "the refresh token",
        "Store refresh tokens server-side and mark them (and their family) revoked.",
    )
    used = ctx.accepted(session.access_token)
    if is_success(used):
        raise Failure(
            "an access token from the revoked refresh token's grant is still accepted",
            expected="401: the access tokens of a revoked grant end with it",
            actual=describe(used),
            hint="Give access tokens the grant's id (e.g. sid) and refuse those of revoked grants.",
            level=Level.SHOULD,
        )
    return "the revoked refresh token and the access tokens of its grant are refused"


@check("REVOKE-005", level=Level.MAY, spec=["RFC 7009 §1"], needs=[Need.CAPABILITY])
def logout_ends_the_token(ctx: Context) -> str | None:
    """After a (non-RFC) logout, the old access token is refused; a stateless JWT that outlives it is noted."""
    path = endpoint(ctx, "logout")
    session = own_session(ctx, need_refresh=False)
    answer = ctx.request("POST", path, headers={"Authorization": f"Bearer {session.access_token}"})
    if not is_success(answer):
        raise Skip(f"POST {path} answered {answer.status}: not a logout this check knows")
    used = ctx.accepted(session.access_token)
    if is_success(used):
        raise Info("the access token still works after logout: a stateless JWT outlives the logout until its exp")
    return f"after logout the token is refused ({used.status})"
