"""``RunConfig``: one frozen object built once from flags, environment and config file, then passed down.

Precedence: flags > environment > config file > defaults. The file is YAML (``safe_load``); string
values may reference environment variables as ``${NAME}``; an unknown key is an error that lists
the valid ones.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .capabilities import DeclaredCapabilities
from .errors import ConfigError
from .model import Profile
from .target_contract import KIT_PREFIX, kit_contract_path
from .token_source import TokenSourceError, parse_command, usable_token

PASSWORD_ENV = "JWT_CONFORMANCE_PASSWORD"
TOKEN_ENV = "JWT_CONFORMANCE_TOKEN"
# A token-command argument this long is redacted in every output (it may be a client secret); shorter ones
# (flags such as -s) would blank out ordinary words.
TOKEN_COMMAND_SECRET_MIN = 8
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Paths:
    token: str = "/token"
    me: str = "/users/me"
    protected: tuple[str, ...] = ("/protected-resource",)


@dataclass(frozen=True)
class Keys:
    hs_secret: str | None = field(default=None, repr=False)
    jwks_url: str | None = None  # the target's public keys; discovered on common paths when absent
    private_key_file: Path | None = None  # the target's PEM private key (RS256 / ES256 / EdDSA servers)


@dataclass(frozen=True)
class IssuerMode:
    """Issuer mode: the run mints every token with the keys of the test issuer the API trusts."""

    keys_dir: Path
    url: str  # the iss of every token: what the API trusts
    endpoint: str  # where this run reaches the issuer (discovery, JWK Set, fetch counter)
    audience: str
    subject: str  # the sub of the primary user's tokens (a user the API knows)
    second_subject: str | None = None  # another user the API knows (cross-user checks)
    scope: str | None = None  # the scope every token carries
    user_claim: str = "sub"  # the claim the API maps to its user; it carries the subject too
    claims: Mapping[str, Any] = field(default_factory=dict)  # more claims every token carries
    lifetime_s: int = 300
    local_users: bool = False  # the API maps sub to users of its own (an unknown sub must then be refused)
    key_refresh_wait_s: float = 60.0  # how long the API may take to accept a newly published key (ISS-003)
    key_removal_wait_s: float = 600.0  # how long it may keep accepting a removed key: its key-cache lifetime (ISS-004)


@dataclass(frozen=True)
class RunConfig:
    base_url: str
    primary: Credentials | None  # None in a token run: no password grant is used
    second: Credentials | None = None
    disabled: Credentials | None = None
    throwaway: Credentials | None = None  # an account the RATE checks may lock (with allow_destructive)
    allow_destructive: bool = False
    profile: Profile = Profile.RFC
    strict: bool = False
    level: str = "standard"
    select: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    paths: Paths = Paths()
    keys: Keys = Keys()
    timeout_s: float = 10.0
    max_wait_s: float = 120.0
    max_response_bytes: int = 1_048_576
    workers: int = 4
    contract: Path | None = None  # the target's contract file (for kit:VERSION, the kit's file of that version)
    contract_kit_version: str | None = None  # set when the target claims the kit's contract (kit:VERSION)
    identity: str | None = None  # the me answer's member that names the user (default: username, email, ...)
    issuer: str | None = None  # the iss its access tokens carry, when declared in the config
    audience: str | None = None  # the aud its access tokens carry, when declared in the config
    capabilities: DeclaredCapabilities = DeclaredCapabilities()  # from the config file; the rest is discovered
    token: str | None = field(default=None, repr=False)  # a token run: the access token to send (--token)
    token_command: tuple[str, ...] | None = field(default=None, repr=False)  # a token run: prints the token
    login_name: str | None = None  # a token run's --username: the name the me answer should carry
    issuer_mode: IssuerMode | None = None  # the run is the issuer the API trusts: it mints every token

    @property
    def token_run(self) -> bool:
        """The run sends a given, printed or minted token and never logs in."""
        return self.token is not None or self.token_command is not None or self.issuer_mode is not None

    @property
    def username(self) -> str | None:
        """The login name the me answer should name, when one is known."""
        return self.primary.username if self.primary is not None else self.login_name

    @property
    def secrets(self) -> dict[str, str]:
        """Every secret the run knows, mapped to the placeholder that replaces it in reports."""
        found: dict[str, str] = {}
        if self.primary:
            found[self.primary.password] = "${PASSWORD}"
        if self.token:
            found[self.token] = "${ACCESS_TOKEN}"
        for argument in (self.token_command or ())[1:]:
            if len(argument) >= TOKEN_COMMAND_SECRET_MIN:
                found.setdefault(argument, "${TOKEN_COMMAND_ARGUMENT}")
        if self.second:
            found[self.second.password] = "${SECOND_PASSWORD}"
        if self.disabled:
            found[self.disabled.password] = "${DISABLED_PASSWORD}"
        if self.throwaway:
            found[self.throwaway.password] = "${THROWAWAY_PASSWORD}"
        if self.keys.hs_secret:
            found[self.keys.hs_secret] = "${HS_SECRET}"
        return found


_FILE_KEYS: dict[str, Any] = {
    "base_url": None,
    "profile": None,
    "strict": None,
    "allow_destructive": None,
    "level": None,
    "select": None,
    "skip": None,
    "timeout": None,
    "max_wait": None,
    "contract": None,
    "identity": None,
    "claims": {"iss": None, "aud": None},
    "paths": {"token": None, "me": None, "protected": None},
    "users": {
        "primary": {"username": None, "password": None, "token": None, "token_command": None},
        "second": {"username": None, "password": None},
        "disabled": {"username": None, "password": None},
        "throwaway": {"username": None, "password": None},
    },
    "keys": {"hs_secret": None, "jwks_url": None, "private_key_file": None},
    "issuer": {
        "keys_dir": None,
        "url": None,
        "endpoint": None,
        "audience": None,
        "subject": None,
        "second_subject": None,
        "scope": None,
        "user_claim": None,
        "claims": None,
        "lifetime": None,
        "local_users": None,
        "key_refresh_wait": None,
        "key_removal_wait": None,
    },
    "capabilities": {"refresh_tokens": None, "revocation": None, "logout": None, "scopes": None},
}


def _check_keys(data: Mapping[str, Any], allowed: Mapping[str, Any], where: str) -> None:
    for key, value in data.items():
        if key not in allowed:
            valid = ", ".join(sorted(allowed))
            raise ConfigError(f"unknown key {where}{key!r} in the config file; valid keys: {valid}")
        if isinstance(allowed[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}{key} must be a mapping with keys: {', '.join(sorted(allowed[key]))}")
            _check_keys(value, allowed[key], f"{where}{key}.")


def _interpolate(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"the config file references ${{{name}}}, which is not set in the environment")
            return env[name]

        return _ENV_REF.sub(replace, value)
    if isinstance(value, list):
        return [_interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: _interpolate(item, env) for key, item in value.items()}
    return value


def read_config_file(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"the config file {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"the config file {path} must hold a mapping at the top level")
    _check_keys(data, _FILE_KEYS, "")
    result: dict[str, Any] = _interpolate(data, env)
    return result


def _credentials(data: Mapping[str, Any] | None, role: str) -> Credentials | None:
    if not data:
        return None
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not username or not isinstance(password, str) or not password:
        raise ConfigError(f"users.{role} needs a non-empty username and password")
    return Credentials(username, password)


def _path(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigError(f"{name} must be a path starting with '/', got {value!r}")
    return value


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ConfigError(f"{name} must be a string or a list of strings")


def _optional_path(value: Any) -> Path | None:
    if value is None or value == "":
        return None
    path = Path(str(value))
    if not path.is_file():
        raise ConfigError(f"the private key file {path} does not exist")
    return path


def _capabilities(data: Mapping[str, Any]) -> DeclaredCapabilities:
    refresh = data.get("refresh_tokens")
    if refresh is not None and not isinstance(refresh, bool):
        raise ConfigError(f"capabilities.refresh_tokens must be true or false, got {refresh!r}")

    def endpoint(name: str) -> str | None:
        value = data.get(name)
        if value is None:
            return None
        if value is False:
            return ""  # declared absent
        return _path(value, f"capabilities.{name}")

    scopes = data.get("scopes")
    operation_scopes: dict[str, tuple[str, ...]] | None = None
    if scopes is not None:
        if not isinstance(scopes, Mapping):
            raise ConfigError('capabilities.scopes must map operations to scopes, e.g. {"GET /users": admin}')
        operation_scopes = {}
        for operation, needed in scopes.items():
            method, _, path = str(operation).partition(" ")
            if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE") or not path.startswith("/"):
                raise ConfigError(f"capabilities.scopes: {operation!r} is not an operation like 'GET /users'")
            operation_scopes[f"{method.upper()} {path}"] = _strings(needed, f"capabilities.scopes[{operation!r}]")
    return DeclaredCapabilities(
        refresh_tokens=refresh,
        revocation_path=endpoint("revocation"),
        logout_path=endpoint("logout"),
        operation_scopes=operation_scopes,
    )


def _contract(value: Any) -> tuple[Path | None, str | None]:
    """(the contract file, the kit version it claims) of ``--contract PATH`` or ``--contract kit:VERSION``."""
    if value is None or value == "":
        return None, None
    text = str(value)
    if text.startswith(KIT_PREFIX):
        version = text.removeprefix(KIT_PREFIX)
        return kit_contract_path(version), version
    path = Path(text)
    if not path.is_file():
        raise ConfigError(f"the contract file {path} does not exist (or use kit:VERSION for the kit's contract)")
    return path, None


def _identity(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or any(not part for part in value.split(".")):
        raise ConfigError(
            f"identity must name the member of the me answer that holds the login name, e.g. email; got {value!r}"
        )
    return value


def _claim(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"claims.{name} must be the non-empty string the tokens carry, got {value!r}")
    return value


def _primary(username: Any, password: Any) -> Credentials:
    if not username:
        raise ConfigError(
            "no username: pass --username (or users.primary.username in the config file), "
            "or run with an access token: --token TOKEN or --token-command CMD"
        )
    if not password:
        raise ConfigError(
            f"no password for {username!r}: set {PASSWORD_ENV}, pass --password, or set users.primary.password "
            "(or run with an access token: --token TOKEN or --token-command CMD)"
        )
    return Credentials(str(username), str(password))


def _token_source(
    flags: Mapping[str, Any], env: Mapping[str, str], primary_file: Mapping[str, Any]
) -> tuple[str | None, tuple[str, ...] | None]:
    """(the given token, the token command): flags, then the environment (token only), then the config file."""
    flag_token, flag_command = flags.get("token"), flags.get("token_command")
    if flag_token and flag_command:
        raise ConfigError("--token and --token-command are alternatives: give one")
    if flag_token or flag_command:
        token, command = flag_token, flag_command
    elif env.get(TOKEN_ENV):
        token, command = env[TOKEN_ENV], None
    else:
        token, command = primary_file.get("token"), primary_file.get("token_command")
        if token and command:
            raise ConfigError("users.primary.token and users.primary.token_command are alternatives: give one")
    if token:
        found = usable_token(str(token))
        if found is None:
            raise ConfigError(
                "the given access token is not a bearer token (one line of base64url, '.', '-', '_', '~', '+', '/'): "
                "pass the access_token value alone"
            )
        return found, None
    if command:
        try:
            return None, parse_command(str(command))
        except TokenSourceError as exc:
            raise ConfigError(str(exc)) from None
    return None, None


DEFAULT_SUBJECT = "jwt-conformance-user"


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _seconds(value: Any, name: str, default: float, low: float, high: float) -> float:
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= float(value) <= high:
        raise ConfigError(f"{name} must be a number of seconds between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _flag(value: Any, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value


def _issuer_mode(
    flags: Mapping[str, Any], file: Mapping[str, Any], claims: Mapping[str, Any], username: Any
) -> IssuerMode | None:
    """Issuer mode from ``--issuer-keys`` (or ``issuer.keys_dir``): the issuer's endpoint is read from the directory."""
    from .issuer.endpoint import read_endpoint
    from .issuer.keys import IssuerError, read_state

    given = flags.get("issuer_keys") or file.get("keys_dir")
    if not given:
        if any(flags.get(name) for name in ("subject", "second_subject", "scope")):
            raise ConfigError("--subject, --second-subject and --scope belong to issuer mode: add --issuer-keys DIR")
        return None
    keys_dir = Path(str(given))
    try:
        read_state(keys_dir)
    except IssuerError as exc:
        raise ConfigError(
            f"--issuer-keys {keys_dir}: {exc} (start `jwt-conformance issuer --keys-dir {keys_dir}` first)"
        ) from None
    recorded = read_endpoint(keys_dir)
    url = _text(flags.get("issuer") or file.get("url") or claims.get("iss"), "issuer.url") or (
        recorded.issuer if recorded else None
    )
    endpoint = _text(file.get("endpoint"), "issuer.endpoint") or (recorded.listening if recorded else url)
    if not url or not endpoint:
        raise ConfigError(
            f"the issuer of {keys_dir} has never run: start `jwt-conformance issuer --keys-dir {keys_dir}` "
            "(or give its URL with --issuer)"
        )
    audience = _text(flags.get("audience") or file.get("audience") or claims.get("aud"), "issuer.audience")
    if not audience:
        raise ConfigError(
            "issuer mode needs the audience the API accepts: pass --audience AUD (or issuer.audience); "
            "RFC 9068 §4 requires the API to check it"
        )
    extra = file.get("claims") or {}
    if not isinstance(extra, Mapping):
        raise ConfigError("issuer.claims must map claim names to values")
    lifetime = _seconds(file.get("lifetime"), "issuer.lifetime", 300, 30, 86_400)
    return IssuerMode(
        keys_dir=keys_dir,
        url=validate_base_url(url) if url.startswith("http") else url,
        endpoint=validate_base_url(endpoint),
        audience=audience,
        subject=_text(flags.get("subject") or file.get("subject"), "issuer.subject")
        or (str(username) if username else DEFAULT_SUBJECT),
        second_subject=_text(flags.get("second_subject") or file.get("second_subject"), "issuer.second_subject"),
        scope=_text(flags.get("scope") or file.get("scope"), "issuer.scope"),
        user_claim=_text(file.get("user_claim"), "issuer.user_claim") or "sub",
        claims=dict(extra),
        local_users=_flag(file.get("local_users"), "issuer.local_users"),
        lifetime_s=int(lifetime),
        key_refresh_wait_s=_seconds(file.get("key_refresh_wait"), "issuer.key_refresh_wait", 60, 1, 3600),
        key_removal_wait_s=_seconds(file.get("key_removal_wait"), "issuer.key_removal_wait", 600, 1, 86_400),
    )


def validate_base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--base-url {url!r} is not an http(s) URL: use e.g. http://127.0.0.1:8000")
    if parts.query or parts.fragment:
        raise ConfigError(f"--base-url {url!r} must not carry a query or fragment")
    return url.rstrip("/")


def build_config(
    flags: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> RunConfig:
    """Merge flags (``None`` = not given), environment and config file into a ``RunConfig``."""
    env = os.environ if env is None else env
    file = read_config_file(config_file, env) if config_file else {}
    users = file.get("users", {})
    paths = file.get("paths", {})

    def pick(flag: str, file_value: Any, default: Any = None) -> Any:
        value = flags.get(flag)
        return value if value not in (None, ()) else (file_value if file_value is not None else default)

    base_url = pick("base_url", file.get("base_url"))
    if not base_url:
        raise ConfigError("no target: pass --base-url URL (or base_url in the config file)")
    primary_file = users.get("primary") or {}
    username = pick("username", primary_file.get("username"))
    token, token_command = _token_source(flags, env, primary_file)
    claims = file.get("claims", {})
    issuer_mode = _issuer_mode(flags, file.get("issuer") or {}, claims, username)
    if issuer_mode is not None and (token or token_command):
        raise ConfigError("issuer mode mints its own tokens: drop --token / --token-command or --issuer-keys")
    primary: Credentials | None = None
    if token is None and token_command is None and issuer_mode is None:
        primary = _primary(username, flags.get("password") or env.get(PASSWORD_ENV) or primary_file.get("password"))
    profile_name = pick("profile", file.get("profile"), Profile.RFC.value)
    try:
        profile = Profile(profile_name)
    except ValueError:
        raise ConfigError(f"unknown profile {profile_name!r}: use rfc or fastapi") from None
    protected = pick("protected_paths", _strings(paths.get("protected"), "paths.protected") or None)
    timeout = pick("timeout", file.get("timeout"), 10.0)
    if not isinstance(timeout, int | float) or not 0.1 <= float(timeout) <= 300:
        raise ConfigError(f"timeout must be a number of seconds between 0.1 and 300, got {timeout!r}")
    max_wait = pick("max_wait", file.get("max_wait"), 120.0)
    if not isinstance(max_wait, int | float) or not 0 <= float(max_wait) <= 3600:
        raise ConfigError(f"max_wait must be a number of seconds between 0 and 3600, got {max_wait!r}")
    level = pick("level", file.get("level"), "standard")
    if level not in ("quick", "standard", "thorough"):
        raise ConfigError(f"unknown level {level!r}: use quick, standard or thorough")
    keys = file.get("keys", {})
    hs_secret = flags.get("hs_secret") or keys.get("hs_secret")
    contract, kit_version = _contract(pick("contract", file.get("contract")))
    return RunConfig(
        base_url=validate_base_url(str(base_url)),
        primary=primary,
        token=token,
        token_command=token_command,
        login_name=str(username) if primary is None and username else None,
        issuer_mode=issuer_mode,
        second=_credentials(users.get("second"), "second"),
        disabled=_credentials(users.get("disabled"), "disabled"),
        throwaway=_credentials(users.get("throwaway"), "throwaway"),
        allow_destructive=bool(flags.get("allow_destructive") or file.get("allow_destructive", False)),
        profile=profile,
        strict=bool(flags.get("strict") or file.get("strict", False)),
        level=str(level),
        select=tuple(flags.get("select") or ()) or _strings(file.get("select"), "select"),
        skip=tuple(flags.get("skip") or ()) or _strings(file.get("skip"), "skip"),
        paths=Paths(
            token=_path(pick("token_path", paths.get("token"), "/token"), "the token path"),
            me=_path(pick("me_path", paths.get("me"), "/users/me"), "the me path"),
            protected=tuple(_path(p, "a protected path") for p in (protected or ("/protected-resource",))),
        ),
        keys=Keys(
            hs_secret=str(hs_secret) if hs_secret else None,
            jwks_url=pick("jwks_url", keys.get("jwks_url")),
            private_key_file=_optional_path(pick("private_key_file", keys.get("private_key_file"))),
        ),
        timeout_s=float(timeout),
        max_wait_s=float(max_wait),
        contract=contract,
        contract_kit_version=kit_version,
        identity=_identity(pick("identity", file.get("identity"))),
        issuer=issuer_mode.url if issuer_mode else _claim(pick("issuer", claims.get("iss")), "iss"),
        audience=issuer_mode.audience if issuer_mode else _claim(pick("audience", claims.get("aud")), "aud"),
        capabilities=_capabilities(file.get("capabilities") or {}),
    )
