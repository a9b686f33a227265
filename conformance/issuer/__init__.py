"""A test issuer for APIs that trust an identity provider: keys in a directory, discovery, JWKS, minting.

Public API: :func:`mint` (tokens signed by the issuer's keys), :func:`ensure_keys` and :func:`rotate`
(the keys directory), :func:`public_jwks` and :func:`read_state` (what the issuer publishes).
"""

from __future__ import annotations

from .keys import (
    ALGORITHMS,
    STATE_FILE,
    IssuerError,
    IssuerState,
    KeyEntry,
    ensure_keys,
    public_jwks,
    read_state,
    rotate,
)
from .mint import mint

__all__ = [
    "ALGORITHMS",
    "STATE_FILE",
    "IssuerError",
    "IssuerState",
    "KeyEntry",
    "ensure_keys",
    "mint",
    "public_jwks",
    "read_state",
    "rotate",
]
