"""Asymmetric signing: RS256, ES256 and EdDSA tokens, the published JWK Set, and key rotation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi.testclient import TestClient

from reference_impl.errors import SettingsError
from reference_impl.signing_keys import public_jwk, thumbprint

from ..conftest import AppFactory, bearer, login

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}
KEYS = {
    "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EdDSA": ed25519.Ed25519PrivateKey.generate,
}


def pem_file(path: Path, key: Any) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def client_for(make_app: AppFactory, contract_validator: Any, **settings: Any) -> TestClient:
    client = TestClient(make_app(secret_key=None, **settings), base_url="http://127.0.0.1")
    client.event_hooks = {"request": [], "response": [contract_validator.validate_response]}
    return client


@pytest.mark.parametrize("algorithm", KEYS)
def test_asymmetric_tokens_verify_and_their_key_is_published(
    algorithm: str, make_app: AppFactory, tmp_path: Path, contract_validator: Any
) -> None:
    key = KEYS[algorithm]()
    client = client_for(
        make_app, contract_validator, algorithm=algorithm, private_key_file=pem_file(tmp_path / "k.pem", key)
    )
    token = login(client)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == algorithm and header["typ"] == "at+jwt"
    assert header["kid"] == thumbprint(public_jwk(key.public_key()))
    assert client.get("/users/me", headers=bearer(token)).status_code == 200
    jwks = client.get("/.well-known/jwks.json").json()
    assert [k["kid"] for k in jwks["keys"]] == [header["kid"]]
    assert not PRIVATE_MEMBERS & set(jwks["keys"][0])
    published = jwt.PyJWK(jwks["keys"][0])
    claims = jwt.decode(token, published.key, algorithms=[algorithm], audience="jwt-reference-api")
    assert claims["sub"] == "bob"


def test_an_hmac_server_publishes_an_empty_key_set(client: TestClient) -> None:
    assert client.get("/.well-known/jwks.json").json() == {"keys": []}


def test_rotation_keeps_old_tokens_valid_until_the_old_key_is_removed(
    make_app: AppFactory, tmp_path: Path, contract_validator: Any
) -> None:
    old, new = pem_file(tmp_path / "old.pem", KEYS["ES256"]()), pem_file(tmp_path / "new.pem", KEYS["ES256"]())
    before = client_for(make_app, contract_validator, algorithm="ES256", private_key_file=old)
    old_token = login(before)
    rotating = client_for(
        make_app, contract_validator, algorithm="ES256", private_key_file=new, verify_key_files=(old,)
    )
    assert rotating.get("/users/me", headers=bearer(old_token)).status_code == 200
    assert len(rotating.get("/.well-known/jwks.json").json()["keys"]) == 2
    new_token = login(rotating)
    assert jwt.get_unverified_header(new_token)["kid"] != jwt.get_unverified_header(old_token)["kid"]
    after = client_for(make_app, contract_validator, algorithm="ES256", private_key_file=new)
    refused = after.get("/users/me", headers=bearer(old_token))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    assert after.get("/users/me", headers=bearer(new_token)).status_code == 200


def test_hs256_with_the_public_key_as_secret_is_refused(
    make_app: AppFactory, tmp_path: Path, contract_validator: Any
) -> None:
    key = KEYS["RS256"]()
    client = client_for(
        make_app, contract_validator, algorithm="RS256", private_key_file=pem_file(tmp_path / "k.pem", key)
    )
    claims = jwt.decode(login(client), options={"verify_signature": False})
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    from ..jwt_craft import sign

    kid = thumbprint(public_jwk(key.public_key()))
    forged = sign({"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims, public_pem)
    assert client.get("/users/me", headers=bearer(forged)).status_code == 401


@pytest.mark.parametrize(
    ("algorithm", "key", "message"),
    [
        ("ES256", lambda: KEYS["RS256"](), "a key for RS256, not ES256"),
        ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "too small"),  # noqa: S505
        ("EdDSA", lambda: ec.generate_private_key(ec.SECP384R1()), "unsupported key"),
    ],
)
def test_a_key_that_does_not_fit_is_a_clear_settings_error(
    make_app: AppFactory, tmp_path: Path, algorithm: str, key: Any, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        make_app(secret_key=None, algorithm=algorithm, private_key_file=pem_file(tmp_path / "k.pem", key()))


def test_a_missing_or_garbled_private_key_file_is_a_clear_settings_error(make_app: AppFactory, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="PRIVATE_KEY_FILE"):
        make_app(secret_key=None, algorithm="ES256")
    with pytest.raises(SettingsError, match="cannot read"):
        make_app(secret_key=None, algorithm="ES256", private_key_file=tmp_path / "absent.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(SettingsError, match="not an unencrypted PEM"):
        make_app(secret_key=None, algorithm="ES256", private_key_file=tmp_path / "junk.pem")
