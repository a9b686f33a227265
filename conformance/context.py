"""What a check works with: the run's shared state (logins, tokens, keys) and its own request recorder."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .client import Client, HeaderList, Response
from .config import Credentials, RunConfig
from .forge import ParsedToken, parse
from .issuer_mode import IssuerSession
from .model import Exchange, Skip
from .progress import NO_PROGRESS, Progress
from .redaction import hmac_verifier, register_keys
from .target_contract import TargetContract
from .token_source import TokenSource

ROLES = ("primary", "second", "disabled")
# A cracked key shorter than this (a word such as "secret") is not replaced in text: it would blank out
# ordinary words. Reports name it by its word-list entry; tokens signed with it are replaced all the same.
CRACKED_KEY_SHOWN_BELOW = 8
NO_PASSWORD_GRANT = (
    "needs a password-grant token endpoint: give --username and a password (--password or "
    "JWT_CONFORMANCE_PASSWORD) instead of a token, or run the suite against a test deployment that has one"
)
NO_TOKEN_ENDPOINT_IN_ISSUER_MODE = (
    "needs the API's own password-grant token endpoint: issuer mode checks how the API verifies the issuer's "
    "tokens; if it also issues tokens, run the suite again with --username and a password"
)
NO_ISSUER_MODE = (
    "needs issuer mode: point the API at `jwt-conformance issuer --keys-dir DIR` (its trusted issuer in "
    "the test environment) and pass --issuer-keys DIR"
)


@dataclass(frozen=True)
class Login:
    """The answer to one password-grant request."""

    response: Response
    token: str | None

    @property
    def body(self) -> Any:
        return self.response.json()


class RunState:
    """Shared by every check of a run; safe to use from several threads."""

    def __init__(self, config: RunConfig, client: Client, contract: TargetContract | Mapping[str, Any]) -> None:
        self.config = config
        self.client = client
        self.contract = TargetContract.of(contract)  # empty when unknown: only the core rules apply
        self.contract.attach(client)
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}
        self.baseline: Login | None = None
        self.baseline_scope: str | None = None  # the scope asked for when the default grant cannot reach the me path
        self._cracked_secret: bytes | None = None
        self.disturbed_after: str | None = None  # the group after which the baseline token stopped working
        self.baseline_unchecked: list[str] = []  # groups after which the baseline token could not be re-checked
        self.jwks_lock = threading.Lock()  # one discovery per run (see checks/_jwks.py)
        self.jwks: tuple[str, dict[str, Any]] | None = None
        self.jwks_searched = False
        self.brute_force_lock = threading.Lock()  # one brute-force probe per run (see checks/rate.py)
        self.brute_force: Any = None
        self.capabilities_lock = threading.Lock()  # discovered once per run (see checks/_capabilities.py)
        self.capabilities: Any = None
        register_keys(client.redact, config)
        self.progress: Progress = NO_PROGRESS  # a terminal's status line, when the run has one
        self.token_source: TokenSource | None = None
        self.issuer: IssuerSession | None = None
        self._minted: dict[str, TokenSource] = {}
        if config.issuer_mode is not None:  # every token is minted; tokens the issuer's keys sign are credentials
            issuer = self.issuer = IssuerSession(config.issuer_mode)
            self.token_source = TokenSource(mint=lambda: issuer.token("primary"), on_token=self._received)
            if config.issuer_mode.second_subject:
                self._minted["second"] = TokenSource(
                    mint=lambda: issuer.token("second"),
                    on_token=lambda token: client.redact.add_token(token, "${SECOND_ACCESS_TOKEN}"),
                )
        elif config.token_run:  # tokens given or printed by the command are credentials: never shown
            self.token_source = TokenSource(
                token=config.token,
                command=config.token_command,
                timeout_s=max(config.timeout_s, 30.0),
                on_token=self._received,
            )

    def _received(self, token: str) -> None:
        """A token from the run's token source: redacted everywhere, and the run's primary token from now on."""
        self.client.redact.add_token(token, "${ACCESS_TOKEN}")
        with self._lock:
            self._tokens["primary"] = token

    def credentials(self, role: str) -> Credentials | None:
        if self.config.token_run:
            return None  # a token run never logs in, as no user or as another one
        return {
            "primary": self.config.primary,
            "second": self.config.second,
            "disabled": self.config.disabled,
            "throwaway": self.config.throwaway,
        }[role]

    def remember_token(self, role: str, token: str) -> None:
        with self._lock:
            self._tokens.setdefault(role, token)
        placeholder = "${ACCESS_TOKEN}" if role == "primary" else f"${{{role.upper()}_ACCESS_TOKEN}}"
        self.client.redact.add_token(token, placeholder)  # with its 16-character pieces (signature included)

    def replace_token(self, role: str, token: str) -> None:
        """Make ``token`` the run's token for ``role`` (a scoped login that reaches the me path)."""
        with self._lock:
            self._tokens[role] = token

    @property
    def cracked_secret(self) -> bytes | None:
        """The target's HMAC key, when JWT-FMT-010 found it in the word list."""
        return self._cracked_secret

    @cracked_secret.setter
    def cracked_secret(self, key: bytes | None) -> None:
        self._cracked_secret = key
        if key:  # tokens signed with it are usable credentials; its text (when not a common word) is a secret
            self.client.redact.add_key(hmac_verifier(key), "${CRACKED_KEY}")
            if len(key) >= CRACKED_KEY_SHOWN_BELOW:
                self.client.redact.add(key.decode("utf-8", errors="replace"), "${CRACKED_KEY}")

    def token(self, role: str) -> str | None:
        if role == "primary" and self.token_source is not None:
            return self.token_source.current()  # the command runs again (or one is minted) once it has expired
        if role in self._minted:
            return self._minted[role].current()
        with self._lock:
            return self._tokens.get(role)

    @property
    def signing_key(self) -> bytes | None:
        if self.config.keys.hs_secret:
            return self.config.keys.hs_secret.encode()
        return self.cracked_secret


class Context:
    """Passed to each check. Its requests are recorded as the check's evidence."""

    def __init__(self, state: RunState, check_id: str = "") -> None:
        self.state = state
        self.config = state.config
        self.check_id = check_id
        self.exchanges: list[Exchange] = []

    def progress(self, text: str) -> None:
        """Say why the check takes time (shown on a terminal while the run waits for it; nowhere else)."""
        if self.check_id:
            self.state.progress.note(self.check_id, text)

    # -- HTTP -------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        headers: HeaderList | None = None,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        content: bytes | str | None = None,
        timeout_s: float | None = None,
        retry: bool = True,
    ) -> Response:
        """One request, recorded; a dropped connection or a timeout is retried once unless ``retry=False``."""
        return self.state.client.request(
            method,
            path,
            headers=headers,
            params=params,
            data=data,
            content=content,
            recorder=self.exchanges,
            timeout_s=timeout_s,
            retry=retry,
        )

    def get(
        self,
        path: str,
        *,
        token: str | None = None,
        headers: HeaderList | None = None,
        params: Mapping[str, str] | None = None,
        retry: bool = True,
    ) -> Response:
        header_list = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        if token is not None:
            header_list.append(("Authorization", f"Bearer {token}"))
        return self.request("GET", path, headers=header_list, params=params, retry=retry)

    def require_issuer(self) -> IssuerSession:
        """The run's test issuer; ``Skip`` with the way out when the run is not in issuer mode."""
        if self.state.issuer is None:
            raise Skip(NO_ISSUER_MODE)
        return self.state.issuer

    def require_token_endpoint(self) -> None:
        """``Skip`` with the way out when the run has no password grant (a token run)."""
        if self.state.issuer is not None:
            raise Skip(NO_TOKEN_ENDPOINT_IN_ISSUER_MODE)
        if self.config.token_run:
            raise Skip(NO_PASSWORD_GRANT)

    def post_token(
        self,
        data: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        *,
        content: bytes | str | None = None,
        headers: HeaderList | None = None,
        params: Mapping[str, str] | None = None,
        method: str = "POST",
        retry: bool = True,
    ) -> Response:
        self.require_token_endpoint()
        return self.request(
            method, self.config.paths.token, data=data, content=content, headers=headers, params=params, retry=retry
        )

    # -- credentials and tokens -------------------------------------------------------------------
    def credentials(self, role: str = "primary") -> Credentials:
        self.require_token_endpoint()
        found = self.state.credentials(role)
        if found is None:
            raise Skip(f"needs a {role} user: add users.{role} (username, password) to the config file")
        return found

    def login_form(self, role: str = "primary", **changes: str | None) -> list[tuple[str, str]]:
        creds = self.credentials(role)
        form = {"grant_type": "password", "username": creds.username, "password": creds.password}
        if self.state.baseline_scope:  # the default grant cannot reach the me path: ask as the baseline did
            form["scope"] = self.state.baseline_scope
        for name, value in changes.items():
            if value is None:
                form.pop(name, None)
            else:
                form[name] = value
        return list(form.items())

    def login(self, role: str = "primary", **changes: str | None) -> Login:
        """A password-grant request (uncached); ``changes`` alter or (with ``None``) drop form fields."""
        response = self.post_token(self.login_form(role, **changes))
        body = response.json()
        token = body.get("access_token") if response.status == 200 and isinstance(body, dict) else None
        if isinstance(token, str) and token:
            self.state.remember_token(role, token)
            return Login(response, token)
        return Login(response, None)

    def token(self, role: str = "primary") -> str:
        """A valid access token for ``role``, from the baseline or one login per run."""
        cached = self.state.token(role)
        if cached:
            return cached
        if role == "primary":
            raise Skip("no access token: the baseline login failed (see TOKEN-001)")
        if self.state.issuer is not None:
            raise Skip(f"needs a {role} user the API knows: give its sub with --{role}-subject (issuer mode)")
        self.require_token_endpoint()
        login = self.login(role)
        if login.token is None:
            raise Skip(f"the {role} user could not log in (HTTP {login.response.status}): check users.{role}")
        return login.token

    @property
    def login_name(self) -> str | None:
        """The name the me answer and the token's ``sub`` may carry: the login name, else a token run's ``sub``."""
        if self.config.username:
            return self.config.username
        if self.config.token_run:
            sub = (self.parsed.claims or {}).get("sub")
            return sub if isinstance(sub, str) and sub else None
        return None

    @property
    def parsed(self) -> ParsedToken:
        return parse(self.token())

    @property
    def me_path(self) -> str:
        return self.config.paths.me

    @property
    def protected_paths(self) -> list[str]:
        return [self.config.paths.me, *(p for p in self.config.paths.protected if p != self.config.paths.me)]

    @property
    def signing_key(self) -> bytes | None:
        return self.state.signing_key

    def accepted(self, token: str, path: str | None = None) -> Response:
        """Send ``token`` as a Bearer credential to ``path`` (the me path by default)."""
        return self.get(path or self.me_path, token=token)
