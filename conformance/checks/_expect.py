"""Expectations shared by the check areas; each raises ``Failure`` with expected, actual and a fix hint."""

from __future__ import annotations

from collections.abc import Collection

from ..client import Response
from ..model import Failure, Level


def is_success(response: Response) -> bool:
    return 200 <= response.status < 300


def describe(response: Response, limit: int = 160) -> str:
    body = response.text.strip().replace("\n", " ")
    excerpt = body[:limit] + ("..." if len(body) > limit else "")
    return f"HTTP {response.status}" + (f" {excerpt}" if excerpt else "")


def oauth_error_code(response: Response) -> str | None:
    """The RFC 6749 §5.2 ``error`` member of a JSON error body, if there is one."""
    body = response.json()
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def expect_refused(
    response: Response,
    *,
    what: str,
    hint: str,
    allowed: Collection[int] = (401,),
) -> None:
    """A forged, altered or otherwise invalid credential must not be accepted (2xx is a MUST failure).

    Only acceptance is judged here. How a refusal is made (403 instead of 401, the WWW-Authenticate
    challenge and its error code) is one property of the server, judged once by the BEARER checks
    (BEARER-001 and BEARER-004), not again by every check that sends a forged token. ``allowed``
    names the answers the failure message expects.
    """
    if is_success(response):
        raise Failure(
            f"{what} was ACCEPTED ({response.status})",
            expected="a refusal: HTTP " + " or ".join(str(s) for s in sorted(allowed)),
            actual=describe(response),
            hint=hint,
            level=Level.MUST,
            security=True,
        )


def issued_token(response: Response) -> bool:
    body = response.json()
    return is_success(response) and isinstance(body, dict) and bool(body.get("access_token"))


# The FastAPI ecosystem's statuses for a token endpoint error, by what went wrong (``--profile fastapi``):
# a refused login gets 401 (FastAPI's tutorial) or 400 (fastapi-users, the full-stack template), a
# missing or invalid form field gets FastAPI's request-validation 422.
REFUSED_LOGIN = (400, 401)
MALFORMED_FORM = (422,)


def fastapi_shaped(response: Response, statuses: Collection[int] = (*REFUSED_LOGIN, *MALFORMED_FORM)) -> bool:
    """The FastAPI ecosystem's dialect: a JSON ``{"detail": ...}`` body, with one of ``statuses``."""
    media_type = (response.header("content-type") or "").split(";")[0].strip().lower()
    body = response.json()
    json_typed = media_type == "application/json" or media_type.endswith("+json")
    return response.status in statuses and json_typed and isinstance(body, dict) and "detail" in body


def expect_oauth_error(
    response: Response,
    codes: tuple[str, ...],
    *,
    what: str,
    hint: str,
    dialect: Collection[int] = (*REFUSED_LOGIN, *MALFORMED_FORM),
    code_required: bool = True,
) -> None:
    """No token, and 400 with one of ``codes`` (RFC 6749 §5.2), each answer judged on its own.

    A token issued is a security failure in every profile. Another status fails; the fastapi profile
    relaxes it when the answer is the FastAPI dialect (a ``{"detail"}`` body with a status of
    ``dialect``). An ``error`` member, when present, must be one of ``codes``; when there is none, a
    400 passes unless ``code_required`` (``False`` where TOKEN-008 judges the body's shape, so that
    one non-RFC body is one verdict).
    """
    if issued_token(response):
        raise Failure(
            f"{what}: a token was ISSUED ({response.status})",
            expected=f"no token; 400 {' or '.join(codes)}",
            actual=describe(response),
            hint=hint,
            level=Level.MUST,
            security=True,  # issuing a token for a bad request is never the dialect
        )
    code = oauth_error_code(response)
    if response.status == 400 and (code in codes or (code is None and not code_required)):
        return
    if response.status == 400 and code is not None:
        problem = f"{what}: answered 400 with error {code!r}"
    else:
        problem = f"{what}: answered {response.status}" + (f" {code}" if code else "")
    raise Failure(
        problem,
        expected=f'400 with {{"error": "{codes[0]}"}} (RFC 6749 §5.2)',
        actual=describe(response),
        hint=hint,
        dialect=code is None and fastapi_shaped(response, dialect),
    )
