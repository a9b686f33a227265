"""The user store: a SQLite database file (WAL), parameterized SQL, one shared connection."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserStoreError
from .models import UserInDB

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id              INTEGER PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE,
    email           TEXT,
    full_name       TEXT,
    hashed_password TEXT    NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
"""
_COLUMNS = "username, email, full_name, hashed_password, disabled"
MAX_USERNAME_CHARS = 150


def _row_to_user(row: tuple[str, str | None, str | None, str, int]) -> UserInDB:
    # The schema already guarantees the types (NOT NULL, CHECK): no validation pass on the hot path.
    username, email, full_name, hashed_password, disabled = row
    return UserInDB.model_construct(
        username=username, email=email, full_name=full_name, hashed_password=hashed_password, disabled=bool(disabled)
    )


def validate_username(username: str) -> str:
    if not username or len(username) > MAX_USERNAME_CHARS or not username.isprintable() or username != username.strip():
        raise UserStoreError(
            f"invalid username {username!r}: use 1-{MAX_USERNAME_CHARS} printable characters, "
            "without leading or trailing spaces"
        )
    return username


class UserStore:
    """Users by name. Reads are microseconds on the open connection, so async code may call them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
            with self._locked() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise UserStoreError(
                f"cannot open the user database {path}: {exc}; point JWT_REF_DATABASE (or --database) at a "
                "writable SQLite file"
            ) from None

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    def close(self) -> None:
        with self._locked() as conn:
            conn.close()

    def get(self, username: str) -> UserInDB | None:
        if len(username) > MAX_USERNAME_CHARS:
            return None
        with self._locked() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE username = ?", (username,)).fetchone()  # noqa: S608
        return None if row is None else _row_to_user(row)

    def list(self) -> list[UserInDB]:
        with self._locked() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY username").fetchall()  # noqa: S608
        return [_row_to_user(row) for row in rows]

    def add(self, user: UserInDB) -> None:
        validate_username(user.username)
        try:
            with self._locked() as conn:
                conn.execute(
                    f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",  # noqa: S608
                    (user.username, user.email, user.full_name, user.hashed_password, int(user.disabled)),
                )
        except sqlite3.IntegrityError:
            raise UserStoreError(f"user {user.username!r} already exists") from None

    def set_disabled(self, username: str, disabled: bool = True) -> None:
        with self._locked() as conn:
            changed = conn.execute(
                "UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), username)
            ).rowcount
        if not changed:
            raise UserStoreError(f"no user named {username!r}")

    def update_hash(self, username: str, old_hash: str, new_hash: str) -> None:
        """Replace a hash after a successful login, unless it changed meanwhile."""
        with self._locked() as conn:
            conn.execute(
                "UPDATE users SET hashed_password = ? WHERE username = ? AND hashed_password = ?",
                (new_hash, username, old_hash),
            )

    def ping(self) -> bool:
        with self._locked() as conn:
            row = conn.execute("SELECT 1").fetchone()
        return bool(row == (1,))
