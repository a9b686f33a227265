"""What the application holds for its lifetime: settings, the stores, password and token services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from anyio import to_thread

from .database import Database
from .external_tokens import ExternalTokens
from .grants import GrantStore
from .security import Passwords, Tokens
from .settings import Settings
from .signing_keys import KeySet
from .store import UserStore
from .throttle import LoginThrottle

T = TypeVar("T")


@dataclass(frozen=True)
class AppState:
    settings: Settings
    store: UserStore
    passwords: Passwords
    tokens: Tokens
    throttle: LoginThrottle
    grants: GrantStore  # refresh tokens and revocations
    key_set: KeySet | None = None  # the asymmetric keys, published at /.well-known/jwks.json
    external: ExternalTokens | None = None  # access tokens of trusted issuers (none configured: None)
    database: Database | None = None  # the stores' shared database (PostgreSQL's pool); None: each has its own

    @property
    def remote(self) -> bool:
        """Whether the stores' calls are network round trips (PostgreSQL), which async code makes off the loop."""
        return self.database is not None and self.database.remote

    async def db(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)``, a store call: on the event loop with SQLite (microseconds on an open file), in a
        worker thread with PostgreSQL (network round trips, which would stall every request of the worker)."""
        if not self.remote:
            return call(*args)
        return await to_thread.run_sync(call, *args)

    async def write(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)``, a store call that writes, in a worker thread whatever the database: a write may
        wait for another process's lock (SQLite's busy timeout), and the event loop must not wait with it."""
        return await to_thread.run_sync(call, *args)

    def close(self) -> None:
        """Release the database connections and the hashing threads (the app's creator calls this)."""
        self.store.close()
        self.grants.close()
        self.throttle.close()
        if self.database is not None:
            self.database.close()
        self.passwords.close()
        if self.external is not None:
            self.external.close()
