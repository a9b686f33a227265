"""The database the stores keep their tables in: a SQLite file (the default) or PostgreSQL (a URL).

The stores write their SQL once, with ``?`` parameters, and run it through a ``Database``:

- ``fetchone`` / ``fetchall`` / ``execute``: one statement, committed at once (the hot reads are
  ``fetchone``: on SQLite a lock and a statement on the open connection, nothing more);
- ``transaction(*locks)``: several statements that commit together. On SQLite the transaction is
  taken for writing at once (``BEGIN IMMEDIATE``), which serializes every writer of the file; on
  PostgreSQL each name in ``locks`` is taken as a transaction-level advisory lock first (in sorted
  order, so two transactions never wait on each other), which serializes the transactions that
  name it, in every process on the database;
- ``create_schema``: the tables, created (and migrated) by one process at a time.

Errors of the moment (busy, locked, read-only, unreachable, a lost connection, no connection free in
time) are raised as ``DatabaseUnavailableError``; the others (defects) as they are.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from .errors import DatabaseUnavailableError, SettingsError, UserStoreError

Dialect = Literal["sqlite", "postgresql"]
Params = Sequence[Any]
POSTGRES_SCHEMES = ("postgresql", "postgres")
POSTGRES_INSTALL = "pip install 'jwt-auth-kit[postgresql]'"


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Session(Protocol):
    """One connection inside a transaction (or a single statement)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...


class IntegrityViolation(Exception):
    """A constraint refused a write (e.g. a unique name taken)."""


class Database(ABC):
    """A SQLite file or a PostgreSQL database, used by the stores through one small interface."""

    dialect: Dialect
    greatest: str  # the SQL function of the larger of two values: max() in SQLite, GREATEST() in PostgreSQL
    description: str  # where the data lives, for messages (never a password)
    remote = False  # True: every call is a network round trip, which async code makes off the event loop

    @abstractmethod
    def fetchone(self, sql: str, params: Params = ()) -> Any: ...

    @abstractmethod
    def fetchall(self, sql: str, params: Params = ()) -> list[Any]: ...

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement, committed; the number of rows it changed."""

    @abstractmethod
    def transaction(self, *locks: str) -> Any:
        """A context manager: a ``Session`` in a write transaction, committed on success, rolled back on error."""

    @abstractmethod
    def create_schema(self, statements: Sequence[str], migrate: Callable[[Session], None]) -> None:
        """Run ``statements`` (``CREATE ... IF NOT EXISTS``), then ``migrate``, one process at a time."""

    @abstractmethod
    def close(self) -> None: ...

    def ping(self) -> bool:
        return bool(self.fetchone("SELECT 1") == (1,))


# --- SQLite -----------------------------------------------------------------------------------------------

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
    """Raise SQLite's errors of the moment as ``DatabaseUnavailableError``, its constraint errors as
    ``IntegrityViolation``; others (defects) as they are."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise IntegrityViolation(str(exc)) from exc
    except sqlite3.Error as exc:
        error = unavailable(exc)
        if error is None:
            raise
        raise error from exc


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


BUSY_TIMEOUT_S = 2.0  # how long a statement waits for another connection's lock before the request gets 503
REOPEN_INTERVAL_S = 1.0  # at most one new connection a second while the file stays read-only


def _connect(target: str, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(target, uri=uri, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    _enable_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _writable(conn: sqlite3.Connection) -> bool:
    """Whether a write through ``conn`` succeeds: the header's user version written back unchanged."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute(f"PRAGMA user_version = {version}")
    except sqlite3.Error:
        return False
    return True


_OPEN: weakref.WeakSet[SqliteDatabase] = weakref.WeakSet()  # every open database of the process


class SqliteDatabase(Database):
    """One open connection to the database file (WAL), shared by threads under a lock.

    SQLite keeps a connection read-only once it found the file so. A connection opened read-only, and
    after a write refused for that reason every connection of the process to the file, is replaced on
    its next use once a new one can write (tried at most once a second, never creating the file): the
    server writes again by itself, with no request refused, once the file is writable.
    """

    dialect: Dialect = "sqlite"
    greatest = "max"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = str(path)
        self._lock = threading.Lock()
        self._reopen_at: float | None = None  # monotonic time of the next new connection; None: not needed
        try:
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._conn = _connect(str(path))
                if not _writable(self._conn):  # opened while the file is read-only: replaced once it is not
                    self._reopen_at = time.monotonic() + REOPEN_INTERVAL_S
            _OPEN.add(self)
        except (sqlite3.Error, OSError) as exc:
            raise UserStoreError(
                f"cannot open the user database {path}: {exc}; point JWT_REF_DATABASE (or --database) at a "
                "writable SQLite file"
            ) from None

    def _refused(self, exc: sqlite3.Error) -> None:
        """After a write refused because a connection is read-only, every connection to the file is replaced."""
        code = getattr(exc, "sqlite_errorcode", 0)
        if code & 0xFF != sqlite3.SQLITE_READONLY or code == sqlite3.SQLITE_READONLY_DBMOVED:
            return
        for database in list(_OPEN):
            if database.path == self.path and database._reopen_at is None:
                database._reopen_at = time.monotonic()  # a plain store: no lock needed to set it

    def _reopened(self) -> None:
        """A new connection in place of a read-only one, when it is time and it can write (lock held)."""
        if self._reopen_at is None or time.monotonic() < self._reopen_at or str(self.path) == ":memory:":
            return
        self._reopen_at = time.monotonic() + REOPEN_INTERVAL_S
        try:
            conn = _connect(f"file:{quote(str(self.path.resolve()))}?mode=rw", uri=True)  # never creates it
        except sqlite3.Error:
            return  # still unusable: the old connection serves reads meanwhile
        if not _writable(conn):
            conn.close()  # still read-only: tried again in a second
            return
        self._conn.close()
        self._conn = conn
        self._reopen_at = None

    @contextmanager
    def locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._reopen_at is not None:
                self._reopened()
            try:
                with translated():
                    yield self._conn
            except DatabaseUnavailableError as exc:
                if isinstance(exc.__cause__, sqlite3.Error):
                    self._refused(exc.__cause__)
                raise

    def fetchone(self, sql: str, params: Params = ()) -> Any:
        try:
            with self._lock:  # the lock itself, not locked(): this runs on every protected request
                if self._reopen_at is not None:
                    self._reopened()
                return self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise unavailable(exc) or exc from exc

    def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        with self.locked() as conn:
            return conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Params = ()) -> int:
        with self.locked() as conn:
            return conn.execute(sql, params).rowcount

    @contextmanager
    def transaction(self, *locks: str) -> Iterator[Session]:
        """BEGIN IMMEDIATE: every writer of the file waits its turn, so ``locks`` need nothing more."""
        with self.locked() as conn, immediate(conn):
            yield conn

    def create_schema(self, statements: Sequence[str], migrate: Callable[[Session], None]) -> None:
        try:
            with self.locked() as conn:
                conn.executescript(";\n".join(statements))
            migrate(self._conn)
        except (sqlite3.Error, IntegrityViolation, DatabaseUnavailableError) as exc:
            raise UserStoreError(
                f"cannot open the user database {self.path}: {exc}; point JWT_REF_DATABASE (or --database) at a "
                "writable SQLite file"
            ) from None

    def close(self) -> None:
        _OPEN.discard(self)
        with self.locked() as conn:
            conn.close()


# --- Opening either ----------------------------------------------------------------------------------------


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and urlsplit(target).scheme in POSTGRES_SCHEMES


def redacted(url: str) -> str:
    """``url`` without its password (in the authority or as a ``password=`` parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def open_database(target: Path | str) -> Database:
    """The database at ``target``: a ``postgresql://`` URL, or else a SQLite file path."""
    if is_postgres_url(target):
        try:
            from .postgres import PostgresDatabase
        except ImportError as exc:  # psycopg (or its libpq) is not installed
            raise SettingsError(
                f"{redacted(str(target))} is a PostgreSQL database, and PostgreSQL support is not installed "
                f"({exc}): {POSTGRES_INSTALL}"
            ) from None
        return PostgresDatabase(str(target))
    return SqliteDatabase(Path(target))
