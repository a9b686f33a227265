"""Access tokens for the fuzzer, fetched again before they expire.

Where they come from: the password flow (``TokenSource``), or, in a token run (``RunTokens``), the
token given with ``--token``, the one ``--token-command`` prints (the command runs again), or one
minted with the test issuer's keys (issuer mode). Either way a token is replaced ``REFRESH_MARGIN_S``
before it expires (a fifth of its lifetime for short ones).
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from ..client import Client, TransportError
from ..config import Credentials, RunConfig
from ..context import RunState
from ..errors import BaselineLoginError, ConformanceError, TargetUnreachableError
from ..login import rejection_error
from ..runner import baseline_login
from ..token_source import TokenSource as RunTokenSource, expires_at

# Without ``expires_in`` or ``exp``, a token is fetched again after this long.
DEFAULT_LIFETIME_S = 300.0
# After a failed refresh, the next attempt is made this much later (no hammering of the token endpoint or command).
RETRY_AFTER_FAILURE_S = 5.0
# A token is replaced this early (at most; a fifth of its lifetime for short ones), so that no
# request carries a token that expires in flight.
REFRESH_MARGIN_S = 30.0
MIN_REUSE_S = 1.0  # a new token serves at least this long, even one that has expired already
PASSWORD, GIVEN, COMMAND, ISSUER = "password", "token", "token_command", "issuer"


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


def _claims(token: str) -> dict[str, Any] | None:
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def token_lifetime(body: dict[str, Any], token: str) -> float:
    """Seconds the token lives: ``expires_in`` (RFC 6749 §5.1), else its ``exp`` less its ``iat``, else a default."""
    expires_in = body.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        return float(expires_in)
    claims = _claims(token) or {}
    try:
        lifetime = float(claims["exp"]) - float(claims.get("iat", time.time()))
    except (KeyError, ValueError, TypeError):
        return DEFAULT_LIFETIME_S
    return lifetime if lifetime > 0 else DEFAULT_LIFETIME_S


class RefreshingTokens:
    """The current token, obtained again shortly before it expires; thread-safe.

    The first ``token()`` call obtains one; later calls reuse it until ``REFRESH_MARGIN_S`` (at most a
    fifth of its lifetime) before it expires. Every token obtained is added to ``issued`` and handed to
    ``on_token`` (the report's redaction). Subclasses say how a token is obtained (``_obtain``).
    """

    kind = PASSWORD

    def __init__(
        self,
        *,
        issued: TokenSet | None = None,
        on_token: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issued = issued if issued is not None else TokenSet()
        self.on_token = on_token
        self.clock = clock
        self.obtained = 0  # tokens obtained (logins, command runs, minted tokens)
        self.failed_refreshes = 0
        self.last_refresh_error: str | None = None
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0

    def _obtain(self) -> tuple[str, float, float]:
        """(a new token, the seconds it lives from now, its whole lifetime); raises on failure."""
        raise NotImplementedError

    def obtain(self) -> str:
        """A new token, kept as the current one; raises what ``_obtain`` raises."""
        token, remaining, lifetime = self._obtain()
        now = self.clock()
        margin = min(REFRESH_MARGIN_S, lifetime / 5)
        self._token = token
        self._expires_at = now + remaining
        # A token obtained close to its end (a command may print one) is used while it lives, at most until a
        # retry would be due, and at least MIN_REUSE_S: a command that prints expired tokens is not run per request.
        soon = max(min(remaining, RETRY_AFTER_FAILURE_S), MIN_REUSE_S)
        self._refresh_at = now + (remaining - margin if remaining > margin else soon)
        self.obtained += 1
        self.issued.add(token)
        if self.on_token is not None:
            self.on_token(token)
        return token

    def token(self) -> str | None:
        """The current token, obtained again once due; the old one while it lives if a refresh fails."""
        with self._lock:
            now = self.clock()
            if self._token is not None and now < self._refresh_at:
                return self._token
            if self._token is None and now < self._refresh_at:
                return None  # the last attempt failed moments ago
            try:
                return self.obtain()
            except (ConformanceError, TokenEndpointError) as exc:
                # Reported in the summary; the old token serves while it lives.
                self.failed_refreshes += 1
                self.last_refresh_error = str(exc)
                self._refresh_at = now + RETRY_AFTER_FAILURE_S
                if self._token is not None and now >= self._expires_at:
                    self._token = None
                return self._token

    @property
    def count(self) -> int:
        """Tokens the run had (logins, the given token, command runs, minted tokens)."""
        return self.obtained

    def described(self) -> str:
        """How the run's tokens were had, for the summary: ``3 logins``."""
        return f"{self.count} login{'' if self.count == 1 else 's'}"


class TokenSource(RefreshingTokens):
    """Logs in with the password grant and hands out the current token; thread-safe."""

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
        super().__init__(issued=issued, on_token=on_token, clock=clock)
        self.client = client
        self.credentials = credentials
        self.token_path = token_path

    @property
    def logins(self) -> int:
        """Successful logins."""
        return self.obtained

    def login(self) -> str:
        """One password-grant request. Raises ``BaselineLoginError`` (refused), ``TargetUnreachableError``
        (no answer) or ``TokenEndpointError`` (a malformed answer)."""
        return self.obtain()

    def _obtain(self) -> tuple[str, float, float]:
        form = {"grant_type": "password", "username": self.credentials.username, "password": self.credentials.password}
        try:
            response = self.client.request("POST", self.token_path, data=form)
        except TransportError as exc:
            raise TargetUnreachableError(f"cannot reach {self.client.base_url}: {exc}") from None
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) and response.status == 200 else None
        if isinstance(body, dict) and isinstance(token, str) and token:
            lifetime = token_lifetime(body, token)
            return token, lifetime, lifetime
        endpoint = f"{self.client.base_url}{self.token_path}"
        refusal: BaselineLoginError | None = rejection_error(
            endpoint, self.credentials.username, response.status, body, response.header("retry-after")
        )
        if refusal is not None:
            raise refusal
        raise TokenEndpointError(
            f"{endpoint} answered a valid password-grant request with HTTP {response.status} and no access_token",
            response.status,
        )


class RunTokens(RefreshingTokens):
    """A token run's tokens, from the run's own token source (``conformance.token_source``): the given
    token as long as it lives, or a new one printed by the token command or minted, before each expires."""

    def __init__(
        self,
        source: RunTokenSource,
        kind: str,
        *,
        issued: TokenSet | None = None,
        on_token: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(issued=issued, on_token=on_token, clock=clock)
        self.source = source
        self.kind = kind
        self.wall_clock = wall_clock

    def _obtain(self) -> tuple[str, float, float]:
        # The first token is the one the run checked on the me path; later ones are new.
        token = self.source.fresh() if self.obtained and self.source.renewable else self.source.current()
        if not self.source.renewable:
            return token, math.inf, math.inf  # the given token: no other to be had
        exp = expires_at(token)
        if exp is None:  # an opaque token: the command runs again after the default lifetime
            return token, DEFAULT_LIFETIME_S, DEFAULT_LIFETIME_S
        return token, max(exp - self.wall_clock(), 0.0), token_lifetime({}, token)

    def expired(self) -> bool:
        """The given token (``--token``, never renewed) has expired by now."""
        token = self._token
        exp = expires_at(token) if token is not None else None
        return not self.source.renewable and exp is not None and exp <= self.wall_clock()

    @property
    def count(self) -> int:
        """Runs of the command or minted tokens (the baseline's included), or the one given token."""
        return self.source.invocations if self.source.renewable else 1

    def described(self) -> str:
        count = f"{self.count} token{'' if self.count == 1 else 's'}"
        if self.kind == ISSUER:
            return f"{count} minted"
        if self.kind == COMMAND:
            return f"{count} from the token command"
        return "the given token"


def run_tokens(config: RunConfig, client: Client) -> RunTokens:
    """A token run's tokens, checked as ``jwt-conformance run`` checks them: the issuer answers, the command
    prints a token, the me path takes it (else the run stops, exit 2, with the way out)."""
    state = RunState(config, client, {})  # registers the issuer's keys with the redaction: minted tokens are secrets
    baseline_login(state)
    assert state.token_source is not None
    kind = ISSUER if config.issuer_mode is not None else COMMAND if config.token_command else GIVEN
    redact = client.redact
    tokens = RunTokens(state.token_source, kind, on_token=lambda token: redact.add_token(token, "${ACCESS_TOKEN}"))
    tokens.obtain()  # the token the me path took
    return tokens


def token_origin(config: RunConfig, tokens: RefreshingTokens) -> str:
    """Where the run's tokens come from, for the start of the console output (never the token itself)."""
    mode = config.issuer_mode
    if mode is not None:
        scope = f", scope {mode.scope!r}" if mode.scope else ""
        return (
            f"minted as the issuer {mode.url} for sub {mode.subject!r}, audience {mode.audience!r}{scope}; "
            "minted again before each expires"
        )
    if tokens.kind == COMMAND:
        program = config.token_command[0] if config.token_command else "?"
        return f"printed by the token command {program!r}; run again before each token expires"
    if tokens.kind == GIVEN:
        return "the given token (--token): it is not renewed"
    return f"the password grant at {config.paths.token} as {config.username!r}; logged in again before each expires"
