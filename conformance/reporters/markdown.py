"""A Markdown report: summary table, then every non-pass with its evidence."""

from __future__ import annotations

from ..model import Status, Summary
from . import FileReporter, RunInfo, finding_lines

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


class MarkdownReporter(FileReporter):
    def render(self, info: RunInfo, summary: Summary) -> str:
        config = info.config
        lines = [
            "# JWT conformance report",
            "",
            f"- Target: `{config.base_url}` (profile `{config.profile}`{', strict' if config.strict else ''})",
            f"- Started: {info.started_at}; duration {summary.duration_s:.1f} s",
            f"- Tool: jwt-conformance {info.tool_version}",
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
            lines += [f"- {label.capitalize()}: {value}" for label, value in finding_lines(r)]
            if r.exchanges:
                lines += ["", "Reproduce:", "", "```sh", *[e.curl for e in r.exchanges[-2:]], "```"]
        return "\n".join(lines) + "\n"
