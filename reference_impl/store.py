"""The user store: a SQLite database file (WAL), parameterized SQL, one shared connection."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import DatabaseUnavailableError, DuplicateUserError, UserStoreError
from .models import MAX_USERNAME_CHARS, UserInDB, username_problem
from .scopes import DEFAULT_USER_SCOPES, format_scope, known_only

__all__ = ["MAX_USERNAME_CHARS", "SqliteStore", "UserStore", "validate_username"]

_DEFAULT_SCOPES = format_scope(DEFAULT_USER_SCOPES)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS users (
    id              INTEGER PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE,
    email           TEXT,
    full_name       TEXT,
    hashed_password TEXT    NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    scopes          TEXT    NOT NULL DEFAULT '{_DEFAULT_SCOPES}'
);
"""
# Databases made before contract 1.3.0 have no scopes column: their users get the default scopes.
_ADD_SCOPES = f"ALTER TABLE users ADD COLUMN scopes TEXT NOT NULL DEFAULT '{_DEFAULT_SCOPES}'"
_COLUMNS = "username, email, full_name, hashed_password, disabled, scopes"
_GET = f"SELECT {_COLUMNS} FROM users WHERE username = ?"  # noqa: S608
MAX_REMEMBERED_ROWS = 4096
_Row = tuple[str, str | None, str | None, str, int, str]


def _row_to_user(row: _Row) -> UserInDB:
    # The schema already guarantees the types (NOT NULL, CHECK): no validation pass on the hot path.
    username, email, full_name, hashed_password, disabled, scopes = row
    return UserInDB.model_construct(
        username=username,
        email=email,
        full_name=full_name,
        hashed_password=hashed_password,
        disabled=bool(disabled),
        scopes=known_only(scopes),
    )


def validate_username(username: str) -> str:
    """The contract's rule (``UserCreate.username``); the CLI is stricter (printable characters only)."""
    problem = username_problem(username)
    if problem is not None:
        raise UserStoreError(problem)
    return username


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken at once (BEGIN IMMEDIATE): committed on success, rolled back on error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# SQLite's primary result codes that mean "not now" rather than "wrong SQL": busy or locked by
# another connection, a read-only file or directory, an I/O error, a full disk, a file that cannot be opened.
_UNAVAILABLE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)


def unavailable(exc: sqlite3.Error) -> DatabaseUnavailableError | None:
    """``exc`` as a ``DatabaseUnavailableError`` when it is a condition of the moment; None for a defect."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None or code & 0xFF not in _UNAVAILABLE_CODES:
        return None
    return DatabaseUnavailableError(f"the database cannot be used just now: {exc}")


@contextmanager
def translated() -> Iterator[None]:
    """Raise SQLite's errors of the moment as ``DatabaseUnavailableError``; others (defects) as they are."""
    try:
        yield
    except sqlite3.Error as exc:
        error = unavailable(exc)
        if error is None:
            raise
        raise error from exc


WAL_SWITCH_ATTEMPTS = 50  # x 0.1 s: how long a new connection waits for another to finish switching to WAL


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. The switch takes an exclusive lock and does not wait on the busy timeout: when
    several connections open a database in the rollback journal at once, the losers retry."""
    for attempt in range(WAL_SWITCH_ATTEMPTS):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_SWITCH_ATTEMPTS - 1:
                raise
            time.sleep(0.1)


class SqliteStore:
    """One open connection to the database file, shared by threads under a lock; subclasses add tables."""

    SCHEMA = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
            with self._locked() as conn:
                _enable_wal(conn)
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.executescript(self.SCHEMA)
                self._migrate(conn)
        except (sqlite3.Error, OSError) as exc:
            raise UserStoreError(
                f"cannot open the user database {path}: {exc}; point JWT_REF_DATABASE (or --database) at a "
                "writable SQLite file"
            ) from None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring an older database up to date (called once, on open, with the lock held)."""

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock, translated():
            yield self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection, locked, inside a write transaction (see ``immediate``)."""
        with self._locked() as conn, immediate(conn):
            yield conn

    def close(self) -> None:
        with self._locked() as conn:
            conn.close()

    def ping(self) -> bool:
        with self._locked() as conn:
            row = conn.execute("SELECT 1").fetchone()
        return bool(row == (1,))


class UserStore(SqliteStore):
    """Users by name. Reads are microseconds on the open connection, so async code may call them."""

    SCHEMA = _SCHEMA

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        # The user built from each row read lately, keyed by the whole row: the row is still read on
        # every call (a disabled or changed user takes effect at once), only building the object again
        # is spared. Users are never modified in place.
        self._by_row: dict[_Row, UserInDB] = {}

    def _migrate(self, conn: sqlite3.Connection) -> None:
        def has_scopes() -> bool:
            return any(row[1] == "scopes" for row in conn.execute("PRAGMA table_info(users)"))

        if has_scopes():
            return
        with immediate(conn):  # checked again inside: another process may have migrated meanwhile
            if not has_scopes():
                conn.execute(_ADD_SCOPES)

    def get(self, username: str) -> UserInDB | None:
        """The user named ``username`` as the database holds it now (one indexed read, on every call)."""
        if len(username) > MAX_USERNAME_CHARS:
            return None
        try:
            with self._lock:  # the lock itself, not _locked(): this runs on every protected request
                row: _Row | None = self._conn.execute(_GET, (username,)).fetchone()
        except sqlite3.Error as exc:
            raise unavailable(exc) or exc from exc
        if row is None:
            return None
        user = self._by_row.get(row)
        if user is None:
            if len(self._by_row) >= MAX_REMEMBERED_ROWS:
                self._by_row.clear()
            user = self._by_row[row] = _row_to_user(row)
        return user

    def list(self) -> list[UserInDB]:
        with self._locked() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY username").fetchall()  # noqa: S608
        return [_row_to_user(row) for row in rows]

    def add(self, user: UserInDB) -> None:
        validate_username(user.username)
        values = (
            user.username,
            user.email,
            user.full_name,
            user.hashed_password,
            int(user.disabled),
            format_scope(user.scopes),
        )
        try:
            with self._locked() as conn:
                conn.execute(f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", values)  # noqa: S608
        except sqlite3.IntegrityError:
            raise DuplicateUserError(f"user {user.username!r} already exists") from None

    def set_disabled(self, username: str, disabled: bool = True) -> None:
        with self._locked() as conn:
            changed = conn.execute(
                "UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), username)
            ).rowcount
        if not changed:
            raise UserStoreError(f"no user named {username!r}")

    def delete(self, username: str) -> None:
        with self._locked() as conn:
            changed = conn.execute("DELETE FROM users WHERE username = ?", (username,)).rowcount
        if not changed:
            raise UserStoreError(f"no user named {username!r}")

    def update_hash(self, username: str, old_hash: str, new_hash: str) -> None:
        """Replace a hash after a successful login, unless it changed meanwhile."""
        with self._locked() as conn:
            conn.execute(
                "UPDATE users SET hashed_password = ? WHERE username = ? AND hashed_password = ?",
                (new_hash, username, old_hash),
            )
