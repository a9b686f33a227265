"""Settings of the reference server: one frozen object, built once from the environment.

Every variable carries the prefix ``JWT_REF_``; README.md documents the table. Nothing else in the
package reads the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from .errors import SettingsError

PREFIX = "JWT_REF_"

HashProfile = Literal["default", "fast"]
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ALGORITHMS = (*HMAC_ALGORITHMS, "RS256", "ES256", "EdDSA")


@dataclass(frozen=True)
class Settings:
    secret_key: str | None = field(default=None, repr=False)
    database: Path = Path("jwt-reference.db")
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

    @property
    def uses_hmac(self) -> bool:
        return self.algorithm in HMAC_ALGORITHMS

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
    return Settings(
        secret_key=env.get(PREFIX + "SECRET_KEY") or None,
        database=Path(_str(env, "DATABASE", str(defaults.database))),
        algorithm=algorithm,
        access_token_ttl=_int(env, "ACCESS_TOKEN_TTL", defaults.access_token_ttl, 1, 86_400),
        refresh_token_ttl=_int(env, "REFRESH_TOKEN_TTL", defaults.refresh_token_ttl, 60, 31_536_000),
        issuer=_str(env, "ISSUER", defaults.issuer),
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
    )
