"""Reporters of a fuzz run: progress and a grouped summary on the console; JSON, Markdown, JUnit files.

Each consumes the event stream of ``run_fuzz`` (``handle(event)``) and never touches HTTP.
"""

from __future__ import annotations

import json
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Protocol, TextIO

import click

from .model import Finding, FuzzError, FuzzEvent, FuzzFinished, FuzzStarted, FuzzSummary, OperationTested

SCHEMA_VERSION = 1
REPORT_FILES = {"json": "fuzz-report.json", "markdown": "fuzz-report.md", "junit": "fuzz-junit.xml"}
SOURCES = {
    "contract": "given with --contract",
    "served": "the OpenAPI document the target serves",
    "core": "the kit's core operations",
}

TOKEN_SOURCES = {
    "password": "the password grant",
    "token": "the given token (--token)",
    "token_command": "the token command (--token-command)",
    "issuer": "minted with the test issuer's keys (issuer mode)",
}


class FuzzReporter(Protocol):
    def handle(self, event: FuzzEvent) -> None: ...


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _totals(summary: FuzzSummary) -> str:
    grouped = summary.by_operation()
    operations = _plural(len(summary.operations), "operation")
    if summary.absent:
        operations += f" ({len(summary.absent)} not on the target)"
    parts = [
        operations,
        _plural(summary.cases, "case"),
        f"{_plural(len(summary.findings), 'finding')} on {_plural(len(grouped), 'operation')}",
        _plural(len(summary.errors), "error"),
    ]
    return ", ".join(parts)


class ConsoleFuzzReporter:
    """A line per operation and phase as they finish, then every finding grouped by operation."""

    def __init__(self, stream: TextIO | None = None, color: bool | None = None, tool_version: str = "") -> None:
        self.stream = stream or sys.stdout
        self.color = self.stream.isatty() if color is None else color
        self.tool_version = tool_version
        self.width = 24

    def _echo(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _style(self, text: str, color: str, bold: bool = False) -> str:
        return click.style(text, fg=color, bold=bold) if self.color else text

    def handle(self, event: FuzzEvent) -> None:
        if isinstance(event, FuzzStarted):
            self.width = max((len(op) for op in event.operations), default=10) + 2
            bound = f", at most {event.max_time_s:g} s" if event.max_time_s else ""
            self._echo(
                f"jwt-conformance fuzz {self.tool_version}: {_plural(len(event.operations), 'operation')} of "
                f"{event.contract} against {event.base_url} (seed {event.seed}, "
                f"up to {event.max_examples} examples per operation{bound})"
            )
            if event.description:
                self._echo(f"  contract:   {event.description}")
            self._echo(f"  operations: {', '.join(event.operations) or '(none)'}")
            if event.tokens:
                self._echo(f"  tokens:     {event.tokens}")
            if event.rules:
                self._echo(f"  answers:    {event.rules}")
        elif isinstance(event, OperationTested):
            if event.skipped and event.phase == "examples":
                return  # a contract without examples: nothing to say for each operation
            if event.skipped:
                verdict = self._style(f"skipped: {event.skipped}", "bright_black")
            elif event.failures:
                verdict = self._style(_plural(event.failures, "new finding"), "red")
            else:
                verdict = self._style("ok", "green")
            phase = event.phase if event.round == 1 else f"{event.phase} {event.round}"
            self._echo(f"  {phase:<11} {event.operation:<{self.width}} {event.cases:>5} cases  {verdict}")
        elif isinstance(event, FuzzError):
            first = event.message.splitlines()[0] if event.message else "error"
            self._echo(f"  {self._style('error', 'magenta'):<11} {event.operation}: {first}")
        elif isinstance(event, FuzzFinished):
            self._finish(event.summary)

    def _finish(self, summary: FuzzSummary) -> None:
        grouped = summary.by_operation()
        if grouped or summary.errors:
            self._echo()
            self._echo("Findings")
            self._echo("--------")
        for operation, findings in grouped.items():
            self._echo()
            self._echo(self._style(f"{operation} ({_plural(len(findings), 'finding')})", "red", bold=True))
            for finding in findings:
                self._finding(finding)
        for error in summary.errors:
            self._echo()
            self._echo(self._style(f"ERROR {error.operation}", "magenta", bold=True))
            self._echo(textwrap.indent(error.message, "    "))
        self._echo()
        for note in summary.notes:
            self._echo(f"note: {note}")
        verdict = self._style("FAILED", "red", bold=True) if summary.failed else self._style("passed", "green")
        tokens = summary.tokens_described or _plural(summary.logins, "login")
        self._echo(f"{verdict}: {_totals(summary)} in {summary.duration_s:.1f} s ({tokens})")
        self._echo(f"seed {summary.seed}: repeat this run with --seed {summary.seed}")

    def _finding(self, finding: Finding) -> None:
        seen = f"{_plural(finding.occurrences, 'case')}, first in {finding.phase}"
        self._echo(f"  {self._style('FAIL', 'red')} {finding.check} [{finding.code}] {finding.title} ({seen})")
        if finding.status is not None:
            excerpt = (finding.response_excerpt or "").replace("\n", " ")[:160]
            self._echo(f"    answer:  HTTP {finding.status} {excerpt}".rstrip())
        if finding.message:
            self._echo(textwrap.indent(finding.message.strip(), "    "))
        self._echo(f"    repro:   {finding.curl}")


def report_document(summary: FuzzSummary, tool_version: str) -> dict[str, Any]:
    """The JSON report (``schema_version`` 1, described by ``conformance/fuzz-report.schema.json``)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "jwt-conformance fuzz", "version": tool_version},
        "target": {
            "base_url": summary.base_url,
            "contract": summary.contract,
            "contract_source": summary.source,
            "response_schemas_judged": not summary.core_rules,
        },
        "options": {"seed": summary.seed, "max_examples": summary.max_examples},
        "duration_s": round(summary.duration_s, 3),
        "summary": {
            "operations": len(summary.operations),
            "cases": summary.cases,
            "findings": len(summary.findings),
            "errors": len(summary.errors),
            "logins": summary.logins,
            "passed": not summary.failed,
        },
        "tokens": {"source": summary.token_source, "obtained": summary.tokens},
        "notes": list(summary.notes),
        "operations": list(summary.operations),
        "absent_operations": [absent.to_dict() for absent in summary.absent],
        "findings": [finding.to_dict() for finding in summary.findings],
        "errors": [{"operation": e.operation, "message": e.message} for e in summary.errors],
    }


def render_markdown(summary: FuzzSummary) -> str:
    source = SOURCES.get(summary.source, summary.source)
    lines = [
        "# Fuzz report",
        "",
        f"- Target: `{summary.base_url}`, contract `{summary.contract}` ({source})",
        f"- Seed {summary.seed}, up to {summary.max_examples} examples per operation; {summary.duration_s:.1f} s",
        f"- Result: {'**FAILED**' if summary.failed else 'passed'}: {_totals(summary)}",
        f"- Tokens: {TOKEN_SOURCES.get(summary.token_source, summary.token_source)}"
        + (f": {summary.tokens_described}" if summary.tokens_described and summary.token_source != "token" else ""),
        "",
    ]
    if summary.core_rules:
        lines[-1:-1] = ["- Answers judged by the core rules, not by the kit's response schemas"]
    lines += [f"> {note}" for note in summary.notes]
    for operation, findings in summary.by_operation().items():
        lines += ["", f"## {operation}"]
        for f in findings:
            lines += ["", f"### `{f.check}` [{f.code}]: {f.title}", ""]
            lines.append(f"{_plural(f.occurrences, 'case')}, first in the {f.phase} phase.")
            if f.status is not None:
                lines += ["", f"Answer: HTTP {f.status}"]
                if f.response_excerpt:
                    lines += ["", "```", f.response_excerpt, "```"]
            if f.message:
                lines += ["", "```", f.message.strip(), "```"]
            lines += ["", "Reproduce:", "", "```sh", f.curl, "```"]
    if summary.errors:
        lines += ["", "## Errors"]
        for error in summary.errors:
            lines += ["", f"### {error.operation}", "", "```", error.message, "```"]
    return "\n".join(lines) + "\n"


def render_junit(summary: FuzzSummary) -> str:
    """One testcase per operation; each finding a <failure>, each error an <error>."""
    grouped = summary.by_operation()
    errors: dict[str, list[FuzzError]] = {}
    for error in summary.errors:
        errors.setdefault(error.operation, []).append(error)
    suite = ET.Element(
        "testsuite",
        name="jwt-conformance fuzz",
        tests=str(len(summary.operations)),
        failures=str(sum(1 for op in summary.operations if op in grouped)),
        errors=str(len(errors)),
        skipped=str(sum(1 for a in summary.absent if a.operation not in grouped)),
        time=f"{summary.duration_s:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="base_url", value=summary.base_url)
    ET.SubElement(properties, "property", name="seed", value=str(summary.seed))
    absent = {a.operation: a for a in summary.absent}
    for operation in (*summary.operations, *(op for op in errors if op not in summary.operations)):
        case = ET.SubElement(suite, "testcase", classname="jwt-conformance.fuzz", name=operation)
        if operation in absent and operation not in grouped:
            message = f"not on the target: 404 or 405 to {absent[operation].not_found} of its requests"
            ET.SubElement(case, "skipped", message=message)
        for f in grouped.get(operation, []):
            text = "\n".join(part for part in (f.message.strip(), f"reproduce: {f.curl}") if part)
            ET.SubElement(case, "failure", message=f"{f.check}: {f.title}", type=f.code).text = text
        for error in errors.get(operation, []):
            ET.SubElement(case, "error", message=error.message.splitlines()[0] if error.message else "error")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


class ReportDirReporter:
    """Writes ``fuzz-report.json``, ``fuzz-report.md`` and ``fuzz-junit.xml`` into one directory at the end."""

    def __init__(self, directory: Path, tool_version: str) -> None:
        self.directory = directory
        self.tool_version = tool_version

    def handle(self, event: FuzzEvent) -> None:
        if not isinstance(event, FuzzFinished):
            return
        summary = event.summary
        self.directory.mkdir(parents=True, exist_ok=True)
        document = report_document(summary, self.tool_version)
        files = {
            "json": json.dumps(document, indent=2, ensure_ascii=False) + "\n",
            "markdown": render_markdown(summary),
            "junit": render_junit(summary),
        }
        for kind, text in files.items():
            (self.directory / REPORT_FILES[kind]).write_text(text, encoding="utf-8")
