"""BEARER-*: sending the token and the challenges. RFC 6750 §2.1, §3 <https://www.rfc-editor.org/rfc/rfc6750>
and RFC 9110 §11 (authentication framework).
"""

from __future__ import annotations

import re

from ..challenges import Challenge, bearer_challenge
from ..client import Response, TransportError
from ..context import Context
from ..forge import flip_last_bit
from ..model import Failure, Level
from ..registry import check
from ._expect import describe, expect_refused, is_success

# RFC 6750 §3: auth-param values "MUST NOT include characters outside the set %x20-21 / %x23-5B / %x5D-7E".
PARAM_CHARSET = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")
BIG_HEADER_SIZES = (16 * 1024, 64 * 1024)


def _challenge(response: Response) -> Challenge | None:
    return bearer_challenge(response.header("www-authenticate"))


def _forged(ctx: Context) -> str:
    token = ctx.token()
    head, _, signature = token.rpartition(".")
    return f"{head}.{flip_last_bit(signature)}" if signature else token + "x"


def _expect_bearer_challenge(response: Response, what: str) -> Challenge:
    challenge = _challenge(response)
    if response.status != 401 or challenge is None:
        raise Failure(
            f"{what}: answered {response.status}"
            + ("" if challenge else f" with WWW-Authenticate {response.header('www-authenticate')!r}"),
            expected="401 with WWW-Authenticate: Bearer ...",
            actual=describe(response),
            hint="RFC 6750 §3: answer a request without a valid token with 401 and a Bearer challenge.",
        )
    return challenge


@check("BEARER-001", level=Level.MUST, spec=["RFC 6750 §3", "RFC 9110 §15.5.2"])
def missing_credentials_get_a_bearer_challenge(ctx: Context) -> str | None:
    """A request without credentials gets 401 and a WWW-Authenticate challenge with the Bearer scheme."""
    # RFC 9110 §15.5.2: "The server generating a 401 response MUST send a WWW-Authenticate header field".
    _expect_bearer_challenge(ctx.get(ctx.me_path), "no credentials")
    return None


@check("BEARER-002", level=Level.SHOULD, spec=["RFC 6750 §3.1"])
def missing_credentials_get_no_error_code(ctx: Context) -> str | None:
    """The challenge to a request without credentials carries no error attribute."""
    # RFC 6750 §3.1: "If the request lacks any authentication information ..., the resource server
    # SHOULD NOT include an error code or other error information."
    response = ctx.get(ctx.me_path)
    challenge = _challenge(response)
    if challenge is not None and challenge.get("error") is not None:
        raise Failure(
            f'the challenge says error="{challenge.get("error")}" to a request that sent no credentials',
            expected='WWW-Authenticate: Bearer realm="..." (no error)',
            actual=f"WWW-Authenticate: {response.header('www-authenticate')}",
            hint="Only add error= when a token was sent and is wrong.",
        )
    return None


def _param_problems(challenge: Challenge) -> list[str]:
    problems = []
    if not challenge.params:
        problems.append("no auth-param (e.g. realm)")
    if challenge.count("realm") > 1:
        problems.append("realm appears more than once")
    for name, value in challenge.params:
        if not challenge.quoted.get(name.lower(), True):
            problems.append(f"{name} is not a quoted-string")
        if not PARAM_CHARSET.match(value):
            problems.append(f"{name} has characters outside the RFC 6750 set")
    return problems


@check("BEARER-003", level=Level.MUST, spec=["RFC 6750 §3"], dialect=True)
def challenges_carry_quoted_auth_params(ctx: Context) -> str | None:
    """Every 401 Bearer challenge has at least one auth-param; realm at most once; values quoted, in charset."""
    # RFC 6750 §3: the "Bearer" scheme "MUST be followed by one or more auth-param values".
    problems = []
    for what, token in (("no credentials", None), ("a forged token", _forged(ctx))):
        response = ctx.get(ctx.me_path, token=token)
        challenge = _challenge(response)
        if response.status != 401 or challenge is None:
            continue  # BEARER-001 / BEARER-004 report a missing challenge
        problems += [f"{what}: {p}" for p in _param_problems(challenge)]
    if problems:
        raise Failure(
            "; ".join(problems),
            expected='WWW-Authenticate: Bearer realm="example"[, error="...", error_description="..."]',
            actual="; ".join(problems),
            hint='Send at least realm="..." with the Bearer scheme (FastAPI sends a bare "Bearer").',
        )
    return None


@check("BEARER-004", level=Level.SHOULD, spec=["RFC 6750 §3.1"])
def invalid_tokens_get_invalid_token(ctx: Context) -> str | None:
    """A forged or otherwise invalid token gets 401 with error="invalid_token" in the challenge."""
    response = ctx.get(ctx.me_path, token=_forged(ctx))
    expect_refused(response, what="a token with a flipped signature bit", hint="Verify the signature.")
    challenge = _challenge(response)
    if challenge is None or challenge.get("error") != "invalid_token":
        raise Failure(
            "the refusal of an invalid token does not say invalid_token",
            expected='WWW-Authenticate: Bearer realm="...", error="invalid_token", error_description="..."',
            actual=f"WWW-Authenticate: {response.header('www-authenticate')}",
            hint='RFC 6750 §3.1: add error="invalid_token" so clients know to get a new token.',
        )
    return None


@check("BEARER-005", level=Level.MUST, spec=["RFC 6750 §3.1", "RFC 9110 §11.6.1"])
def other_schemes_are_unauthenticated(ctx: Context) -> str | None:
    """Basic, Token and JWT schemes get 401, with no error code in the Bearer challenge."""
    token = ctx.token()
    notes = []
    for value in ("Basic Ym9iOnNlY3JldA==", f"Token {token}", f"JWT {token}"):
        scheme = value.split()[0]
        response = ctx.get(ctx.me_path, headers={"Authorization": value})
        if response.status != 401:
            raise Failure(
                f"the {scheme} scheme answered {response.status}",
                expected="401 (an unsupported authentication scheme)",
                actual=describe(response),
                hint="Accept only 'Bearer <token>'; answer anything else like a request without credentials.",
            )
        challenge = _challenge(response)
        if challenge is not None and challenge.get("error") is not None:
            notes.append(f"{scheme}: error={challenge.get('error')}")
    if notes:
        raise Failure(
            "an unsupported scheme got an error code: " + "; ".join(notes),
            expected="no error= (RFC 6750 §3.1: unsupported method → no error information)",
            actual="; ".join(notes),
            level=Level.SHOULD,
        )
    return None


@check("BEARER-006", level=Level.MUST, spec=["RFC 9110 §11.1"])
def bearer_scheme_is_case_insensitive(ctx: Context) -> str | None:
    """'bearer' and 'BEARER' work like 'Bearer': the scheme is case-insensitive."""
    # RFC 9110 §11.1: "It uses a case-insensitive token to identify the authentication scheme".
    token = ctx.token()
    for scheme in ("bearer", "BEARER"):
        response = ctx.get(ctx.me_path, headers={"Authorization": f"{scheme} {token}"})
        if not is_success(response):
            raise Failure(
                f"'{scheme} <token>' was refused ({response.status})",
                expected="2xx, as for 'Bearer <token>'",
                actual=describe(response),
                hint="Compare the authentication scheme case-insensitively.",
            )
    return None


@check("BEARER-007", level=Level.MUST, spec=["RFC 6750 §2.1"], dialect=True)
def several_spaces_after_the_scheme_are_accepted(ctx: Context) -> str | None:
    """'Bearer' followed by two or more spaces and the token is accepted (1*SP)."""
    # RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; "Resource servers MUST support this method."
    token = ctx.token()
    for spaces in ("  ", "   "):
        response = ctx.get(ctx.me_path, headers={"Authorization": f"Bearer{spaces}{token}"})
        if not is_success(response):
            raise Failure(
                f"'Bearer' + {len(spaces)} spaces + token was refused ({response.status})",
                expected='2xx: the grammar is "Bearer" 1*SP b64token',
                actual=describe(response),
                hint="Split the header on the first run of spaces, not on exactly one space.",
            )
    return None


@check("BEARER-008", level=Level.SHOULD, spec=["RFC 6750 §2.1", "RFC 9110 §5.5"])
def altered_credentials_are_not_accepted(ctx: Context) -> str | None:
    """A tab separator, a quoted token or two comma-separated tokens are refused (400 or 401)."""
    token = ctx.token()
    for what, value in (
        ("a tab after Bearer", f"Bearer\t{token}"),
        ("a quoted token", f'Bearer "{token}"'),
        ("two comma-separated tokens", f"Bearer {token},{token}"),
    ):
        response = ctx.get(ctx.me_path, headers={"Authorization": value})
        if is_success(response):
            raise Failure(
                f"{what} was accepted ({response.status})",
                expected="400 invalid_request or 401: not a b64token",
                actual=describe(response),
                hint="Accept only 'Bearer' 1*SP b64token.",
            )
        if response.status not in (400, 401):
            raise Failure(f"{what}: answered {response.status}", expected="400 or 401", actual=describe(response))
    return None


@check("BEARER-009", level=Level.SHOULD, spec=["RFC 6750 §3.1"])
def empty_and_junk_tokens_are_refused(ctx: Context) -> str | None:
    """'Bearer' with no token, 'Bearer abc' and a truncated token get 401 (or 400)."""
    # ('Bearer ' with a trailing space is the same request on the wire: HTTP strips trailing whitespace.)
    token = ctx.token()
    for what, value in (
        ("'Bearer' with no token", "Bearer"),
        ("'Bearer abc'", "Bearer abc"),
        ("a truncated token", f"Bearer {token[: len(token) // 2]}"),
    ):
        response = ctx.get(ctx.me_path, headers={"Authorization": value})
        expect_refused(response, what=what, hint="Refuse malformed tokens with 401.", allowed=(400, 401))
    return None


@check("BEARER-010", level=Level.SHOULD, spec=["RFC 6750 §2.3", "RFC 9700 §4.3.2"])
def token_in_the_uri_is_not_accepted(ctx: Context) -> str | None:
    """A token sent only as ?access_token= is refused (the contract is header-only); if accepted, privately."""
    response = ctx.get(ctx.me_path, params={"access_token": ctx.token()})
    if is_success(response):
        cache_control = (response.header("cache-control") or "").lower()
        private = "private" in cache_control or "no-store" in cache_control
        raise Failure(
            "a token in the URI query was accepted" + ("" if private else ", and the answer may be cached"),
            expected="401: URI tokens leak into logs, history and Referer",
            actual=describe(response),
            hint="Accept the token in the Authorization header only (RFC 9700 §4.3.2).",
        )
    return None


@check("BEARER-011", level=Level.SHOULD, spec=["RFC 6750 §2", "RFC 6750 §3.1"])
def two_token_methods_are_invalid_request(ctx: Context) -> str | None:
    """A valid header plus ?access_token= (two methods at once) gets 400 invalid_request."""
    # RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token in each request."
    token = ctx.token()
    response = ctx.get(ctx.me_path, token=token, params={"access_token": token})
    challenge = _challenge(response)
    if response.status != 400 or challenge is None or challenge.get("error") != "invalid_request":
        raise Failure(
            f"a token sent by two methods answered {response.status}",
            expected='400 with error="invalid_request"',
            actual=describe(response),
            hint="Refuse requests that carry the token both in the header and in the URI.",
        )
    return None


@check("BEARER-012", level=Level.SHOULD, spec=["RFC 9110 §5.3"])
def two_authorization_fields_are_not_ambiguous(ctx: Context) -> str | None:
    """Two Authorization fields (valid+garbage, garbage+valid) get the same refusal; 400 is preferred."""
    token = ctx.token()
    answers = []
    for pair in ((f"Bearer {token}", "Bearer garbage"), ("Bearer garbage", f"Bearer {token}")):
        answers.append(ctx.get(ctx.me_path, headers=[("Authorization", value) for value in pair]))
    accepted = [is_success(a) for a in answers]
    if any(accepted):
        raise Failure(
            "two Authorization fields were accepted in "
            + ("both orders" if all(accepted) else "one order only: the identity depends on the order"),
            expected="400 (a singleton field sent twice) or 401",
            actual="; ".join(describe(a) for a in answers),
            hint="Refuse requests with more than one Authorization field.",
        )
    if all(a.status == 400 for a in answers):
        return None
    return f"refused with {answers[0].status}/{answers[1].status} (400 preferred)"


@check("BEARER-013", level=Level.MUST, spec=["RFC 6750 §5.3"])
def token_in_a_cookie_is_not_accepted(ctx: Context) -> str | None:
    """A token sent only in a cookie is refused (the contract declares no cookie authentication)."""
    token = ctx.token()
    for name in ("access_token", "token", "Authorization"):
        response = ctx.get(ctx.me_path, headers={"Cookie": f"{name}={token}"})
        if is_success(response):
            raise Failure(
                f"a token in the cookie {name} was accepted",
                expected="401",
                actual=describe(response),
                hint="Cookie authentication makes every request a CSRF candidate; declare it or refuse it.",
            )
    return None


@check("BEARER-014", level=Level.SHOULD, spec=["RFC 6585 §5", "RFC 9110 §15.5"], cost="standard")
def huge_authorization_headers_are_refused(ctx: Context) -> str | None:
    """16 KB and 64 KB Authorization headers get 400, 401 or 431 promptly, never a 5xx or a hang."""
    notes = []
    for size in BIG_HEADER_SIZES:
        value = "Bearer " + "A" * size
        try:
            response = ctx.get(ctx.me_path, headers={"Authorization": value})
        except TransportError as exc:
            if "no answer within" in str(exc):
                raise Failure(
                    f"a {size // 1024} KB Authorization header got no answer in time",
                    expected="400, 401 or 431",
                    actual=str(exc),
                    hint="Limit header sizes and answer 431 quickly.",
                ) from None
            notes.append(f"{size // 1024} KB: connection closed (acceptable)")
            continue
        if response.status not in (400, 401, 413, 431, 494):
            raise Failure(
                f"a {size // 1024} KB Authorization header answered {response.status}",
                expected="400, 401 or 431",
                actual=describe(response),
            )
        notes.append(f"{size // 1024} KB: {response.status}")
    return "; ".join(notes)
