"""The check the kit adds to schemathesis's own: a secured operation accepts only tokens it issued.

schemathesis's ``ignored_auth`` probes an operation without credentials and with a random one; this
check judges every fuzzed request that carried a token the server never issued (see
``generation.py``): a 2xx answer to it means the token was not verified.

schemathesis keeps checks in one registry per process, so the check finds the run it belongs to
through ``TARGETS``, keyed by the schema object (``None``: the target of the shipped hooks file).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import schemathesis
from schemathesis.core.failures import Failure
from schemathesis.openapi.checks import (
    MissingContentType,
    RejectedPositiveData,
    UndefinedStatusCode,
    UnsupportedMethodResponse,
)

from .generation import FuzzTarget, bearer_value, declares_security

TARGETS: dict[int | None, FuzzTarget] = {}


class UnissuedTokenAccepted(Failure):
    """A secured operation answered 2xx to a bearer token that the server never issued."""

    code: ClassVar[str] = "ST901"
    kind_title: ClassVar[str] = "Bearer token never issued by the server was accepted"


def target_for(schema: Any) -> FuzzTarget | None:
    return TARGETS.get(id(schema)) or TARGETS.get(None)


@schemathesis.check
def unissued_token_rejected(ctx: Any, response: Any, case: Any) -> bool | None:
    """A secured operation refuses a bearer token the server never issued (RFC 6750 §3.1 invalid_token)."""
    target = target_for(case.operation.schema)
    if target is None or not 200 <= response.status_code < 300 or not declares_security(case.operation):
        return None
    token = bearer_value(response.request.headers)
    if token is None or token not in target.injected:
        return None
    raise UnissuedTokenAccepted(
        operation=case.operation.label,
        message=(
            f"The server answered {response.status_code} to a bearer token it never issued "
            f"({token[:40]}{'...' if len(token) > 40 else ''}). Verify the signature, the algorithm and the "
            'claims of every token, and answer 401 with WWW-Authenticate: Bearer error="invalid_token".'
        ),
    )


# RFC 9110 §9.1: a method the server does not recognise or implement SHOULD get 501, one it does not
# allow on the resource SHOULD get 405; routers that answer 404 depart from a SHOULD, not a MUST.
UNDECLARED_METHOD_ANSWERS = frozenset({404, 501})


def filter_failure_hook(target: FuzzTarget) -> Callable[[Any, Any, Any, Any], bool]:
    """The ``filter_failure`` hook for ``target``: what schemathesis would count that the RFCs allow.

    - A crafted token's refusal is never "valid data rejected": the case stays schema-valid when its
      token is replaced, so schemathesis would count a 400 answer to it as valid data rejected; any
      4xx is a right answer to a token the server never issued (and whether that status is
      documented is still judged by ``status_code_conformance``). Nor is the token endpoint's
      refusal of generated credentials (400 or 401, RFC 6749 §5.2).
    - An answer without content owes no Content-Type (RFC 9110 §8.3).
    - A 5xx is reported once, by ``not_a_server_error`` (it runs on every answer): not also as an
      undocumented status code.
    - An undeclared method answered 404 or 501 is not a failure (a SHOULD, see above); a 405
      without ``Allow`` still is (RFC 9110 §15.5.6, a MUST).
    """

    def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
        if isinstance(failure, MissingContentType):
            return bool(response.content)
        if isinstance(failure, UndefinedStatusCode):
            return int(response.status_code) < 500
        if isinstance(failure, UnsupportedMethodResponse):
            return failure.failure_reason != "wrong_status" or response.status_code not in UNDECLARED_METHOD_ANSWERS
        if not isinstance(failure, RejectedPositiveData) or not 400 <= response.status_code < 500:
            return True
        if target.is_token_endpoint(case.operation) and response.status_code in (400, 401):
            return False  # generated credentials are refused (RFC 6749 §5.2), however well formed
        token = bearer_value(response.request.headers)
        return token is None or token not in target.injected

    return filter_failure
