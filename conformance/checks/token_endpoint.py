"""TOKEN-*: the token endpoint. RFC 6749 §3.2, §4.3 and §5 <https://www.rfc-editor.org/rfc/rfc6749>.

TOKEN-001..005 read the baseline login's answer (a proper password-grant request made once by the
runner); the others send their own requests. Credentials never travel in a URI here: where a rule
is about the URI, a random wrong password is sent, which proves the point without leaking one.
"""

from __future__ import annotations

import re
import secrets
import time
from email.utils import parsedate_to_datetime

from ..client import Response, TransportError
from ..context import Context
from ..forge import parse
from ..model import Failure, Info, Level, Skip, throttled
from ..registry import check
from ._expect import (
    MALFORMED_FORM,
    REFUSED_LOGIN,
    describe,
    expect_oauth_error,
    fastapi_shaped,
    is_success,
    issued_token,
    oauth_error_code,
)

# RFC 6749 §5.2: error and error_description "MUST NOT include characters outside the set
# %x20-21 / %x23-5B / %x5D-7E".
ERROR_CHARSET = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")
FORM = "application/x-www-form-urlencoded"
MAX_EXPIRES_IN = 31_536_000
EXPIRY_SKEW_S = 120
OVERSIZED_BODY_BYTES = 10 * 1024 * 1024


def _baseline(ctx: Context) -> Response:
    ctx.require_token_endpoint()
    if ctx.state.baseline is None:
        raise Skip("the baseline login did not run")
    return ctx.state.baseline.response


def _needs_token(ctx: Context) -> Response:
    response = _baseline(ctx)
    if ctx.state.token("primary") is None:
        raise Skip("the baseline login gave no token (see TOKEN-001)")
    return response


def _decided_unless_throttled(*responses: Response) -> None:
    """A 429 refusal gives no token, but says nothing about the rule: no PASS on it (Skip, with the way out)."""
    answers = [r for r in responses if r.status == 429]
    if answers:
        raise throttled(answers[-1].header("retry-after"))


def _wrong_password() -> str:
    return "wrong-" + secrets.token_urlsafe(12)


@check("TOKEN-001", level=Level.MUST, spec=["RFC 6749 §4.3.3", "RFC 6749 §5.1"])
def password_grant_issues_a_bearer_token(ctx: Context) -> str | None:
    """A proper password-grant request gets 200 with a string access_token and token_type bearer.

    Impact: Without a bearer access token in the answer no client can use the API at all.
    """
    response = _baseline(ctx)
    body = response.json()
    hint = "Answer a valid password grant with 200 and a JSON body holding access_token and token_type."
    if response.status != 200 or not isinstance(body, dict):
        raise Failure(
            f"the login answered {response.status}" + ("" if isinstance(body, dict) else " without a JSON object"),
            expected='200 with {"access_token": "...", "token_type": "bearer"}',
            actual=describe(response),
            hint=hint,
        )
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise Failure("the login answer has no access_token string", expected="access_token", actual=describe(response))
    # RFC 6749 §5.1: token_type "REQUIRED"; §7.1 / RFC 6750 §4: the value "bearer" is case-insensitive.
    token_type = body.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise Failure(
            f"token_type is {token_type!r}",
            expected='"token_type": "bearer" (compared case-insensitively)',
            actual=describe(response),
            hint="Return token_type bearer: clients use it to choose how to send the token.",
        )
    return None


@check("TOKEN-002", level=Level.MUST, spec=["RFC 6749 §5.1"])
def token_response_is_json(ctx: Context) -> str | None:
    """The token response has Content-Type application/json.

    Impact: Clients parse the token answer by its media type; another type breaks OAuth client libraries.
    """
    response = _needs_token(ctx)
    media_type = (response.header("content-type") or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise Failure(
            f"the token response is {media_type or 'untyped'}",
            expected="Content-Type: application/json",
            actual=f"Content-Type: {response.header('content-type')}",
            hint="Serve the token response as application/json (RFC 6749 §5.1).",
        )
    return None


@check("TOKEN-003", level=Level.MUST, spec=["RFC 6749 §5.1"])
def token_response_is_not_stored(ctx: Context) -> str | None:
    """The token response carries Cache-Control: no-store.

    Impact: A cacheable token answer can be stored by a shared cache and served to someone else: a credential
    leak.
    """
    response = _needs_token(ctx)
    # RFC 6749 §5.1: "The authorization server MUST include the HTTP "Cache-Control" response header
    # field [RFC2616] with a value of "no-store" in any response containing tokens".
    directives = {d.strip().split("=")[0].lower() for d in (response.header("cache-control") or "").split(",")}
    if "no-store" not in directives:
        raise Failure(
            "the token response may be stored by caches",
            expected="Cache-Control: no-store",
            actual=f"Cache-Control: {response.header('cache-control')}",
            hint="Add Cache-Control: no-store (and Pragma: no-cache) to every token endpoint answer.",
        )
    return None


@check("TOKEN-004", level=Level.SHOULD, spec=["RFC 6749 §5.1", "RFC 9111 §5.4"])
def token_response_has_pragma_no_cache(ctx: Context) -> str | None:
    """The token response carries Pragma: no-cache (for HTTP/1.0 caches)."""
    response = _needs_token(ctx)
    if (response.header("pragma") or "").strip().lower() != "no-cache":
        raise Failure(
            "the token response has no Pragma: no-cache",
            expected="Pragma: no-cache",
            actual=f"Pragma: {response.header('pragma')}",
            hint="RFC 6749 §5.1 asks for Pragma: no-cache as well (RFC 9111 deprecates Pragma, hence SHOULD).",
        )
    return None


def _issued_at(response: Response) -> float:
    date = response.header("date")
    if date:
        try:
            return parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            pass
    return time.time()


@check("TOKEN-005", level=Level.SHOULD, spec=["RFC 6749 §5.1"])
def expires_in_is_sane(ctx: Context) -> str | None:
    """expires_in is present, a positive integer of at most a year, and agrees with the token's exp."""
    response = _needs_token(ctx)
    body = response.json()
    expires_in = body.get("expires_in")
    if expires_in is None:
        raise Failure(
            "the token response has no expires_in",
            expected="expires_in (RECOMMENDED)",
            actual=describe(response),
            hint="Tell clients the token lifetime in seconds so they can refresh before it lapses.",
        )
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 0 < expires_in <= MAX_EXPIRES_IN:
        raise Failure(
            f"expires_in is {expires_in!r}",
            expected=f"an integer number of seconds, 1..{MAX_EXPIRES_IN}",
            actual=describe(response),
            level=Level.MUST,
        )
    claims = parse(ctx.token()).claims or {}
    exp = claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        remaining = exp - _issued_at(response)
        if abs(remaining - expires_in) > EXPIRY_SKEW_S:
            raise Failure(
                f"expires_in is {expires_in} s but the token's exp is {remaining:.0f} s after the answer",
                expected=f"the two within {EXPIRY_SKEW_S} s",
                actual=f"expires_in {expires_in}, exp - Date {remaining:.0f}",
                hint="Compute expires_in from the same lifetime as exp.",
            )
        return f"expires_in {expires_in} s; exp agrees"
    return f"expires_in {expires_in} s"


# Each refusal below is judged on its status, its error code when it has one, and "no token";
# TOKEN-008 alone judges the body's shape (one non-RFC body is one verdict, not one per check).


@check("TOKEN-006", level=Level.MUST, spec=["RFC 6749 §5.2"], dialect=True)
def wrong_password_is_invalid_grant(ctx: Context) -> str | None:
    """A wrong password for an existing user gets 400 invalid_grant and no token.

    Impact: Clients and OAuth libraries branch on 400 invalid_grant to tell a wrong password from other
    failures; a token for a wrong password is account takeover.
    """
    # A token for a wrong password fails in every profile; a 401 {"detail"} (FastAPI's tutorial) is
    # the dialect: the login is refused, only the status is not the RFC's.
    response = ctx.login(password=_wrong_password()).response
    expect_oauth_error(
        response,
        ("invalid_grant",),
        what="a wrong password",
        hint='Answer bad credentials with 400 {"error": "invalid_grant"} (RFC 6749 §5.2), not 401.',
        dialect=REFUSED_LOGIN,
        code_required=False,
    )
    return None


@check("TOKEN-007", level=Level.MUST, spec=["RFC 6749 §5.2"], dialect=True)
def unknown_user_is_invalid_grant(ctx: Context) -> str | None:
    """An unknown username gets 400 invalid_grant and no token.

    Impact: As TOKEN-006; an answer that differs from the wrong-password one also tells attackers which accounts
    exist.
    """
    response = ctx.login(username="no-such-user-" + secrets.token_hex(6), password=_wrong_password()).response
    expect_oauth_error(
        response,
        ("invalid_grant",),
        what="an unknown user",
        hint='Answer an unknown user exactly like a wrong password: 400 {"error": "invalid_grant"}.',
        dialect=REFUSED_LOGIN,
        code_required=False,
    )
    return None


def _error_body_problems(response: Response) -> list[str]:
    problems = []
    media_type = (response.header("content-type") or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        problems.append(f"Content-Type {media_type or 'missing'}")
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        problems.append("no string 'error' member")
        return problems
    for member in ("error", "error_description"):
        value = body.get(member)
        if value is not None and (not isinstance(value, str) or not ERROR_CHARSET.match(value)):
            problems.append(f"{member} outside the RFC 6749 §5.2 character set")
    return problems


def _error_answers(ctx: Context) -> list[tuple[str, Response]]:
    """One answer of each kind the token endpoint refuses (the requests of TOKEN-006/007/009/010/012/013)."""
    return [
        ("a wrong password", ctx.login(password=_wrong_password()).response),
        (
            "an unknown user",
            ctx.login(username="no-such-user-" + secrets.token_hex(6), password=_wrong_password()).response,
        ),
        ("a missing password", ctx.login(password=None).response),
        ("a missing username", ctx.login(username=None).response),
        ("an empty password", ctx.login(password="").response),
        ("an unknown grant_type", ctx.login(grant_type="urn:example:no-such-grant").response),
    ]


@check("TOKEN-008", level=Level.MUST, spec=["RFC 6749 §5.2"], dialect=True)
def error_responses_follow_rfc_6749(ctx: Context) -> str | None:
    """Token endpoint errors are JSON with an error (and error_description) in the RFC 6749 charset.

    Impact: OAuth client libraries read `error` to report and react; a body without it reaches the user as an
    unexplained failure.
    """
    # One verdict for the run, naming every answer that departs; a {"detail"} body is the FastAPI
    # dialect (a warning under --profile fastapi) answer by answer, so a server may mix it with RFC
    # bodies. Statuses and codes are the other TOKEN checks' to judge, tokens issued as well.
    answers = _error_answers(ctx)
    departed = []
    for what, response in answers:
        if is_success(response) or response.status == 429:
            continue  # a token is TOKEN-006..013's to report; a throttled answer says nothing here
        found = _error_body_problems(response)
        if found:
            departed.append((what, response, found))
    if departed:
        foreign = [(w, r) for w, r, _ in departed if not fastapi_shaped(r, range(400, 500))]
        raise Failure(
            f"{len(departed)} of {len(answers)} error answers are not RFC 6749 §5.2 bodies: "
            + "; ".join(f"{what} ({response.status}): {', '.join(found)}" for what, response, found in departed),
            expected='application/json {"error": "...", "error_description": "..."} in %x20-21/%x23-5B/%x5D-7E',
            actual="; ".join(f"{w}: {describe(r)}" for w, r in (foreign or [(w, r) for w, r, _ in departed])[:3]),
            hint="Use the RFC 6749 §5.2 error body for every token endpoint error.",
            dialect=not foreign,
        )
    _decided_unless_throttled(*(response for _, response in answers))
    return f"{len(answers)} error answers, each an RFC 6749 §5.2 body"


def _missing(ctx: Context, field: str) -> None:
    response = ctx.login(password=None) if field == "password" else ctx.login(username=None)
    expect_oauth_error(
        response.response,
        ("invalid_request",),
        what=f"a request without {field}",
        hint=f'Answer a missing {field} with 400 {{"error": "invalid_request"}} (RFC 6749 §4.3.2, §5.2).',
        dialect=MALFORMED_FORM,
        code_required=False,
    )


@check("TOKEN-009", level=Level.MUST, spec=["RFC 6749 §4.3.2", "RFC 6749 §5.2"], dialect=True)
def missing_password_is_invalid_request(ctx: Context) -> str | None:
    """A request without the password parameter gets 400 invalid_request.

    Impact: A client cannot tell a malformed request from a wrong password without invalid_request; a token
    issued without a password is takeover.
    """
    _missing(ctx, "password")
    return None


@check("TOKEN-010", level=Level.MUST, spec=["RFC 6749 §4.3.2", "RFC 6749 §5.2"], dialect=True)
def missing_username_is_invalid_request(ctx: Context) -> str | None:
    """A request without the username parameter gets 400 invalid_request.

    Impact: As TOKEN-009, for the username.
    """
    _missing(ctx, "username")
    return None


@check("TOKEN-011", level=Level.MUST, spec=["RFC 6749 §4.3.2"], dialect=True)
def missing_grant_type_is_invalid_request(ctx: Context) -> str | None:
    """A request without grant_type (REQUIRED) gets 400 invalid_request, even with valid credentials.

    Impact: A server that guesses the grant type accepts requests it does not understand; clients get no
    invalid_request to fix them.
    """
    # RFC 6749 §4.3.2: grant_type "REQUIRED. Value MUST be set to "password"." The credentials are
    # right, so a token here is leniency, not a bypass: FastAPI's OAuth2PasswordRequestForm makes
    # grant_type optional, and the fastapi profile warns.
    response = ctx.login(grant_type=None).response
    if issued_token(response):
        raise Failure(
            "a request without grant_type was granted a token",
            expected='400 {"error": "invalid_request"}',
            actual=describe(response),
            hint="Require grant_type=password (FastAPI: OAuth2PasswordRequestFormStrict).",
            dialect=True,
        )
    expect_oauth_error(
        response,
        ("invalid_request",),
        what="a request without grant_type",
        hint="Require grant_type.",
        dialect=MALFORMED_FORM,
        code_required=False,
    )
    return None


@check("TOKEN-012", level=Level.MUST, spec=["RFC 6749 §5.2"], dialect=True)
def other_grant_types_are_unsupported(ctx: Context) -> str | None:
    """grant_type=client_credentials and an unknown grant_type get unsupported_grant_type and no token.

    Impact: A token issued for a grant the server does not support is a token issued without the checks that
    grant needs.
    """
    notes = []
    for grant_type in ("client_credentials", "urn:example:no-such-grant"):
        response = ctx.login(grant_type=grant_type).response
        if grant_type == "client_credentials" and (response.status, oauth_error_code(response)) == (
            401,
            "invalid_client",
        ):
            # §5.2: a server that supports client_credentials may ask for client authentication first.
            notes.append("client_credentials: 401 invalid_client (client authentication required)")
            continue
        expect_oauth_error(
            response,
            ("unsupported_grant_type", "unauthorized_client"),
            what=f"grant_type={grant_type}",
            hint='Answer grant types you do not support with 400 {"error": "unsupported_grant_type"}.',
            dialect=MALFORMED_FORM,
            code_required=False,
        )
    return "; ".join(notes) or None


@check("TOKEN-013", level=Level.MUST, spec=["RFC 6749 §3.2"], dialect=True)
def empty_password_counts_as_missing(ctx: Context) -> str | None:
    """password= with an empty value is treated as omitted: 400 invalid_request, no token.

    Impact: An empty password treated as a value can match an empty stored password or a lenient hash check:
    login without a password.
    """
    # RFC 6749 §3.2: "Parameters sent without a value MUST be treated as if they were omitted from the request."
    response = ctx.login(password="").response
    expect_oauth_error(
        response,
        ("invalid_request",),
        what="an empty password",
        hint="Treat an empty parameter as missing: 400 invalid_request.",
        dialect=(401, *MALFORMED_FORM),  # refused as a wrong password, or as a missing field
        code_required=False,
    )
    return None


@check("TOKEN-014", level=Level.SHOULD, spec=["RFC 6749 §3.2", "RFC 6749 §5.2"])
def repeated_password_is_invalid_request(ctx: Context) -> str | None:
    """A repeated password parameter (wrong, then right) gets 400 invalid_request and no token."""
    # RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once."
    # The right password is in the request, so a token is leniency (a warning), not a bypass.
    form = [*ctx.login_form(password=None), ("password", _wrong_password()), ("password", ctx.credentials().password)]
    response = ctx.post_token(form)
    if issued_token(response):
        ctx.state.remember_token("primary", response.json()["access_token"])
        raise Failure(
            "a request with the password parameter twice was granted a token",
            expected='400 {"error": "invalid_request"}',
            actual=describe(response),
            hint="Refuse repeated parameters instead of taking the first or the last one.",
        )
    expect_oauth_error(
        response,
        ("invalid_request",),
        what="a repeated password",
        hint="Refuse repeated parameters.",
        code_required=False,
    )
    return None


@check("TOKEN-015", level=Level.MUST, spec=["RFC 6749 §3.2"])
def unknown_parameters_are_ignored(ctx: Context) -> str | None:
    """A valid login with an extra unknown parameter still gets 200 and a token.

    Impact: Clients and proxies add parameters (client_id, scope); refusing them breaks real clients.
    """
    # RFC 6749 §3.2: "The authorization server MUST ignore unrecognized request parameters."
    response = ctx.post_token([*ctx.login_form(), ("foo", "bar")])
    if not issued_token(response):
        raise Failure(
            f"a valid login with foo=bar was refused ({response.status})",
            expected="200 with a token",
            actual=describe(response),
            hint="Ignore parameters you do not recognise.",
        )
    ctx.state.remember_token("primary", response.json()["access_token"])
    return None


@check("TOKEN-016", level=Level.MUST, spec=["RFC 6749 §3.2", "RFC 9110 §15.5.6"])
def get_on_the_token_endpoint_is_405_with_allow(ctx: Context) -> str | None:
    """GET on the token endpoint processes no credentials; a 405 answer carries an Allow header.

    Impact: Credentials accepted in a GET end up in URLs, logs and browser history; a 405 without Allow leaves
    clients no way to learn the method.
    """
    # RFC 6749 §3.2: "The client MUST use the HTTP "POST" method when making access token requests."
    # RFC 9110 §15.5.6: "The origin server MUST generate an Allow header field in a 405 response".
    # A 404 (no GET route at all) processes nothing and owes no Allow.
    username = ctx.credentials().username
    params = {"grant_type": "password", "username": username, "password": _wrong_password()}
    path = ctx.config.paths.token
    response = ctx.request("GET", path, params=params)
    if issued_token(response):
        ctx.state.remember_token("primary", response.json()["access_token"])
        raise Failure(
            f"GET {path} with a WRONG password in the query was granted a token ({response.status})",
            expected="no token: 405 with Allow: POST, or 404",
            actual=describe(response),
            hint="Accept token requests by POST only, and check the password.",
            security=True,
        )
    # A 401 is a verdict on the credentials only if a GET without them is answered otherwise (a
    # server that demands a bearer token on every GET answers 401 to both).
    checked = response.status == 401 and ctx.request("GET", path).status != 401
    if is_success(response) or oauth_error_code(response) == "invalid_grant" or checked:
        raise Failure(
            f"GET {path} with credentials in the query was processed ({response.status})",
            expected="405 Method Not Allowed with Allow: POST (or 404)",
            actual=describe(response),
            hint="Accept token requests by POST only; credentials in a URI end up in logs.",
        )
    _decided_unless_throttled(response)
    if response.status == 405 and not response.header("allow"):
        raise Failure(
            f"GET {path} answered 405 without Allow",
            expected="405 with an Allow header (RFC 9110 §15.5.6: MUST)",
            actual=describe(response),
            hint="Send Allow: POST with every 405 answer.",
        )
    if response.status == 405:
        return f"405, Allow: {response.header('allow')}"
    return f"{response.status} and no token: the credentials were not processed"


@check("TOKEN-017", level=Level.SHOULD, spec=["RFC 6749 §4.3.2", "RFC 9700 §4.3"])
def credentials_in_the_uri_are_not_processed(ctx: Context) -> str | None:
    """POST with the credentials in the query string and an empty body gets no token and no verdict on them."""
    username = ctx.credentials().username
    params = {"grant_type": "password", "username": username, "password": _wrong_password()}
    headers = {"Content-Type": FORM}
    empty = ctx.request("POST", ctx.config.paths.token, content=b"", headers=headers)
    response = ctx.request("POST", ctx.config.paths.token, params=params, content=b"", headers=headers)
    # The URI was read if adding it changed the answer (e.g. invalid_request became invalid_grant).
    read_uri = is_success(response) or (response.status, response.content) != (empty.status, empty.content)
    if read_uri and (is_success(response) or oauth_error_code(response) == "invalid_grant" or response.status == 401):
        raise Failure(
            f"credentials in the URI were checked ({response.status}; {empty.status} without them)",
            expected="the same answer as an empty body: the parameters belong in the form body",
            actual=describe(response),
            hint="Read token request parameters from the form body only (RFC 6749 §4.3.2).",
        )
    _decided_unless_throttled(empty, response)
    return None


@check("TOKEN-018", level=Level.SHOULD, spec=["RFC 6749 §4.3.2", "RFC 9110 §15.5.16"])
def json_body_is_rejected(ctx: Context) -> str | None:
    """A JSON body instead of the form encoding is rejected (400, 415 or 422)."""
    import json

    creds = ctx.credentials()
    body = json.dumps({"grant_type": "password", "username": creds.username, "password": creds.password})
    response = ctx.post_token(content=body, headers={"Content-Type": "application/json"})
    if issued_token(response):
        ctx.state.remember_token("primary", response.json()["access_token"])
        raise Info("the token endpoint accepts a JSON body as well (the contract says form encoding)")
    if response.status not in (400, 415, 422):
        raise Failure(
            f"a JSON body answered {response.status}",
            expected="400, 415 or 422",
            actual=describe(response),
            hint="Refuse bodies that are not application/x-www-form-urlencoded.",
        )
    return None


@check("TOKEN-019", level=Level.MUST, spec=["RFC 6749 §4.3.2", "RFC 9110 §15.5"], cost="standard")
def malformed_forms_get_4xx(ctx: Context) -> str | None:
    """Malformed forms (bad escapes, non-UTF-8, a wrong charset, a 10 MB body) get 4xx and no token.

    Impact: A 5xx or a token on a malformed body is a parser an attacker can crash or confuse.
    """
    creds = ctx.credentials()
    user = creds.username.encode()
    bodies = [
        ("bad percent escapes", b"grant_type=password&username=" + user + b"&password=%zz%", FORM),
        ("non-UTF-8 bytes", b"grant_type=password&username=" + user + b"&password=\xff\xfe%ff", FORM),
        ("a wrong charset", b"grant_type=password&username=" + user + b"&password=\xe9", FORM + "; charset=ebcdic"),
    ]
    notes = []
    for what, content, content_type in bodies:
        response = ctx.post_token(content=content, headers={"Content-Type": content_type})
        if issued_token(response) or not 400 <= response.status < 500:
            raise Failure(
                f"{what}: answered {response.status}",
                expected="a 4xx answer and no token",
                actual=describe(response),
                hint="Validate the form encoding and answer 400 invalid_request.",
            )
        _decided_unless_throttled(response)
    big = b"grant_type=password&username=" + user + b"&password=" + b"p" * OVERSIZED_BODY_BYTES
    try:
        response = ctx.post_token(content=big, headers={"Content-Type": FORM}, retry=False)  # a cut-off is an answer
    except TransportError:
        notes.append("the 10 MB body was cut off by the server (connection closed): acceptable")
    else:
        if issued_token(response) or not 400 <= response.status < 500:
            raise Failure(
                f"a 10 MB body: answered {response.status}",
                expected="413 (or another 4xx) and no token",
                actual=describe(response),
                hint="Limit the request body size and answer 413.",
            )
        _decided_unless_throttled(response)
        notes.append(f"10 MB body: {response.status}")
    return "; ".join(notes)


@check("TOKEN-020", level=Level.MUST, spec=["ASVS 6.2.8"])
def password_is_verified_exactly(ctx: Context) -> str | None:
    """Near-miss passwords (case changed, last character dropped, junk past 72 bytes) get no token.

    Impact: A password verified loosely (case, truncation at 72 bytes) is a password an attacker guesses far
    faster.
    """
    password = ctx.credentials().password
    variants = [("the last character dropped", password[:-1])]
    if password.swapcase() != password:
        variants.append(("the case changed", password.swapcase()))
    if len(password.encode()) >= 72:
        variants.append(("junk after the first 72 bytes", password.encode()[:72].decode(errors="ignore") + "junk"))
    for what, candidate in variants:
        response = ctx.login(password=candidate).response
        if issued_token(response):
            raise Failure(
                f"the password with {what} was ACCEPTED",
                expected="no token",
                actual=describe(response),
                hint="Compare passwords exactly: no case folding, no truncation (bcrypt reads only 72 bytes).",
            )
        _decided_unless_throttled(response)  # the variants left would be throttled too
    note = "" if len(password.encode()) >= 72 else "; the 72-byte variant needs a password of 72+ bytes"
    return f"{len(variants)} near-miss passwords refused{note}"


@check("TOKEN-023", level=Level.MAY, spec=["RFC 9700 §2.4"])
def password_grant_is_deprecated(ctx: Context) -> str | None:
    """The resource owner password grant is in use: RFC 9700 §2.4 says it MUST NOT be (OAuth 2.1 drops it)."""
    ctx.require_token_endpoint()  # a token run does not know how its tokens were issued
    if ctx.state.token("primary") is None:
        raise Skip("the password grant gave no token (see TOKEN-001)")
    raise Info(
        "this API uses the resource owner password credentials grant, which RFC 9700 §2.4 says MUST NOT be "
        "used; plan a move to the authorization code grant with PKCE"
    )
