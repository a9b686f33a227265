"""BASE-*: the run's fingerprint. A valid token works, a missing one is refused, and both still hold after the attacks.

These run first; when they fail, the checks that need a token are skipped rather than guessed.
"""

from __future__ import annotations

from typing import Any

from ..client import Response, TransportError
from ..context import Context
from ..contract import UnusableSchemaError, response_schema, schema_errors
from ..model import Failure, Info, Level
from ..registry import check
from ._capabilities import capabilities
from ._expect import is_success
from ._identity import looked_at, naming_member, secret_members

KIT_ME_PATH = "/users/me"  # the kit's path of the me operation


def _identified_by(ctx: Context, response: Response) -> tuple[dict[str, Any], str]:
    """The me answer's body and the member that names the logged-in user; ``Failure`` otherwise."""
    body = response.json()
    if not isinstance(body, dict):
        raise Failure(
            f"{ctx.me_path} answered {response.status} without a JSON object",
            expected="a JSON object describing the logged-in user",
            actual=response.text[:200] or "(empty body)",
            hint="Answer the me operation with application/json: the user the token belongs to.",
        )
    # CWE-200: a hash or salt in the answer hands an attacker an offline cracking target.
    leaked = secret_members(body)
    if leaked:
        raise Failure(
            f"the {ctx.me_path} answer carries credential members: {', '.join(leaked)}",
            expected="no password, hash, salt or key member in the answer",
            actual=f"members present: {', '.join(leaked)} (values withheld)",
            hint="Answer with a public model of the user (FastAPI: response_model=User, without hashed_password).",
            security=True,
        )
    identity = ctx.config.identity
    names = _names(ctx)
    if not names:
        return body, ""
    login = names[0]
    member = next((found for name in names if (found := naming_member(body, name, identity)) is not None), None)
    if member is None:
        raise Failure(
            f"{ctx.me_path} did not answer with the logged-in user",
            expected=f'the login name "{login}" as the value of one of: {looked_at(identity)}',
            actual=response.text[:200],
            hint="Resolve the user from the token on every request. If the answer names the user by another "
            "member, say which: identity: MEMBER in the config file (or --identity MEMBER).",
        )
    return body, member


def _names(ctx: Context) -> list[str]:
    """The names the me answer may carry: the login name, and in a token run the token's ``sub``."""
    names = [ctx.config.username] if ctx.config.username else []
    if ctx.config.token_run:
        sub = (ctx.parsed.claims or {}).get("sub")
        if isinstance(sub, str) and sub and sub not in names:
            names.append(sub)
    return names


def _schema_departures(ctx: Context, status: int, body: dict[str, Any]) -> str:
    """Check ``body`` against the target's own contract, if it has one; the note says what was done."""
    contract = ctx.state.contract
    if not contract.known:
        return "no contract for the target: core rules only"
    path = contract.path_for(ctx.me_path, KIT_ME_PATH)
    if path is None:
        return f"{contract.source} has no GET {ctx.me_path}: core rules only"
    # The kit's capability members (User.scopes) are required exactly of servers that claim the capability.
    claimed = frozenset({"scopes"} if contract.kit_version is not None and capabilities(ctx).scopes else ())
    document = contract.for_capabilities(claimed)
    schema = response_schema(document, path, "GET", status)
    if schema is None:
        return f"{contract.source} documents no JSON schema for GET {path} {status}"
    try:
        problems = schema_errors(document, schema, body)
    except UnusableSchemaError as exc:
        raise Info(f"the schema of GET {path} in {contract.source} cannot be applied: {exc}") from None
    if problems:
        raise Failure(
            f"the {ctx.me_path} body departs from the schema of {contract.source}",
            expected=f"the schema of GET {path} {status} in the target's contract",
            actual="; ".join(problems[:5]),
            hint="Answer with exactly the documented members, or fix the contract.",
        )
    return f"matches the schema of GET {path} in {contract.source}"


@check("BASE-001", level=Level.MUST, spec=["contract: GET /users/me"])
def valid_token_reaches_the_me_endpoint(ctx: Context) -> str | None:
    """A token from a valid login reaches the me endpoint: 2xx, naming the logged-in user, no password material.

    In a token run (``--token``, ``--token-command``) the me answer may name the login name given with
    ``--username`` or the token's ``sub``; with neither known, the identity is not compared (said in the note).

    The core rules hold any server: the body is a JSON object whose ``username``, ``email``,
    ``preferred_username``, ``sub`` or ``login`` (or the configured ``identity``) is the login name,
    with no password, hash, salt or key member at any depth. Its schema is checked only against
    the target's own contract (``--contract``, ``kit:VERSION``, or the document it serves).

    Impact: a refused token locks every user out; another user's record is a data leak; a hash in
    the answer is an offline cracking target.
    """
    response = ctx.accepted(ctx.token())
    if not 200 <= response.status < 300:
        raise Failure(
            f"a freshly issued token was refused at {ctx.me_path}",
            expected="2xx",
            actual=f"HTTP {response.status}",
            hint="The token endpoint and the protected endpoints must agree on key, algorithm, issuer and audience.",
        )
    body, member = _identified_by(ctx, response)
    named = (
        f"the user is named by {member}"
        if member
        else "identity not compared: the token has no sub and no login name is known (pass --username NAME)"
    )
    return f"{named}; " + _schema_departures(ctx, response.status, body)


@check("BASE-002", level=Level.MUST, spec=["RFC 6750 §3"])
def missing_token_is_refused(ctx: Context) -> str | None:
    """The me endpoint refuses a request without credentials with 401.

    Impact: A protected endpoint that serves a request without credentials gives its data to anyone.
    """
    response = ctx.get(ctx.me_path)
    if response.status != 401:
        raise Failure(
            f"{ctx.me_path} without credentials answered {response.status}",
            expected="401 Unauthorized",
            actual=f"HTTP {response.status}",
            hint="Every protected operation must require a valid access token.",
        )
    return None


@check("BASE-003", level=Level.MAY, spec=["harness"])
def token_survives_the_attacks(ctx: Context) -> str | None:
    """The baseline token still works after the attack groups (else later results are low-confidence).

    Only a refusal with an HTTP answer (4xx) counts as a revoked token or a locked account. A request
    that got no HTTP answer even after its retry, a throttled one or a server error says nothing
    about the token: the baseline could not be re-checked, and no result is marked low-confidence
    for it.
    """
    state = ctx.state
    unchecked = "; ".join(
        f"after the {group} checks the baseline token could not be re-checked (no HTTP answer, throttled or "
        "a server error): not counted as a revocation"
        for group in state.baseline_unchecked
    )
    response: Response | None = None
    fault = ""
    try:
        response = ctx.accepted(ctx.token())
    except TransportError as exc:
        fault = str(exc)
    if state.disturbed_after is not None:
        now = " (it works again at the end of the run)" if response is not None and is_success(response) else ""
        raise Info(
            f"the baseline token was refused after the {state.disturbed_after} checks{now}: token revoked or "
            "account locked by the attacks; results after that point are marked low-confidence"
        )
    if response is None:
        raise TransportError(
            f"the baseline token could not be re-checked at the end of the run ({fault}): not counted as a "
            "revocation" + (f"; {unchecked}" if unchecked else "")
        )
    if 400 <= response.status < 500 and response.status != 429:
        raise Info(
            f"the baseline token was refused at the end of the run (HTTP {response.status}): token revoked or "
            "account locked by the last checks" + (f"; {unchecked}" if unchecked else "")
        )
    if not is_success(response):
        raise Info(
            f"the baseline token could not be re-checked at the end of the run (HTTP {response.status}): "
            "not counted as a revocation" + (f"; {unchecked}" if unchecked else "")
        )
    return unchecked or None
