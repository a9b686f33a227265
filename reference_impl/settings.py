"""Settings of the reference server: one frozen object, built once from the environment.

Every variable carries the prefix ``JWT_REF_``; README.md documents the table. Nothing else in the
package reads the environment.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from .errors import SettingsError

PREFIX = "JWT_REF_"

HashProfile = Literal["default", "fast"]
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ALGORITHMS = (*HMAC_ALGORITHMS, "RS256", "ES256", "EdDSA")


@dataclass(frozen=True)
class TrustedIssuer:
    """An identity provider whose access tokens this server accepts (as a resource server)."""

    issuer: str  # the exact ``iss`` value; discovery is at ``<issuer>/.well-known/openid-configuration``
    audience: str  # the ``aud`` value its tokens must carry for this server
    user_claim: str = "sub"  # the claim whose value is the name of the local user the token acts for


@dataclass(frozen=True)
class Settings:
    secret_key: str | None = field(default=None, repr=False)
    database: Path = Path("jwt-reference.db")
    database_url: str | None = field(default=None, repr=False)  # postgresql://...: used instead of ``database``
    algorithm: str = "HS256"
    access_token_ttl: int = 900  # seconds an access token is valid
    refresh_token_ttl: int = 604_800  # seconds a refresh token is valid (7 days); each refresh issues a new one
    issuer: str = "jwt-reference"
    audience: str = "jwt-reference-api"
    leeway: int = 5
    realm: str = "jwt-reference"
    hash_profile: HashProfile = "default"
    max_concurrent_hashes: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_body_bytes: int = 16_384
    login_max_failures: int = 10  # failed logins per username within the window before 429 (0: off)
    login_max_failures_per_client: int = 100  # the same per client address
    login_window: int = 300  # seconds
    private_key_file: Path | None = None  # RS256 / ES256 / EdDSA: the PEM private key that signs
    verify_key_files: tuple[Path, ...] = ()  # earlier keys that still verify (rotation)
    trusted_issuers: tuple[TrustedIssuer, ...] = ()  # external issuers whose access tokens are accepted
    jwks_refresh_interval: int = 30  # seconds: at most one key-set fetch per issuer in this interval
    jwks_max_age: int = 300  # seconds: an older key set is fetched again before it is used
    issuer_timeout: int = 5  # seconds: the whole of one discovery or key-set request

    @property
    def uses_hmac(self) -> bool:
        return self.algorithm in HMAC_ALGORITHMS

    @property
    def database_target(self) -> Path | str:
        """Where the data lives: the PostgreSQL URL if there is one, else the SQLite file."""
        return self.database_url or self.database

    def with_secret(self, secret_key: str) -> Settings:
        return replace(self, secret_key=secret_key)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(PREFIX + name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{PREFIX}{name}={raw!r} is not an integer") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{PREFIX}{name}={value} is out of range: use {minimum}..{maximum}")
    return value


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(PREFIX + name)
    return default if raw is None or raw == "" else raw


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _issuer_url(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{where}: 'issuer' must be a non-empty URL")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
        raise SettingsError(f"{where}: issuer {value!r} must be an https URL without query or fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise SettingsError(f"{where}: issuer {value!r} must use https (http is allowed on loopback only)")
    return value


def parse_trusted_issuers(raw: str, own_issuer: str) -> tuple[TrustedIssuer, ...]:
    """``JWT_REF_TRUSTED_ISSUERS``: a JSON array of ``{"issuer", "audience", "user_claim"?}`` objects."""
    name = PREFIX + "TRUSTED_ISSUERS"
    if raw.strip() == "":
        return ()
    try:
        entries = json.loads(raw)
    except ValueError:
        raise SettingsError(f'{name} is not JSON: use [{{"issuer": URL, "audience": AUD}}, ...]') from None
    if not isinstance(entries, list):
        raise SettingsError(f"{name} must be a JSON array of objects")
    issuers: list[TrustedIssuer] = []
    for index, entry in enumerate(entries):
        where = f"{name}[{index}]"
        if not isinstance(entry, dict) or not set(entry) <= {"issuer", "audience", "user_claim"}:
            raise SettingsError(f"{where} must be an object with 'issuer', 'audience' and optionally 'user_claim'")
        issuer = _issuer_url(entry.get("issuer"), where)
        audience = entry.get("audience")
        user_claim = entry.get("user_claim", "sub")
        if not isinstance(audience, str) or not audience:
            raise SettingsError(f"{where}: 'audience' must be a non-empty string")
        if not isinstance(user_claim, str) or not user_claim:
            raise SettingsError(f"{where}: 'user_claim' must be a non-empty string")
        if issuer == own_issuer or any(t.issuer == issuer for t in issuers):
            raise SettingsError(f"{where}: issuer {issuer!r} is named twice (or is this server's own issuer)")
        issuers.append(TrustedIssuer(issuer, audience, user_claim))
    return tuple(issuers)


def database_url(raw: str | None) -> str | None:
    """``JWT_REF_DATABASE_URL``: a ``postgresql://`` (or ``postgres://``) URL, or nothing."""
    if raw is None or raw.strip() == "":
        return None
    if urlsplit(raw.strip()).scheme not in ("postgresql", "postgres"):
        raise SettingsError(
            f"{PREFIX}DATABASE_URL must be a postgresql:// URL (postgresql://user:password@host:5432/name); "
            f"for a SQLite file use {PREFIX}DATABASE"
        )
    return raw.strip()


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``env`` (the process environment by default)."""
    env = os.environ if env is None else env
    defaults = Settings()
    algorithm = _str(env, "ALGORITHM", defaults.algorithm)
    if algorithm not in ALGORITHMS:
        raise SettingsError(f"{PREFIX}ALGORITHM={algorithm!r} is not supported: use one of {', '.join(ALGORITHMS)}")
    profile = _str(env, "HASH_PROFILE", defaults.hash_profile)
    if profile not in ("default", "fast"):
        raise SettingsError(f"{PREFIX}HASH_PROFILE={profile!r} is not valid: use 'default' or 'fast'")
    realm = _str(env, "REALM", defaults.realm)
    if '"' in realm or "\\" in realm or not realm.isprintable():
        raise SettingsError(f"{PREFIX}REALM must be printable and contain no quote or backslash")
    issuer = _str(env, "ISSUER", defaults.issuer)
    return Settings(
        secret_key=env.get(PREFIX + "SECRET_KEY") or None,
        database=Path(_str(env, "DATABASE", str(defaults.database))),
        database_url=database_url(env.get(PREFIX + "DATABASE_URL")),
        algorithm=algorithm,
        access_token_ttl=_int(env, "ACCESS_TOKEN_TTL", defaults.access_token_ttl, 1, 86_400),
        refresh_token_ttl=_int(env, "REFRESH_TOKEN_TTL", defaults.refresh_token_ttl, 60, 31_536_000),
        issuer=issuer,
        audience=_str(env, "AUDIENCE", defaults.audience),
        leeway=_int(env, "LEEWAY", defaults.leeway, 0, 300),
        realm=realm,
        hash_profile=profile,  # type: ignore[arg-type]
        max_concurrent_hashes=_int(env, "MAX_CONCURRENT_HASHES", defaults.max_concurrent_hashes, 1, 256),
        max_body_bytes=_int(env, "MAX_BODY_BYTES", defaults.max_body_bytes, 1024, 1_048_576),
        login_max_failures=_int(env, "LOGIN_MAX_FAILURES", defaults.login_max_failures, 0, 100_000),
        login_max_failures_per_client=_int(
            env, "LOGIN_MAX_FAILURES_PER_CLIENT", defaults.login_max_failures_per_client, 0, 1_000_000
        ),
        login_window=_int(env, "LOGIN_WINDOW", defaults.login_window, 1, 86_400),
        private_key_file=Path(env[PREFIX + "PRIVATE_KEY_FILE"]) if env.get(PREFIX + "PRIVATE_KEY_FILE") else None,
        verify_key_files=tuple(Path(p.strip()) for p in _str(env, "VERIFY_KEY_FILES", "").split(",") if p.strip()),
        trusted_issuers=parse_trusted_issuers(_str(env, "TRUSTED_ISSUERS", ""), issuer),
        jwks_refresh_interval=_int(env, "JWKS_REFRESH_INTERVAL", defaults.jwks_refresh_interval, 1, 86_400),
        jwks_max_age=_int(env, "JWKS_MAX_AGE", defaults.jwks_max_age, 1, 86_400),
        issuer_timeout=_int(env, "ISSUER_TIMEOUT", defaults.issuer_timeout, 1, 60),
    )
