"""Fuzzing with schemathesis against the contract, with real tokens: logged in for, given, printed or minted."""

from __future__ import annotations

from .config import FuzzConfig, build_fuzz_config
from .engine import run_fuzz
from .model import (
    Finding,
    FuzzError,
    FuzzEvent,
    FuzzFinished,
    FuzzStarted,
    FuzzSummary,
    OperationStarted,
    OperationTested,
)

__all__ = [
    "Finding",
    "FuzzConfig",
    "FuzzError",
    "FuzzEvent",
    "FuzzFinished",
    "FuzzStarted",
    "FuzzSummary",
    "OperationStarted",
    "OperationTested",
    "build_fuzz_config",
    "run_fuzz",
]
