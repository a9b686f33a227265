"""Signing as the target's issuer does: with its HMAC key, its PEM private key, or the test issuer's keys.

The checks that mint tokens with chosen claims or headers (JWT-CLM-*, some JWT-ALG-*, BEARER-001's
expired token) take their signer from here, so each works with whichever key the run holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from .context import Context
from .forge import HMAC_DIGESTS, ParsedToken, b64url_decode, b64url_encode, encode_json, hmac_sign
from .issuer.keys import IssuerError, PrivateKey
from .issuer.mint import signer

Sign = Callable[[bytes], bytes]


def _pem_key(path: Path) -> PrivateKey | None:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return key if isinstance(key, PrivateKey) else None


def _private_key(ctx: Context, token: ParsedToken) -> PrivateKey | None:
    """The private key behind ``token``: the test issuer's key of its kid (issuer mode), or --private-key-file."""
    issuer = ctx.state.issuer
    if issuer is not None:
        kid = (token.header or {}).get("kid")
        try:
            found = issuer.key(kid) if isinstance(kid, str) else None
        except IssuerError:
            found = None
        if found is not None:
            return found[1]
    path = ctx.config.keys.private_key_file
    return _pem_key(path) if path is not None else None


def signer_for(ctx: Context, token: ParsedToken, alg: str | None = None) -> Sign | None:
    """A signer of ``alg`` (default: the token's own) with the key the run holds for ``token``; ``None`` if none."""
    alg = alg or token.alg
    if not alg:
        return None
    if alg in HMAC_DIGESTS:
        secret = ctx.signing_key
        if secret is None or token.alg not in HMAC_DIGESTS:
            return None
        return lambda data: b64url_decode(hmac_sign(data, secret, alg))
    key = _private_key(ctx, token)
    return signer(key, alg) if key is not None else None  # None: the key cannot make this algorithm's signatures


def can_sign(ctx: Context) -> bool:
    """The run holds a key the target signs with (HMAC secret, private key, or issuer mode)."""
    return ctx.signing_key is not None or ctx.config.keys.private_key_file is not None or ctx.state.issuer is not None


def signed(header: dict[str, object], payload_segment: str, signer: Sign) -> str:
    """A compact JWS of ``header`` over an existing payload segment."""
    signing_input = f"{encode_json(header)}.{payload_segment}"
    return f"{signing_input}.{b64url_encode(signer(signing_input.encode()))}"


def signed_raw(header_json: bytes, payload_segment: str, signer: Sign) -> str:
    """A compact JWS whose header segment is exactly ``header_json`` (duplicate members and the like)."""
    signing_input = f"{b64url_encode(header_json)}.{payload_segment}"
    return f"{signing_input}.{b64url_encode(signer(signing_input.encode()))}"
