"""Login throttling: after too many failed logins for a username, or from a client address, within
a window, further attempts get 429 with Retry-After until the oldest failure leaves the window.

No permanent lockout; unknown usernames are counted like known ones (so throttling tells nothing
about which accounts exist); a correct password is refused too while throttled, and is not even
checked, so the answer reveals nothing about it.

The failures are rows of the server's database, so every worker (and every process on the same
database) counts the same ones. An attempt is counted before its password is checked, in one write
transaction that first counts the earlier ones: concurrent attempts on any number of workers cannot
exceed the limit together. A successful login then removes its own row and the username's earlier
failures. Nothing is ever evicted to make room: a row leaves the table only when it has left the
window, so no flood of made-up usernames or addresses can reset anyone's counter. The table stays
bounded by what the window admits: at most ``limit`` rows per key, all younger than the window.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .models import MAX_USERNAME_CHARS
from .store import SqliteStore

USERNAME, CLIENT = "username", "client"
MAX_KEY_CHARS = MAX_USERNAME_CHARS  # longer keys are stored as their SHA-256 digest
PURGE_INTERVAL = 60  # seconds: at most one purge of lapsed rows per process in this interval

_SCHEMA = """
CREATE TABLE IF NOT EXISTS login_failures (
    id         INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('username', 'client')),
    key        TEXT    NOT NULL,
    failed_at  INTEGER NOT NULL      -- Unix time of the attempt in milliseconds; purged once it has left the window
);
CREATE INDEX IF NOT EXISTS login_failures_by_key ON login_failures (kind, key, failed_at);
CREATE INDEX IF NOT EXISTS login_failures_by_time ON login_failures (failed_at);
"""
_RECENT = "SELECT count(*), min(failed_at) FROM login_failures WHERE kind = ? AND key = ? AND failed_at > ?"
_INSERT = "INSERT INTO login_failures (kind, key, failed_at) VALUES (?, ?, ?) RETURNING id"


def stored_key(key: str) -> str:
    """``key`` as stored: itself, or its digest when it is longer than any genuine username."""
    if len(key) <= MAX_KEY_CHARS:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """A login attempt let through and counted as a failure until ``LoginThrottle.succeeded`` says otherwise."""

    username: str
    row_ids: tuple[int, ...]


class ThrottleStore(SqliteStore):
    """The ``login_failures`` table (the server's database file, its own connection)."""

    SCHEMA = _SCHEMA


class LoginThrottle:
    """One limit for usernames, one (more generous) for client addresses, over one sliding window."""

    def __init__(
        self,
        database: Path,
        per_username: int,
        per_client: int,
        window_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock``: Unix time, the same in every process that shares ``database``."""
        self.limits = {USERNAME: per_username, CLIENT: per_client}
        self.window_s, self.clock = window_s, clock
        self.enabled = per_username > 0 or per_client > 0
        self.store = ThrottleStore(database) if self.enabled else None
        self._next_purge = 0  # Unix time in milliseconds

    def _keys(self, username: str, client: str) -> list[tuple[str, str, int]]:
        pairs = ((USERNAME, username), (CLIENT, client))
        return [(kind, stored_key(key), self.limits[kind]) for kind, key in pairs if self.limits[kind] > 0]

    def attempt(self, username: str, client: str) -> tuple[int, Attempt | None]:
        """(seconds to wait, None) when throttled; else (0, the attempt, already counted as a failure).

        Blocking (a database write): async callers run it in a worker thread.
        """
        if self.store is None:
            return 0, Attempt(username, ())
        keys = self._keys(username, client)
        now = self._now_ms()
        with self.store._locked() as conn:  # a throttled flood is answered by reads, without the write lock
            wait = self._wait(conn, keys, now)
        if wait:
            return wait, None
        with self.store._transaction() as conn:  # counted again under the lock: concurrent attempts stay exact
            wait = self._wait(conn, keys, now)
            if wait:
                return wait, None
            row_ids = tuple(_inserted(conn, kind, key, now) for kind, key, _ in keys)
        self._maybe_purge(now)
        return 0, Attempt(username, row_ids)

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: the attempt is not a failure, and the username's count starts again."""
        if self.store is None:
            return
        with self.store._transaction() as conn:
            self._forget(conn, attempt)
            if self.limits[USERNAME] > 0:
                conn.execute(
                    "DELETE FROM login_failures WHERE kind = ? AND key = ?", (USERNAME, stored_key(attempt.username))
                )

    def abandoned(self, attempt: Attempt) -> None:
        """The attempt ended before its password was judged (an error of the server): it is not counted."""
        if self.store is None or not attempt.row_ids:
            return
        with self.store._transaction() as conn:
            self._forget(conn, attempt)

    @staticmethod
    def _forget(conn: sqlite3.Connection, attempt: Attempt) -> None:
        for row_id in attempt.row_ids:
            conn.execute("DELETE FROM login_failures WHERE id = ?", (row_id,))

    def retry_after(self, username: str, client: str) -> int:
        """Seconds until ``username`` from ``client`` may try again; 0 when not throttled (read only)."""
        if self.store is None:
            return 0
        with self.store._locked() as conn:
            return self._wait(conn, self._keys(username, client), self._now_ms())

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _wait(self, conn: sqlite3.Connection, keys: list[tuple[str, str, int]], now: int) -> int:
        """Seconds until every key is under its limit again: its oldest failure leaves the window."""
        window = int(self.window_s * 1000)
        wait = 0
        for kind, key, limit in keys:
            count, oldest = conn.execute(_RECENT, (kind, key, now - window)).fetchone()
            if count >= limit:
                wait = max(wait, max(1, math.ceil((oldest + window - now) / 1000)))
        return wait

    def rows(self) -> int:
        """How many failures the table holds (lapsed ones included until the next purge)."""
        if self.store is None:
            return 0
        with self.store._locked() as conn:
            count: int = conn.execute("SELECT count(*) FROM login_failures").fetchone()[0]
        return count

    def purge(self) -> None:
        """Delete the failures that have left the window."""
        if self.store is None:
            return
        with self.store._locked() as conn:
            conn.execute(
                "DELETE FROM login_failures WHERE failed_at <= ?", (self._now_ms() - int(self.window_s * 1000),)
            )

    def _maybe_purge(self, now: int) -> None:
        if now < self._next_purge:
            return
        self._next_purge = now + PURGE_INTERVAL * 1000
        self.purge()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _inserted(conn: sqlite3.Connection, kind: str, key: str, now: int) -> int:
    row_id: int = conn.execute(_INSERT, (kind, key, now)).fetchone()[0]
    return row_id
