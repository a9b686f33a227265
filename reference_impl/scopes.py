"""The scopes this server defines (RFC 6749 §3.3) and their one canonical order.

A user carries the scopes it may be granted; an access token carries the scopes it was granted, in
its ``scope`` claim, space-delimited. ``admin`` is granted only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable

ME = "me"
ITEMS_READ = "items:read"
ADMIN = "admin"
KNOWN_SCOPES = (ME, ITEMS_READ, ADMIN)  # the canonical order of every list and scope string
DEFAULT_USER_SCOPES = (ME, ITEMS_READ)  # what a new user may be granted unless told otherwise
NOT_GRANTED_BY_DEFAULT = frozenset((ADMIN,))  # granted only when the token request asks for it


class UnknownScopeError(ValueError):
    """A scope this server does not define; the message names the valid ones."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"unknown scope {scope!r}: use one or more of {', '.join(KNOWN_SCOPES)}")
        self.scope = scope


def canonical(scopes: Iterable[str]) -> tuple[str, ...]:
    """``scopes`` without duplicates, in the canonical order; raises ``UnknownScopeError`` for an unknown one."""
    wanted = set(scopes)
    for scope in wanted:
        if scope not in KNOWN_SCOPES:
            raise UnknownScopeError(scope)
    return tuple(scope for scope in KNOWN_SCOPES if scope in wanted)


def parse(text: str) -> tuple[str, ...]:
    """A space-delimited scope string (extra spaces tolerated), canonicalized; ``UnknownScopeError`` as above."""
    return canonical(token for token in text.split(" ") if token)


def known_only(text: str) -> list[str]:
    """The known scopes of a stored scope string, in canonical order (anything else is dropped, never an error)."""
    present = text.split()
    return [scope for scope in KNOWN_SCOPES if scope in present]


def format_scope(scopes: Iterable[str]) -> str:
    """The space-delimited form (scopes already canonical)."""
    return " ".join(scopes)
