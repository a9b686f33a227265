"""The conformance suite: checks any OAuth2 password-flow / JWT bearer server over HTTP."""

from __future__ import annotations

from .config import Credentials, Paths, RunConfig, build_config
from .errors import (
    BaselineLoginError,
    ConfigError,
    ConformanceError,
    FuzzerError,
    NoChecksSelectedError,
    TargetUnreachableError,
)
from .model import Level, Profile, Result, Status, Summary
from .registry import Check, all_checks, check, select
from .runner import run

__all__ = [
    "BaselineLoginError",
    "Check",
    "ConfigError",
    "ConformanceError",
    "Credentials",
    "FuzzerError",
    "Level",
    "NoChecksSelectedError",
    "Paths",
    "Profile",
    "Result",
    "RunConfig",
    "Status",
    "Summary",
    "TargetUnreachableError",
    "all_checks",
    "build_config",
    "check",
    "run",
    "select",
]
