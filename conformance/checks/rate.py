"""RATE-*: brute-force protection at the token endpoint. RFC 6749 §4.3.2, ASVS 6.3.1, 6.1.1.

Destructive: the probe sends wrong passwords to an account until the server pushes back, which may
lock that account. It runs only with --allow-destructive, against users.throwaway, never against
the primary account. One probe per run; both checks read it.
"""

from __future__ import annotations

import secrets
import statistics
from dataclasses import dataclass

from ..client import Response
from ..context import Context
from ..model import Failure, Info, Level, Need, Skip
from ..registry import check
from ._expect import describe, is_success

ATTEMPTS = 20
DELAY_FACTOR = 3.0  # a response this many times slower than the first ones counts as a delay
DELAY_FLOOR_S = 0.2


@dataclass(frozen=True)
class Probe:
    failures: list[Response]
    right: Response  # the correct password, sent after the failures
    first_pushback: int | None  # index of the first 429/423 or changed refusal, if any
    delayed: bool


def _probe(ctx: Context) -> Probe:
    ctx.require_token_endpoint()
    if not ctx.config.allow_destructive:
        raise Skip("this check may lock the account it tests: pass --allow-destructive and set users.throwaway")
    creds = ctx.credentials("throwaway")
    state = ctx.state
    with state.brute_force_lock:
        if state.brute_force is None:
            failures: list[Response] = []
            pushback = None
            for attempt in range(ATTEMPTS):
                response = ctx.login("throwaway", password="wrong-" + secrets.token_urlsafe(10)).response
                failures.append(response)
                if response.status in (423, 429) or (failures[0].status != response.status and pushback is None):
                    pushback = attempt
                    break
            right = ctx.login("throwaway", password=creds.password).response
            first = [r.elapsed_s for r in failures[:5]]
            last = [r.elapsed_s for r in failures[-5:]]
            delayed = (
                len(failures) >= 10
                and statistics.median(last) > DELAY_FACTOR * statistics.median(first)
                and statistics.median(last) - statistics.median(first) > DELAY_FLOOR_S
            )
            state.brute_force = Probe(failures, right, pushback, delayed)
        probe: Probe = state.brute_force
    return probe


@check(
    "RATE-001", level=Level.SHOULD, spec=["RFC 6749 §4.3.2", "ASVS 6.3.1"], needs=[Need.DESTRUCTIVE], cost="standard"
)
def repeated_wrong_passwords_are_slowed_down(ctx: Context) -> str | None:
    """20 wrong passwords in a row meet a throttle (429), a delay or a lockout."""
    # RFC 6749 §4.3.2: the authorization server "MUST protect the endpoint against brute force attacks
    # (e.g., using rate-limitation or generating alerts)" (alerts cannot be observed from outside).
    probe = _probe(ctx)
    if probe.first_pushback is not None:
        answer = probe.failures[probe.first_pushback]
        return f"pushback after {probe.first_pushback + 1} wrong passwords: {answer.status}"
    if probe.delayed:
        return "the answers slowed down as the failures added up"
    raise Failure(
        f"{len(probe.failures)} wrong passwords in a row met no throttle, delay or lockout",
        expected="429 with Retry-After (or a growing delay, or a temporary lockout) within 20 attempts",
        actual=describe(probe.failures[-1]) + f"; then the right password: HTTP {probe.right.status}",
        hint="Limit failed logins per account and per client address (e.g. 10 per 5 minutes), answering 429.",
    )


@check("RATE-002", level=Level.MAY, spec=["ASVS 6.1.1", "RFC 9110 §10.2.3"], needs=[Need.DESTRUCTIVE], cost="standard")
def brute_force_protection_is_temporary(ctx: Context) -> str | None:
    """The protection is a throttle with a stated end (Retry-After), not a permanent lockout."""
    probe = _probe(ctx)
    if is_success(probe.right):
        if probe.first_pushback is None:
            raise Skip("no pushback was observed (see RATE-001): nothing to classify")
        return "the right password still logs in during the pushback (a per-client throttle)"
    retry_after = probe.right.header("retry-after")
    if probe.right.status == 429 and retry_after:
        return f"throttled, with Retry-After {retry_after} s (a correct password is refused too until then)"
    raise Info(
        f"the right password is refused ({probe.right.status}) with no Retry-After: if this is a lockout "
        "without an end, anyone can lock any account (malicious lockout)"
    )
