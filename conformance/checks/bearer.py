"""BEARER-*: how the token is sent and how refusals are challenged.

RFC 6750 §2 and §3 <https://www.rfc-editor.org/rfc/rfc6750> and the HTTP authentication framework,
RFC 9110 §11 <https://www.rfc-editor.org/rfc/rfc9110#section-11>.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from ..challenges import Challenge, ChallengeSyntaxError, bearer_challenge, parse_challenges
from ..client import Response, TransportError
from ..context import Context
from ..forge import encode_json, flip_last_bit, parse
from ..model import Failure, Info, Level, Skip
from ..registry import check
from ..signing import signed, signer_for
from ._expect import describe, expect_refused, is_success

# RFC 6750 §3: values for "error" and "error_description" "MUST NOT include characters outside the set
# %x20-21 / %x23-5B / %x5D-7E"; "scope" uses the same set (%x20 as the delimiter), "error_uri" the set
# without %x20.
_PARAM_CHARSETS = {
    "error": re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*"),
    "error_description": re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*"),
    "scope": re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*"),
    "error_uri": re.compile(r"[\x21\x23-\x5b\x5d-\x7e]*"),
}
_BEARER_SCHEME = re.compile(r"(?:^|,)\s*bearer(?:\s|,|$)", re.IGNORECASE)
BIG_HEADER_SIZES = (16 * 1024, 64 * 1024)
BIG_HEADER_ANSWERS = (400, 401, 431)
CHALLENGE_HINT = 'Answer with 401 and WWW-Authenticate: Bearer realm="..." (RFC 6750 §3).'


def _www_authenticate(response: Response) -> str | None:
    values = response.header_values("www-authenticate")
    return ", ".join(values) if values else None


def _challenge(response: Response) -> Challenge | None:
    return bearer_challenge(_www_authenticate(response))


def _names_bearer(response: Response) -> bool:
    """A challenge with the Bearer scheme is sent, well-formed or not (its syntax is BEARER-003's)."""
    header = _www_authenticate(response)
    if header is None:
        return False
    try:
        parse_challenges(header)
    except ChallengeSyntaxError:
        return _BEARER_SCHEME.search(header) is not None
    return _challenge(response) is not None


def _shown(response: Response) -> str:
    header = _www_authenticate(response)
    return f"HTTP {response.status}, " + (f"WWW-Authenticate: {header}" if header else "no WWW-Authenticate")


def _forged(ctx: Context) -> str:
    """The issued token with one bit of its signature flipped: well-formed, wrongly signed."""
    token = ctx.token()
    head, dot, signature = token.rpartition(".")
    try:
        return f"{head}.{flip_last_bit(signature)}" if dot and signature else token + "A"
    except ValueError:  # not base64url: an opaque token
        return token[:-1] + ("B" if token.endswith("A") else "A")


def _expired(ctx: Context) -> str | None:
    """The issued token re-signed with ``exp`` an hour ago, when the run holds the server's key."""
    parsed = parse(ctx.token())
    sign = signer_for(ctx, parsed)
    if sign is None or parsed.header is None or parsed.claims is None:
        return None
    now = int(time.time())
    claims = {**parsed.claims, "exp": now - 3600, "iat": now - 4500}
    if "nbf" in claims:
        claims["nbf"] = now - 4500
    return signed(parsed.header, encode_json(claims), sign)


def _declared_cookies(contract: Mapping[str, Any]) -> list[str]:
    """Names of the contract's apiKey security schemes sent in a cookie."""
    schemes = contract.get("components", {}).get("securitySchemes", {})
    if not isinstance(schemes, Mapping):
        return []
    return [
        str(scheme.get("name"))
        for scheme in schemes.values()
        if isinstance(scheme, Mapping) and scheme.get("type") == "apiKey" and scheme.get("in") == "cookie"
    ]


def _invalid_credentials(ctx: Context) -> list[tuple[str, str]]:
    """Authorization values that carry no token that enables access: empty, junk, cut, forged, expired."""
    try:
        token = ctx.token()
    except Skip:
        return []  # no baseline token: only the requests without credentials are made
    probes = [
        ("'Bearer' with no token", "Bearer"),
        ("'Bearer abc'", "Bearer abc"),
        ("a token cut in half", f"Bearer {token[: len(token) // 2]}"),
        ("a token with a flipped signature bit", f"Bearer {_forged(ctx)}"),
    ]
    expired = _expired(ctx)
    if expired is not None:
        probes.append(("a token re-signed with exp an hour ago", f"Bearer {expired}"))
    return probes


def _refusal(response: Response) -> bool:
    """A 4xx answer that is not throttling: the request was refused."""
    return 400 <= response.status < 500 and response.status != 429


def _usual_refusal(ctx: Context) -> int:
    """The status a forged token gets: the server's answer to any bad token, judged by BEARER-001 and BEARER-004."""
    return ctx.get(ctx.me_path, token=_forged(ctx)).status


@check("BEARER-001", level=Level.MUST, spec=["RFC 6750 §3", "RFC 9110 §15.5.2"])
def refusals_carry_a_bearer_challenge(ctx: Context) -> str | None:
    """A request without a usable token gets a WWW-Authenticate Bearer challenge, and 401 when it has no credentials.

    Every protected path is called without credentials; the me path is also called with an empty,
    a junk, a truncated, a forged and (with the signing key) an expired token. RFC 6750 §3 asks for
    the challenge whenever the request "does not contain an access token that enables access",
    whatever the status code: a refusal with 403, 400 or any other 4xx and no Bearer challenge
    fails. Clients rely on the challenge to know that a new token is the way in, so the fastapi
    profile does not relax this; it only relaxes a bare 'Bearer' with no auth-param (BEARER-003).
    This check owns the challenge on every such refusal; BEARER-004 judges the status and the
    error code of refusals that carry one.

    Impact: A refusal without a Bearer challenge leaves clients unable to tell that a (new) token is needed; RFC
    6750 §3 requires it on every refusal.
    """
    problems = []
    shown: Response | None = None
    # RFC 9110 §15.5.2: "The server generating a 401 response MUST send a WWW-Authenticate header field".
    # RFC 6750 §3: "All challenges defined by this specification MUST use the auth-scheme value "Bearer"."
    for path in ctx.protected_paths:
        response = ctx.get(path)
        if response.status != 401 or not _names_bearer(response):
            problems.append(f"{path} without credentials answered {_shown(response)}")
            shown = shown or response
    for what, value in _invalid_credentials(ctx):
        response = ctx.get(ctx.me_path, headers=[("Authorization", value)])
        if _refusal(response) and not _names_bearer(response):
            problems.append(f"{what} was refused with {_shown(response)}")
            shown = shown or response
    if shown is not None:
        raise Failure(
            "refusals without a Bearer challenge: " + "; ".join(problems),
            expected="HTTP 401 with WWW-Authenticate: Bearer ... for a request without credentials, and a "
            "Bearer challenge on every refusal of a missing, invalid or expired token, whatever its status",
            actual=describe(shown),
            hint=CHALLENGE_HINT + " Send the challenge with every refusal of a missing or bad token.",
        )
    return None


@check("BEARER-002", level=Level.SHOULD, spec=["RFC 6750 §3.1"])
def missing_credentials_get_no_error_code(ctx: Context) -> str | None:
    """The challenge to a request without credentials carries no error attribute."""
    response = ctx.get(ctx.me_path)
    challenge = _challenge(response)
    # RFC 6750 §3.1: "If the request lacks any authentication information (e.g., the client was unaware
    # that authentication is necessary or attempted using an unsupported authentication method), the
    # resource server SHOULD NOT include an error code or other error information."
    if challenge is not None and challenge.get("error") is not None:
        raise Failure(
            f'the challenge to a request without credentials says error="{challenge.get("error")}"',
            expected='WWW-Authenticate: Bearer realm="..." with no error attribute',
            actual=_shown(response),
            hint="Add error= only when a token was sent and was refused.",
        )
    return None


def _challenge_problems(header: str) -> list[str]:
    try:
        challenges = parse_challenges(header)
    except ChallengeSyntaxError as exc:
        return [f"the header does not parse as RFC 9110 §11.6.1 challenges ({exc})"]
    bearer = next((c for c in challenges if c.scheme.lower() == "bearer"), None)
    if bearer is None:
        return []  # no Bearer challenge at all: BEARER-001 and BEARER-004 report it
    problems = []
    # RFC 6750 §3: the "Bearer" scheme "MUST be followed by one or more auth-param values".
    if not bearer.params:
        problems.append("a bare 'Bearer' with no auth-param")
    # RFC 6750 §3: 'The "realm" attribute MUST NOT appear more than once.'
    if bearer.count("realm") > 1:
        problems.append("realm appears more than once")
    # RFC 9110 §11.5 (realm): "For historical reasons, a sender MUST only generate the quoted-string syntax."
    if bearer.get("realm") is not None and not bearer.quoted.get("realm", False):
        problems.append("realm is not a quoted-string")
    for name, value in bearer.params:
        charset = _PARAM_CHARSETS.get(name.lower())
        if charset is not None and not charset.fullmatch(value):
            problems.append(f"{name} has characters outside the RFC 6750 §3 set: {value!r}")
    return problems


@check("BEARER-003", level=Level.MUST, spec=["RFC 6750 §3", "RFC 9110 §11.5"], dialect=True)
def challenges_carry_well_formed_auth_params(ctx: Context) -> str | None:
    """Every 401 Bearer challenge has an auth-param such as realm, realm at most once and quoted, values in charset.

    Impact: Clients and proxies parse the challenge by RFC 9110 grammar; a bare or malformed challenge breaks
    them.
    """
    problems: list[str] = []
    for what, headers in (
        ("no credentials", []),
        ("a forged token", [("Authorization", f"Bearer {_forged(ctx)}")]),
        ("a Basic credential", [("Authorization", "Basic dXNlcjpwYXNzd29yZA==")]),
    ):
        response = ctx.get(ctx.me_path, headers=headers)
        header = _www_authenticate(response)
        if response.status == 401 and header:
            problems += [f"{what}: {problem}" for problem in _challenge_problems(header)]
    if problems:
        raise Failure(
            "malformed Bearer challenge: " + "; ".join(problems),
            expected='WWW-Authenticate: Bearer realm="example"[, error="...", error_description="..."]',
            actual="; ".join(problems),
            hint='Send at least realm="..." after Bearer, quoted, once (FastAPI\'s examples send a bare "Bearer").',
        )
    return None


@check("BEARER-004", level=Level.SHOULD, spec=["RFC 6750 §3.1"])
def invalid_tokens_get_invalid_token(ctx: Context) -> str | None:
    """A forged or expired token gets 401 with error="invalid_token" in the Bearer challenge.

    Acceptance is a security failure. A refusal without any Bearer challenge is BEARER-001's (a
    MUST, reported there once); this check judges the refusals that carry one.
    """
    probes = [("a token with a flipped signature bit", _forged(ctx))]
    expired = _expired(ctx)
    if expired is not None:
        probes.append(("a token re-signed with exp an hour ago", expired))
    notes = []
    for what, token in probes:
        response = ctx.get(ctx.me_path, token=token)
        expect_refused(response, what=what, hint="Verify the signature and exp of every token before using it.")
        if _refusal(response) and not _names_bearer(response):
            notes.append(f"{what}: refused without a Bearer challenge ({response.status}), reported by BEARER-001")
            continue
        challenge = _challenge(response)
        # RFC 6750 §3.1: invalid_token: "The access token provided is expired, revoked, malformed, or
        # invalid for other reasons. The resource SHOULD respond with the HTTP 401 (Unauthorized) status code."
        if response.status != 401 or challenge is None or challenge.get("error") != "invalid_token":
            wrong = [] if response.status == 401 else [f"answered {response.status} instead of 401"]
            if challenge is None or challenge.get("error") != "invalid_token":
                wrong.append("does not say invalid_token")
            raise Failure(
                f"the refusal of {what} " + " and ".join(wrong),
                expected='HTTP 401, WWW-Authenticate: Bearer realm="...", error="invalid_token"',
                actual=_shown(response),
                hint='Answer 401 and add error="invalid_token" to the challenge: it tells clients to get a new token.',
            )
    if expired is None:
        notes.append("forged token only (an expired one needs the signing key)")
    return "; ".join(notes) or None


@check("BEARER-005", level=Level.MUST, spec=["RFC 6750 §3.1", "RFC 9110 §15.5.2"])
def other_schemes_are_unauthenticated(ctx: Context) -> str | None:
    """Basic, Token and JWT credentials get 401, with no error code in the challenge.

    Impact: A server that takes other schemes as bearer tokens accepts credentials it does not verify as such.
    """
    token = ctx.token()
    with_codes = []
    for value in ("Basic dXNlcjpwYXNzd29yZA==", f"Token {token}", f"JWT {token}"):
        scheme = value.split(" ", 1)[0]
        response = ctx.get(ctx.me_path, headers=[("Authorization", value)])
        if response.status != 401:
            raise Failure(
                f"the {scheme} scheme answered {response.status}",
                expected="HTTP 401: an unsupported scheme is a request without usable credentials",
                actual=describe(response),
                hint="Accept only 'Bearer <token>' and answer any other scheme as a request without credentials.",
                security=is_success(response),
            )
        challenge = _challenge(response)
        if challenge is not None and challenge.get("error") is not None:
            with_codes.append(f'{scheme}: error="{challenge.get("error")}"')
    # RFC 6750 §3.1: a request that "attempted using an unsupported authentication method" gets no error code.
    if with_codes:
        raise Failure(
            "an unsupported scheme got an error code: " + "; ".join(with_codes),
            expected='WWW-Authenticate: Bearer realm="..." with no error attribute',
            actual="; ".join(with_codes),
            hint="Answer an unsupported scheme like a request without credentials.",
            level=Level.SHOULD,
        )
    return None


@check("BEARER-006", level=Level.MUST, spec=["RFC 9110 §11.1"])
def bearer_scheme_is_case_insensitive(ctx: Context) -> str | None:
    """'bearer <token>' and 'BEARER <token>' work like 'Bearer <token>'.

    Impact: Clients send the scheme in any case; refusing them breaks real clients.
    """
    token = ctx.token()
    # RFC 9110 §11.1: "It uses a case-insensitive token to identify the authentication scheme".
    for scheme in ("bearer", "BEARER"):
        response = ctx.get(ctx.me_path, headers=[("Authorization", f"{scheme} {token}")])
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
    """'Bearer', two or more spaces, then the token, is accepted: the grammar is 1*SP.

    Impact: Clients that send more than one space are refused although the grammar allows them.
    """
    token = ctx.token()
    # RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; "Resource servers MUST support this method."
    for spaces in ("  ", "   "):
        response = ctx.get(ctx.me_path, headers=[("Authorization", f"Bearer{spaces}{token}")])
        if not is_success(response):
            raise Failure(
                f"'Bearer' + {len(spaces)} spaces + a valid token was refused ({response.status})",
                expected='2xx: credentials = "Bearer" 1*SP b64token',
                actual=describe(response),
                hint="Split the header on the first run of spaces, not on exactly one space.",
            )
    return None


@check("BEARER-008", level=Level.SHOULD, spec=["RFC 6750 §2.1", "RFC 9110 §5.5"])
def altered_credentials_are_refused(ctx: Context) -> str | None:
    """A tab separator, a quoted token and two comma-separated tokens get 400 or 401, never 2xx."""
    token = ctx.token()
    # RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=", after 1*SP:
    # a tab, quotes or a comma make the credentials something else than a Bearer token.
    for what, value in (
        ("a tab after Bearer", f"Bearer\t{token}"),
        ("a quoted token", f'Bearer "{token}"'),
        ("two comma-separated tokens", f"Bearer {token},{token}"),
    ):
        response = ctx.get(ctx.me_path, headers=[("Authorization", value)])
        if response.status not in (400, 401) and not (_refusal(response) and response.status == _usual_refusal(ctx)):
            # (A refusal like that of any forged token: how the server refuses bad tokens is BEARER-001/004's.)
            outcome = "ACCEPTED" if is_success(response) else "answered"
            raise Failure(
                f"{what}: {outcome} {response.status}",
                expected='HTTP 400 with error="invalid_request", or 401',
                actual=describe(response),
                hint="Accept exactly 'Bearer' 1*SP b64token and refuse anything else.",
            )
    # RFC 9110 §5.5: "a field parsing implementation MUST exclude such whitespace prior to evaluating
    # the field value": a trailing space is no part of the credentials.
    try:
        response = ctx.get(ctx.me_path, headers=[("Authorization", f"Bearer {token} ")])
    except TransportError:
        return "trailing whitespace not probed: the HTTP client strips or refuses it before sending"
    if not is_success(response):
        raise Info(
            f"a valid token followed by a trailing space was refused ({response.status}): HTTP parsers "
            "normally strip it (RFC 9110 §5.5), so this shows only behind one that does not"
        )
    return None


@check("BEARER-009", level=Level.SHOULD, spec=["RFC 6750 §3.1"])
def empty_and_junk_tokens_are_refused(ctx: Context) -> str | None:
    """'Bearer' with no token, 'Bearer abc' and a truncated token get 401 (or 400 invalid_request)."""
    token = ctx.token()
    # ('Bearer ' with a trailing space is the same field value: HTTP drops trailing whitespace.)
    for what, value in (
        ("'Bearer' with no token", "Bearer"),
        ("'Bearer abc'", "Bearer abc"),
        ("a token cut in half", f"Bearer {token[: len(token) // 2]}"),
    ):
        response = ctx.get(ctx.me_path, headers=[("Authorization", value)])
        expect_refused(response, what=what, hint="Refuse a missing or malformed token with 401.", allowed=(400, 401))
        if not _refusal(response) or response.status == 401:
            continue
        challenge = _challenge(response)
        if response.status == 400 and challenge is not None and challenge.get("error") == "invalid_request":
            continue
        if response.status == _usual_refusal(ctx):
            continue  # refused like any forged token: BEARER-001 and BEARER-004 judge that answer
        raise Failure(
            f"{what} was refused with {response.status}"
            + (' without error="invalid_request"' if response.status == 400 else ""),
            expected='HTTP 401 (error="invalid_token"), or 400 with error="invalid_request"',
            actual=_shown(response),
            hint="RFC 6750 §3.1: a malformed request is invalid_request (400), a bad token invalid_token (401).",
        )
    return None


@check("BEARER-010", level=Level.SHOULD, spec=["RFC 6750 §2.3", "RFC 9700 §4.3.2"])
def token_in_the_query_is_refused(ctx: Context) -> str | None:
    """A token sent only as ?access_token= is refused; a server that accepts it answers Cache-Control: private."""
    response = ctx.get(ctx.me_path, params={"access_token": ctx.token()})
    if not is_success(response):
        return None
    # RFC 6750 §2.3: "Resource servers MAY support this method" (the contract does not), and "Server
    # success (2XX status) responses to these requests SHOULD contain a Cache-Control header with the
    # "private" option." (no-store keeps the answer out of every cache, which is enough.)
    directives = ",".join(response.header_values("cache-control")).lower().split(",")
    private = any(d.strip().split("=", 1)[0] in ("private", "no-store") for d in directives)
    problems = ["a token sent only in the URI query was accepted"]
    if not private:
        problems.append("its 2xx answer has no Cache-Control: private, so shared caches may keep it")
    raise Failure(
        "; ".join(problems),
        expected="a refusal: the contract takes the token in the Authorization header only"
        + ("" if private else "; if accepted, Cache-Control: private"),
        actual=describe(response) + f"; Cache-Control: {response.header('cache-control')}",
        hint="Read the token from the Authorization header only: URIs end up in logs, history and Referer.",
    )


@check("BEARER-011", level=Level.SHOULD, spec=["RFC 6750 §2", "RFC 6750 §3.1"])
def two_token_methods_are_invalid_request(ctx: Context) -> str | None:
    """A valid Authorization header plus ?access_token= (two methods in one request) gets 400 invalid_request."""
    token = ctx.token()
    response = ctx.get(ctx.me_path, token=token, params={"access_token": token})
    challenge = _challenge(response)
    # RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token in each request."
    # RFC 6750 §3.1: invalid_request covers a request that "uses more than one method for including an
    # access token"; "The resource server SHOULD respond with the HTTP 400 (Bad Request) status code."
    if response.status != 400 or challenge is None or challenge.get("error") != "invalid_request":
        outcome = f"was ACCEPTED ({response.status})" if is_success(response) else f"got {_shown(response)}"
        raise Failure(
            f"a token sent both in the header and in the query {outcome}",
            expected='HTTP 400 with WWW-Authenticate: Bearer realm="...", error="invalid_request"',
            actual=describe(response),
            hint="Refuse a request that carries a token both in the Authorization header and in the URI.",
        )
    return None


def _username(response: Response) -> str | None:
    body = response.json()
    name = body.get("username") if isinstance(body, dict) else None
    return name if isinstance(name, str) else None


@check("BEARER-012", level=Level.SHOULD, spec=["RFC 9110 §5.3"])
def two_authorization_fields_are_not_order_dependent(ctx: Context) -> str | None:
    """Two Authorization fields get the same answer in either order (400 preferred), never two identities."""
    token = ctx.token()
    # RFC 9110 §5.3: "A sender MUST NOT generate multiple field lines with the same name in a message ...
    # unless that field's definition allows multiple field line values to be recombined as a
    # comma-separated list". Authorization is a singleton: which of two fields counts is up to each parser.
    first, second = (
        ctx.get(ctx.me_path, headers=[("Authorization", a), ("Authorization", b)])
        for a, b in ((f"Bearer {token}", "Bearer garbage"), ("Bearer garbage", f"Bearer {token}"))
    )
    if is_success(first) != is_success(second):
        raise Failure(
            "the valid token was accepted only when it came " + ("first" if is_success(first) else "second"),
            expected="the same answer in either order (400 preferred)",
            actual=f"valid first: {describe(first, 80)}; valid second: {describe(second, 80)}",
            hint="Refuse requests with more than one Authorization field (400 invalid_request).",
        )
    notes = [] if first.status == second.status == 400 else [f"answered {first.status}/{second.status} (400 preferred)"]
    if ctx.state.credentials("second") is None:
        way_out = "a token run has one identity" if ctx.config.token_run else "configure users.second"
        return "; ".join([*notes, f"two identities not tried: {way_out}"])
    other = ctx.token("second")
    identities = []
    for a, b in ((token, other), (other, token)):
        response = ctx.get(ctx.me_path, headers=[("Authorization", f"Bearer {a}"), ("Authorization", f"Bearer {b}")])
        identities.append(_username(response) if is_success(response) else None)
    if identities[0] != identities[1]:
        raise Failure(
            "two users' tokens in two Authorization fields: the identity depends on their order",
            expected="the same answer in either order (a 400 refusal preferred)",
            actual=f"primary's first: {identities[0] or 'refused'}; second's first: {identities[1] or 'refused'}",
            hint="Refuse requests with more than one Authorization field: a proxy may read the other one.",
        )
    return "; ".join(notes) or None


@check("BEARER-013", level=Level.MAY, spec=["RFC 6750 §5.3"])
def token_in_a_cookie_is_refused(ctx: Context) -> str | None:
    """A token sent only in a cookie is refused, unless the contract declares cookie authentication."""
    token = ctx.token()
    declared = _declared_cookies(ctx.state.contract)
    for cookie in (f"access_token={token}; token={token}; Authorization={token}", f'access_token="Bearer {token}"'):
        response = ctx.get(ctx.me_path, headers=[("Cookie", cookie)])
        if is_success(response) and not declared:
            # RFC 6750 §5.3: "Implementations that do store bearer tokens in cookies MUST take precautions
            # against cross-site request forgery."
            raise Failure(
                "a token sent only in a cookie was accepted, and the contract declares no cookie authentication",
                expected="HTTP 401",
                actual=describe(response),
                hint="A browser sends cookies on cross-site requests (CSRF): declare cookie auth with CSRF "
                "protection, or read the token from the Authorization header only.",
            )
    return f"the contract declares cookie authentication ({', '.join(declared)})" if declared else None


@check("BEARER-014", level=Level.SHOULD, spec=["RFC 6585 §5", "RFC 9110 §15.5"], cost="standard")
def huge_authorization_headers_are_refused(ctx: Context) -> str | None:
    """16 KB and 64 KB Authorization headers get 400, 401 or 431 promptly, never 2xx, 5xx or a hang."""
    notes = []
    for size in BIG_HEADER_SIZES:
        label = f"{size // 1024} KB"
        ctx.progress(f"a {label} Authorization header (a hang shows at the {ctx.config.timeout_s:g} s timeout)")
        try:
            # No retry: a hang or a dropped connection is what this check looks for.
            response = ctx.get(ctx.me_path, headers=[("Authorization", "Bearer " + "A" * size)], retry=False)
        except TransportError as exc:
            if "no answer within" in str(exc):
                raise Failure(
                    f"a {label} Authorization header got no answer: the server hung",
                    expected="HTTP 431, 400 or 401, promptly",
                    actual=str(exc),
                    hint="Limit the size of request headers and answer 431 at once.",
                ) from None
            # A front proxy may close the connection on an oversized header; that is acceptable if the
            # server still answers afterwards (a crash would not).
            try:
                alive = is_success(ctx.get(ctx.me_path, token=ctx.token()))
            except TransportError:
                alive = False
            if not alive:
                raise Failure(
                    f"after a {label} Authorization header the connection dropped and the server stopped answering",
                    expected="HTTP 431, 400 or 401, and the server still up",
                    actual=str(exc),
                    hint="Limit the size of request headers; never let one request take the server down.",
                    level=Level.MUST,
                ) from None
            notes.append(f"{label}: connection closed without an answer")
            continue
        if is_success(response):
            raise Failure(
                f"a {label} token of 'A's was ACCEPTED ({response.status})",
                expected="HTTP 431, 400 or 401",
                actual=describe(response),
                hint="Verify every token before using it.",
                security=True,
                level=Level.MUST,
            )
        # RFC 6585 §5: "The 431 status code indicates that the server is unwilling to process the request
        # because its header fields are too large." (A refusal like that of any forged token is judged by
        # BEARER-001 and BEARER-004, not again here.)
        if response.status not in BIG_HEADER_ANSWERS and _refusal(response) and response.status == _usual_refusal(ctx):
            notes.append(f"{label}: {response.status}, as for any forged token")
            continue
        if response.status not in BIG_HEADER_ANSWERS:
            raise Failure(
                f"a {label} Authorization header answered {response.status}",
                expected="HTTP 431 (or 400, or 401 for an invalid token)",
                actual=describe(response),
                hint="Answer oversized headers with 431 Request Header Fields Too Large.",
            )
        notes.append(f"{label}: {response.status}")
    return "; ".join(notes)
