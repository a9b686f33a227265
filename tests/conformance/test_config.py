"""RunConfig: flags > environment > config file > defaults; clear errors; secrets never in repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.config import PASSWORD_ENV, Credentials, Paths, build_config
from conformance.errors import ConfigError
from conformance.model import Profile

FILE = """
base_url: http://127.0.0.1:8000/
profile: fastapi
paths: {token: /oauth/token, me: /me, protected: [/a, /b]}
users:
  primary:  {username: alice, password: "${ALICE_PASSWORD}"}
  second:   {username: carol, password: "${CAROL_PASSWORD}"}
  disabled: {username: bob, password: plain}
keys:
  hs_secret: ${JWT_SECRET}
"""
PRIMARY = "users: {primary: {username: a, password: b}}\n"
ENV = {"ALICE_PASSWORD": "alice-pw", "CAROL_PASSWORD": "carol-pw", "JWT_SECRET": "s" * 40}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conformance.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_file_is_read_with_env_references(tmp_path: Path) -> None:
    config = build_config({}, ENV, write(tmp_path, FILE))
    assert config.base_url == "http://127.0.0.1:8000"
    assert config.profile is Profile.FASTAPI
    assert config.paths == Paths(token="/oauth/token", me="/me", protected=("/a", "/b"))
    assert config.primary == Credentials("alice", "alice-pw")
    assert config.second == Credentials("carol", "carol-pw")
    assert config.disabled == Credentials("bob", "plain")
    assert config.keys.hs_secret == "s" * 40


def test_flags_override_the_file_and_the_env_password_overrides_the_file(tmp_path: Path) -> None:
    flags = {"base_url": "https://api.example", "username": "zoe", "profile": "rfc", "me_path": "/whoami"}
    config = build_config(flags, {**ENV, PASSWORD_ENV: "from-env"}, write(tmp_path, FILE))
    assert (config.base_url, config.primary, config.profile) == (
        "https://api.example",
        Credentials("zoe", "from-env"),
        Profile.RFC,
    )
    assert config.paths.me == "/whoami"
    assert build_config({**flags, "password": "from-flag"}, ENV, write(tmp_path, FILE)).primary.password == "from-flag"


def test_defaults_without_a_file() -> None:
    config = build_config({"base_url": "http://127.0.0.1:8000", "username": "u"}, {PASSWORD_ENV: "p"})
    assert config.paths == Paths()
    assert config.profile is Profile.RFC
    assert config.second is None and config.disabled is None
    assert not config.strict


@pytest.mark.parametrize(
    ("text", "flags", "env", "message"),
    [
        (
            "base_url: http://x\nusers: {primary: {username: a, password: b}}\nbogus: 1\n",
            {},
            {},
            "unknown key 'bogus'.*valid keys: allow_destructive, base_url",
        ),
        ("users: {primary: {username: a, pasword: b}}\n", {}, {}, "unknown key users.primary.'pasword'.*password"),
        ("users: {primary: {username: a, password: '${NOPE}'}}\n", {}, {}, r"\$\{NOPE\}.*not set"),
        ("[1, 2]\n", {}, {}, "mapping at the top level"),
        ("base_url: [unclosed\n", {}, {}, "not valid YAML"),
        (PRIMARY, {}, {}, "no target: pass --base-url"),
        ("base_url: http://x\n", {}, {}, "no username"),
        ("base_url: http://x\nusers: {primary: {username: a}}\n", {}, {}, f"set {PASSWORD_ENV}"),
        ("base_url: ftp://x\n" + PRIMARY, {}, {}, "not an http"),
        (
            "base_url: http://x\nprofile: strict\nusers: {primary: {username: a, password: b}}\n",
            {},
            {},
            "unknown profile",
        ),
        (
            "base_url: http://x\npaths: {me: users/me}\nusers: {primary: {username: a, password: b}}\n",
            {},
            {},
            "starting with '/'",
        ),
        (
            "base_url: http://x\nusers: {primary: {username: a, password: b}, second: {username: c}}\n",
            {},
            {},
            "users.second",
        ),
        ("base_url: http://x\nlevel: extreme\n" + PRIMARY, {}, {}, "unknown level"),
        ("base_url: http://x\nmax_wait: -1\n" + PRIMARY, {}, {}, "max_wait"),
        ("base_url: http://x\ntimeout: 0\n" + PRIMARY, {}, {}, "timeout"),
        ("base_url: http://x\ncontract: kit:0.9\n" + PRIMARY, {}, {}, "known versions are 1.0.0, 1.1.0"),
        ("base_url: http://x\ncontract: absent.yaml\n" + PRIMARY, {}, {}, "contract file absent.yaml does not exist"),
        ("base_url: http://x\nidentity: ''\n" + PRIMARY, {}, {}, "identity must name the member"),
        ("base_url: http://x\nidentity: user..email\n" + PRIMARY, {}, {}, "identity must name the member"),
        ("base_url: http://x\nclaims: {iss: 7}\n" + PRIMARY, {}, {}, "claims.iss must be the non-empty string"),
        ("base_url: http://x\nclaims: {sub: a}\n" + PRIMARY, {}, {}, "unknown key claims.'sub'.*aud, iss"),
    ],
)
def test_invalid_configuration_is_a_config_error_naming_the_fix(
    tmp_path: Path, text: str, flags: dict[str, str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(flags, env, write(tmp_path, text))


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        build_config({}, {}, tmp_path / "absent.yaml")


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    config = build_config({}, ENV, write(tmp_path, FILE))
    text = repr(config)
    for secret in ("alice-pw", "carol-pw", "plain", "s" * 40):
        assert secret not in text
    assert set(config.secrets.values()) == {"${PASSWORD}", "${SECOND_PASSWORD}", "${DISABLED_PASSWORD}", "${HS_SECRET}"}


def test_the_throwaway_account_and_the_destructive_switch(tmp_path: Path) -> None:
    text = FILE.replace("keys:", "allow_destructive: true\nkeys:").replace(
        "  disabled:", '  throwaway: {username: eve, password: "${EVE_PASSWORD}"}\n  disabled:'
    )
    config = build_config({}, {**ENV, "EVE_PASSWORD": "eve-pw"}, write(tmp_path, text))
    assert config.allow_destructive and config.throwaway == Credentials("eve", "eve-pw")
    assert config.secrets["eve-pw"] == "${THROWAWAY_PASSWORD}"


def test_identity_and_the_claims_tokens_carry(tmp_path: Path) -> None:
    text = "base_url: http://x\nidentity: email\nclaims: {iss: https://issuer.example, aud: api}\n" + PRIMARY
    config = build_config({}, {}, write(tmp_path, text))
    assert (config.identity, config.issuer, config.audience) == ("email", "https://issuer.example", "api")
    flags = {"identity": "profile.login", "issuer": "other", "audience": "x"}
    config = build_config(flags, {}, write(tmp_path, text))
    assert (config.identity, config.issuer, config.audience) == ("profile.login", "other", "x")
    assert build_config({}, {}, write(tmp_path, "base_url: http://x\n" + PRIMARY)).identity is None
