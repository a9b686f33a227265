"""A Markdown report: summary table, then every non-pass with its evidence."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..model import Result, Status, Summary
from ..registry import Check
from . import RunInfo

ICONS = {
    Status.PASS: "pass",
    Status.FAIL: "**FAIL**",
    Status.WARN: "warn",
    Status.INFO: "info",
    Status.SKIP: "skip",
    Status.ERROR: "**ERROR**",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class MarkdownReporter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: list[Result] = []
        self.info: RunInfo | None = None

    def start(self, info: RunInfo, plan: Sequence[Check]) -> None:
        self.info = info

    def record(self, result: Result) -> None:
        self.results.append(result)

    def finish(self, summary: Summary) -> None:
        assert self.info is not None
        config = self.info.config
        lines = [
            "# JWT conformance report",
            "",
            f"- Target: `{config.base_url}` (profile `{config.profile}`{', strict' if config.strict else ''})",
            f"- Started: {self.info.started_at}; duration {summary.duration_s:.1f} s",
            f"- Tool: jwt-conformance {self.info.tool_version}",
            "",
            "| " + " | ".join(str(s) for s in Status) + " |",
            "|" + "---|" * len(Status),
            "| " + " | ".join(str(summary.counts[s]) for s in Status) + " |",
            "",
        ]
        lines += [f"> {note}" for note in summary.notes]
        lines += ["", "## Results", "", "| ID | Level | Verdict | Requirement | Message |", "|---|---|---|---|---|"]
        for r in self.results:
            lines.append(f"| {r.id} | {r.level} | {ICONS[r.status]} | {_cell(r.title)} | {_cell(r.message)} |")
        findings = [r for r in self.results if r.status in (Status.FAIL, Status.ERROR, Status.WARN)]
        if findings:
            lines += ["", "## Findings"]
        for r in findings:
            lines += ["", f"### {r.id} ({r.status}): {r.title}", "", f"Spec: {', '.join(r.spec)}", "", r.message]
            for label, value in (("Expected", r.expected), ("Actual", r.actual), ("Fix", r.hint)):
                if value:
                    lines.append(f"- {label}: {value}")
            if r.exchanges:
                lines += ["", "Reproduce:", "", "```sh", *[e.curl for e in r.exchanges[-2:]], "```"]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
