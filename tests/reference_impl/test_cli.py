"""``jwt-reference`` in-process (click's CliRunner), the dev secret file and the access-log redaction filter."""

from __future__ import annotations

import logging
import os
import secrets
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from reference_impl.cli import cli, seed_demo_users
from reference_impl.errors import WeakSecretError
from reference_impl.logging_config import RedactQueryFilter, log_config
from reference_impl.models import UserInDB
from reference_impl.secret_key import check_secret, dev_secret_path, load_or_create_dev_secret
from reference_impl.security import password_hash_for
from reference_impl.settings import PREFIX, Settings
from reference_impl.store import UserStore

HASH_MARKERS = ("$argon2", "$2b$", "$2a$", "$2y$")
SEED_TUTORIAL_SECRET = "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean ``JWT_REF_`` environment: fast hashing, a database in tmp_path, no secret."""
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    path = tmp_path / "users.db"
    monkeypatch.setenv(PREFIX + "HASH_PROFILE", "fast")
    monkeypatch.setenv(PREFIX + "DATABASE", str(path))
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str, input: str | None = None) -> Result:
    return runner.invoke(cli, list(args), input=input, prog_name="jwt-reference")


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def assert_clean_failure(result: Result, exit_code: int | None = None) -> str:
    """A refusal: non-zero exit through SystemExit, a message on stderr, no traceback anywhere."""
    assert result.exit_code != 0, result.output
    if exit_code is not None:
        assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.stderr.strip(), "the refusal must say why on stderr"
    return result.stderr


def list_rows(runner: CliRunner) -> dict[str, list[str]]:
    result = ok(run(runner, "users", "list"))
    for marker in HASH_MARKERS:
        assert marker not in result.output
    return {line.split("\t")[0]: line.split("\t") for line in result.output.splitlines() if line}


def stored_hash(db: Path, username: str) -> str:
    store = UserStore(db)
    try:
        user = store.get(username)
    finally:
        store.close()
    assert user is not None
    return user.hashed_password


# --- users add / list / disable ---------------------------------------------------------------


def test_users_add_with_password_stdin_then_list(runner: CliRunner, db: Path) -> None:
    result = ok(
        run(
            runner,
            "users",
            "add",
            "carol",
            "--email",
            "carol@example.com",
            "--full-name",
            "Carol Danvers",
            "--password-stdin",
            input="carol password \n",
        )
    )
    assert "added user carol" in result.output
    assert "(disabled)" not in result.output
    assert "carol password" not in result.output

    rows = list_rows(runner)
    assert rows == {"carol": ["carol", "active", "carol@example.com", "Carol Danvers", "me items:read"]}

    hashed = stored_hash(db, "carol")
    assert hashed.startswith("$argon2id$")
    # Only the line ending is stripped: the trailing space is part of the password.
    assert password_hash_for("fast").verify("carol password ", hashed)
    assert not password_hash_for("fast").verify("carol password", hashed)


def test_users_list_never_shows_hashes_of_either_scheme(runner: CliRunner, db: Path) -> None:
    settings = Settings(database=db, hash_profile="fast")
    store = UserStore(db)
    try:
        assert seed_demo_users(store, settings) == ["johndoe", "alice"]  # johndoe: bcrypt, alice: argon2id
    finally:
        store.close()
    ok(run(runner, "users", "add", "zed", "--password-stdin", input="zed-password\n"))

    result = ok(run(runner, "users", "list"))
    for marker in HASH_MARKERS:
        assert marker not in result.output
    assert stored_hash(db, "johndoe") not in result.output
    rows = {line.split("\t")[0]: line.split("\t") for line in result.output.splitlines()}
    assert rows == {
        "alice": ["alice", "disabled", "alice@example.com", "Alice Wonderson", "me items:read"],
        "johndoe": ["johndoe", "active", "johndoe@example.com", "John Doe", "me items:read admin"],
        "zed": ["zed", "active", "-", "-", "me items:read"],
    }


def test_users_list_on_an_empty_database_prints_nothing(runner: CliRunner, db: Path) -> None:
    assert ok(run(runner, "users", "list")).output == ""


def test_duplicate_user_is_refused_with_a_clear_message(runner: CliRunner, db: Path) -> None:
    ok(run(runner, "users", "add", "carol", "--password-stdin", input="first-password\n"))
    first_hash = stored_hash(db, "carol")

    result = run(runner, "users", "add", "carol", "--password-stdin", input="second-password\n")
    stderr = assert_clean_failure(result, exit_code=1)
    assert "already exists" in stderr
    assert "carol" in stderr
    assert stored_hash(db, "carol") == first_hash  # the first user is untouched
    assert list(list_rows(runner)) == ["carol"]


@pytest.mark.parametrize("stdin", ["\n", "\r\n", ""], ids=["newline", "crlf", "eof"])
def test_empty_password_from_stdin_is_refused(runner: CliRunner, db: Path, stdin: str) -> None:
    result = run(runner, "users", "add", "carol", "--password-stdin", input=stdin)
    stderr = assert_clean_failure(result, exit_code=2)
    assert "password is empty" in stderr
    assert list_rows(runner) == {}


def test_users_add_prompts_for_the_password_twice(runner: CliRunner, db: Path) -> None:
    result = ok(run(runner, "users", "add", "dave", input="pw\npw\n"))
    assert "Password" in result.output
    assert "Repeat for confirmation" in result.output
    assert "added user dave" in result.output
    assert list_rows(runner)["dave"][1] == "active"
    assert password_hash_for("fast").verify("pw", stored_hash(db, "dave"))


def test_users_add_prompt_asks_again_when_the_two_entries_differ(runner: CliRunner, db: Path) -> None:
    result = ok(run(runner, "users", "add", "dave", input="one\ntwo\nthree\nthree\n"))
    assert "do not match" in result.output
    assert password_hash_for("fast").verify("three", stored_hash(db, "dave"))


def test_users_add_prompt_aborts_on_end_of_input(runner: CliRunner, db: Path) -> None:
    result = run(runner, "users", "add", "dave", input="")
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert list_rows(runner) == {}


def test_users_add_disabled(runner: CliRunner, db: Path) -> None:
    result = ok(run(runner, "users", "add", "erin", "--disabled", "--password-stdin", input="erin-password\n"))
    assert "added user erin (disabled)" in result.output
    assert list_rows(runner)["erin"] == ["erin", "disabled", "-", "-", "me items:read"]


def test_users_add_refuses_an_invalid_username(runner: CliRunner, db: Path) -> None:
    result = run(runner, "users", "add", " padded ", "--password-stdin", input="some-password\n")
    stderr = assert_clean_failure(result, exit_code=1)
    assert "invalid username" in stderr
    assert list_rows(runner) == {}


def test_users_add_with_scopes_stores_them_in_canonical_order(runner: CliRunner, db: Path) -> None:
    ok(run(runner, "users", "add", "root", "--scopes", "admin me", "--password-stdin", input="root-password\n"))
    ok(run(runner, "users", "add", "viewer", "--scopes", " items:read ", "--password-stdin", input="viewer-pw\n"))
    ok(run(runner, "users", "add", "nobody", "--scopes", "", "--password-stdin", input="nobody-pw\n"))
    rows = list_rows(runner)
    assert rows["root"][4] == "me admin"
    assert rows["viewer"][4] == "items:read"
    assert rows["nobody"][4] == "-"
    store = UserStore(db)
    try:
        assert store.get("root").scopes == ["me", "admin"]  # type: ignore[union-attr]
    finally:
        store.close()


@pytest.mark.parametrize("scopes", ["me superuser", "ADMIN", "me,items:read"])
def test_users_add_with_an_unknown_scope_is_a_one_line_error_naming_the_valid_ones(
    runner: CliRunner, db: Path, scopes: str
) -> None:
    result = run(runner, "users", "add", "root", "--scopes", scopes, "--password-stdin", input="root-password\n")
    stderr = assert_clean_failure(result, exit_code=1)
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "unknown scope" in stderr
    assert "me, items:read, admin" in stderr
    assert list_rows(runner) == {}


def test_users_add_help_names_the_scopes(runner: CliRunner, db: Path) -> None:
    output = " ".join(ok(run(runner, "users", "add", "--help")).output.split())
    assert "--scopes" in output
    assert "me, items:read, admin" in output
    assert "[default: me items:read]" in output


def test_demo_users_johndoe_is_the_admin_and_alice_keeps_the_default(runner: CliRunner, db: Path) -> None:
    store = UserStore(db)
    try:
        seed_demo_users(store, Settings(database=db, hash_profile="fast"))
        assert store.get("johndoe").scopes == ["me", "items:read", "admin"]  # type: ignore[union-attr]
        assert store.get("alice").scopes == ["me", "items:read"]  # type: ignore[union-attr]
    finally:
        store.close()


@pytest.mark.parametrize("name", ["bo\x00b", "x\x93y", "tab\tbed"])
def test_users_add_refuses_names_an_operator_could_not_read(runner: CliRunner, db: Path, name: str) -> None:
    result = run(runner, "users", "add", name, "--password-stdin", input="some-password\n")
    stderr = assert_clean_failure(result, exit_code=1)
    assert "printable" in stderr
    assert list_rows(runner) == {}


def test_users_list_escapes_names_added_through_the_api(runner: CliRunner, db: Path) -> None:
    store = UserStore(db)
    try:
        store.add(UserInDB(username="odd\x93name", full_name="new\nline", hashed_password="$argon2id$x"))
    finally:
        store.close()
    result = ok(run(runner, "users", "list"))
    assert result.output.count("\n") == 1
    assert result.output == "odd\\x93name\tactive\t-\tnew\\nline\tme items:read\n"


def test_users_disable_then_list_shows_disabled(runner: CliRunner, db: Path) -> None:
    ok(run(runner, "users", "add", "frank", "--password-stdin", input="frank-password\n"))
    ok(run(runner, "users", "add", "grace", "--password-stdin", input="grace-password\n"))
    assert list_rows(runner)["frank"][1] == "active"

    result = ok(run(runner, "users", "disable", "frank"))
    assert "disabled user frank" in result.output

    rows = list_rows(runner)
    assert rows["frank"][1] == "disabled"
    assert rows["grace"][1] == "active"  # only the named user
    ok(run(runner, "users", "disable", "frank"))  # disabling twice is not an error
    assert list_rows(runner)["frank"][1] == "disabled"


def test_disabling_an_unknown_user_is_a_clear_error(runner: CliRunner, db: Path) -> None:
    ok(run(runner, "users", "add", "frank", "--password-stdin", input="frank-password\n"))
    result = run(runner, "users", "disable", "ghost")
    stderr = assert_clean_failure(result, exit_code=1)
    assert "no user named 'ghost'" in stderr
    assert list_rows(runner)["frank"][1] == "active"


def test_database_option_overrides_the_environment(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other" / "users.db"
    ok(run(runner, "--database", str(other), "users", "add", "hank", "--password-stdin", input="hank-password\n"))
    assert list_rows(runner) == {}
    assert "hank" in ok(run(runner, "--database", str(other), "users", "list")).output


def test_an_unopenable_database_is_a_clear_error(
    runner: CliRunner, db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    monkeypatch.setenv(PREFIX + "DATABASE", str(directory))
    result = run(runner, "users", "list")
    stderr = assert_clean_failure(result, exit_code=1)
    assert str(directory) in stderr


def test_a_corrupt_database_file_is_a_clear_error(runner: CliRunner, db: Path) -> None:
    db.write_bytes(b"this is not a SQLite database, just some bytes " * 40)
    for command in (["users", "list"], ["users", "disable", "bob"]):
        stderr = assert_clean_failure(run(runner, *command), exit_code=1)
        assert str(db) in stderr


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"", b"short\n"], ids=["non-ascii", "empty", "short"])
def test_an_unusable_dev_secret_file_names_the_file_and_the_fix(tmp_path: Path, content: bytes) -> None:
    path = dev_secret_path(tmp_path / "users.db")
    path.write_bytes(content)
    with pytest.raises(WeakSecretError, match="delete the file") as info:
        load_or_create_dev_secret(tmp_path / "users.db")
    assert str(path) in str(info.value)


# --- serve refuses weak secrets ----------------------------------------------------------------


def assert_secret_refused(result: Result, db: Path) -> str:
    stderr = assert_clean_failure(result, exit_code=1)
    assert "JWT_REF_SECRET_KEY" in stderr
    assert "--dev" in stderr
    assert "Uvicorn running" not in result.output
    assert not db.exists()  # refused before the database is created or seeded
    return stderr


def test_serve_refuses_to_start_without_a_secret(runner: CliRunner, db: Path) -> None:
    stderr = assert_secret_refused(run(runner, "serve", "--demo-users", "--port", "0"), db)
    assert "no signing secret" in stderr


def test_serve_refuses_an_empty_secret(runner: CliRunner, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PREFIX + "SECRET_KEY", "")
    assert_secret_refused(run(runner, "serve", "--port", "0"), db)


def test_serve_refuses_a_short_secret(runner: CliRunner, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    short = secrets.token_urlsafe(16)  # 22 characters
    monkeypatch.setenv(PREFIX + "SECRET_KEY", short)
    result = run(runner, "serve", "--port", "0")
    stderr = assert_secret_refused(result, db)
    assert "shorter than 32" in stderr
    assert short not in result.output


@pytest.mark.parametrize("secret", [SEED_TUTORIAL_SECRET, "your-secret-key"], ids=["seed-tutorial", "your-secret-key"])
def test_serve_refuses_a_well_known_secret(
    runner: CliRunner, db: Path, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv(PREFIX + "SECRET_KEY", secret)
    result = run(runner, "serve", "--port", "0")
    stderr = assert_secret_refused(result, db)
    assert "well-known" in stderr
    assert secret not in result.output  # the refusal does not echo the secret


def test_serve_dev_does_not_excuse_a_weak_configured_secret(
    runner: CliRunner, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PREFIX + "SECRET_KEY", "your-secret-key")
    assert_secret_refused(run(runner, "serve", "--dev", "--port", "0"), db)
    assert not dev_secret_path(db).exists()


def test_serve_refuses_a_secret_of_too_few_distinct_characters(
    runner: CliRunner, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PREFIX + "SECRET_KEY", "ab" * 32)
    stderr = assert_secret_refused(run(runner, "serve", "--port", "0"), db)
    assert "distinct characters" in stderr


# --- invalid environment ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ACCESS_TOKEN_TTL", "abc", "JWT_REF_ACCESS_TOKEN_TTL='abc' is not an integer"),
        ("ACCESS_TOKEN_TTL", "0", "JWT_REF_ACCESS_TOKEN_TTL=0 is out of range"),
        ("LEEWAY", "-1", "JWT_REF_LEEWAY=-1 is out of range"),
        ("MAX_BODY_BYTES", "1.5", "JWT_REF_MAX_BODY_BYTES='1.5' is not an integer"),
        ("HASH_PROFILE", "slow", "JWT_REF_HASH_PROFILE='slow' is not valid"),
        ("ALGORITHM", "none", "JWT_REF_ALGORITHM='none' is not supported"),
        ("REALM", 'a"b', "JWT_REF_REALM must be printable"),
    ],
)
@pytest.mark.parametrize("command", [["users", "list"], ["serve", "--port", "0"]], ids=["users-list", "serve"])
def test_invalid_environment_values_are_usage_errors(
    runner: CliRunner,
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    expected: str,
    command: list[str],
) -> None:
    monkeypatch.setenv(PREFIX + "SECRET_KEY", secrets.token_urlsafe(48))
    monkeypatch.setenv(PREFIX + name, value)
    result = run(runner, *command)
    stderr = assert_clean_failure(result, exit_code=2)
    assert expected in stderr
    assert "Usage:" in stderr
    assert not db.exists()  # refused before touching the database


# --- secret_key ------------------------------------------------------------------------------


def test_dev_secret_is_created_with_mode_0600_and_reused(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "users.db"
    path = dev_secret_path(database)
    assert path == tmp_path / "nested" / "users.db.secret"
    assert not path.exists()

    first = load_or_create_dev_secret(database)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert check_secret(first) == first
    assert path.read_text(encoding="ascii").strip() == first

    second = load_or_create_dev_secret(database)
    assert second == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_dev_secret_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_dev_secret(tmp_path / "users.db")
    finally:
        os.umask(old)
    assert stat.S_IMODE(dev_secret_path(tmp_path / "users.db").stat().st_mode) == 0o600


def test_dev_secrets_differ_between_databases(tmp_path: Path) -> None:
    assert load_or_create_dev_secret(tmp_path / "a.db") != load_or_create_dev_secret(tmp_path / "b.db")


def test_a_weak_dev_secret_file_is_refused(tmp_path: Path) -> None:
    dev_secret_path(tmp_path / "users.db").write_text("your-secret-key\n", encoding="ascii")
    with pytest.raises(WeakSecretError, match="JWT_REF_SECRET_KEY"):
        load_or_create_dev_secret(tmp_path / "users.db")


def test_check_secret_accepts_a_random_48_byte_secret() -> None:
    secret = secrets.token_urlsafe(48)
    assert len(secret.encode()) >= 48
    assert check_secret(secret) == secret
    raw = secrets.token_hex(48)
    assert check_secret(raw) == raw


@pytest.mark.parametrize(
    "secret",
    [None, "", "short", "x" * 40, SEED_TUTORIAL_SECRET, "your-secret-key", "your-256-bit-secret"],
    ids=["none", "empty", "short", "repetitive", "seed-tutorial", "your-secret-key", "jwt-io"],
)
def test_check_secret_refuses_weak_secrets_naming_the_fix(secret: str | None) -> None:
    with pytest.raises(WeakSecretError) as info:
        check_secret(secret)
    assert "JWT_REF_SECRET_KEY" in str(info.value)
    assert "--dev" in str(info.value)


# --- logging_config --------------------------------------------------------------------------


def access_record(path: str) -> logging.LogRecord:
    return logging.LogRecord(
        name="uvicorn.access",
        level=logging.INFO,
        pathname=__file__,
        lineno=1,
        msg='%s - "%s %s HTTP/%s" %d',
        args=("127.0.0.1:54321", "GET", path, "1.1", 200),
        exc_info=None,
    )


@pytest.fixture
def redact() -> Iterator[RedactQueryFilter]:
    yield RedactQueryFilter()


def test_redact_filter_removes_the_query_string(redact: RedactQueryFilter) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqb2huZG9lIn0.c2lnbmF0dXJl"
    record = access_record(f"/users/me?access_token={token}&x=1")
    assert redact.filter(record) is True
    message = record.getMessage()
    assert token not in message
    assert "access_token" not in message
    assert message == '127.0.0.1:54321 - "GET /users/me?[redacted] HTTP/1.1" 200'


def test_redact_filter_removes_credentials_from_a_token_request(redact: RedactQueryFilter) -> None:
    record = access_record("/token?username=johndoe&password=secret")
    assert redact.filter(record) is True
    message = record.getMessage()
    assert "password" not in message
    assert "johndoe" not in message
    assert "/token?[redacted]" in message


def test_redact_filter_leaves_other_records_alone(redact: RedactQueryFilter) -> None:
    record = access_record("/users/me")
    assert redact.filter(record) is True
    assert record.getMessage() == '127.0.0.1:54321 - "GET /users/me HTTP/1.1" 200'

    other = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (42,), None)
    assert redact.filter(other) is True
    assert other.getMessage() == "Started server process [42]"


def test_log_config_attaches_the_filter_to_the_access_handler_only() -> None:
    from uvicorn.config import LOGGING_CONFIG

    config = log_config("warning")
    assert config["handlers"]["access"]["filters"] == ["redact_query"]
    assert config["filters"]["redact_query"]["()"] == "reference_impl.logging_config.RedactQueryFilter"
    assert config["loggers"]["uvicorn"]["level"] == "WARNING"
    # uvicorn's module-level defaults are not mutated.
    assert "filters" not in LOGGING_CONFIG["handlers"]["access"]
    assert LOGGING_CONFIG["loggers"]["uvicorn"]["level"] == "INFO"


def test_processes_starting_together_get_one_whole_dev_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = tmp_path / "users.db"
    fdopen = os.fdopen

    def slow_fdopen(*args: Any, **kwargs: Any) -> Any:  # a file created but not yet written, for a while
        time.sleep(0.05)
        return fdopen(*args, **kwargs)

    monkeypatch.setattr(os, "fdopen", slow_fdopen)
    with ThreadPoolExecutor(8) as pool:
        secrets_read = set(pool.map(lambda _: load_or_create_dev_secret(database), range(32)))
    assert len(secrets_read) == 1
    assert [p.name for p in tmp_path.iterdir()] == [dev_secret_path(database).name]  # no temporary file left
    assert stat.S_IMODE(dev_secret_path(database).stat().st_mode) == 0o600
