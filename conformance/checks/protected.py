"""PROT-*: protected operations: authentication, identity, error bodies, methods.

References: the target's own contract, when it has one (``conformance.target_contract``); RFC 6750 <https://www.rfc-editor.org/rfc/rfc6750>;
RFC 9110 <https://www.rfc-editor.org/rfc/rfc9110> (methods, status codes, content negotiation);
RFC 9111 <https://www.rfc-editor.org/rfc/rfc9111> (caching).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..challenges import bearer_challenge
from ..client import Response
from ..context import Context
from ..contract import UnusableSchemaError, response_schema, schema_errors, secured_operations
from ..forge import flip_last_bit, parse
from ..model import Failure, Info, Level, Need, Skip
from ..registry import check
from ._capabilities import require
from ._expect import describe, is_success
from ._identity import looked_at, naming_member

ME_OPERATION = "/users/me"  # the kit's path of the operation served at the target's me path
MAX_OPERATIONS = 20
# Sent with the token. DELETE is only ever sent WITHOUT one: on a server that implements it, the
# test account must not be deleted by a conformance run.
UNDECLARED_METHODS = ("PUT", "PATCH")
ANONYMOUS_METHOD = "DELETE"
# Header fields whose value is legitimately computed per answer or per body (RFC 9110 §9.3.2 lets
# HEAD omit those "determined only while generating the content").
_PER_ANSWER_FIELDS = frozenset(
    {"date", "content-length", "transfer-encoding", "connection", "keep-alive", "vary", "etag", "set-cookie"}
)
_STACK_TRACES = (
    ("a Python traceback", re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+")),
    ("a Java stack trace", re.compile(r"Exception in thread|\bat [\w$.]+\([\w$]+\.(?:java|kt|scala):\d+\)")),
    ("a .NET stack trace", re.compile(r"\bat [\w.`<>]+\(.*\) in .+:line \d+")),
    ("a Node.js stack trace", re.compile(r"\bat .+\(.+\.[cm]?[jt]s:\d+:\d+\)|\(node:internal/")),
    ("a Go panic", re.compile(r"goroutine \d+ \[")),
    ("a PHP or Ruby trace", re.compile(r"Stack trace:\s*#0|\.rb:\d+:in `")),
)


def _cache_directives(response: Response) -> set[str]:
    values = ",".join(response.header_values("cache-control"))
    return {part.split("=", 1)[0].strip().lower() for part in values.split(",") if part.strip()}


def _media_type(response: Response) -> str:
    return (response.header("content-type") or "").split(";", 1)[0].strip().lower()


# -- PROT-001 ------------------------------------------------------------------------------------


def _unauthenticated_targets(ctx: Context) -> list[tuple[str, str]]:
    targets = [("GET", path) for path in ctx.protected_paths]
    for method, path in secured_operations(ctx.state.contract):
        # GETs are the configured paths (a contract GET path the target does not serve is not called);
        # other methods are called at the contract's own path.
        if path != ME_OPERATION and method != "GET" and (method, path) not in targets:
            targets.append((method, path))
    return targets[:MAX_OPERATIONS]


@check("PROT-001", level=Level.MUST, spec=["contract: security", "RFC 6750 §3"])
def secured_operations_refuse_no_token(ctx: Context) -> str | None:
    """Every protected operation refuses a request without credentials with 401.

    Covered: GET on the me path (the contract's ``GET /users/me``) and on every configured protected
    path (``--protected-path``, by default the contract's ``/protected-resource``), plus every
    non-GET operation with a security requirement in the contract, at the contract's path.

    Impact: A protected operation served without a token gives its data to anyone.
    """
    targets = _unauthenticated_targets(ctx)
    configured = {("GET", path) for path in ctx.protected_paths}
    answers = [(method, path, ctx.request(method, path)) for method, path in targets]
    # A contract operation beyond the configured paths that the target does not serve at all
    # (404, 405) is left out: the target need not implement every operation of the kit's contract.
    absent = [(m, p) for m, p, r in answers if (m, p) not in configured and r.status in (404, 405)]
    answers = [(m, p, r) for m, p, r in answers if (m, p) not in absent]
    wrong = [(method, path, response) for method, path, response in answers if response.status != 401]
    if not wrong:
        note = f"; not served: {', '.join(f'{m} {p}' for m, p in absent)}" if absent else ""
        return (
            f"401 without credentials on {len(answers)} operation(s): "
            + ", ".join(f"{m} {p}" for m, p, _ in answers)
            + note
        )
    served = [f"{m} {p}" for m, p, r in wrong if is_success(r)]
    missing = [f"{m} {p}" for m, p, r in wrong if r.status == 404]
    hint = "Require a valid access token on every operation the contract marks with a security requirement."
    if missing and not served:
        hint += " A 404 means the path is not served: check --protected-path (or paths.protected)."
    summary = "; ".join(f"{m} {p} -> {r.status}" for m, p, r in wrong)
    raise Failure(
        ("served WITHOUT credentials: " + ", ".join(served) + "; " if served else "")
        + f"{len(wrong)} of {len(answers)} protected operation(s) did not answer 401 without a token",
        expected="HTTP 401 on every protected operation called without credentials",
        actual=summary,
        hint=hint,
    )


# -- PROT-002 ------------------------------------------------------------------------------------


def _user_names(ctx: Context) -> tuple[str, str]:
    """The names of the primary and the second user: login names, or in issuer mode the subjects minted for."""
    issuer = ctx.state.issuer
    if issuer is not None:
        second = issuer.subject("second")
        if second is None:
            raise Skip("needs a second user the API knows: give its sub with --second-subject (issuer mode)")
        return issuer.mode.subject, second
    return ctx.credentials("primary").username, ctx.credentials("second").username


@check("PROT-002", level=Level.MUST, spec=["contract: GET /users/me", "RFC 9111 §5.2.2.7"], needs=[Need.SECOND_USER])
def me_endpoint_answers_for_the_token_holder(ctx: Context) -> str | None:
    """The me path answers each user with their own record, marked private to that user.

    Impact: One user served another's record, or a shared cache holding it, is a data leak across accounts.
    """
    first, second = _user_names(ctx)
    if first == second:
        raise Skip("users.second names the primary user: give users.second another account in the config file")
    # The primary user first: a cache keyed on the URL alone would then replay this answer to user 2.
    own = ctx.accepted(ctx.token())
    other = ctx.accepted(ctx.token("second"))
    if not is_success(other):
        raise Failure(
            f"the second user's freshly issued token was refused at {ctx.me_path}",
            expected="2xx with the second user's record",
            actual=describe(other),
            hint="Every active user's token must reach the protected operations.",
        )
    body = other.json()
    identity = ctx.config.identity
    if naming_member(body, second, identity) is None:
        crossed = naming_member(body, first, identity) is not None or (is_success(own) and other.content == own.content)
        raise Failure(
            f"the second user's token got {'the FIRST' if crossed else 'another'} user's record at {ctx.me_path}",
            expected=f'the record of "{second}" (named by one of: {looked_at(identity)})',
            actual=describe(other),
            hint="Resolve the user from the token's own subject on every request, and keep answers to "
            "authenticated requests out of shared caches (key any cache on the credential).",
        )
    # RFC 9111 §5.2.2.7: "The private response directive indicates that a shared cache MUST NOT store
    # the response (i.e., the response is intended for a single user)."
    unmarked = [response for response in (own, other) if is_success(response)]
    unmarked = [response for response in unmarked if not _cache_directives(response) & {"private", "no-store"}]
    if unmarked:
        raise Failure(
            f"an authenticated answer of {ctx.me_path} is not marked private or no-store",
            expected="Cache-Control: private (or no-store) on answers for one user",
            actual="Cache-Control: " + (unmarked[0].header("cache-control") or "(absent)"),
            hint='Send "Cache-Control: private, no-store" with every answer that depends on the access token.',
            level=Level.SHOULD,
        )
    return f"each user gets their own record ({first}, {second})"


# -- PROT-003 ------------------------------------------------------------------------------------


@check("PROT-003", level=Level.MUST, spec=["contract: POST /token 400", "RFC 6749 §5.2"], needs=[Need.DISABLED_USER])
def disabled_user_gets_no_access(ctx: Context) -> str | None:
    """A disabled user gets no token; a token it does get is refused on use.

    Black-box, the user cannot be disabled during the run: the configured disabled user logs in
    with its right password and any token issued is used on the me path. Only access is judged
    here: how a refused login is worded (status, error body) is TOKEN-006/TOKEN-008's.

    Impact: a disabled account that still reaches the API defeats disabling it (FAIL); a token issued
    and then refused with 400 (FastAPI's tutorial: "Inactive user") grants nothing (warning).
    """
    login = ctx.login("disabled")
    response = login.response
    if login.token is None:
        if is_success(response):
            raise Failure(
                f"the disabled user's login was answered {response.status}: a success, though without an access token",
                expected="a refusal (RFC 6749 §5.2: 400 invalid_grant, like a wrong password)",
                actual=describe(response),
                hint="Refuse a disabled user's login like a wrong password.",
            )
        return f"the disabled user's login is refused ({response.status})"
    use = ctx.accepted(login.token)
    if is_success(use):
        raise Failure(
            f"the disabled user got a token and it was ACCEPTED at {ctx.me_path} ({use.status})",
            expected="no token, or a token refused on use with 401/403",
            actual=describe(use),
            hint="Check the user's disabled flag at login and on every request that resolves the token's subject.",
            security=True,
        )
    if use.status in (401, 403):
        return f"the disabled user gets a token, but it is refused on use with {use.status}"
    raise Failure(
        f"the disabled user got a token, refused at {ctx.me_path} with {use.status} (not 401/403)",
        expected="no token (400 invalid_grant), or a token refused on use with 401/403",
        actual=describe(use),
        hint="Refuse the login of a disabled user like a wrong password (the FastAPI tutorial issues the "
        'token and answers 400 "Inactive user" on use).',
        level=Level.SHOULD,
    )


# -- PROT-004 ------------------------------------------------------------------------------------


def _scope_probes(ctx: Context) -> list[tuple[str, str, str]]:
    """(GET operation, the scope it needs, another scope to ask for instead)."""
    found = require(ctx, "scopes")
    # GETs only: a body-less GET says the scope was checked; a POST may be refused for its body first.
    return [
        (operation, needed[0], other)
        for operation, needed in found.operation_scopes.items()
        if operation.startswith("GET ")
        for other in found.defined_scopes
        if other not in needed
    ]


def _token_with_scope(ctx: Context, scope: str) -> tuple[str | None, list[str]]:
    """A token of the primary user for ``scope`` (minted in issuer mode, else asked for) and the scopes granted."""
    issuer = ctx.state.issuer
    if issuer is not None:
        return issuer.mint({**issuer.claims(), "scope": scope}), scope.split()
    login = ctx.login(scope=scope)
    body = login.body if isinstance(login.body, dict) else {}
    return login.token, str(body.get("scope", scope)).split()


@check("PROT-004", level=Level.SHOULD, spec=["RFC 6750 §3.1", "RFC 6749 §3.3"], needs=[Need.CAPABILITY])
def missing_scope_gets_403_insufficient_scope(ctx: Context) -> str | None:
    """A token without the scope an operation needs gets 403 with error="insufficient_scope" and scope="..."."""
    # RFC 6750 §3.1 insufficient_scope: "The request requires higher privileges than provided by
    # the access token. The resource server SHOULD respond with the HTTP 403 (Forbidden) status
    # code and MAY include the "scope" attribute with the scope necessary to access the resource."
    tried = []
    for operation, needed, other in _scope_probes(ctx):
        token, granted = _token_with_scope(ctx, other)
        if token is None or needed in granted:
            tried.append(f"{other} (not granted alone)" if token is None else f"{other} (granted {needed} too)")
            continue
        response = ctx.accepted(token, operation.split(" ", 1)[1])
        what = f"{operation} with a token of scope {' '.join(granted)!r} (it needs {needed})"
        if is_success(response):
            raise Failure(
                f"{what} was SERVED",
                expected='403 with WWW-Authenticate: Bearer error="insufficient_scope"',
                actual=describe(response),
                hint="Check the token's scope on every operation that needs one, after verifying the token.",
                level=Level.MUST,
                security=True,
            )
        challenge = bearer_challenge(response.header("www-authenticate"))
        error = challenge.get("error") if challenge else None
        if response.status != 403 or error != "insufficient_scope":
            raise Failure(
                f"{what} was refused with {response.status}, error={error!r}",
                expected='403 with WWW-Authenticate: Bearer error="insufficient_scope", scope="..."',
                actual=describe(response) + f"; WWW-Authenticate: {response.header('www-authenticate')}",
                hint='RFC 6750 §3.1: a valid token without the scope gets 403 and error="insufficient_scope".',
            )
        scope = challenge.get("scope") if challenge else None
        if scope is None or needed not in scope.split():
            raise Failure(
                f'{what}: the challenge does not name the scope needed (scope="{scope}")',
                expected=f'scope="{needed}" in the challenge, so the client knows what to ask for',
                actual=f"WWW-Authenticate: {response.header('www-authenticate')}",
                hint="Add the scope the operation needs to the insufficient_scope challenge.",
                level=Level.MAY,
            )
        return f"{what}: 403 insufficient_scope, scope={scope!r}"
    raise Skip(
        "no GET operation needs a scope that a token of the primary user can lack"
        + (f": tried {', '.join(tried)}" if tried else "")
    )


# -- PROT-005 ------------------------------------------------------------------------------------


def _error_schema(ctx: Context, path: str, status: int) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """(document, schema) of the error body the target's own contract documents for this refusal, if any."""
    contract = ctx.state.contract
    if not contract.known:
        return None
    operation = contract.path_for(path, ME_OPERATION if path == ctx.me_path else path)
    if operation is None:
        return None
    document: Mapping[str, Any] = contract.document or {}
    schema = response_schema(document, operation, "GET", status) or response_schema(document, operation, "GET", 401)
    return None if schema is None else (document, schema)


def _error_problems(
    ctx: Context, path: str, response: Response, secrets: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """(contract problems, core problems) of one refused answer."""
    contract: list[str] = []
    other: list[str] = []
    where = f"{response.status} at {path}"
    documented = _error_schema(ctx, path, response.status)
    if documented is not None:
        document, schema = documented
        body = response.json()
        if "json" not in _media_type(response) or body is None:
            contract.append(
                f"{where}: not a JSON body ({_media_type(response) or 'no Content-Type'}): {describe(response)}"
            )
        else:
            try:
                problems = schema_errors(document, schema, body)
            except UnusableSchemaError:
                problems = []  # a schema no validator can apply says nothing about the answer
            if problems:
                contract.append(f"{where}: departs from the contract's error schema: " + "; ".join(problems[:3]))
    text = response.text
    for what, pattern in _STACK_TRACES:
        if pattern.search(text):
            other.append(f"{where}: the body carries {what}")
            break
    fields = " ".join(value for _, value in response.headers.multi_items())
    if any(secret in text or secret in fields for secret in secrets):
        other.append(f"{where}: the answer echoes the access token that was sent")
    return contract, other


@check("PROT-005", level=Level.MUST, spec=["contract: BearerError", "ASVS V16"])
def refusals_have_contract_error_bodies(ctx: Context) -> str | None:
    """Refusals by protected operations carry no stack trace or token echo, in the target's error schema if it has one.

    Sent to the me path: no credentials, the issued token with its signature altered, and a malformed
    ``Bearer`` value; to every other configured protected path: no credentials. The body is held to
    an error schema only when the target's own contract documents one (then JSON is required); the
    core rules (no stack trace, no echo of the token) hold for every server.

    Impact: a stack trace maps the server's internals for an attacker; an echoed token lands in logs and caches.
    """
    token = ctx.token()
    parsed = parse(token)
    if len(parsed.segments) == 3:
        forged = f"{parsed.signing_input}.{flip_last_bit(parsed.signature)}"
        secrets = tuple(s for s in (forged, parsed.segments[1], flip_last_bit(parsed.signature)) if len(s) >= 16)
    else:
        forged, secrets = token + "x", (token + "x",)
    me = ctx.me_path
    answers: list[tuple[str, Response, tuple[str, ...]]] = [
        (me, ctx.get(me), ()),
        (me, ctx.get(me, token=forged), secrets),
        (me, ctx.get(me, headers=[("Authorization", "Bearer !not*a~token!")]), ()),
    ]
    answers += [(path, ctx.get(path), ()) for path in ctx.protected_paths[1:MAX_OPERATIONS]]
    contract: list[str] = []
    other: list[str] = []
    refused = [(path, response, sent) for path, response, sent in answers if 400 <= response.status < 500]
    schemas = sum(_error_schema(ctx, path, response.status) is not None for path, response, _ in refused)
    for path, response, sent in refused:
        found_contract, found_other = _error_problems(ctx, path, response, sent)
        contract += found_contract
        other += found_other
    if contract:
        raise Failure(
            f"{len(contract)} refusal(s) depart from the error body of {ctx.state.contract.source}",
            expected="a JSON body in the error schema the target's contract documents",
            actual=" | ".join(contract + other),
            hint="Answer every refusal with application/json in the documented error schema, or fix the contract.",
        )
    if other:
        raise Failure(
            "; ".join(other),
            expected="an error body with no internals and no echo of the credential",
            actual=" | ".join(other),
            hint="Return a fixed error message; log details server-side, never in the answer.",
            level=Level.SHOULD,
        )
    held = f"{schemas} against the error schema of {ctx.state.contract.source}; " if schemas else ""
    return f"{len(refused)} refusal(s) checked: {held}no stack trace, no token echo"


# -- PROT-006 ------------------------------------------------------------------------------------


def _declared_methods(ctx: Context) -> set[str]:
    path = ctx.state.contract.path_for(ctx.me_path, ME_OPERATION)
    item = ctx.state.contract.get("paths", {}).get(path, {}) if path is not None else {}
    return {method.upper() for method in item} if isinstance(item, Mapping) else set()


def _head_departures(get: Response, head: Response) -> list[str]:
    if head.status != get.status:
        return [f"HEAD answered {head.status} where GET answered {get.status}"]
    departures = []
    for name in {name.lower() for name in get.headers} - _PER_ANSWER_FIELDS:
        if name not in head.headers:
            departures.append(f"HEAD lacks {name}")
        elif name == "cache-control" and head.header(name) != get.header(name):
            departures.append(f"HEAD has Cache-Control {head.header(name)!r}, GET {get.header(name)!r}")
    if head.content:
        departures.append(f"HEAD carried {len(head.content)} bytes of content")
    return sorted(departures)


@check("PROT-006", level=Level.MUST, spec=["RFC 9110 §15.5.6", "RFC 9110 §9.3.2"])
def undeclared_methods_get_405_with_allow(ctx: Context) -> str | None:
    """Undeclared methods on the me path get 405 with Allow; HEAD mirrors GET's header fields.

    Impact: Clients cannot learn the allowed methods without Allow; a HEAD that differs from GET breaks caches.
    """
    me = ctx.me_path
    auth = [("Authorization", f"Bearer {ctx.token()}")]
    methods = [m for m in UNDECLARED_METHODS if m not in _declared_methods(ctx)]
    allow_missing: list[str] = []
    departures: list[str] = []
    notes: list[str] = []
    head_unsupported = False

    def needs_allow(method: str, response: Response) -> None:
        # RFC 9110 §15.5.6: "The origin server MUST generate an Allow header field in a 405 response
        # containing a list of the target resource's currently supported methods."
        if response.status == 405 and response.header("allow") is None:
            allow_missing.append(method)

    if ANONYMOUS_METHOD not in _declared_methods(ctx):
        anonymous = ctx.request(ANONYMOUS_METHOD, me)
        needs_allow(ANONYMOUS_METHOD, anonymous)
        if is_success(anonymous):
            raise Failure(
                f"{ANONYMOUS_METHOD} {me} WITHOUT credentials answered {anonymous.status}",
                expected="401 or 405",
                actual=describe(anonymous),
                hint="Every method on a protected path must require a valid access token.",
            )
        order = "405 before authentication" if anonymous.status == 405 else f"{anonymous.status} without a token"
        notes.append(f"{ANONYMOUS_METHOD} without a token: {order}")
    get = ctx.get(me, headers=auth)
    head = ctx.request("HEAD", me, headers=auth)
    needs_allow("HEAD", head)
    # RFC 9110 §9.3.2: "The server SHOULD send the same header fields in response to a HEAD request
    # as it would have sent if the request method had been GET."
    if head.status == 405:
        head_unsupported = True
        notes.append(f"HEAD: 405 (Allow: {head.header('allow') or 'absent'})")
    elif is_success(get):
        departures += _head_departures(get, head)
    options = ctx.request("OPTIONS", me, headers=auth)
    needs_allow("OPTIONS", options)
    notes.append(
        f"OPTIONS: {options.status}" + (f" (Allow: {options.header('allow')})" if options.header("allow") else "")
    )
    for method in methods:
        response = ctx.request(method, me, headers=auth)
        needs_allow(method, response)
        if is_success(response):
            departures.append(f"{method} answered {response.status}: an operation the contract does not declare")
        elif response.status != 405:
            departures.append(f"{method} answered {response.status}, not 405")
        else:
            notes.append(f"{method}: 405 (Allow: {response.header('allow') or 'absent'})")
    if allow_missing:
        raise Failure(
            f"405 without an Allow header for {', '.join(allow_missing)} on {me}",
            expected="Allow listing the supported methods on every 405",
            actual="; ".join(departures + notes),
            hint="Send Allow with 405 (most frameworks do when a route exists for other methods).",
        )
    if departures:
        raise Failure(
            "; ".join(departures),
            expected="405 with Allow for methods the contract does not declare; HEAD with GET's header fields",
            actual="; ".join(departures + notes),
            hint="Serve only the declared methods on protected paths; answer HEAD like GET without content.",
            level=Level.SHOULD,
        )
    if head_unsupported:
        raise Info(
            "HEAD is not supported on the me path (RFC 9110 §9.1 expects general-purpose servers to support "
            "GET and HEAD); " + "; ".join(notes)
        )
    return "; ".join(notes)


# -- PROT-007 ------------------------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


@check("PROT-007", level=Level.MAY, spec=["RFC 9110 §15.4"])
def slash_redirect_stays_on_origin(ctx: Context) -> str | None:
    """The me path with a trailing slash, if it redirects, redirects to the same origin."""
    me = ctx.me_path
    variant = me.rstrip("/") if me.endswith("/") and len(me) > 1 else me + "/"
    response = ctx.get(variant, token=ctx.token())
    if not 300 <= response.status < 400:
        return f"{variant} answered {response.status} (no redirect)"
    location = response.header("location")
    if not location:
        raise Info(f"{variant} answered {response.status} without a Location")
    requested = ctx.state.client.url(variant)
    target = urljoin(requested, location)
    if _origin(target) != _origin(requested):
        scheme, host, port = _origin(requested)
        raise Failure(
            f"{variant} redirects to another origin: {target}",
            expected=f"a redirect within {scheme}://{host}:{port} (same scheme, host and port)",
            actual=f"HTTP {response.status} Location: {location}",
            hint="A client that follows it may send the request (and its token) elsewhere or in clear text: "
            "behind a proxy, trust its forwarded scheme/host headers, or make the path exact.",
            level=Level.MUST,
        )
    return f"{variant} redirects ({response.status}) to {target}, on the same origin"


# -- PROT-008 ------------------------------------------------------------------------------------


@check("PROT-008", level=Level.MAY, spec=["RFC 9110 §12.5.1"])
def unacceptable_accept_gets_406_or_json(ctx: Context) -> str | None:
    """A request accepting only application/xml gets 406, or the JSON answer regardless."""
    response = ctx.get(ctx.me_path, token=ctx.token(), headers=[("Accept", "application/xml")])
    # RFC 9110 §12.5.1: the origin server "can either honor the header field by sending a 406 (Not
    # Acceptable) response or disregard the header field by treating the response as if it is not
    # subject to content negotiation for that request."
    if response.status == 406:
        return "406 Not Acceptable"
    media = _media_type(response)
    if is_success(response) and "json" in media and response.json() is not None:
        return "Accept disregarded: JSON answered"
    raise Info(
        f"Accept: application/xml answered {response.status} ({media or 'no Content-Type'}); "
        "the contract documents JSON only"
    )
