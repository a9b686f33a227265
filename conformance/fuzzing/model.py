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
    source: str = "contract"  # "contract" (--contract), "served" (the target's /openapi.json), "core" (the kit's)
    description: str = ""  # where the contract came from, and how much of it is fuzzed
    rules: str | None = None  # how answers are judged, when not by the contract's own schemas
    tokens: str = ""  # where the run's tokens come from (never a token)


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
class OperationStarted:
    """An operation begins a phase (what a terminal shows while it runs; no reporter needs it)."""

    phase: str
    operation: str


@dataclass(frozen=True)
class AbsentOperation:
    """An operation the target does not have: 404 or 405 to every request of its method that reached routing."""

    operation: str
    requests: int  # requests sent with the operation's method
    not_found: int  # of which answered 404 or 405
    left_out: int = 0  # findings on it left out of the report (a 5xx is never left out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "requests": self.requests,
            "not_found": self.not_found,
            "findings_left_out": self.left_out,
        }


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
    logins: int = 0  # password-grant logins for the fuzzer's tokens
    token_source: str = "password"  # password, token (--token), token_command, issuer (minted)
    tokens: int = 0  # tokens the run had: logins, the given one, command runs, minted ones
    tokens_described: str = ""  # the same for people: "3 logins", "2 tokens minted"
    duration_s: float = 0.0
    source: str = "contract"  # as FuzzStarted.source
    core_rules: bool = False  # answers judged by the core rules, not by the contract's response schemas
    absent: list[AbsentOperation] = field(default_factory=list)

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


FuzzEvent = FuzzStarted | OperationStarted | OperationTested | FuzzError | FuzzFinished
