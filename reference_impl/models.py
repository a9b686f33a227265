"""The data shapes, under the FastAPI tutorial's names (Token, User, UserInDB)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Token(BaseModel):
    """RFC 6749 §5.1 successful token response."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int


class User(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str
    email: str | None = None
    full_name: str | None = None
    disabled: bool = False


class UserInDB(User):
    hashed_password: str

    def public(self) -> User:
        return User(username=self.username, email=self.email, full_name=self.full_name, disabled=self.disabled)
