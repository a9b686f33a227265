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
from schemathesis.openapi.checks import RejectedPositiveData

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


def filter_failure_hook(target: FuzzTarget) -> Callable[[Any, Any, Any, Any], bool]:
    """The ``filter_failure`` hook for ``target``: a crafted token's refusal is never "valid data rejected".

    The case stays schema-valid when its token is replaced, so schemathesis would count a 400 answer
    to it as valid data rejected; any 4xx is a right answer to a token the server never issued (and
    whether that status is documented is still judged by ``status_code_conformance``).
    """

    def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
        if not isinstance(failure, RejectedPositiveData) or not 400 <= response.status_code < 500:
            return True
        token = bearer_value(response.request.headers)
        return token is None or token not in target.injected

    return filter_failure
