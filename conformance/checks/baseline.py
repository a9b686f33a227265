"""BASE-*: the run's fingerprint. A valid token works, a missing one is refused, and both still hold after the attacks.

These run first; when they fail, the checks that need a token are skipped rather than guessed.
"""

from __future__ import annotations

from ..client import Response, TransportError
from ..context import Context
from ..contract import response_schema, schema_errors
from ..model import Failure, Info, Level
from ..registry import check
from ._expect import is_success


@check("BASE-001", level=Level.MUST, spec=["contract: GET /users/me"])
def valid_token_reaches_the_me_endpoint(ctx: Context) -> str | None:
    """A token from a valid login reaches the me endpoint, which answers 2xx with the logged-in user."""
    response = ctx.accepted(ctx.token())
    if not 200 <= response.status < 300:
        raise Failure(
            f"a freshly issued token was refused at {ctx.me_path}",
            expected="2xx",
            actual=f"HTTP {response.status}",
            hint="The token endpoint and the protected endpoints must agree on key, algorithm, issuer and audience.",
        )
    body = response.json()
    username = ctx.credentials().username
    if not isinstance(body, dict) or body.get("username") != username:
        raise Failure(
            f"{ctx.me_path} did not answer with the logged-in user",
            expected=f'a JSON object with "username": "{username}"',
            actual=response.text[:200],
        )
    schema = response_schema(ctx.state.contract, "/users/me", "GET", response.status)
    if schema is not None and ctx.me_path == "/users/me":
        problems = schema_errors(ctx.state.contract, schema, body)
        if problems:
            raise Failure(
                f"the {ctx.me_path} body departs from the contract's schema",
                expected="the contract's User schema (no extra members such as a password hash)",
                actual="; ".join(problems[:5]),
            )
    return None


@check("BASE-002", level=Level.MUST, spec=["RFC 6750 §3"])
def missing_token_is_refused(ctx: Context) -> str | None:
    """The me endpoint refuses a request without credentials with 401."""
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
