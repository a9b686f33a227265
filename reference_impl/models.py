"""The data shapes, under the FastAPI tutorial's names (Token, User, UserInDB), and the admin API's UserCreate."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from .scopes import DEFAULT_USER_SCOPES, canonical

MAX_USERNAME_CHARS = 150
# The contract's UserCreate.username: no control characters (they end up in logs), no whitespace at either end.
USERNAME_PATTERN = re.compile(r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$", re.DOTALL)
MIN_PASSWORD_CHARS = 8  # for users created through the API (the CLI takes what the operator types)
MAX_PASSWORD_CHARS = 1024


def _default_scopes() -> list[str]:
    return list(DEFAULT_USER_SCOPES)


def username_problem(username: str) -> str | None:
    """Why ``username`` is not one the contract allows (1-150 characters, no whitespace at either end), or None."""
    if not 1 <= len(username) <= MAX_USERNAME_CHARS or USERNAME_PATTERN.search(username) is None:
        return (
            f"invalid username {username!r}: use 1-{MAX_USERNAME_CHARS} characters, no control characters, "
            "without whitespace at the start or the end"
        )
    return None


class Token(BaseModel):
    """RFC 6749 §5.1 successful token response."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str
    scope: str


class User(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    email: str | None = None
    full_name: str | None = None
    disabled: bool = False
    scopes: list[str] = Field(default_factory=_default_scopes)  # the scopes the user may be granted

    @field_validator("scopes")
    @classmethod
    def _canonical_scopes(cls, scopes: list[str]) -> list[str]:
        return list(canonical(scopes))  # known ones only, canonical order (UnknownScopeError is a ValueError)

    def public_dict(self) -> dict[str, object]:
        """The contract's ``User``: never the hash."""
        return {
            "username": self.username,
            "email": self.email,
            "full_name": self.full_name,
            "disabled": self.disabled,
            "scopes": list(self.scopes),
        }


class UserInDB(User):
    hashed_password: str


class UserCreate(BaseModel):
    """The body of ``POST /users``: strict types, no unknown fields, the contract's limits."""

    model_config = ConfigDict(extra="forbid", strict=True)

    username: Annotated[str, StringConstraints(min_length=1, max_length=MAX_USERNAME_CHARS)]
    password: Annotated[str, StringConstraints(min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS)]
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    full_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    scopes: list[str] = Field(default_factory=_default_scopes)

    @field_validator("username")
    @classmethod
    def _contract_username(cls, username: str) -> str:
        problem = username_problem(username)
        if problem is not None:
            raise ValueError(problem)
        return username

    @field_validator("scopes")
    @classmethod
    def _unique_known_scopes(cls, scopes: list[str]) -> list[str]:
        if len(set(scopes)) != len(scopes):
            raise ValueError("the scopes must be unique")
        return list(canonical(scopes))
