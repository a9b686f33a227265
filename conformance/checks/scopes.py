"""TOKEN-022, TOKEN-024: the scopes the token endpoint grants. RFC 6749 §3.3 <https://www.rfc-editor.org/rfc/rfc6749>.

They run when the target declares scopes (see ``conformance.capabilities``). TOKEN-024 sends the
tokens it is granted to GET operations only: a token that should not exist never meets an unsafe
method.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from ..capabilities import Capabilities
from ..client import Response
from ..context import Context, Login
from ..forge import parse
from ..model import Failure, Level, Need, Skip, throttled
from ..registry import check
from ._capabilities import require
from ._expect import describe, expect_oauth_error, is_success, issued_token, oauth_error_code

CLAIMS = ("scope", "scp", "scopes")  # RFC 9068 / RFC 8693 "scope"; "scp" (Azure AD, Okta); FastAPI's "scopes"


def _not_throttled(response: Response) -> None:
    """A 429 says nothing about the rule: no verdict on it (Skip, with the way out)."""
    if response.status == 429:
        raise throttled(response.header("retry-after"))


def _scope_set(value: Any) -> set[str] | None:
    """A scope value as a set: a space-delimited string (RFC 6749 §3.3) or a list of strings."""
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return set(value)
    return None


def _answered_scope(login: Login) -> set[str] | None:
    """The ``scope`` member of a token answer (RFC 6749 §5.1), if it has one."""
    body = login.body
    return _scope_set(body.get("scope")) if isinstance(body, dict) else None


def _claimed_scope(token: str) -> set[str] | None:
    """The scopes a JWT access token's claims name, if it is a JWT that names them."""
    claims = parse(token).claims or {}
    for name in CLAIMS:
        found = _scope_set(claims.get(name))
        if found is not None:
            return found
    return None


def _shown(scopes: Iterable[str]) -> str:
    return " ".join(sorted(scopes)) or "(none)"


def _members(response: Response) -> str:
    """A token answer told without its tokens: the status and the names of its members."""
    body = response.json()
    names = ", ".join(sorted(body)) if isinstance(body, dict) else "no JSON object"
    return f"HTTP {response.status} with {names}"


@check("TOKEN-022", level=Level.MUST, spec=["RFC 6749 §3.3", "RFC 6749 §5.1"], needs=[Need.CAPABILITY])
def unknown_scope_is_refused_or_not_granted(ctx: Context) -> str | None:
    """An unknown scope gets 400 invalid_scope, or a token whose scope shows it was not granted.

    Impact: A client that asked for a scope and did not get it must be told, or it calls operations it cannot
    use.
    """
    # RFC 6749 §5.1 scope: "OPTIONAL, if identical to the scope requested by the client;
    # otherwise, REQUIRED"; §5.2 invalid_scope: "The requested scope is invalid, unknown, ...".
    require(ctx, "scopes")
    unknown = f"jwt-conformance-{secrets.token_hex(4)}"
    response = ctx.login(scope=unknown).response
    _not_throttled(response)
    if not issued_token(response):
        expect_oauth_error(
            response,
            ("invalid_scope",),
            what=f"scope={unknown}",
            hint="Answer a scope the server does not define with 400 invalid_scope (RFC 6749 §5.2).",
        )
        return f"scope={unknown}: 400 invalid_scope"
    body = response.json()
    granted = body.get("scope") if isinstance(body, dict) else None
    if not isinstance(granted, str):
        raise Failure(
            f"scope={unknown} got a token, and the answer does not say which scopes were granted",
            expected="400 invalid_scope, or a scope member naming what was granted (RFC 6749 §5.1)",
            actual=_members(response),
            hint="Refuse unknown scopes with invalid_scope, or return scope whenever it differs from the request.",
        )
    if unknown in granted.split():
        raise Failure(
            f"scope={unknown}, a scope no server defines, was GRANTED",
            expected="400 invalid_scope, or a token without it",
            actual=f"scope: {granted}",
            hint="Grant only scopes the server defines and the user holds.",
            security=True,
        )
    return f"scope={unknown}: a token with scope {granted!r}, which leaves it out"


# -- TOKEN-024 -------------------------------------------------------------------------------------


def _named_scopes(found: Capabilities) -> list[str]:
    """Every scope the capabilities name: those defined, then those operations need."""
    needed = (scope for scopes in found.operation_scopes.values() for scope in scopes)
    return list(dict.fromkeys((*found.defined_scopes, *needed)))


def _get_operations(found: Capabilities, scope: str, beside: Iterable[str] = ()) -> list[str]:
    """Paths of GET operations that need ``scope`` and nothing beyond it and ``beside``."""
    allowed = {scope, *beside}
    return [
        operation.split(" ", 1)[1]
        for operation, needed in found.operation_scopes.items()
        if operation.startswith("GET ") and scope in needed and set(needed) <= allowed
    ]


def _held(ctx: Context, token: str) -> set[str]:
    """The scopes the me answer says the user may be granted (the kit's ``User.scopes``), if it says."""
    response = ctx.accepted(token)
    body = response.json()
    if is_success(response) and isinstance(body, dict):
        return _scope_set(body.get("scopes")) or set()
    return set()


def _default_grant(
    ctx: Context, found: Capabilities, token: str, candidates: list[str]
) -> tuple[set[str], set[str], str]:
    """(the scopes a login without ``scope`` is granted, the candidates it could not tell, how it was learned).

    From the baseline login's ``scope`` member, else the token's scope claim, else by probing: a GET
    operation that needs only that scope answers 403 to the default token (lacks) or 2xx (holds).
    """
    baseline = ctx.state.baseline
    answered = _answered_scope(baseline) if baseline is not None else None
    if answered is not None:
        return answered, set(), "the login's scope"
    claimed = _claimed_scope(token)
    if claimed is not None:
        return claimed, set(), "the token's scope claim"
    holds: set[str] = set()
    undecided: set[str] = set()
    for scope in candidates:
        paths = _get_operations(found, scope)
        status = ctx.accepted(token, paths[0]).status if paths else None
        if status is not None and 200 <= status < 300:
            holds.add(scope)
        elif status != 403:
            undecided.add(scope)  # no GET operation needs it alone, or its answer says nothing
    return holds, undecided, "probing GET operations with the default token"


def _granted(scope: str, login: Login, token: str, default: set[str]) -> None:
    """``Failure`` (security) when the token answer or the token's claims include ``scope``."""
    for where, granted in (("the answer's scope", _answered_scope(login)), ("its scope claim", _claimed_scope(token))):
        if granted is not None and scope in granted:
            raise Failure(
                f"scope={scope}, which the primary user's default grant ({_shown(default)}) lacks, was GRANTED "
                f"({where}: {_shown(granted)})",
                expected=f"400 invalid_scope, or a token without {scope}",
                actual=f"{_members(login.response)}; {where}: {_shown(granted)}",
                hint="Grant only the scopes the user holds (RFC 6749 §3.3): asking for a scope is no authorisation.",
                security=True,
            )


def _ask_for(ctx: Context, found: Capabilities, scope: str, default: set[str], token: str) -> str:
    """Ask for ``scope`` beyond the default grant: a note when it is refused or not granted; ``Failure`` otherwise."""
    login = ctx.login(scope=scope)
    _not_throttled(login.response)
    if login.token is None:
        code = oauth_error_code(login.response)
        return f"scope={scope}: {login.response.status}" + (f" {code}" if code else "") + ", no token"
    _granted(scope, login, login.token, default)
    answered, claimed = _answered_scope(login), _claimed_scope(login.token)
    refused_on = None
    paths = _get_operations(found, scope, default)  # GET only: never an unsafe method with this token
    if paths:
        used = ctx.accepted(login.token, paths[0])
        if is_success(used) and not is_success(ctx.accepted(token, paths[0])):
            raise Failure(
                f"a token asked for with scope={scope} REACHED GET {paths[0]}, which needs it and which the "
                f"default token may not reach ({used.status})",
                expected=f"403: the token was not granted {scope}",
                actual=describe(used),
                hint="Grant only the scopes the user holds (RFC 6749 §3.3), and say in scope what was granted.",
                security=True,
            )
        if not is_success(used):
            refused_on = f"GET {paths[0]}: {used.status}"
    if answered is None and claimed is None and refused_on is None:
        raise Failure(
            f"scope={scope} got a token, and neither the answer nor the token says which scopes were granted "
            "(RFC 6749 §5.1: an answer without scope grants what was asked)",
            expected=f"400 invalid_scope, or a scope member that leaves {scope} out",
            actual=_members(login.response),
            hint="Refuse scopes the user does not hold with invalid_scope, or return scope whenever it differs "
            "from the request.",
        )
    told = answered if answered is not None else claimed
    shown = f"a token without it ({_shown(told)})" if told is not None else "a token that does not say its scope"
    return f"scope={scope}: {shown}" + (f"; {refused_on}" if refused_on else "")


@check("TOKEN-024", level=Level.MUST, spec=["RFC 6749 §3.3", "CWE-269"], needs=[Need.CAPABILITY])
def scopes_beyond_the_default_grant_are_not_granted(ctx: Context) -> str | None:
    """A scope the user's default grant lacks (admin, say), when asked for, is refused or left out of the token.

    Impact: A user who gets a scope just by asking for it escalates its privileges.
    """
    # RFC 6749 §3.3: "The authorization server MAY fully or partially ignore the scope requested by
    # the client, based on the authorization server policy or the resource owner's instructions."
    # A scope granted because the client asked for it is privilege escalation (CWE-269): a security
    # failure in every profile. A scope the me answer lists in `scopes` (the kit's User) is the
    # user's own to ask for, and is not tried.
    found = require(ctx, "scopes")
    token = ctx.state.token("primary")
    if token is None:
        raise Skip("the baseline login gave no token (see TOKEN-001)")
    named = _named_scopes(found)
    held = _held(ctx, token)
    default, undecided, how = _default_grant(ctx, found, token, [s for s in named if s not in held])
    beyond = [s for s in named if s not in default | held | undecided]
    if not beyond:
        unknown = f"; could not tell whether it holds {_shown(undecided)}" if undecided else ""
        raise Skip(
            f"no scope the target names ({_shown(named)}) is beyond the primary user's reach (default grant "
            f"from {how}: {_shown(default)}; its me answer's scopes: {_shown(held)}{unknown}): set "
            "users.primary to a user without one of them, or declare capabilities.scopes for the operations "
            "that need them"
        )
    notes = [_ask_for(ctx, found, scope, default, token) for scope in beyond]
    return f"default grant {_shown(default)} (from {how}); " + "; ".join(notes)
