"""The JSON report (``schema_version`` 1, described by ``conformance/report.schema.json``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..model import Result, Status, Summary
from . import FileReporter, RunInfo

SCHEMA_VERSION = 1


def report_document(info: RunInfo, results: Sequence[Result], summary: Summary) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "jwt-conformance", "version": info.tool_version},
        "target": {"base_url": info.config.base_url, "profile": str(info.config.profile)},
        "options": {"strict": info.config.strict, "select": list(info.config.select), "skip": list(info.config.skip)},
        "started_at": info.started_at,
        "duration_s": round(summary.duration_s, 3),
        "summary": {str(status): summary.counts[status] for status in Status},
        "notes": list(summary.notes),
        "results": [result.to_dict() for result in results],
    }


class JsonReporter(FileReporter):
    def render(self, info: RunInfo, summary: Summary) -> str:
        return json.dumps(report_document(info, self.results, summary), indent=2, ensure_ascii=False) + "\n"
