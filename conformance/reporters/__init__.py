"""Reporters consume the result stream; they never touch HTTP.

Each implements ``start(plan)``, ``record(result)`` and ``finish(summary)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..config import RunConfig
from ..model import Result, Summary
from ..registry import Check


@dataclass(frozen=True)
class RunInfo:
    config: RunConfig
    tool_version: str
    started_at: str


class Reporter(Protocol):
    def start(self, info: RunInfo, plan: Sequence[Check]) -> None: ...

    def record(self, result: Result) -> None: ...

    def finish(self, summary: Summary) -> None: ...
