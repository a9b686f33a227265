"""Errors that stop a run before or instead of producing results (exit code 2).

    ConformanceError
    ├── ConfigError              the flags or the config file are invalid
    ├── TargetUnreachableError   the base URL does not answer
    ├── BaselineLoginError       the given credentials are rejected: nothing can be checked
    ├── NoChecksSelectedError    --select / --skip left nothing to run
    └── FuzzerError              schemathesis cannot load the contract, or stopped

A failed check is never an exception that reaches the user: it is a ``Result``.
"""

from __future__ import annotations


class ConformanceError(Exception):
    """Base class; the message is one line that says what to fix."""


class ConfigError(ConformanceError):
    """Raised when a flag, an environment variable or the config file is invalid."""


class TargetUnreachableError(ConformanceError):
    """Raised when the target's base URL cannot be reached at all."""


class BaselineLoginError(ConformanceError):
    """Raised when the target rejects the given credentials in a well-formed way."""


class NoChecksSelectedError(ConformanceError):
    """Raised when the selection matches no check."""


class FuzzerError(ConformanceError):
    """Raised when schemathesis cannot load the contract or stops the fuzz run before it is done."""
