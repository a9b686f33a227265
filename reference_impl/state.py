"""What the application holds for its lifetime: settings, user store, password and token services."""

from __future__ import annotations

from dataclasses import dataclass

from .security import Passwords, Tokens
from .settings import Settings
from .signing_keys import KeySet
from .store import UserStore
from .throttle import LoginThrottle


@dataclass(frozen=True)
class AppState:
    settings: Settings
    store: UserStore
    passwords: Passwords
    tokens: Tokens
    throttle: LoginThrottle
    key_set: KeySet | None = None  # the asymmetric keys, published at /.well-known/jwks.json

    def close(self) -> None:
        """Release the database connection and the hashing threads (the app's creator calls this)."""
        self.store.close()
        self.passwords.close()
