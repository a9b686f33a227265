"""Errors the reference server raises before it serves anything.

    ReferenceServerError
    ├── SettingsError      an environment variable has an invalid value
    ├── WeakSecretError    the signing secret is missing, short or well known
    ├── UserStoreError     the user store refused an operation (unknown user, bad input)
    │   └── DuplicateUserError   a user of that name exists
    ├── DatabaseUnavailableError   the database cannot be reached or written just now (may pass)
    └── InstallError       a file the server serves is missing from the install (Swagger UI's)

Errors of requests never raise out of a handler: they become RFC 6749 / RFC 6750 answers (and a
``DatabaseUnavailableError`` met while serving one becomes 503 with Retry-After).
"""

from __future__ import annotations


class ReferenceServerError(Exception):
    """Base class: the message names what is wrong and how to fix it."""


class SettingsError(ReferenceServerError):
    """Raised when an environment variable holds an invalid value."""


class WeakSecretError(ReferenceServerError):
    """Raised when the signing secret is missing, shorter than 32 bytes or well known."""


class UserStoreError(ReferenceServerError):
    """Raised when a user cannot be added or changed (duplicate name, unknown user, bad input)."""


class DuplicateUserError(UserStoreError):
    """Raised when a user is added under a name that is taken."""


class InstallError(ReferenceServerError):
    """Raised when a file the server serves (Swagger UI's script, stylesheet or icon) is not installed."""


class DatabaseUnavailableError(ReferenceServerError):
    """Raised when the database cannot be used just now: locked, read-only, unreachable, out of space.

    A condition of the moment, not of the request: the server answers 503 and recovers by itself.
    """
