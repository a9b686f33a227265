"""The corpus servers' users: who they are, and the cheap password hashing they are seeded with."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

SECRET_ENV = "CORPUS_SECRET"
DATABASE_ENV = "CORPUS_DATABASE"


@dataclass(frozen=True)
class User:
    username: str
    password: str
    full_name: str
    active: bool = True

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"


PRIMARY = User("bob", "correct horse battery staple", "Bob Example")
SECOND = User("carol", "carol's own password", "Carol Example")
DISABLED = User("alice", "alice's old password", "Alice Example", active=False)
USERS = (PRIMARY, SECOND, DISABLED)


def fast_password_hash() -> PasswordHash:
    """Argon2 at its lowest cost: the servers hash at startup and verify on every login of a run."""
    return PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1),))


def secret_key() -> str:
    """The signing secret the test chose for this server process."""
    return os.environ[SECRET_ENV]
