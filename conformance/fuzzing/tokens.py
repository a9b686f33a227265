"""Access tokens for the fuzzer, from the password flow, fetched again before they expire."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from ..client import Client, TransportError
from ..config import Credentials
from ..errors import BaselineLoginError, TargetUnreachableError
from ..login import rejection_error

# Without ``expires_in`` or ``exp``, a token is fetched again after this long.
DEFAULT_LIFETIME_S = 300.0
# After a failed refresh, the next login is tried this much later (no hammering of the token endpoint).
RETRY_AFTER_FAILURE_S = 5.0
# A token is replaced this early (at most; a fifth of its lifetime for short ones), so that no
# request carries a token that expires in flight.
REFRESH_MARGIN_S = 30.0


class TokenEndpointError(Exception):
    """Raised when the token endpoint answers a proper login with something other than a token (a defect)."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class TokenSet:
    """A thread-safe set of tokens: those a run obtained, or those the hooks crafted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: set[str] = set()

    def add(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def __contains__(self, token: object) -> bool:
        with self._lock:
            return token in self._tokens

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)


def token_lifetime(body: dict[str, Any], token: str) -> float:
    """Seconds the token lives: ``expires_in`` (RFC 6749 §5.1), else its ``exp`` less its ``iat``, else a default."""
    expires_in = body.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        return float(expires_in)
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        lifetime = float(claims["exp"]) - float(claims.get("iat", time.time()))
    except (IndexError, ValueError, KeyError, TypeError):
        return DEFAULT_LIFETIME_S
    return lifetime if lifetime > 0 else DEFAULT_LIFETIME_S


class TokenSource:
    """Logs in with the password grant and hands out the current token; thread-safe.

    The first ``token()`` call logs in; later calls reuse the token until shortly before it expires.
    Every token obtained is added to ``issued`` (and so to the report's redaction).
    """

    def __init__(
        self,
        client: Client,
        credentials: Credentials,
        token_path: str = "/token",  # noqa: S107 - a path, not a secret
        *,
        issued: TokenSet | None = None,
        on_token: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.credentials = credentials
        self.token_path = token_path
        self.issued = issued if issued is not None else TokenSet()
        self.on_token = on_token
        self.clock = clock
        self.logins = 0  # successful logins
        self.failed_refreshes = 0
        self.last_refresh_error: str | None = None
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0

    def login(self) -> str:
        """One password-grant request. Raises ``BaselineLoginError`` (refused), ``TargetUnreachableError``
        (no answer) or ``TokenEndpointError`` (a malformed answer)."""
        form = {"grant_type": "password", "username": self.credentials.username, "password": self.credentials.password}
        try:
            response = self.client.request("POST", self.token_path, data=form)
        except TransportError as exc:
            raise TargetUnreachableError(f"cannot reach {self.client.base_url}: {exc}") from None
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) and response.status == 200 else None
        if isinstance(body, dict) and isinstance(token, str) and token:
            now = self.clock()
            lifetime = token_lifetime(body, token)
            self._token = token
            self._expires_at = now + lifetime
            self._refresh_at = now + max(lifetime - min(REFRESH_MARGIN_S, lifetime / 5), 0.0)
            self.logins += 1
            self.issued.add(token)
            if self.on_token is not None:
                self.on_token(token)
            return token
        endpoint = f"{self.client.base_url}{self.token_path}"
        refusal = rejection_error(
            endpoint, self.credentials.username, response.status, body, response.header("retry-after")
        )
        if refusal is not None:
            raise refusal
        raise TokenEndpointError(
            f"{endpoint} answered a valid password-grant request with HTTP {response.status} and no access_token",
            response.status,
        )

    def token(self) -> str | None:
        """The current token, fetched again once due; the old one while it lives if a refresh fails."""
        with self._lock:
            now = self.clock()
            if self._token is not None and now < self._refresh_at:
                return self._token
            if self._token is None and now < self._refresh_at:
                return None  # the last attempt failed moments ago
            try:
                return self.login()
            except (TargetUnreachableError, BaselineLoginError, TokenEndpointError) as exc:
                # Reported in the summary; the old token serves while it lives.
                self.failed_refreshes += 1
                self.last_refresh_error = str(exc)
                self._refresh_at = now + RETRY_AFTER_FAILURE_S
                if self._token is not None and now >= self._expires_at:
                    self._token = None
                return self._token
