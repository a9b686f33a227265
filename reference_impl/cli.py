"""``jwt-reference``: serve the reference server and manage its users."""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from .database import redacted
from .dev_secret import WHERE as DEV_SECRET_IN_DATABASE, load_or_create_shared_dev_secret
from .errors import ReferenceServerError
from .logging_config import log_config
from .models import MAX_USERNAME_CHARS, UserInDB
from .scopes import ADMIN, DEFAULT_USER_SCOPES, ITEMS_READ, KNOWN_SCOPES, ME, UnknownScopeError, canonical, format_scope
from .secret_key import dev_secret_path, load_or_create_dev_secret
from .security import password_hash_for
from .settings import PREFIX, Settings, database_url as database_url_setting, load_settings
from .store import UserStore
from .workers import GRACEFUL_SHUTDOWN_S, WorkerCount, run_workers

# The seed tutorial's user, with its exact bcrypt hash of "secret": it verifies, then is upgraded.
DEMO_USERS = (
    UserInDB(
        username="johndoe",
        full_name="John Doe",
        email="johndoe@example.com",
        hashed_password="$2b$12$EixZaYVK1fsbw1ZfbX3OXePaWxn96p36WQoeG6Lruj3vjPGga31lW",  # noqa: S106
        disabled=False,
        scopes=[ME, ITEMS_READ, ADMIN],  # the demo administrator: GET /users, POST /users with scope=admin
    ),
)
DISABLED_DEMO_USER = ("alice", "secretalice", "Alice Wonderson", "alice@example.com")


def seed_demo_users(store: UserStore, settings: Settings) -> list[str]:
    """Add johndoe/secret (every scope) and the disabled alice/secretalice (the default scopes) unless they exist;
    return who was added."""
    added = []
    for user in DEMO_USERS:
        if store.get(user.username) is None:
            store.add(user)
            added.append(user.username)
    name, password, full_name, email = DISABLED_DEMO_USER
    if store.get(name) is None:
        hashed = password_hash_for(settings.hash_profile).hash(password)
        store.add(UserInDB(username=name, full_name=full_name, email=email, hashed_password=hashed, disabled=True))
        added.append(name)
    return added


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


@contextmanager
def _opened_store(settings: Settings) -> Iterator[UserStore]:
    """The user store for one command; its errors become one-line CLI errors."""
    try:
        store = UserStore(settings.database_target)
    except ReferenceServerError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield store
    except ReferenceServerError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"SQLite database file (default: ${PREFIX}DATABASE or ./jwt-reference.db).",
)
@click.option(
    "--database-url",
    metavar="URL",
    help=f"PostgreSQL database, postgresql://user:password@host:5432/name, used instead of the SQLite file "
    f"(default: ${PREFIX}DATABASE_URL). Install PostgreSQL support first: pip install 'jwt-auth-kit[postgresql]'.",
)
@click.pass_context
def cli(ctx: click.Context, database: Path | None, database_url: str | None) -> None:
    """The kit's reference server: an OAuth2 password-flow / JWT bearer API."""
    try:
        settings = load_settings()
        if database is not None:
            settings = replace(settings, database=database)
        if database_url is not None:
            settings = replace(settings, database_url=database_url_setting(database_url))
    except ReferenceServerError as exc:
        raise click.UsageError(str(exc)) from None
    ctx.obj = settings


def _where(settings: Settings) -> str:
    """Where the users are, for messages: the SQLite file, or the URL without its password."""
    return redacted(settings.database_url) if settings.database_url else str(settings.database)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option(
    "--dev",
    is_flag=True,
    help="Without a secret set, generate one and keep it: beside the SQLite file (mode 0600), or in the "
    "PostgreSQL database (shared by every instance on it).",
)
@click.option("--demo-users", is_flag=True, help="Seed johndoe/secret and a disabled alice/secretalice.")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning"]))
@click.option(
    "--workers",
    default="1",
    show_default=True,
    type=WorkerCount(),
    help="Worker processes ('auto': one per core); they share everything through the database.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, dev: bool, demo_users: bool, log_level: str, workers: int) -> None:
    """Start the server (one uvicorn worker unless --workers)."""
    import uvicorn

    from .main import create_app

    settings = _settings(ctx)
    try:
        if dev and settings.uses_hmac and not settings.secret_key and settings.database_url:
            settings = settings.with_secret(load_or_create_shared_dev_secret(settings.database_url))
            click.echo(f"dev mode: signing secret kept in {DEV_SECRET_IN_DATABASE}", err=True)
        elif dev and settings.uses_hmac and not settings.secret_key:
            settings = settings.with_secret(load_or_create_dev_secret(settings.database))
            click.echo(f"dev mode: signing secret kept in {dev_secret_path(settings.database)}", err=True)
        app = create_app(settings)  # with several workers, this one checks the settings and prepares the database
        if demo_users:
            added = seed_demo_users(app.state.reference.store, settings)
            if added:
                click.echo(f"demo users added: {', '.join(added)}", err=True)
    except ReferenceServerError as exc:
        raise click.ClickException(str(exc)) from None
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": log_config(log_level),
        "log_level": log_level,
        "server_header": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }
    if workers > 1:
        app.state.reference.close()
        _export_to_workers(settings)
        click.echo(f"starting {workers} worker processes", err=True)
        run_workers(workers, options)
        return
    # Everything built so far lives as long as the process: keep it out of the garbage collector's
    # full passes, which otherwise walk every module object on the request path's allocations.
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGTERM, _exit_after_shutdown)
    try:
        uvicorn.run(app, **options)
    finally:
        app.state.reference.close()


def _exit_after_shutdown(signum: int, frame: object) -> None:
    """SIGTERM outside uvicorn's own handler: before it starts serving, or re-raised by it once it has drained
    the requests in flight. Either way the shutdown asked for is done: exit with status 0, as the supervisor
    of ``--workers N`` does."""
    raise SystemExit(0)


def _export_to_workers(settings: Settings) -> None:
    """Put in the environment what the command line added to it, so that every worker (a new process
    that reads its settings from the environment) builds exactly these settings. The development
    secret already exists on disk: no worker creates it, so none can race another."""
    os.environ[PREFIX + "DATABASE"] = str(settings.database)
    if settings.database_url:
        os.environ[PREFIX + "DATABASE_URL"] = settings.database_url
    if settings.secret_key and os.environ.get(PREFIX + "SECRET_KEY") != settings.secret_key:
        os.environ[PREFIX + "SECRET_KEY"] = settings.secret_key


@cli.group()
def users() -> None:
    """Manage the users in the database."""


@users.command("add")
@click.argument("name")
@click.option("--email", help="Email address.")
@click.option("--full-name", help="Full name.")
@click.option("--disabled", is_flag=True, help="Create the user disabled (cannot log in).")
@click.option(
    "--scopes",
    default=format_scope(DEFAULT_USER_SCOPES),
    show_default=True,
    help=f"Space-separated scopes the user may be granted, of: {', '.join(KNOWN_SCOPES)}.",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.pass_context
def users_add(
    ctx: click.Context,
    name: str,
    email: str | None,
    full_name: str | None,
    disabled: bool,
    scopes: str,
    password_stdin: bool,
) -> None:
    """Add user NAME; the password is prompted for unless --password-stdin."""
    settings = _settings(ctx)
    if not name.isprintable() or name != name.strip():
        # Stricter than the contract (any non-whitespace at the ends): what an operator types and reads.
        raise click.ClickException(
            f"invalid username {name!r}: use 1-{MAX_USERNAME_CHARS} printable characters, "
            "without leading or trailing spaces"
        )
    try:
        granted = list(canonical(scopes.split()))
    except UnknownScopeError as exc:  # before the password is asked for
        raise click.ClickException(str(exc)) from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise click.UsageError("the password is empty")
    with _opened_store(settings) as store:
        hashed = password_hash_for(settings.hash_profile).hash(password)
        store.add(
            UserInDB(
                username=name,
                email=email,
                full_name=full_name,
                hashed_password=hashed,
                disabled=disabled,
                scopes=granted,
            )
        )
    click.echo(f"added user {name}{' (disabled)' if disabled else ''} to {_where(settings)}")


@users.command("disable")
@click.argument("name")
@click.pass_context
def users_disable(ctx: click.Context, name: str) -> None:
    """Disable user NAME: no new logins, and its tokens stop working."""
    with _opened_store(_settings(ctx)) as store:
        store.set_disabled(name, True)
    click.echo(f"disabled user {name}")


@users.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """List the users, tab-separated: name, state, email, full name, scopes (never their password hashes)."""
    with _opened_store(_settings(ctx)) as store:
        rows = store.list()
    for user in rows:
        state = "disabled" if user.disabled else "active"
        scopes = format_scope(user.scopes) or "-"
        fields = (_shown(user.username), state, _shown(user.email or "-"), _shown(user.full_name or "-"), scopes)
        click.echo("\t".join(fields))


def _shown(text: str) -> str:
    """``text``, or its escaped form when it holds characters that would break the one-line-per-user listing
    (users added through ``POST /users`` may have any non-whitespace at the ends of their names)."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def main() -> None:
    cli(prog_name="jwt-reference")
