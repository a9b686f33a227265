"""A saved JSON report read back: the run it describes, as the file formats render it.

Every file format renders what the JSON report keeps (``kept``): a format written during the run and the
same format rendered later from its JSON report (``jwt-conformance report``) are the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from ..config import RunConfig
from ..errors import ConformanceError
from ..model import Exchange, Level, Profile, Result, Status, Summary
from . import RunInfo
from .json_report import SCHEMA_VERSION, report_document


class ReportFileError(ConformanceError):
    """Raised when a saved report cannot be read: not JSON, another schema_version, or not a valid report."""


@dataclass(frozen=True)
class SavedRun:
    info: RunInfo
    results: list[Result]
    summary: Summary


def _exchange(data: Mapping[str, Any]) -> Exchange:
    request, response = data["request"], data["response"]
    return Exchange(
        method=request["method"],
        url=request["url"],
        request_headers=tuple((name, value) for name, value in request["headers"]),
        request_body=request.get("body"),
        status=None if response is None else response["status"],
        response_headers={} if response is None else dict(response["headers"]),
        response_body=None if response is None else response.get("body"),
        curl=data["curl"],
        elapsed_s=data.get("elapsed_s", 0.0),
        error=data.get("error"),
    )


def _result(data: Mapping[str, Any]) -> Result:
    evidence = data["evidence"]
    return Result(
        id=data["id"],
        title=data["title"],
        level=Level(data["level"]),
        status=Status(data["status"]),
        spec=tuple(data["spec"]),
        message=data["message"],
        expected=evidence.get("expected"),
        actual=evidence.get("actual"),
        hint=evidence.get("hint"),
        exchanges=tuple(_exchange(exchange) for exchange in evidence["exchanges"]),
        duration_s=data["duration_s"],
        low_confidence=data.get("low_confidence", False),
    )


def from_document(document: Mapping[str, Any]) -> SavedRun:
    """The run a valid report document describes (the config holds what the report keeps of it)."""
    options = document.get("options", {})
    config = RunConfig(
        base_url=document["target"]["base_url"],
        primary=None,
        profile=Profile(document["target"]["profile"]),
        strict=options.get("strict", False),
        select=tuple(options.get("select", ())),
        skip=tuple(options.get("skip", ())),
    )
    info = RunInfo(config, document["tool"]["version"], document["started_at"])
    counts = {status: document["summary"][str(status)] for status in Status}
    summary = Summary(counts=counts, duration_s=document["duration_s"], notes=list(document.get("notes", [])))
    return SavedRun(info, [_result(result) for result in document["results"]], summary)


def kept(info: RunInfo, results: Sequence[Result], summary: Summary) -> SavedRun:
    """What the JSON report of this run keeps, read back (durations rounded as it rounds them)."""
    return from_document(report_document(info, results, summary))


def _schema() -> dict[str, Any]:
    text = resources.files("conformance").joinpath("report.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _where(error: jsonschema.ValidationError) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    return path.lstrip(".") or "the document"


def load_report(path: Path, tool_version: str) -> SavedRun:
    """Read a saved JSON report; ``ReportFileError`` (one line that says what to do) when it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportFileError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportFileError(
            f"{path} is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}): give the file written by "
            "--json-report"
        ) from None
    version = document.get("schema_version") if isinstance(document, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise ReportFileError(
            f"{path} is not a jwt-conformance JSON report (no schema_version): give the file written by --json-report"
        )
    if version > SCHEMA_VERSION:
        raise ReportFileError(
            f"{path} has schema_version {version}, newer than this jwt-conformance {tool_version} reads "
            f"({SCHEMA_VERSION}): upgrade jwt-conformance (pip install --upgrade jwt-auth-kit) to render it"
        )
    if version != SCHEMA_VERSION:
        raise ReportFileError(
            f"{path} has schema_version {version}, which no jwt-conformance wrote (this one reads {SCHEMA_VERSION}): "
            "give the file written by --json-report"
        )
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(_schema()).iter_errors(document))
    if error is not None:
        message = " ".join(error.message.split())
        message = message if len(message) <= 160 else message[:157] + "..."
        raise ReportFileError(
            f"{path} is not a valid jwt-conformance report: {_where(error)}: {message}; "
            "give the file written by --json-report, unedited"
        )
    return from_document(document)
