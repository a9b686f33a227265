"""Broken token verifiers: the reference app with ``Tokens`` replaced by one that has a single defect."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
from fastapi import FastAPI

from reference_impl.security import InvalidTokenError, Tokens

from .harness import with_components

Verifier = Callable[[Tokens, str], dict[str, Any]]


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def unverified(token: str) -> dict[str, Any] | None:
    """The claims without any signature check (what a broken server reads); None if unreadable."""
    try:
        claims = json.loads(_b64decode(token.split(".")[1]))
    except (ValueError, IndexError):
        return None
    return claims if isinstance(claims, dict) else None


def header_of(token: str, first_wins: bool = False) -> dict[str, Any]:
    """The token's header, or {} when it is not a JSON object (a twin's defect is narrow, not a crash)."""
    try:
        return _parse_header(token, first_wins)
    except (ValueError, IndexError, TypeError):
        return {}


def _parse_header(token: str, first_wins: bool) -> dict[str, Any]:
    raw = _b64decode(token.split(".")[0])
    if first_wins:
        pairs = json.loads(raw, object_pairs_hook=lambda items: items)
        found: dict[str, Any] = {}
        for key, value in pairs:
            found.setdefault(key, value)
        return found
    header: dict[str, Any] = json.loads(raw)
    return header


class TwinTokens(Tokens):
    """Tokens whose verification first asks ``defect``: a dict of claims accepts, None defers to the real check."""

    def __init__(self, base: Tokens, defect: Callable[[Tokens, str], dict[str, Any] | None]) -> None:
        self.__dict__.update(base.__dict__)
        self._defect = defect

    def verify(self, token: str) -> dict[str, Any]:  # no cache: each defect sees every token
        try:
            accepted = self._defect(self, token)
        except InvalidTokenError:
            raise
        except Exception as exc:  # a crash inside the defect is a 500, as on a real broken server
            raise RuntimeError("broken verifier crashed") from exc
        if accepted is not None:
            return accepted
        return self._verify_uncached(token)


def twin(app: FastAPI, defect: Callable[[Tokens, str], dict[str, Any] | None]) -> FastAPI:
    return with_components(app, tokens=TwinTokens(app.state.reference.tokens, defect))


def hs256_valid(tokens: Tokens, signing_input: str, signature: str, length: int | None = None) -> bool:
    expected = hmac.new(tokens._key.encode(), signing_input.encode(), hashlib.sha256).digest()
    given = _b64decode(signature) if signature else b""
    if length is not None:
        return hmac.compare_digest(expected[:length], given[:length])
    return hmac.compare_digest(expected, given)


def decode_without_signature(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})
