"""Hand-made JWTs for tests: JWT libraries refuse to make the broken ones we need."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def encode_segment(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def sign(header: dict[str, Any], claims: dict[str, Any], key: str | bytes, alg: str | None = None) -> str:
    """An HMAC-signed JWT with exactly this header and these claims (``alg`` picks the digest)."""
    digest = DIGESTS[alg or header["alg"]]
    signing_input = f"{encode_segment(header)}.{encode_segment(claims)}"
    key_bytes = key.encode() if isinstance(key, str) else key
    signature = hmac.new(key_bytes, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{encode_segment(header)}.{encode_segment(claims)}."


def claims_for(subject: str, *, issuer: str, audience: str, ttl: int = 300, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "exp": now + ttl,
        "iat": now,
        "jti": uuid.uuid4().hex,
    }
    for name, value in changes.items():
        if value is REMOVE:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


REMOVE: Any = object()
AT_HEADER = {"alg": "HS256", "typ": "at+jwt"}
