"""The console: one line per check as results arrive, then a summary and every finding with its fix."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

import click

from ..model import Result, Status, Summary
from ..redaction import Redactor, for_config
from ..registry import Check
from . import RunInfo, finding_lines, last_line

COLORS = {
    Status.PASS: "green",
    Status.FAIL: "red",
    Status.WARN: "yellow",
    Status.INFO: "cyan",
    Status.SKIP: "bright_black",
    Status.ERROR: "magenta",
}


class ConsoleReporter:
    def __init__(self, stream: TextIO | None = None, color: bool | None = None, verbose: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.color = self.stream.isatty() if color is None else color
        self.verbose = verbose
        self.results: list[Result] = []
        self.total = 0
        self.info: RunInfo | None = None
        self.redact: Redactor | None = None

    def _style(self, text: str, status: Status, bold: bool = False) -> str:
        return click.style(text, fg=COLORS[status], bold=bold) if self.color else text

    def _echo(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, info: RunInfo, plan: Sequence[Check]) -> None:
        self.info = info
        self.redact = for_config(info.config)
        self.total = len(plan)
        config = info.config
        self._echo(
            f"jwt-conformance {info.tool_version}: {len(plan)} checks against {config.base_url} "
            f"(profile {config.profile}{', strict' if config.strict else ''})"
        )

    def record(self, result: Result) -> None:
        result = last_line(self.redact, result)
        self.results.append(result)
        width = len(str(self.total))
        position = f"[{len(self.results):>{width}}/{self.total}]"
        verdict = self._style(f"{result.status!s:<5}", result.status)
        line = f"{position} {result.id:<12} {verdict} {result.title}"
        if result.status is not Status.PASS and result.message and (self.verbose or result.status is Status.SKIP):
            line += f"\n{'':>{len(position) + 14}}{result.message}"
        if result.low_confidence:
            line += " (low confidence)"
        self._echo(line)

    def finish(self, summary: Summary) -> None:
        findings = [r for r in self.results if r.status in (Status.FAIL, Status.ERROR, Status.WARN)]
        if findings:
            self._echo()
            self._echo("Findings")
            self._echo("--------")
        for r in findings:
            self._echo()
            self._echo(f"{self._style(str(r.status).upper(), r.status, bold=True)} {r.id} [{r.level}] {r.title}")
            self._echo(f"  spec:     {', '.join(r.spec)}")
            self._echo(f"  problem:  {r.message}")
            for label, value in finding_lines(r):
                self._echo(f"  {label + ':':<9} {value}")
            if r.exchanges:
                self._echo(f"  repro:    {r.exchanges[-1].curl}")
        self._echo()
        for note in summary.notes:
            self._echo(f"note: {note}")
        parts = [self._style(f"{summary.counts[s]} {s}", s) for s in Status if summary.counts[s]]
        self._echo(f"{', '.join(parts) or 'no results'} in {summary.duration_s:.1f} s")
