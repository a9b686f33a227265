"""Where a token run's access token comes from: given as is (``--token``), or printed by a command.

A token run never logs in: the target may have no password-grant endpoint at all (an API that
verifies the tokens of an identity provider). ``--token-command`` runs a program (parsed with
``shlex``, never through a shell) that prints a fresh access token on stdout, for example a
client-credentials request to the provider; it runs again when the token it printed has expired.
The command line may carry secrets (a client secret): messages name only its program.
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from .errors import ConformanceError

COMMAND_TIMEOUT_S = 30.0
EXPIRY_MARGIN_S = 5  # a token this close to its exp is replaced before a check sends it
MAX_OUTPUT_BYTES = 65_536
TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")


class TokenSourceError(ConformanceError):
    """Raised when the token command fails, times out or prints no usable token."""


def parse_command(text: str) -> tuple[str, ...]:
    """``text`` split as a POSIX shell would split it, without running a shell."""
    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:
        raise TokenSourceError(f"--token-command cannot be parsed ({exc}): quote it as for a shell") from None
    if not argv:
        raise TokenSourceError("--token-command is empty: give the command that prints an access token")
    return argv


def usable_token(text: str) -> str | None:
    """The single token in ``text`` (surrounding blank space ignored), or ``None``."""
    token = text.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token or any(char not in TOKEN_ALPHABET for char in token):
        return None
    return token


def expires_at(token: str) -> float | None:
    """The ``exp`` of a JWT, or ``None`` (an opaque token, or none given)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


class TokenSource:
    """The run's access token: the given one, or the last one the command printed while it is fresh."""

    def __init__(
        self,
        *,
        token: str | None = None,
        command: Sequence[str] | None = None,
        mint: Callable[[], str] | None = None,
        timeout_s: float = COMMAND_TIMEOUT_S,
        on_token: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if sum(given is not None for given in (token, command, mint)) != 1:
            raise ValueError("a token source needs exactly one of token, command and mint")
        self._command = tuple(command) if command is not None else None
        self._mint = mint
        self._timeout_s = timeout_s
        self._on_token = on_token
        self._clock = clock
        self._lock = threading.Lock()
        self._token = token
        self.invocations = 0
        if token is not None and on_token is not None:
            on_token(token)

    @property
    def program(self) -> str:
        """The command's program name (its arguments may be secrets), or ``"--token"`` / ``"--issuer-keys"``."""
        if self._mint is not None:
            return "--issuer-keys"
        return self._command[0] if self._command else "--token"

    @property
    def renewable(self) -> bool:
        """A new token can be had (the command runs again, or one is minted)."""
        return self._command is not None or self._mint is not None

    def current(self) -> str:
        """The token to send now: the command runs when none is held or the held one has expired."""
        with self._lock:
            if self._token is None or (self.renewable and self._expired(self._token)):
                self._token = self._run()
            return self._token

    def fresh(self) -> str:
        """A token printed by a new run of the command, or newly minted (the given token, for ``--token``)."""
        with self._lock:
            if self.renewable:
                self._token = self._run()
            assert self._token is not None
            return self._token

    def _expired(self, token: str) -> bool:
        exp = expires_at(token)
        return exp is not None and exp - EXPIRY_MARGIN_S <= self._clock()

    def _run(self) -> str:
        self.invocations += 1
        if self._mint is not None:
            minted = self._mint()
            if self._on_token is not None:
                self._on_token(minted)
            return minted
        assert self._command is not None
        name = self.program
        try:
            done = subprocess.run(  # noqa: S603 - the user's own command, without a shell
                self._command,
                capture_output=True,
                timeout=self._timeout_s,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except FileNotFoundError:
            raise TokenSourceError(
                f"the token command {name!r} was not found: give its full path in --token-command"
            ) from None
        except PermissionError:
            raise TokenSourceError(f"the token command {name!r} cannot be run: make it executable") from None
        except subprocess.TimeoutExpired:
            raise TokenSourceError(
                f"the token command {name!r} printed no token within {self._timeout_s:g} s: "
                "check that it does not wait for input, or that the identity provider answers"
            ) from None
        if done.returncode != 0:
            said = self._last_line(done.stderr)
            raise TokenSourceError(
                f"the token command {name!r} failed (exit {done.returncode})"
                + (f": {said}" if said else ": it printed nothing on stderr")
            )
        token = usable_token(done.stdout[:MAX_OUTPUT_BYTES].decode("utf-8", errors="replace"))
        if token is None:
            raise TokenSourceError(
                f"the token command {name!r} printed no usable token: it must print the access token alone on stdout"
            )
        if self._on_token is not None:
            self._on_token(token)
        return token

    def _last_line(self, stderr: bytes) -> str:
        """The last non-blank stderr line, its command arguments withheld."""
        lines = [line.strip() for line in stderr[-4096:].decode("utf-8", errors="replace").splitlines()]
        said = next((line for line in reversed(lines) if line), "")
        for argument in (self._command or ())[1:]:
            if len(argument) >= 3:
                said = said.replace(argument, "***")
        return said[:300]
