"""The HTML report: one self-contained page (inline style, script and SVG chart; it loads nothing).

A summary by area and verdict with a chart, filters by verdict and area, and every result with its rule,
message, expected / actual / fix and the evidence exchanges with a copy button for each curl line. Every
text comes from the run, much of it from the target: all of it is escaped, and the page's policy runs no
script but its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from html import escape

from ..model import Exchange, Result, Status, Summary
from . import FileReporter, RunInfo, finding_lines
from .html_assets import CONTENT_SECURITY_POLICY, SCRIPT, STYLE
from .rules import area_label, area_of, area_order

BODY_EXCERPT = 4000  # characters of a request or response body shown; the JSON report keeps them all
FINDINGS = f"{Status.FAIL} {Status.WARN} {Status.ERROR}"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _areas(results: Sequence[Result]) -> list[tuple[str, Counter[Status]]]:
    by_area: dict[str, Counter[Status]] = {}
    for result in results:
        by_area.setdefault(area_of(result.id), Counter())[result.status] += 1
    return sorted(by_area.items(), key=lambda item: area_order(item[0]))


def _head(info: RunInfo, summary: Summary) -> list[str]:
    config = info.config
    profile = f"{config.profile}{', strict' if config.strict else ''}"
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CONTENT_SECURITY_POLICY)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>JWT conformance report: {_e(config.base_url)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>JWT conformance report</h1>",
        '<dl class="run">',
        f'<dt>Target</dt><dd id="target">{_e(config.base_url)}</dd>',
        f"<dt>Profile</dt><dd>{_e(profile)}</dd>",
        f"<dt>Started</dt><dd>{_e(info.started_at)}</dd>",
        f"<dt>Duration</dt><dd>{summary.duration_s:.1f} s</dd>",
        f"<dt>Tool</dt><dd>jwt-conformance {_e(info.tool_version)}</dd>",
        "</dl>",
    ]
    if summary.notes:
        lines += ['<ul class="notes">', *(f"<li>{_e(note)}</li>" for note in summary.notes), "</ul>"]
    return [*lines, "</header>"]


def _chart(areas: list[tuple[str, Counter[Status]]]) -> list[str]:
    label_w, bar_w, row_h = 150, 560, 24
    widest = max((sum(counts.values()) for _, counts in areas), default=1) or 1
    height = row_h * len(areas) + 8
    lines = [
        f'<svg class="chart" role="img" aria-labelledby="chart-title" width="{label_w + bar_w + 60}" '
        f'height="{height}" viewBox="0 0 {label_w + bar_w + 60} {height}" xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Results by area and verdict</title>',
    ]
    for row, (area, counts) in enumerate(areas):
        y = 4 + row * row_h
        lines.append(f'<text x="0" y="{y + 16}">{_e(area_label(area))}</text>')
        x = float(label_w)
        for status in Status:
            if counts[status]:
                width = bar_w * counts[status] / widest
                lines.append(
                    f'<rect class="s-{status}" x="{x:.1f}" y="{y}" width="{width:.1f}" height="{row_h - 6}">'
                    f"<title>{_e(area_label(area))}: {counts[status]} {status}</title></rect>"
                )
                x += width
        lines.append(f'<text x="{x + 6:.1f}" y="{y + 16}">{sum(counts.values())}</text>')
    return [*lines, "</svg>"]


def _summary(results: Sequence[Result], summary: Summary) -> list[str]:
    areas = _areas(results)
    lines = ['<section id="summary">', "<h2>Summary</h2>", '<ul class="totals">']
    for status in Status:
        count = f'<span class="count" data-status="{status}">{summary.counts[status]}</span>'
        lines.append(f'<li class="bg-{status}">{status} {count}</li>')
    lines += ["</ul>", *_chart(areas)]
    lines += ['<table id="by-area">', "<thead><tr><th>Area</th>"]
    lines += [f"<th>{status}</th>" for status in Status] + ["<th>total</th></tr></thead>", "<tbody>"]
    for area, counts in areas:
        cells = "".join(f"<td>{counts[status]}</td>" for status in Status)
        lines.append(f'<tr data-area="{_e(area)}"><td>{_e(area_label(area))}</td>{cells}<td>{counts.total()}</td></tr>')
    totals = "".join(f"<td>{summary.counts[status]}</td>" for status in Status)
    lines += ["</tbody>", f"<tfoot><tr><td>all</td>{totals}<td>{sum(summary.counts.values())}</td></tr></tfoot>"]
    return [*lines, "</table>", "</section>"]


def _filters(results: Sequence[Result], summary: Summary) -> list[str]:
    def button(kind: str, value: str, label: str) -> str:
        attributes = f'type="button" class="filter" data-filter="{kind}" data-value="{_e(value)}"'
        return f"<button {attributes}>{_e(label)}</button>"

    findings = sum(summary.counts[Status(status)] for status in FINDINGS.split())
    verdicts = [button("status", "", f"all ({len(results)})"), button("status", FINDINGS, f"findings ({findings})")]
    verdicts += [button("status", str(status), f"{status} ({summary.counts[status]})") for status in Status]
    areas = [button("area", "", "all")]
    areas += [button("area", area, f"{area_label(area)} ({counts.total()})") for area, counts in _areas(results)]
    return [
        '<div class="filters" role="toolbar" aria-label="Filters">',
        f"<div><span>Verdict</span>{''.join(verdicts)}</div>",
        f"<div><span>Area</span>{''.join(areas)}</div>",
        "</div>",
        f'<p>Showing <span id="shown-count">{len(results)}</span> of {len(results)} results.</p>',
    ]


def _excerpt(body: str | None) -> str:
    if not body:
        return ""
    if len(body) <= BODY_EXCERPT:
        return body
    return f"{body[:BODY_EXCERPT]}\n... ({len(body) - BODY_EXCERPT} more characters in the JSON report)"


def _exchange(exchange: Exchange, open_: bool) -> list[str]:
    answer = exchange.error if exchange.status is None else f"{exchange.status}"
    request = [f"{exchange.method} {exchange.url}", *(f"{name}: {value}" for name, value in exchange.request_headers)]
    if exchange.request_body:
        request += ["", _excerpt(exchange.request_body)]
    lines = [
        f'<details class="exchange"{" open" if open_ else ""}>',
        f"<summary>{_e(exchange.method)} {_e(exchange.url)} → {_e(answer)} ({exchange.elapsed_s:.3f} s)</summary>",
        "<h4>Request</h4>",
        f"<pre>{_e(chr(10).join(request))}</pre>",
    ]
    if exchange.status is None:
        lines += ["<h4>No answer</h4>", f"<pre>{_e(exchange.error or '')}</pre>"]
    else:
        headers = exchange.response_headers.items()
        response = [f"HTTP {exchange.status}", *(f"{name}: {value}" for name, value in headers)]
        if exchange.response_body:
            response += ["", _excerpt(exchange.response_body)]
        lines += ["<h4>Response</h4>", f'<pre class="response">{_e(chr(10).join(response))}</pre>']
    lines += [
        f'<div class="curl"><code>{_e(exchange.curl)}</code>'
        '<button type="button" class="copy" title="Copy the curl line">Copy</button></div>',
        "</details>",
    ]
    return lines


def _result(result: Result) -> list[str]:
    area = area_of(result.id)
    low = ' <span class="low">low confidence</span>' if result.low_confidence else ""
    lines = [
        f'<article class="result status-{result.status}" id="{_e(result.id)}" data-status="{result.status}" '
        f'data-area="{_e(area)}">',
        f'<h3><span class="badge bg-{result.status}">{result.status}</span> '
        f'<span class="id">{_e(result.id)}</span> {_e(result.title)}{low}</h3>',
        '<dl class="rule">',
        f"<dt>Rule</dt><dd>{_e(result.id)} [{result.level}]</dd>",
        f"<dt>Requirement</dt><dd>{_e(result.title)}</dd>",
        f"<dt>Spec</dt><dd>{_e('; '.join(result.spec))}</dd>",
        f"<dt>Area</dt><dd>{_e(area_label(area))}</dd>",
        "</dl>",
    ]
    if result.message:
        lines.append(f'<p class="message">{_e(result.message)}</p>')
    details = finding_lines(result)
    if details:
        lines.append('<dl class="evidence">')
        lines += [f"<dt>{_e(label.capitalize())}</dt><dd>{_e(value)}</dd>" for label, value in details]
        lines.append("</dl>")
    finding = result.status in (Status.FAIL, Status.WARN, Status.ERROR)
    for index, exchange in enumerate(result.exchanges):
        lines += _exchange(exchange, open_=finding and index >= len(result.exchanges) - 2)
    return [*lines, "</article>"]


def render_html(info: RunInfo, results: Sequence[Result], summary: Summary) -> str:
    lines = _head(info, summary) + ["<main>", *_summary(results, summary)]
    lines += ['<section id="results">', "<h2>Results</h2>", *_filters(results, summary)]
    for result in results:
        lines += _result(result)
    lines += ["</section>", "</main>", f"<script>{SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(lines) + "\n"


class HtmlReporter(FileReporter):
    def render(self, info: RunInfo, summary: Summary) -> str:
        return render_html(info, self.results, summary)
