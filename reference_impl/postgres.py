"""PostgreSQL behind the stores: psycopg 3 connections from a pool (``JWT_REF_DATABASE_URL``).

Every connection is in autocommit mode: a single statement commits at once, and a transaction is
opened explicitly (``Database.transaction``). When PostgreSQL goes away (restart, failover, network)
the statements on the pool's connections fail and the pool drops them and connects again, by
itself. Meanwhile the server answers 503 at once (a request waits ``WAIT_WHEN_DOWN`` for a
connection, not ``WAIT_FOR_CONNECTION``), and it serves again as soon as a connection succeeds: no
restart. For ``VERIFY_AFTER_FAILURE`` seconds after a failure every connection is tested (one empty
query) before it is used, so that the connections broken by the outage are dropped and replaced
rather than each failing one more request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from .database import Database, Dialect, IntegrityViolation, Params, Session, redacted
from .errors import DatabaseUnavailableError, UserStoreError

POOL_MIN_SIZE = 2
POOL_MAX_SIZE = 10
CONNECT_TIMEOUT = 5  # seconds: one connection attempt
OPEN_TIMEOUT = 10.0  # seconds: at start, for the first connections
WAIT_FOR_CONNECTION = 5.0  # seconds: a request waits this long for a free connection
WAIT_WHEN_DOWN = 0.05  # seconds: the same while the last use of the database failed
RECONNECT_TIMEOUT = 5.0  # seconds: a connection slot is retried this long, then given up and opened on demand
VERIFY_AFTER_FAILURE = 30.0  # seconds: connections are tested before use for this long after a failure
SCHEMA_LOCK = "jwt-reference:schema"
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"

# Errors that mean "not now" rather than "wrong SQL": a connection refused, lost or shut down by the
# administrator, no free connection in time, a deadlock or serialization failure, resources exhausted
# (OperationalError covers all these), and a read-only server (a standby).
_READ_ONLY = pg_errors.ReadOnlySqlTransaction

logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # its warnings repeat ours, once per attempt
logger = logging.getLogger("reference_impl.database")


def _sql(sql: str) -> str:
    """The stores' ``?`` parameters in psycopg's style."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Session:
    """A psycopg connection that speaks the stores' SQL (``?`` parameters)."""

    __slots__ = ("_conn", "_sql")

    def __init__(self, conn: psycopg.Connection[Any], sql: Callable[[str], str]) -> None:
        self._conn, self._sql = conn, sql

    def execute(self, sql: str, parameters: Any = (), /) -> psycopg.Cursor[Any]:
        return self._conn.execute(self._sql(sql), parameters)


class PostgresDatabase(Database):
    """A pool of connections to one PostgreSQL database, shared by the stores and threads of a process."""

    dialect: Dialect = "postgresql"
    greatest = "GREATEST"
    remote = True

    def __init__(self, url: str) -> None:
        self.description = redacted(url)
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
        self._secrets = [str(password)] if password else []
        self._translations: dict[str, str] = {}
        self._down = False  # the last use of the database failed for a reason of the moment
        self._verify_until = 0.0  # time.monotonic() until which connections are tested before use
        self.pool = psycopg_pool.ConnectionPool(
            url,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT, "application_name": "jwt-reference"},
            min_size=POOL_MIN_SIZE,
            max_size=POOL_MAX_SIZE,
            timeout=WAIT_FOR_CONNECTION,
            check=self._check,
            reconnect_timeout=RECONNECT_TIMEOUT,
            name="jwt-reference",
            open=False,
        )
        try:
            # One attempt first: a database that refuses is said at once, not after the pool's retries.
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
            self.pool.open(wait=True, timeout=OPEN_TIMEOUT)
        except psycopg.Error as exc:
            self.pool.close()
            raise UserStoreError(
                f"cannot open the database {self.description}: {self._clean(exc)}; check {self._hint()}"
            ) from None

    @staticmethod
    def _hint() -> str:
        return "JWT_REF_DATABASE_URL (or --database-url): it must name a reachable PostgreSQL database"

    def _clean(self, exc: BaseException) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _sql(self, sql: str) -> str:
        translated = self._translations.get(sql)
        if translated is None:
            translated = self._translations[sql] = _sql(sql)
        return translated

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self.pool.connection(WAIT_WHEN_DOWN if self._down else None) as conn:
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError, _READ_ONLY) as exc:
            error = DatabaseUnavailableError(f"the database cannot be used just now: {self._clean(exc)}")
            self._failed(error)
            raise error from exc
        except psycopg.IntegrityError as exc:
            raise IntegrityViolation(self._clean(exc)) from exc
        if self._down:
            self._down = False
            logger.warning("the database %s can be used again", self.description)

    def _failed(self, error: DatabaseUnavailableError) -> None:
        """Log the first failure of an outage (one line, no traceback), not every request it fails."""
        if not self._down:
            logger.warning("%s (%s): answering 503 until it can", error, self.description)
        self._down = True
        self._verify_until = time.monotonic() + VERIFY_AFTER_FAILURE

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """The pool's test of a connection it is about to hand out: none, unless the database failed lately."""
        if time.monotonic() < self._verify_until:
            psycopg_pool.ConnectionPool.check_connection(conn)

    def fetchone(self, sql: str, params: Params = ()) -> Any:
        with self._connection() as conn:
            return conn.execute(self._sql(sql), params).fetchone()

    def fetchall(self, sql: str, params: Params = ()) -> list[Any]:
        with self._connection() as conn:
            return conn.execute(self._sql(sql), params).fetchall()

    def execute(self, sql: str, params: Params = ()) -> int:
        with self._connection() as conn:
            return conn.execute(self._sql(sql), params).rowcount

    @contextmanager
    def transaction(self, *locks: str) -> Iterator[Session]:
        with self._connection() as conn, conn.transaction():
            for name in sorted(set(locks)):  # one order everywhere: no two transactions wait on each other
                conn.execute(_LOCK, (name,))
            yield _Session(conn, self._sql)

    def create_schema(self, statements: Sequence[str], migrate: Callable[[Session], None]) -> None:
        """Under an advisory lock: instances that start together create the tables one after the other."""
        try:
            with self.transaction(SCHEMA_LOCK) as session:
                for statement in statements:
                    session.execute(statement)
                migrate(session)
        except (DatabaseUnavailableError, IntegrityViolation, psycopg.Error) as exc:
            raise UserStoreError(f"cannot prepare the database {self.description}: {self._clean(exc)}") from None

    def close(self) -> None:
        self.pool.close()
