"""The core rules of a me answer, for any server: it names the logged-in user and holds no secret.

Which member names the user varies by stack: ``username`` (FastAPI's tutorial, the kit), ``email``
(fastapi-users, FastAPI's full-stack template), ``preferred_username`` and ``sub`` (OpenID Connect
UserInfo), ``login`` (GitHub-style APIs). The config's ``identity`` names another one, and is then
the only one consulted. Member names are compared normalised (case, ``_`` and ``-`` ignored), so
``userName`` and ``user_name`` count as ``username``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

IDENTITY_MEMBERS = ("username", "email", "preferred_username", "sub", "login")
# Exact normalised member names that hold password material or other credentials. A hit at any
# depth of a me answer is a leak (CWE-200 / ASVS V8: no hash, salt or secret ever leaves the server).
SECRET_MEMBERS = frozenset(
    {"password", "passwd", "pwd", "hashedpassword", "passwordhash", "passwordhashed", "pwhash", "passhash"}
    | {"userpassword", "passwordsalt", "hash", "salt", "secret", "clientsecret", "secretkey", "privatekey"}
    | {"otpsecret", "totpsecret", "mfasecret", "apisecret", "signingkey"}
)
MAX_DEPTH = 8


def normalised(name: str) -> str:
    return "".join(char for char in name.lower() if char.isalnum())


def secret_members(body: Any) -> list[str]:
    """Where the body carries a secret-looking member with a value (``user.hashed_password``), at any depth."""
    return list(_secret_members(body, "", 0))


def _secret_members(node: Any, where: str, depth: int) -> Iterator[str]:
    if depth > MAX_DEPTH:
        return
    if isinstance(node, dict):
        for name, value in node.items():
            path = f"{where}.{name}" if where else str(name)
            if normalised(str(name)) in SECRET_MEMBERS and _holds_something(value):
                yield path
            else:
                yield from _secret_members(value, path, depth + 1)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _secret_members(item, f"{where}[{index}]", depth + 1)


def _holds_something(value: Any) -> bool:
    """A value that can leak: not null, not a flag, not empty."""
    if value is None or isinstance(value, bool):
        return False
    return bool(value) or value == 0


def identity_members(body: dict[str, Any], identity: str | None) -> dict[str, Any]:
    """The members of the body that may name the user, with their values: the configured one, or the usual ones."""
    if identity is not None:
        node: Any = body
        for part in identity.split("."):
            if not isinstance(node, dict) or part not in node:
                return {}
            node = node[part]
        return {identity: node}
    wanted = {normalised(name) for name in IDENTITY_MEMBERS}
    return {name: value for name, value in body.items() if normalised(str(name)) in wanted}


def same_login(value: Any, login: str) -> bool:
    """``value`` is the login name (an e-mail address compared without case, as mail systems do)."""
    if not isinstance(value, str):
        return False
    return value == login or ("@" in login and value.casefold() == login.casefold())


def naming_member(body: Any, login: str, identity: str | None) -> str | None:
    """The member whose value is the login name, if any."""
    if not isinstance(body, dict):
        return None
    return next((name for name, value in identity_members(body, identity).items() if same_login(value, login)), None)


def looked_at(identity: str | None) -> str:
    return identity if identity is not None else ", ".join(IDENTITY_MEMBERS)
