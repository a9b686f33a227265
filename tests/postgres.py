"""A throwaway PostgreSQL server for the test session: its own data directory, 127.0.0.1, a free port.

The server's binaries are looked for on PATH, then in Debian's and Red Hat's directories (every
installed version, the newest first). PostgreSQL refuses to run as root: as root, initdb and the
server run as the ``postgres`` user, in a data directory it owns. Trust authentication and no fsync:
the data lives as long as the session (a commit survives a crash of the server, not of the machine).
Every test gets a schema of its own (``PostgresCluster.new_database``); the server is stopped by its
PID when the session ends.

Where no binaries exist the tests that need them skip, saying why, unless
``JWT_REF_TESTS_REQUIRE_POSTGRES=1`` (set by ``.ci/run``): then they fail.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .server_process import free_port

REQUIRE = "JWT_REF_TESTS_REQUIRE_POSTGRES"
SERVICE_USER = "postgres"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def find_binaries() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).parent] if on_path else []

    def version(path: str) -> tuple[int, ...]:
        digits = "".join(c if c.isdigit() else " " for c in path)
        return tuple(int(part) for part in digits.split())

    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"):
        candidates += [Path(p) for p in sorted(glob.glob(pattern), key=version, reverse=True)]
    for directory in candidates:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _as_service_user() -> dict[str, object]:
    """Popen arguments that run the command as the ``postgres`` user when this process is root."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(SERVICE_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "umask": 0o077}


class PostgresCluster:
    """One running PostgreSQL server; ``url()`` for its ``postgres`` database, ``new_database()`` for a fresh one."""

    def __init__(self, binaries: Path, root: Path, durable: bool = False) -> None:
        """``durable``: PostgreSQL's own defaults (fsync on), for measurements; else no fsync, for tests."""
        self.binaries = binaries
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.log = root / "server.log"
        self.superuser = SERVICE_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self._names = itertools.count(1)
        self.process: subprocess.Popen[bytes] | None = None
        self.durable = durable

    def _run(self, *command: str) -> None:
        result = subprocess.run(command, capture_output=True, text=True, check=False, **_as_service_user())  # type: ignore[call-overload]
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")

    def init(self) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            str(self.binaries / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.superuser,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> None:
        """Start the server in the foreground of a child process (its PID is the postmaster's)."""
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "max_connections": "300",
        }
        if not self.durable:
            options.update({"fsync": "off", "full_page_writes": "off", "shared_buffers": "64MB"})
        args = [str(self.binaries / "postgres"), "-D", str(self.data)]
        for name, value in options.items():
            args += ["-c", f"{name}={value}"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **_as_service_user()
            )
        self.wait_ready()

    def wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not accept connections within {START_TIMEOUT} s:\n{self.log.read_text()}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server by its PID: ``fast`` (SIGINT: connections are closed) or ``immediate`` (SIGQUIT)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT if mode == "immediate" else signal.SIGINT)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty schema of the ``postgres`` database: the server's tables see nothing else
        (its search path is that schema alone). A schema takes milliseconds; a database, a copy of a template."""
        import psycopg

        name = f"test_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.url()}?options=-csearch_path%3D{name}"

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("%3D", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def unavailable_reason() -> str | None:
    """Why no PostgreSQL can be started here, or None."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    if find_binaries() is None:
        return "no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH or in /usr/lib/postgresql/*/bin"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return f"running as root, and there is no {SERVICE_USER!r} user to run PostgreSQL as"
    return None


def skip_or_fail(reason: str) -> None:
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"PostgreSQL is required here ({REQUIRE}=1): {reason}")
    pytest.skip(reason)


@contextmanager
def running_cluster() -> Iterator[PostgresCluster]:
    """A new PostgreSQL server in a temporary directory, stopped and removed afterwards; without one, the
    test skips (locally) or fails (where PostgreSQL is required)."""
    reason = unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)
    binaries = find_binaries()
    assert binaries is not None
    root = Path(tempfile.mkdtemp(prefix="jwt-ref-pg-"))
    cluster = PostgresCluster(binaries, root)
    try:
        try:
            cluster.init()
            cluster.start()
        except RuntimeError as exc:
            skip_or_fail(f"PostgreSQL could not be started: {exc}")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """The session's PostgreSQL server, started on first use."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh database of the session's PostgreSQL server, dropped after the test."""
    url = postgres_cluster.new_database()
    yield url
    postgres_cluster.drop_database(url)
