"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

One rule per check that ran (ID, name, requirement, spec clauses, help with the fix); one result per fail
(level ``error``) and warn (level ``warning``). A finding is about a deployed API, not a line of source:
its location is the target's base URL (``artifactLocation.uri``), and ``partialFingerprints`` (check ID
and target) keep the same finding one alert from run to run.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..model import Level, Result, Status, Summary
from . import FileReporter, RunInfo, finding_lines
from .rules import area_of, rule_name

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
RESULT_LEVELS = {Status.FAIL: "error", Status.WARN: "warning"}
DEFAULT_LEVELS = {Level.MUST: "error", Level.SHOULD: "warning", Level.MAY: "note"}


def _help(result: Result) -> dict[str, str]:
    spec = "; ".join(result.spec)
    text = [f"{result.id} [{result.level}]: {result.title}", f"Spec: {spec}"]
    markdown = [f"**{result.id}** ({result.level}): {result.title}", "", f"Spec: {spec}"]
    if result.hint:
        text.append(f"Fix: {result.hint}")
        markdown += ["", f"Fix: {result.hint}"]
    return {"text": "\n".join(text), "markdown": "\n".join(markdown)}


def _rule(result: Result) -> dict[str, Any]:
    return {
        "id": result.id,
        "name": rule_name(result.id),
        "shortDescription": {"text": result.title},
        "fullDescription": {"text": f"{result.title} ({result.level}; {'; '.join(result.spec)})"},
        "help": _help(result),
        "defaultConfiguration": {"level": DEFAULT_LEVELS[result.level]},
        "properties": {
            "level": str(result.level),
            "spec": list(result.spec),
            "tags": ["security", "jwt", "oauth2", area_of(result.id)],
        },
    }


def _message(result: Result) -> str:
    lines = [f"{result.id} ({result.status}): {result.message or result.title}"]
    lines += [f"{label}: {value}" for label, value in finding_lines(result)]
    lines += [f"reproduce: {exchange.curl}" for exchange in result.exchanges[-2:]]
    return "\n".join(lines)


def _fingerprint(result: Result, target: str) -> str:
    return hashlib.sha256(f"{result.id}\n{target}".encode()).hexdigest()[:32]


def _result(result: Result, index: int, target: str) -> dict[str, Any]:
    properties: dict[str, Any] = {"verdict": str(result.status), "requirementLevel": str(result.level)}
    if result.exchanges:
        last = result.exchanges[-1]
        properties["request"] = f"{last.method} {last.url}"
    if result.low_confidence:
        properties["lowConfidence"] = True
    return {
        "ruleId": result.id,
        "ruleIndex": index,
        "level": RESULT_LEVELS[result.status],
        "message": {"text": _message(result)},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": target}}}],
        "partialFingerprints": {"jwtConformanceFinding/v1": _fingerprint(result, target)},
        "properties": properties,
    }


def sarif_document(info: RunInfo, results: list[Result], summary: Summary) -> dict[str, Any]:
    target = info.config.base_url
    rules: dict[str, int] = {}  # check ID -> its rule's index
    for result in results:
        rules.setdefault(result.id, len(rules))
    first = {result.id: result for result in reversed(results)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "jwt-conformance",
                        "version": info.tool_version,
                        "rules": [_rule(first[check_id]) for check_id in rules],
                    }
                },
                "invocations": [{"executionSuccessful": True, "startTimeUtc": info.started_at}],
                "results": [
                    _result(result, rules[result.id], target) for result in results if result.status in RESULT_LEVELS
                ],
                "properties": {
                    "target": target,
                    "profile": str(info.config.profile),
                    "strict": info.config.strict,
                    "summary": {str(status): summary.counts[status] for status in Status},
                    "notes": list(summary.notes),
                },
            }
        ],
    }


class SarifReporter(FileReporter):
    def render(self, info: RunInfo, summary: Summary) -> str:
        return json.dumps(sarif_document(info, self.results, summary), indent=2, ensure_ascii=False) + "\n"
