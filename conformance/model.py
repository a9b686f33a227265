"""The data of a run: levels, verdicts, the check outcomes a check raises, and results."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    """How binding the rule is; decides the verdict of a broken rule (MUST → fail, SHOULD → warn)."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"
    SKIP = "skip"
    ERROR = "error"


class Profile(StrEnum):
    """``rfc``: the RFCs as written. ``fastapi``: the FastAPI-tutorial dialect is a warning, not a failure."""

    RFC = "rfc"
    FASTAPI = "fastapi"


class Need(StrEnum):
    """What a check needs beyond black-box access with one account (CHECK-CATALOG "Needs")."""

    SECOND_USER = "U2"
    DISABLED_USER = "DU"
    SHORT_TTL = "T"
    SIGNING_KEY = "K"
    PUBLIC_KEY = "PK"
    CALLBACK = "CB"
    CAPABILITY = "C"
    DESTRUCTIVE = "X"
    ISSUER = "I"  # issuer mode: the run is the issuer the API trusts (--issuer-keys)


class CheckOutcome(Exception):
    """Raised by a check to end it with a verdict other than pass."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Failure(CheckOutcome):
    """The rule is broken. The verdict follows the check's level and the profile (or ``level`` here)."""

    def __init__(
        self,
        message: str,
        *,
        expected: str | None = None,
        actual: str | None = None,
        hint: str | None = None,
        level: Level | None = None,
        dialect: bool | None = None,
        security: bool = False,
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual
        self.hint = hint
        self.level = level
        # True: the FastAPI dialect, relaxed to warn in the fastapi profile; False: never relaxed (a
        # security failure inside a dialect check); None: as the check says.
        self.dialect = False if security else dialect
        # A security failure (something was ACCEPTED that must not be) is never relaxed by the profile
        # and never excused by throttling seen elsewhere in the check.
        self.security = security


class Skip(CheckOutcome):
    """A prerequisite is missing; the message says how to provide it."""


class Info(CheckOutcome):
    """An observation worth reporting that breaks no rule."""


def throttled(retry_after: str | None) -> Skip:
    """The outcome of a check whose requests were throttled (429): no verdict, and the way out."""
    wait = f", Retry-After {retry_after}" if retry_after else ""
    return Skip(
        f"the server throttled the requests (429{wait}): run again after the throttle window, with a dedicated "
        "test account, or with --level quick"
    )


def unavailable(retry_after: str) -> Skip:
    """The outcome of a check that met a 503 with Retry-After: the server said it could not serve just then."""
    return Skip(
        f"the server was unavailable (503, Retry-After {retry_after}) during this check, so its rule was not "
        "exercised: run again when the server is available"
    )


@dataclass(frozen=True)
class Exchange:
    """One HTTP request and its answer, secrets already redacted."""

    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: str | None
    status: int | None
    response_headers: dict[str, str]
    response_body: str | None
    curl: str
    elapsed_s: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": {
                "method": self.method,
                "url": self.url,
                "headers": [list(pair) for pair in self.request_headers],
                "body": self.request_body,
            },
            "response": None
            if self.status is None
            else {"status": self.status, "headers": self.response_headers, "body": self.response_body},
            "error": self.error,
            "curl": self.curl,
            "elapsed_s": round(self.elapsed_s, 4),
        }


@dataclass(frozen=True)
class Result:
    id: str
    title: str
    level: Level
    status: Status
    spec: tuple[str, ...]
    message: str = ""
    expected: str | None = None
    actual: str | None = None
    hint: str | None = None
    exchanges: tuple[Exchange, ...] = ()
    duration_s: float = 0.0
    low_confidence: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "level": str(self.level),
            "status": str(self.status),
            "spec": list(self.spec),
            "message": self.message,
            "evidence": {
                "expected": self.expected,
                "actual": self.actual,
                "hint": self.hint,
                "exchanges": [exchange.to_dict() for exchange in self.exchanges],
            },
            "duration_s": round(self.duration_s, 4),
            "low_confidence": self.low_confidence,
        }


@dataclass
class Summary:
    counts: dict[Status, int] = field(default_factory=lambda: dict.fromkeys(Status, 0))
    duration_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def add(self, result: Result) -> None:
        self.counts[result.status] += 1

    @property
    def failed(self) -> bool:
        return self.counts[Status.FAIL] > 0
