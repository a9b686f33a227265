"""Refresh tokens and revocations, kept in the server's database (they survive a restart).

Refresh tokens (RFC 6749 §6) are opaque random strings, stored only as SHA-256 hex digests. A
password login starts a family, whose id is the ``sid`` claim of every access token it yields; a
refresh marks its token used (atomically: two concurrent uses cannot both succeed) and issues the
next one of the family. A used token presented again revokes the family (RFC 9700 §4.14.2): its
refresh tokens are deleted and access tokens carrying its ``sid`` are refused until they expire. A
revoked access token's ``jti`` is refused until the token expires (RFC 7009).

Expired rows are purged lazily, at most once per ``PURGE_INTERVAL`` seconds, by a write.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .database import Database, Session
from .scopes import format_scope, known_only
from .store import DatabaseStore

REFRESH_TOKEN_BYTES = 32
PURGE_INTERVAL = 300  # seconds

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT    PRIMARY KEY,    -- SHA-256 hex of the token; the token itself is never stored
    family_id  TEXT    NOT NULL,       -- the sid of the access tokens the family yields
    username   TEXT    NOT NULL,
    scope      TEXT    NOT NULL,       -- the original grant, space-delimited, canonical order
    expires_at INTEGER NOT NULL,       -- Unix time
    used       INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1))
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_by_family ON refresh_tokens (family_id)",
    """CREATE TABLE IF NOT EXISTS revoked_families (
    family_id  TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL        -- when its last access token has expired: purged after
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS revoked_access_tokens (
    jti        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL        -- the token's exp plus the leeway: purged after
) WITHOUT ROWID""",
)
# The same tables in PostgreSQL's words: 64-bit times, and no WITHOUT ROWID (its tables have no rowid).
_POSTGRES_SCHEMA = tuple(
    statement.replace(" WITHOUT ROWID", "")
    .replace("INTEGER NOT NULL,       -- Unix", "BIGINT  NOT NULL,       -- Unix")
    .replace("expires_at INTEGER", "expires_at BIGINT ")
    for statement in _SCHEMA
)
_IS_REVOKED = (
    "SELECT 1 FROM revoked_access_tokens WHERE jti = ? UNION ALL SELECT 1 FROM revoked_families WHERE family_id = ? "
    "LIMIT 1"
)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class RefreshRecord:
    """What the database holds about one refresh token."""

    token_hash: str
    family_id: str
    username: str
    scope: tuple[str, ...]
    expires_at: int
    used: bool


class GrantStore(DatabaseStore):
    """Refresh-token families, revoked families and revoked access tokens.

    The writes that concern one family (a rotation, the end of the family) take the family's lock, so
    that on PostgreSQL, where writers do not wait for each other otherwise, a rotation and the end of
    its family happen one after the other (SQLite serializes every writer anyway).
    """

    SCHEMA = _SCHEMA
    POSTGRES_SCHEMA = _POSTGRES_SCHEMA

    def __init__(
        self,
        database: Database | Path | str,
        refresh_token_ttl: int,
        access_token_lifetime: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``access_token_lifetime``: how long an access token may be accepted after it is issued (TTL + leeway)."""
        super().__init__(database)
        self.refresh_token_ttl = refresh_token_ttl
        self.access_token_lifetime = access_token_lifetime
        self.clock = clock
        self._next_purge = 0.0
        self._fetchone = self.database.fetchone
        greatest = self.database.greatest  # an upsert keeps the later expiry
        self._revoke_family_sql = _upsert_later_expiry("revoked_families", "family_id", greatest)
        self._revoke_access_sql = _upsert_later_expiry("revoked_access_tokens", "jti", greatest)

    def now(self) -> int:
        return int(self.clock())

    def _insert_token(self, conn: Session, family_id: str, username: str, scope: tuple[str, ...]) -> str:
        """A new refresh token of the family, stored as its digest; returns the token."""
        token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
        conn.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, username, scope, expires_at) VALUES (?, ?, ?, ?, ?)",
            (token_digest(token), family_id, username, format_scope(scope), self.now() + self.refresh_token_ttl),
        )
        return token

    def start_family(self, username: str, scope: tuple[str, ...]) -> tuple[str, str]:
        """A new family for a password grant: (family id, its first refresh token)."""
        family_id = secrets.token_hex(16)
        with self.transaction() as session:
            token = self._insert_token(session, family_id, username, scope)
        self._maybe_purge()
        return family_id, token

    def find(self, token: str) -> RefreshRecord | None:
        """The record of a refresh token (used or not, expired or not), or None if there is none."""
        digest = token_digest(token)
        row = self.fetchone(
            "SELECT family_id, username, scope, expires_at, used FROM refresh_tokens WHERE token_hash = ?", (digest,)
        )
        if row is None:
            return None
        family_id, username, scope, expires_at, used = row
        return RefreshRecord(digest, family_id, username, tuple(known_only(scope)), expires_at, bool(used))

    def rotate(self, record: RefreshRecord) -> str | None:
        """Mark ``record`` used and return its successor in the family (same scope, a new expiry).

        None when the token was used (or its family revoked) meanwhile: only one of two concurrent
        refreshes with one token can win, and the caller treats the other as a reuse.
        """
        with self.transaction(_family_lock(record.family_id)) as session:
            changed = session.execute(
                "UPDATE refresh_tokens SET used = 1 WHERE token_hash = ? AND used = 0", (record.token_hash,)
            ).rowcount
            if changed != 1:
                return None
            successor = self._insert_token(session, record.family_id, record.username, record.scope)
        self._maybe_purge()
        return successor

    def revoke_family(self, family_id: str) -> None:
        """End the family: its refresh tokens are deleted, its access tokens refused until they expire."""
        with self.transaction(_family_lock(family_id)) as session:
            session.execute(self._revoke_family_sql, (family_id, self.now() + self.access_token_lifetime))
            session.execute("DELETE FROM refresh_tokens WHERE family_id = ?", (family_id,))
        self._maybe_purge()

    def revoke_refresh_token(self, token: str) -> bool:
        """Revoke the family of ``token`` if it is one of ours (whatever its state); False if it is not."""
        record = self.find(token)
        if record is None:
            return False
        self.revoke_family(record.family_id)
        return True

    def revoke_access_token(self, jti: str, expires_at: int) -> None:
        """Refuse the access token ``jti`` until ``expires_at`` (its exp plus the leeway)."""
        self.execute(self._revoke_access_sql, (jti, expires_at))
        self._maybe_purge()

    def is_revoked(self, jti: str, sid: str) -> bool:
        """Whether the access token ``jti`` or its family ``sid`` was revoked: two primary-key lookups."""
        return self._fetchone(_IS_REVOKED, (jti, sid)) is not None

    def purge(self, now: int | None = None) -> None:
        """Delete the rows that can no longer matter: expired refresh tokens and lapsed revocations."""
        now = self.now() if now is None else now
        for table in ("refresh_tokens", "revoked_families", "revoked_access_tokens"):
            self.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,))  # noqa: S608

    def _maybe_purge(self) -> None:
        now = self.now()
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_INTERVAL
        self.purge(now)


def _family_lock(family_id: str) -> str:
    return "jwt-reference:family:" + family_id


def _upsert_later_expiry(table: str, key: str, greatest: str) -> str:
    """Insert a revocation, or keep the later of the two expiries: tables and function are names, never data."""
    conflict = f"ON CONFLICT ({key}) DO UPDATE SET expires_at = {greatest}({table}.expires_at, excluded.expires_at)"
    return f"INSERT INTO {table} ({key}, expires_at) VALUES (?, ?) {conflict}"  # noqa: S608
