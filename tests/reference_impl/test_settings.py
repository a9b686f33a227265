"""Settings from the environment: defaults in one place, clear errors naming the variable."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from reference_impl import Settings, create_app, load_settings
from reference_impl.errors import SettingsError, WeakSecretError
from reference_impl.secret_key import check_secret


def test_defaults_match_the_documented_table() -> None:
    settings = load_settings({})
    assert settings == Settings(max_concurrent_hashes=settings.max_concurrent_hashes)
    assert settings.secret_key is None
    assert settings.algorithm == "HS256"
    assert settings.access_token_ttl == 900
    assert settings.refresh_token_ttl == 604_800
    assert settings.database == Path("jwt-reference.db")
    assert settings.max_concurrent_hashes >= 1


def test_every_variable_is_read_with_the_prefix() -> None:
    env = {
        "JWT_REF_SECRET_KEY": "s" * 40,
        "JWT_REF_DATABASE": "/srv/data/x.db",
        "JWT_REF_ALGORITHM": "HS512",
        "JWT_REF_ACCESS_TOKEN_TTL": "2",
        "JWT_REF_REFRESH_TOKEN_TTL": "3600",
        "JWT_REF_ISSUER": "https://issuer.example",
        "JWT_REF_AUDIENCE": "api",
        "JWT_REF_LEEWAY": "0",
        "JWT_REF_REALM": "example",
        "JWT_REF_HASH_PROFILE": "fast",
        "JWT_REF_MAX_CONCURRENT_HASHES": "3",
        "JWT_REF_MAX_BODY_BYTES": "2048",
        "SECRET_KEY": "ignored without the prefix",
    }
    assert load_settings(env) == Settings(
        secret_key="s" * 40,
        database=Path("/srv/data/x.db"),
        algorithm="HS512",
        access_token_ttl=2,
        refresh_token_ttl=3600,
        issuer="https://issuer.example",
        audience="api",
        leeway=0,
        realm="example",
        hash_profile="fast",
        max_concurrent_hashes=3,
        max_body_bytes=2048,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ACCESS_TOKEN_TTL", "abc", "is not an integer"),
        ("ACCESS_TOKEN_TTL", "0", "out of range"),
        ("LEEWAY", "-1", "out of range"),
        ("REFRESH_TOKEN_TTL", "59", "out of range: use 60..31536000"),
        ("REFRESH_TOKEN_TTL", "31536001", "out of range"),
        ("REFRESH_TOKEN_TTL", "a week", "is not an integer"),
        ("ALGORITHM", "none", "not supported"),
        ("ALGORITHM", "RS512", "not supported"),
        ("HASH_PROFILE", "cheap", "not valid"),
        ("REALM", 'a"b', "quote"),
        ("MAX_CONCURRENT_HASHES", "0", "out of range"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as info:
        load_settings({f"JWT_REF_{name}": value})
    assert f"JWT_REF_{name}" in str(info.value)


def test_the_secret_never_appears_in_the_settings_repr() -> None:
    assert "topsecret" not in repr(Settings(secret_key="topsecret" * 5))


@pytest.mark.parametrize(
    "secret",
    [
        None,
        "",
        "short",
        "your-secret-key",
        "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",
        "a-string-secret-at-least-256-bits-long",
        "a" * 64,
        "abababababababababababababababababab",
    ],
    ids=["none", "empty", "short", "seed", "fastapi-docs", "jwt-io", "one-char", "two-chars"],
)
def test_weak_secrets_are_refused_with_the_fix(tmp_path: Path, secret: str | None) -> None:
    with pytest.raises(WeakSecretError, match="JWT_REF_SECRET_KEY.*--dev"):
        check_secret(secret)
    with pytest.raises(WeakSecretError):
        create_app(Settings(secret_key=secret, database=tmp_path / "users.db"))
    assert not (tmp_path / "users.db").exists()


@pytest.mark.parametrize("value", ["60", "31536000", " 86400 "])
def test_the_refresh_token_ttl_takes_its_whole_range(value: str) -> None:
    assert load_settings({"JWT_REF_REFRESH_TOKEN_TTL": value}).refresh_token_ttl == int(value)


def test_the_refresh_token_ttl_reaches_the_grant_store(tmp_path: Path) -> None:
    app = create_app(
        Settings(secret_key=secrets.token_urlsafe(48), database=tmp_path / "users.db", refresh_token_ttl=120, leeway=7)
    )
    try:
        grants = app.state.reference.grants
        assert grants.refresh_token_ttl == 120
        assert grants.access_token_lifetime == 900 + 7
    finally:
        app.state.reference.close()
