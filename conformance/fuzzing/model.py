"""The data of a fuzz run: progress events, findings and the summary. Secrets are already redacted here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One distinct problem: a schemathesis check that failed on one operation, with its reproduction."""

    operation: str  # "GET /users/me"
    check: str  # the schemathesis check, e.g. "not_a_server_error"
    code: str  # schemathesis's stable failure code, e.g. "ST101"
    title: str
    message: str
    phase: str  # where it was first seen: examples, coverage, fuzzing, stateful
    curl: str  # reproduces it once ${PASSWORD} / ${ACCESS_TOKEN} are exported
    status: int | None = None  # the answer that failed the check
    response_excerpt: str | None = None
    occurrences: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "check": self.check,
            "code": self.code,
            "title": self.title,
            "message": self.message,
            "phase": self.phase,
            "status": self.status,
            "response_excerpt": self.response_excerpt,
            "curl": self.curl,
            "occurrences": self.occurrences,
        }


@dataclass(frozen=True)
class FuzzStarted:
    base_url: str
    contract: str
    operations: tuple[str, ...]
    seed: int
    max_examples: int
    max_time_s: float | None


@dataclass(frozen=True)
class OperationTested:
    """One operation finished one phase (sent as it happens: the progress of a long run)."""

    phase: str
    operation: str
    cases: int
    failures: int  # distinct failures first seen here
    skipped: str | None = None  # why the phase did not test it
    round: int = 1  # with --max-time the fuzzing phase goes through the operations again until time is up


@dataclass(frozen=True)
class FuzzError:
    """The fuzzer could not finish an operation (no answer in time, a connection dropped, a broken schema)."""

    operation: str
    message: str


@dataclass
class FuzzSummary:
    base_url: str
    contract: str
    seed: int
    max_examples: int
    operations: tuple[str, ...] = ()
    cases: int = 0
    findings: list[Finding] = field(default_factory=list)
    errors: list[FuzzError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    logins: int = 0
    duration_s: float = 0.0

    @property
    def failed(self) -> bool:
        return bool(self.findings or self.errors)

    def by_operation(self) -> dict[str, list[Finding]]:
        grouped: dict[str, list[Finding]] = {}
        for finding in self.findings:
            grouped.setdefault(finding.operation, []).append(finding)
        return grouped


@dataclass(frozen=True)
class FuzzFinished:
    summary: FuzzSummary


FuzzEvent = FuzzStarted | OperationTested | FuzzError | FuzzFinished
