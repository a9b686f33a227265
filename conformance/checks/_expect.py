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


def fastapi_shaped(response: Response) -> bool:
    """The FastAPI-tutorial dialect: 401 or 422 with a {"detail": ...} body."""
    body = response.json()
    return response.status in (401, 422) and isinstance(body, dict) and "detail" in body


def expect_oauth_error(response: Response, codes: tuple[str, ...], *, what: str, hint: str) -> None:
    """No token, and 400 with one of ``codes`` (RFC 6749 §5.2); the tutorial's 401/422 is the dialect."""
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
    if response.status == 400 and code in codes:
        return
    raise Failure(
        f"{what}: answered {response.status}" + (f" {code}" if code else ""),
        expected=f'400 with {{"error": "{codes[0]}"}} (RFC 6749 §5.2)',
        actual=describe(response),
        hint=hint,
        dialect=fastapi_shaped(response),
    )
