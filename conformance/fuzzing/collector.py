"""From schemathesis's recorded scenarios to distinct, redacted findings, and the operations the target lacks.

An operation the target does not have answers 404 (no such path) or 405 (the path exists, not the
method) to every request of its method that reaches routing; what answers before routing (a body
parser's 400 or 415, an authentication layer's 401, a throttle's 429) does not say it is there. Such
an operation is named in a note, not in findings: what it got are the framework's answers for a
route that does not exist. A 5xx stays a finding wherever it comes from.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from ..client import Redactor
from .model import AbsentOperation, Finding

EXCERPT_CHARS = 500
NOT_THERE = frozenset({404, 405})
# Answers a server may give before it routes a request: they do not show that the route exists.
BEFORE_ROUTING = frozenset({400, 401, 403, 411, 413, 414, 415, 429, 431})
SERVER_ERROR_CHECK = "not_a_server_error"
# Any JWT in an answer (the token endpoint issues them to the fuzzer's valid logins) is redacted.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class Collector:
    """Turns schemathesis's recorded scenarios into distinct, redacted findings."""

    def __init__(self, redact: Redactor) -> None:
        self.redact = redact
        self.findings: dict[tuple[str, str, str, str], Finding] = {}
        self.answers: dict[str, Counter[int]] = {}  # statuses of the requests sent with each operation's method

    def scenario(self, phase: str, recorder: Any) -> int:
        """Record one finished scenario; return how many distinct findings it added."""
        method = recorder.label.split(" ", 1)[0]
        seen = self.answers.setdefault(recorder.label, Counter())
        for interaction in recorder.interactions.values():
            response = getattr(interaction, "response", None)
            # Undeclared-method probes ask other routes (or none): they say nothing of this operation.
            if response is not None and str(interaction.request.method).upper() == method:
                seen[int(response.status_code)] += 1
        new = 0
        for case_id, nodes in recorder.checks.items():
            for node in nodes:
                info = node.failure_info
                if info is None:
                    continue
                failure = info.failure
                operation = failure.operation or recorder.label
                key = (operation, node.name, type(failure).__name__, str(failure._unique_key))
                known = self.findings.get(key)
                if known is not None:
                    self.findings[key] = replace(known, occurrences=known.occurrences + 1)
                    continue
                new += 1
                self.findings[key] = self._finding(phase, operation, node.name, failure, info, recorder, case_id)
        return new

    def absent_operations(self, operations: Sequence[str]) -> list[AbsentOperation]:
        """The operations, in ``operations`` order, that the target does not have (see the module docstring)."""
        absent = []
        for operation in operations:
            seen = self.answers.get(operation)
            if not seen or "{" in operation:  # a templated path answers 404 for a resource that is not there
                continue
            not_there = sum(seen[status] for status in NOT_THERE)
            other = [s for s in seen if s not in NOT_THERE and s not in BEFORE_ROUTING and s < 500]
            if not_there and not other:
                left_out = sum(
                    1 for f in self.findings.values() if f.operation == operation and f.check != SERVER_ERROR_CHECK
                )
                absent.append(AbsentOperation(operation, seen.total(), not_there, left_out))
        return absent

    def kept(self, absent: Iterable[AbsentOperation]) -> list[Finding]:
        """The findings, without those of absent operations (their 5xx excepted)."""
        gone = {a.operation for a in absent}
        return [f for f in self.findings.values() if f.operation not in gone or f.check == SERVER_ERROR_CHECK]

    def _finding(
        self, phase: str, operation: str, check: str, failure: Any, info: Any, recorder: Any, case_id: str
    ) -> Finding:
        interaction = recorder.interactions.get(failure.case_id or case_id) or recorder.interactions.get(case_id)
        response = getattr(interaction, "response", None)
        excerpt = None
        if response is not None and response.content:
            # A token answer's credentials (opaque refresh tokens too) are secrets from here on, in every field.
            self.redact.learn_answer("", response.content, ())
            text = response.content[:EXCERPT_CHARS].decode("utf-8", errors="replace")
            excerpt = self.redact(_JWT.sub("${ISSUED_TOKEN}", text))
            if len(response.content) > EXCERPT_CHARS:
                excerpt += f"... [{len(response.content)} bytes]"
        return Finding(
            operation=operation,
            check=check,
            code=str(getattr(failure, "code", "")),
            title=failure.title,
            message=self.redact(failure.message or ""),
            phase=phase,
            curl=runnable(self.redact(info.code_sample)),
            status=None if response is None else int(response.status_code),
            response_excerpt=excerpt,
        )


def runnable(curl: str) -> str:
    """Single-quoted arguments holding a ``${PLACEHOLDER}`` are re-quoted so that the shell expands it."""

    def requote(match: re.Match[str]) -> str:
        inner = match.group(1)
        if "${" not in inner:
            return match.group(0)
        return '"' + inner.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'

    return re.sub(r"'([^']*)'", requote, curl)


def in_contract_order(findings: Iterable[Finding], operations: Sequence[str]) -> list[Finding]:
    rank = {operation: index for index, operation in enumerate(operations)}
    return sorted(findings, key=lambda f: (rank.get(f.operation, len(rank)), f.check))
