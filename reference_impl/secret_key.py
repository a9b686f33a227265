"""The HMAC signing secret: refuse weak ones, or generate and persist one for development."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

from .errors import WeakSecretError
from .settings import PREFIX

MIN_SECRET_BYTES = 32

# Secrets published in tutorials, library docs and debuggers, and copied into real services.
# Kept as SHA-256 digests so that the list itself never looks like a usable key.
_WELL_KNOWN = {
    "your-secret-key",
    "secret",
    "secret-key",
    "secretkey",
    "changeme",
    "change-me",
    "mysecret",
    "supersecret",
    "your-256-bit-secret",
    "a-string-secret-at-least-256-bits-long",
    "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7",
    "your-secret-key-change-this-in-production",
    "please-change-this-secret-key-in-production",
}
_WELL_KNOWN_DIGESTS = frozenset(hashlib.sha256(s.encode()).hexdigest() for s in _WELL_KNOWN)
_FIX = (
    f"set {PREFIX}SECRET_KEY to at least {MIN_SECRET_BYTES} random bytes, e.g. the output of "
    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`, or start with --dev"
)


def check_secret(secret: str | None) -> str:
    """Return ``secret`` if it is fit to sign tokens; raise ``WeakSecretError`` naming the fix."""
    if not secret:
        raise WeakSecretError(f"no signing secret: {_FIX}")
    if hashlib.sha256(secret.encode()).hexdigest() in _WELL_KNOWN_DIGESTS:
        raise WeakSecretError(f"the signing secret is a published, well-known value: {_FIX}")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise WeakSecretError(
            f"the signing secret is {len(secret.encode())} bytes, shorter than {MIN_SECRET_BYTES}: {_FIX}"
        )
    if len(set(secret)) < 8:
        raise WeakSecretError(f"the signing secret repeats too few distinct characters: {_FIX}")
    return secret


def dev_secret_path(database: Path) -> Path:
    return database.with_name(database.name + ".secret")


def load_or_create_dev_secret(database: Path) -> str:
    """Read the development secret stored beside ``database``, creating it (mode 0600) if absent.

    Creation is atomic: the secret is written whole to a private temporary file, then linked to its
    name only if that name is still free. Processes that start together (servers on one database)
    all end up with the one secret that won, never with a half-written file.
    """
    path = dev_secret_path(database)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
            with contextlib.suppress(FileExistsError):  # another process created it first: its secret wins
                os.link(candidate, path)
        finally:
            candidate.unlink()
    try:
        return check_secret(path.read_text(encoding="ascii").strip())
    except (UnicodeDecodeError, OSError, WeakSecretError) as exc:
        reason = exc if isinstance(exc, WeakSecretError) else "it is not readable ASCII text"
        raise WeakSecretError(
            f"the development secret in {path} is unusable ({reason}); delete the file to generate a new one, "
            f"or set {PREFIX}SECRET_KEY"
        ) from None
