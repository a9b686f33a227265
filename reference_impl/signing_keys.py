"""Asymmetric signing keys (RS256, ES256, EdDSA): loading, key ids, and the public JWK Set.

The current key signs; keys configured as "verify only" still verify the tokens they signed until
they are removed (rotation). Every key is named by its RFC 7638 thumbprint (``kid``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .errors import SettingsError
from .settings import PREFIX

ASYMMETRIC_ALGORITHMS = ("RS256", "ES256", "EdDSA")
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _b64(number_or_bytes: int | bytes, length: int | None = None) -> str:
    data = (
        number_or_bytes
        if isinstance(number_or_bytes, bytes)
        else number_or_bytes.to_bytes(length or (number_or_bytes.bit_length() + 7) // 8, "big")
    )
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def algorithm_of(key: PublicKey) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise SettingsError("unsupported key: use RSA (2048+ bits), EC P-256 or Ed25519")


def public_jwk(key: PublicKey) -> dict[str, str]:
    """The key's public members only (RFC 7517, RFC 7518 §6, RFC 8037)."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"kty": "RSA", "n": _b64(numbers.n), "e": _b64(numbers.e)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": _b64(point.x, 32), "y": _b64(point.y, 32)}
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members, in lexicographic order, without whitespace."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canonical = json.dumps({name: jwk[name] for name in required}, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


@dataclass(frozen=True)
class VerifyKey:
    kid: str
    algorithm: str
    public_key: PublicKey

    def jwk(self) -> dict[str, str]:
        return {**public_jwk(self.public_key), "kid": self.kid, "use": "sig", "alg": self.algorithm}


@dataclass(frozen=True)
class KeySet:
    signing: PrivateKey
    current: VerifyKey
    verify_only: tuple[VerifyKey, ...]

    def by_kid(self, kid: object) -> VerifyKey | None:
        return next((k for k in (self.current, *self.verify_only) if k.kid == kid), None)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in (self.current, *self.verify_only)]}


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _load_private(path: Path) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(_read(path, "the private key"), password=None)
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise SettingsError(f"{path}: unsupported key type; use RSA, EC P-256 or Ed25519")
    return key


def _load_public(path: Path) -> PublicKey:
    data = _read(path, "the verify-only key")
    try:
        key: Any = serialization.load_pem_public_key(data)
    except ValueError:
        key = _load_private(path).public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise SettingsError(f"{path}: unsupported key type; use RSA, EC P-256 or Ed25519")
    return key


def _verify_key(public_key: PublicKey) -> VerifyKey:
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < 2048:
        raise SettingsError(f"an RSA key of {public_key.key_size} bits is too small: use 2048 bits or more")
    algorithm = algorithm_of(public_key)  # first: refuses unsupported curves before they are encoded
    return VerifyKey(thumbprint(public_jwk(public_key)), algorithm, public_key)


def load_key_set(algorithm: str, private_key_file: Path | None, verify_key_files: Sequence[Path]) -> KeySet:
    """The signing key for ``algorithm`` and the verify-only keys; ``SettingsError`` names the fix."""
    if private_key_file is None:
        raise SettingsError(f"{PREFIX}ALGORITHM={algorithm} needs {PREFIX}PRIVATE_KEY_FILE (a PEM private key)")
    signing = _load_private(private_key_file)
    current = _verify_key(signing.public_key())
    if current.algorithm != algorithm:
        raise SettingsError(
            f"{private_key_file} is a key for {current.algorithm}, not {algorithm}: "
            f"set {PREFIX}ALGORITHM={current.algorithm} or use a matching key"
        )
    verify_only = tuple(_verify_key(_load_public(path)) for path in verify_key_files)
    return KeySet(signing, current, tuple(k for k in verify_only if k.kid != current.kid))
