"""Error answers: RFC 6749 §5.2 for the token and revocation endpoints (RFC 7009 §2.2.1), RFC 6750 §3 for
protected operations."""

from __future__ import annotations

from typing import Literal

from fastapi.responses import JSONResponse

TOKEN_CACHE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}

TokenErrorCode = Literal[
    "invalid_request", "invalid_grant", "unsupported_grant_type", "invalid_scope", "unsupported_token_type"
]
BearerErrorCode = Literal["invalid_request", "invalid_token", "insufficient_scope"]


class TokenEndpointError(Exception):
    """Raised inside the token or revocation endpoint; becomes a 400 (or ``status``) RFC 6749 §5.2 answer."""

    def __init__(
        self, error: TokenErrorCode, description: str, status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers={**TOKEN_CACHE_HEADERS, **self.headers},
        )


_BEARER_STATUS = {"invalid_request": 400, "insufficient_scope": 403}


class BearerError(Exception):
    """Raised by the bearer dependency; becomes a 401, 400 or 403 with an RFC 6750 §3 challenge.

    ``insufficient_scope`` (403) names the scope the operation needs: ``scope="..."`` (§3.1).
    """

    def __init__(self, detail: str, error: BearerErrorCode | None = None, scope: str | None = None) -> None:
        super().__init__(detail)
        if (error == "insufficient_scope") != (scope is not None):
            raise ValueError("insufficient_scope needs the scope, and only it takes one")
        self.detail = detail
        self.error = error
        self.scope = scope

    def response(self, realm: str) -> JSONResponse:
        challenge = f'Bearer realm="{realm}"'
        body: dict[str, str] = {"detail": self.detail}
        if self.error is not None:
            challenge += f', error="{self.error}", error_description="{self.detail}"'
            body["error"] = self.error
        if self.scope is not None:
            challenge += f', scope="{self.scope}"'
        status = _BEARER_STATUS.get(self.error or "", 401)
        return JSONResponse(body, status_code=status, headers={"WWW-Authenticate": challenge})


UNAVAILABLE_RETRY_AFTER = 5  # seconds: what a 503 asks the client to wait before it tries again


def unavailable_response() -> JSONResponse:
    """503 (RFC 9110 §15.6.4) with Retry-After, for a database that cannot be used just now; never cached."""
    return JSONResponse(
        {
            "error": "temporarily_unavailable",
            "error_description": "The service cannot reach its database just now; try again later.",
        },
        status_code=503,
        headers={**TOKEN_CACHE_HEADERS, "Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
    )
