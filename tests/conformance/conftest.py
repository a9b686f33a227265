"""Fixtures for the conformance tests: the reference app with the users the harness config names."""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from reference_impl.models import UserInDB
from reference_impl.security import password_hash_for

from ..conftest import AppFactory
from ..server_process import Server, server_env
from .harness import SECOND


def _add_second_user(app: FastAPI) -> None:
    store = app.state.reference.store
    if store.get(SECOND.username) is None:
        hashed = password_hash_for("fast").hash(SECOND.password)
        store.add(
            UserInDB(username=SECOND.username, email="carol@example.com", full_name="Carol", hashed_password=hashed)
        )


@pytest.fixture
def reference(make_app: AppFactory) -> FastAPI:
    """The reference app with bob (primary), carol (second) and the disabled alice."""
    app = make_app()
    store = app.state.reference.store
    if store.get(SECOND.username) is None:
        hashed = password_hash_for("fast").hash(SECOND.password)
        store.add(
            UserInDB(username=SECOND.username, email="carol@example.com", full_name="Carol", hashed_password=hashed)
        )
    return app


@pytest.fixture
def make_reference(make_app: AppFactory) -> Any:
    """Build further reference apps with changed settings (e.g. ``access_token_ttl=2``), users included."""

    def factory(**changes: Any) -> FastAPI:
        app = make_app(**changes)
        _add_second_user(app)
        return app

    return factory


Handler = Callable[[socket.socket], None]


@pytest.fixture
def raw_server() -> Iterator[Callable[[Handler], str]]:
    """A TCP server on 127.0.0.1 whose connections are answered by ``handler`` (raw bytes)."""
    sockets: list[socket.socket] = []
    stop = threading.Event()

    def start(handler: Handler) -> str:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.2)
        sockets.append(listener)

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except (TimeoutError, OSError):
                    continue
                with conn:
                    conn.settimeout(5)
                    try:
                        conn.recv(65536)
                        handler(conn)
                    except OSError:
                        pass

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    stop.set()
    for listener in sockets:
        listener.close()


@pytest.fixture
def reference_server(tmp_path: Path) -> Iterator[Server]:
    """``jwt-reference serve --demo-users`` as a real process on 127.0.0.1 (stopped by PID)."""
    server = Server(server_env(tmp_path / "users.db", secrets.token_urlsafe(48)), ("--demo-users",), tmp_path / "log")
    try:
        yield server.wait_ready()
    finally:
        server.stop()
