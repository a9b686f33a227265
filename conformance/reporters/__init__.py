"""Reporters consume the result stream; they never touch HTTP.

Each implements ``start(plan)``, ``record(result)`` and ``finish(summary)``. Each redacts what it
records once more with the passwords and keys of the config (``last_line``): no format can show them,
nor a token they sign, even from results that did not come through the runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..config import RunConfig
from ..model import Result, Summary
from ..redaction import Redactor, for_config
from ..registry import Check

if TYPE_CHECKING:
    from .saved import SavedRun


@dataclass(frozen=True)
class RunInfo:
    config: RunConfig
    tool_version: str
    started_at: str


class Reporter(Protocol):
    def start(self, info: RunInfo, plan: Sequence[Check]) -> None: ...

    def record(self, result: Result) -> None: ...

    def finish(self, summary: Summary) -> None: ...


class FileReporter:
    """Collects the results and writes one file at the end.

    It renders what the JSON report keeps of the run (``saved.kept``), so that the same format rendered
    later from the JSON report (``jwt-conformance report``) is the same file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: list[Result] = []
        self.info: RunInfo | None = None
        self.redact: Redactor | None = None

    def start(self, info: RunInfo, plan: Sequence[Check]) -> None:
        self.info = info
        self.redact = for_config(info.config)

    def record(self, result: Result) -> None:
        self.results.append(last_line(self.redact, result))

    def finish(self, summary: Summary) -> None:
        if self.info is None:
            raise RuntimeError("finish() before start()")
        from .saved import kept

        self.write(kept(self.info, self.results, summary))

    def write(self, run: SavedRun) -> None:
        """Render ``run`` (a saved run: see ``saved``) into the file."""
        self.info, self.results = run.info, list(run.results)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.render(run.info, run.summary), encoding="utf-8")

    def render(self, info: RunInfo, summary: Summary) -> str:
        raise NotImplementedError


def finding_lines(result: Result) -> list[tuple[str, str]]:
    """The labelled details of a non-pass: expected, actual, fix."""
    pairs = (("expected", result.expected), ("actual", result.actual), ("fix", result.hint))
    return [(label, value) for label, value in pairs if value]


def last_line(redact: Redactor | None, result: Result) -> Result:
    """``result`` redacted with the config's passwords and keys (unchanged before ``start``)."""
    return result if redact is None else redact.result(result)
