"""JUnit XML: one testcase per check; fail → <failure>, error → <error>, skip → <skipped>."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..model import Result, Status, Summary
from . import FileReporter, RunInfo, finding_lines


def _details(result: Result) -> str:
    lines = [result.message, *(f"{label}: {value}" for label, value in finding_lines(result))]
    lines += [f"reproduce: {exchange.curl}" for exchange in result.exchanges[-2:]]
    return "\n".join(line for line in lines if line)


class JunitReporter(FileReporter):
    def render(self, info: RunInfo, summary: Summary) -> str:
        counts = summary.counts
        suite = ET.Element(
            "testsuite",
            name="jwt-conformance",
            tests=str(len(self.results)),
            failures=str(counts[Status.FAIL]),
            errors=str(counts[Status.ERROR]),
            skipped=str(counts[Status.SKIP]),
            time=f"{summary.duration_s:.3f}",
            timestamp=info.started_at,
        )
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="base_url", value=info.config.base_url)
        ET.SubElement(properties, "property", name="profile", value=str(info.config.profile))
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
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
