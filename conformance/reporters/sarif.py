"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

One rule per check that ran (ID, name, requirement, spec clauses, help with the fix); one result per fail
(level ``error``) and warn (level ``warning``); a check that could not decide (verdict ``error``) is a tool
execution notification of the invocation. A finding is about a deployed API, not a line of source:
its location is on the target, the path of the request that showed it relative to the base ``TARGET``,
which ``originalUriBaseIds`` sets to the target's base URL (SARIF §3.14.14). GitHub code scanning refuses
an absolute ``http(s)`` URI in a location; it takes the relative one. ``partialFingerprints`` (check ID
and target) keep the same finding one alert from run to run.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from typing import Any
from urllib.parse import quote, urlsplit

from ..model import Level, Result, Status, Summary
from . import FileReporter, RunInfo, finding_lines
from .rules import area_of, rule_name

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
RESULT_LEVELS = {Status.FAIL: "error", Status.WARN: "warning"}
DEFAULT_LEVELS = {Level.MUST: "error", Level.SHOULD: "warning", Level.MAY: "note"}
TARGET = "TARGET"  # the uriBaseId of every location: the target's base URL


def target_base(base_url: str) -> str:
    """The base URL as a SARIF base URI (it ends with a slash)."""
    return base_url if base_url.endswith("/") else base_url + "/"


def location_uri(result: Result, base_url: str) -> str:
    """Where on the target ``result`` was seen, relative to its base: the path of its last request there."""
    base = urlsplit(target_base(base_url))
    for exchange in reversed(result.exchanges):
        url = urlsplit(exchange.url)
        if (url.scheme, url.netloc) == (base.scheme, base.netloc):
            relative = posixpath.relpath(url.path or "/", base.path)
            if relative != ".":
                # a colon in a relative path's first segment would read as a scheme: it is escaped too
                return quote(relative, safe="/-._~!$&'()*+,;=@%")
            break
    return "."  # the base itself


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
    location = {"uri": location_uri(result, target), "uriBaseId": TARGET}
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
        "locations": [{"physicalLocation": {"artifactLocation": location}}],
        "partialFingerprints": {"jwtConformanceFinding/v1": _fingerprint(result, target)},
        "properties": properties,
    }


def _undecided(result: Result, index: int) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": _message(result)},
        "associatedRule": {"id": result.id, "index": index},
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
                "originalUriBaseIds": {
                    TARGET: {"uri": target_base(target), "description": {"text": "The target's base URL"}}
                },
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "startTimeUtc": info.started_at,
                        "toolExecutionNotifications": [
                            _undecided(result, rules[result.id]) for result in results if result.status is Status.ERROR
                        ],
                    }
                ],
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
