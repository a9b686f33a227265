"""End to end: ``jwt-reference serve`` as a real process on 127.0.0.1, driven over real HTTP."""

from __future__ import annotations

import secrets
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from ..server_process import JWT_REFERENCE, Server, StartServer, free_port, server_env, start_server

__all__ = ["start_server"]  # the fixture, imported for the tests below

pytestmark = pytest.mark.e2e

INVALID_GRANT = {"error": "invalid_grant", "error_description": "Incorrect username or password"}


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server with ``--demo-users``, shared by the tests that need no fresh database (they only add users)."""
    directory = tmp_path_factory.mktemp("demo")
    server = Server(server_env(directory / "users.db", secrets.token_urlsafe(48)), ("--demo-users",), directory / "log")
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.fixture
def demo_client(demo_server: Server) -> Iterator[httpx.Client]:
    with demo_server.client() as test_client:
        yield test_client


def token_request(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post("/token", data={"grant_type": "password", "username": username, "password": password})


def login(client: httpx.Client, username: str, password: str) -> str:
    response = token_request(client, username, password)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def me(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/users/me", headers={"Authorization": f"Bearer {token}"})


def stored_hash(database: Path, username: str) -> str:
    conn = sqlite3.connect(database)
    try:
        row = conn.execute("SELECT hashed_password FROM users WHERE username = ?", (username,)).fetchone()
    finally:
        conn.close()
    assert row is not None, f"no user {username} in {database}"
    hashed: str = row[0]
    return hashed


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``jwt-reference ARGS`` as a real process."""
    return subprocess.run(
        [str(JWT_REFERENCE), *args], input=stdin, env=env, capture_output=True, text=True, timeout=30, check=False
    )


def add_user(env: dict[str, str], name: str, password: str) -> None:
    result = cli(env, "users", "add", name, "--password-stdin", stdin=password + "\n")
    assert result.returncode == 0, result.stderr
    assert password not in result.stdout + result.stderr


# --- the demo users -----------------------------------------------------------------------------


def test_health(demo_client: httpx.Client) -> None:
    response = demo_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "server" not in response.headers


def test_johndoe_logs_in_and_reads_users_me(demo_client: httpx.Client) -> None:
    response = token_request(demo_client, "johndoe", "secret")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int)
    assert body["expires_in"] > 0
    assert "no-store" in response.headers["cache-control"]
    assert response.headers["pragma"] == "no-cache"

    users_me = me(demo_client, body["access_token"])
    assert users_me.status_code == 200, users_me.text
    assert users_me.json()["username"] == "johndoe"
    assert users_me.json()["disabled"] is False
    assert "hashed_password" not in users_me.json()


def test_wrong_password_is_invalid_grant(demo_client: httpx.Client) -> None:
    response = token_request(demo_client, "johndoe", "not-the-password")
    assert response.status_code == 400
    assert response.json() == INVALID_GRANT
    assert "no-store" in response.headers["cache-control"]


def test_no_token_is_a_401_bearer_challenge(demo_client: httpx.Client) -> None:
    response = demo_client.get("/users/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="')
    assert "error=" not in response.headers["www-authenticate"]  # RFC 6750 §3.1: no error code without a token


def test_disabled_alice_gets_the_same_answer_as_a_wrong_password(demo_client: httpx.Client) -> None:
    wrong = token_request(demo_client, "johndoe", "not-the-password")
    alice = token_request(demo_client, "alice", "secretalice")
    unknown = token_request(demo_client, "nobody-by-that-name", "secretalice")
    assert alice.status_code == wrong.status_code == unknown.status_code == 400
    assert alice.content == wrong.content == unknown.content
    assert alice.json() == INVALID_GRANT
    assert alice.headers["cache-control"] == wrong.headers["cache-control"]


# --- persistence ----------------------------------------------------------------------------


def test_users_and_upgraded_hashes_persist_across_restarts(tmp_path: Path, start_server: StartServer) -> None:
    database = tmp_path / "users.db"
    env = server_env(database, secrets.token_urlsafe(48))
    add_user(env, "carol", "carol-password")

    server = start_server(env, "--demo-users")
    assert stored_hash(database, "johndoe").startswith("$2b$")
    with server.client() as client:
        login(client, "carol", "carol-password")
        login(client, "johndoe", "secret")
    upgraded = stored_hash(database, "johndoe")
    assert upgraded.startswith("$argon2id$")
    server.stop_gracefully()

    # Seeding again must not reset johndoe's upgraded hash.
    server = start_server(env, "--demo-users")
    assert stored_hash(database, "johndoe") == upgraded
    with server.client() as client:
        token = login(client, "carol", "carol-password")
        assert me(client, token).json()["username"] == "carol"
        login(client, "johndoe", "secret")
        assert token_request(client, "carol", "wrong-password").json() == INVALID_GRANT
    assert stored_hash(database, "johndoe") == upgraded  # upgraded once, not at every login


def test_refresh_tokens_and_revocations_persist_across_restarts(tmp_path: Path, start_server: StartServer) -> None:
    env = server_env(tmp_path / "users.db", secrets.token_urlsafe(48))
    add_user(env, "mira", "mira-password")
    server = start_server(env)
    with server.client() as client:
        kept = token_request(client, "mira", "mira-password").json()
        revoked = token_request(client, "mira", "mira-password").json()
        answer = client.post("/revoke", data={"token": revoked["access_token"]})
        assert answer.status_code == 200
        assert answer.content == b""
        assert answer.headers["cache-control"] == "no-store"
        assert me(client, revoked["access_token"]).status_code == 401
    server.stop_gracefully()

    server = start_server(env)
    with server.client() as client:
        response = me(client, revoked["access_token"])
        assert response.status_code == 401
        assert response.json()["detail"] == "The access token was revoked"
        refreshed = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": kept["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        assert me(client, refreshed.json()["access_token"]).status_code == 200
        reuse = client.post("/token", data={"grant_type": "refresh_token", "refresh_token": kept["refresh_token"]})
        assert reuse.json()["error"] == "invalid_grant"
        assert me(client, refreshed.json()["access_token"]).status_code == 401  # the whole family is revoked
    server.stop_gracefully()


def test_users_disable_takes_effect_on_a_running_server(demo_server: Server, demo_client: httpx.Client) -> None:
    add_user(demo_server.env, "dora", "dora-password")
    token = login(demo_client, "dora", "dora-password")
    assert me(demo_client, token).status_code == 200

    result = cli(demo_server.env, "users", "disable", "dora")
    assert result.returncode == 0, result.stderr
    assert "disabled user dora" in result.stdout

    response = me(demo_client, token)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    assert token_request(demo_client, "dora", "dora-password").json() == INVALID_GRANT
    listed = cli(demo_server.env, "users", "list")
    assert "dora\tdisabled" in listed.stdout
    assert "$argon2" not in listed.stdout
    assert "$2b$" not in listed.stdout


# --- secrets ----------------------------------------------------------------------------------


def test_dev_mode_keeps_its_secret_across_restarts(tmp_path: Path, start_server: StartServer) -> None:
    database = tmp_path / "users.db"
    secret_file = tmp_path / "users.db.secret"
    env = server_env(database, secret=None)

    server = start_server(env, "--dev", "--demo-users")
    assert secret_file.exists()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text(encoding="ascii").strip()
    assert len(secret) >= 32
    with server.client() as client:
        token = login(client, "johndoe", "secret")
        assert me(client, token).status_code == 200
    server.stop_gracefully()
    assert secret not in server.log()
    assert str(secret_file) in server.log()  # it says where the secret is kept

    server = start_server(env, "--dev", "--demo-users")
    assert secret_file.read_text(encoding="ascii").strip() == secret
    with server.client() as client:
        response = me(client, token)
        assert response.status_code == 200, response.text
        assert response.json()["username"] == "johndoe"


@pytest.mark.parametrize(
    "secret",
    [None, "your-secret-key", "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7"],
    ids=["none", "your-secret-key", "seed-tutorial"],
)
def test_serve_refuses_a_weak_secret_as_a_real_process(tmp_path: Path, secret: str | None) -> None:
    env = server_env(tmp_path / "users.db", secret)
    result = subprocess.run(
        [sys.executable, "-m", "reference_impl", "serve", "--host", "127.0.0.1", "--port", "0"],
        stdin=subprocess.DEVNULL,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "JWT_REF_SECRET_KEY" in result.stderr
    assert "--dev" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "Uvicorn running" not in result.stdout + result.stderr
    assert not (tmp_path / "users.db").exists()


def test_a_token_is_refused_by_a_server_with_another_secret(
    tmp_path: Path, demo_server: Server, start_server: StartServer
) -> None:
    # --dev with a configured secret uses that secret and writes no secret file.
    other = start_server(server_env(tmp_path / "users.db", secrets.token_urlsafe(48)), "--dev", "--demo-users")
    assert not (tmp_path / "users.db.secret").exists()
    with demo_server.client() as first, other.client() as second:
        first_token = login(first, "johndoe", "secret")
        second_token = login(second, "johndoe", "secret")
        assert me(first, first_token).status_code == 200
        assert me(second, second_token).status_code == 200

        for client, foreign in ((second, first_token), (first, second_token)):
            response = me(client, foreign)
            assert response.status_code == 401, response.text
            assert response.json()["error"] == "invalid_token"
            challenge = response.headers["www-authenticate"]
            assert challenge.startswith('Bearer realm="')
            assert 'error="invalid_token"' in challenge


# --- the access log -------------------------------------------------------------------------


def test_the_access_log_never_contains_credentials_or_tokens(tmp_path: Path, start_server: StartServer) -> None:
    password = "Pw-" + secrets.token_urlsafe(12)
    env = server_env(tmp_path / "users.db", secrets.token_urlsafe(48))
    add_user(env, "logan", password)
    server = start_server(env, "--demo-users")
    with server.client() as client:
        token = login(client, "logan", password)
        johndoe_token = login(client, "johndoe", "secret")
        responses = [
            client.post("/token?username=johndoe&password=secret"),
            client.post(f"/token?username=logan&password={password}", data={"grant_type": "password"}),
            client.get(f"/users/me?access_token={token}"),
            client.get(f"/users/me?access_token={johndoe_token}", headers={"Authorization": f"Bearer {token}"}),
            client.get(f"/protected-resource?access_token={token}"),
            client.get(f"/health?access_token={token}&password={password}"),
        ]
    assert [response.status_code for response in responses] == [400, 400, 400, 400, 400, 200]
    server.stop_gracefully()  # everything it logged is in the file now

    log = server.log()
    assert '"POST /token?[redacted] HTTP/1.1" 400' in log
    assert '"GET /users/me?[redacted] HTTP/1.1" 400' in log
    assert '"GET /health?[redacted] HTTP/1.1" 200' in log
    assert log.count("?[redacted]") == len(responses)
    for leaked in (password, token, johndoe_token, *token.split("."), *johndoe_token.split(".")):
        assert leaked not in log
    assert "password" not in log
    assert "secret" not in log
    assert "access_token" not in log


def test_log_level_warning_silences_info_and_access_lines(tmp_path: Path, start_server: StartServer) -> None:
    env = server_env(tmp_path / "users.db", secrets.token_urlsafe(48))
    # A fixed port: at level warning the "Uvicorn running on" line (INFO) must not be there to read.
    server = start_server(env, "--log-level", "warning", port=free_port())
    with server.client() as client:
        assert client.get("/health").status_code == 200
    assert server.stop() in (0, -signal.SIGTERM)
    log = server.log()
    assert "INFO:" not in log, log
    assert "GET /health" not in log, log
