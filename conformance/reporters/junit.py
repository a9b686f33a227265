"""JUnit XML: one testcase per check; fail → <failure>, error → <error>, skip → <skipped>."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from ..model import Result, Status, Summary
from ..registry import Check
from . import RunInfo


def _details(result: Result) -> str:
    lines = [result.message]
    if result.expected:
        lines.append(f"expected: {result.expected}")
    if result.actual:
        lines.append(f"actual: {result.actual}")
    if result.hint:
        lines.append(f"fix: {result.hint}")
    lines += [f"reproduce: {exchange.curl}" for exchange in result.exchanges[-2:]]
    return "\n".join(line for line in lines if line)


class JunitReporter:
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
        counts = summary.counts
        suite = ET.Element(
            "testsuite",
            name="jwt-conformance",
            tests=str(len(self.results)),
            failures=str(counts[Status.FAIL]),
            errors=str(counts[Status.ERROR]),
            skipped=str(counts[Status.SKIP]),
            time=f"{summary.duration_s:.3f}",
            timestamp=self.info.started_at,
        )
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="base_url", value=self.info.config.base_url)
        ET.SubElement(properties, "property", name="profile", value=str(self.info.config.profile))
        for result in self.results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"jwt-conformance.{result.id.rsplit('-', 1)[0]}",
                name=f"{result.id} {result.title}",
                time=f"{result.duration_s:.3f}",
            )
            text = _details(result)
            if result.status is Status.FAIL:
                ET.SubElement(case, "failure", message=result.message, type=str(result.level)).text = text
            elif result.status is Status.ERROR:
                ET.SubElement(case, "error", message=result.message).text = text
            elif result.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=result.message)
            elif result.status in (Status.WARN, Status.INFO):
                ET.SubElement(case, "system-out").text = f"[{result.status}] {text}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(suite).write(self.path, encoding="utf-8", xml_declaration=True)
