"""Error answers: RFC 6749 §5.2 for the token endpoint, RFC 6750 §3 for protected operations."""

from __future__ import annotations

from typing import Literal

from fastapi.responses import JSONResponse

TOKEN_CACHE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}

TokenErrorCode = Literal["invalid_request", "invalid_grant", "unsupported_grant_type", "invalid_scope"]
BearerErrorCode = Literal["invalid_request", "invalid_token"]


class TokenEndpointError(Exception):
    """Raised inside the token endpoint; becomes a 400 (or ``status``) RFC 6749 §5.2 answer."""

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


class BearerError(Exception):
    """Raised by the bearer dependency; becomes a 401 or 400 with an RFC 6750 §3 challenge."""

    def __init__(self, detail: str, error: BearerErrorCode | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.error = error

    def response(self, realm: str) -> JSONResponse:
        challenge = f'Bearer realm="{realm}"'
        body: dict[str, str] = {"detail": self.detail}
        if self.error is not None:
            challenge += f', error="{self.error}", error_description="{self.detail}"'
            body["error"] = self.error
        status = 400 if self.error == "invalid_request" else 401
        return JSONResponse(body, status_code=status, headers={"WWW-Authenticate": challenge})
