"""``run(config, checks)``: baseline first, then the checks group by group, then the baseline again.

The runner does HTTP (through the checks) and yields ``Result`` objects; it never prints.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .client import Client, Redactor, TransportError
from .config import RunConfig
from .context import Context, RunState
from .errors import BaselineLoginError, TargetUnreachableError
from .login import rejection_error
from .model import CheckOutcome, Exchange, Failure, Info, Level, Profile, Result, Skip, Status, throttled, unavailable
from .progress import NO_PROGRESS, Progress
from .registry import GROUP_ORDER, REGISTRY, Check
from .target_contract import TargetContract

FINAL_CHECK = "BASE-003"
LOGIN_CHECK = "TOKEN-001"
SERVER_ERROR_HINT = "A server error on client input is a defect: answer 4xx for what the client got wrong."


def verdict(check: Check, outcome: BaseException | None, config: RunConfig) -> Status:
    if outcome is None:
        return Status.PASS
    if isinstance(outcome, Skip):
        return Status.SKIP
    if isinstance(outcome, Info):
        return Status.INFO
    if not isinstance(outcome, Failure):
        return Status.ERROR
    level = outcome.level or check.level
    if level is Level.MUST:
        dialect = check.dialect if outcome.dialect is None else outcome.dialect
        relaxed = dialect and config.profile is Profile.FASTAPI
        status = Status.WARN if relaxed else Status.FAIL
    elif level is Level.SHOULD:
        status = Status.WARN
    else:
        status = Status.INFO
    if status is Status.WARN and config.strict:
        return Status.FAIL
    return status


def execute(check: Check, state: RunState, low_confidence: bool = False) -> Result:
    """Run one check to a ``Result``: exceptions become verdicts, and any 5xx it provoked is a failure."""
    ctx = Context(state, check_id=check.id)
    started = time.perf_counter()
    outcome: BaseException | None = None
    message = ""
    try:
        note = check.func(ctx)
        message = note or ""
    except CheckOutcome as exc:
        outcome, message = exc, exc.message
    except TransportError as exc:
        outcome, message = exc, f"the target gave no HTTP answer: {exc}"
    except Exception as exc:  # a bug in the check, or an answer it could not digest: never a traceback
        outcome, message = exc, f"the check could not decide: {type(exc).__name__}: {exc}"
    unavailable_answers = [e for e in ctx.exchanges if said_unavailable(e)]
    server_errors = [e for e in ctx.exchanges if e.status is not None and e.status >= 500 and not said_unavailable(e)]
    if server_errors:
        # A 5xx on client input fails the check in every profile, whatever else the check concluded
        # (including a dropped connection after it: servers often close one after a crash).
        first = server_errors[0]
        outcome = Failure(
            f"the server answered {first.status} to {first.method} {first.url}",
            expected="a 4xx answer (never 5xx) to client input",
            actual=f"HTTP {first.status}",
            hint=SERVER_ERROR_HINT,
            level=Level.MUST,
            security=True,  # never relaxed by the profile, never excused by throttling
        )
        message = outcome.message + (f"; besides: {message}" if message else "")
    throttled_answers = [e for e in ctx.exchanges if e.status == 429]
    if throttled_answers and isinstance(outcome, Failure) and not outcome.security:
        # A throttled request says nothing about the rule under test: no verdict, and the way out.
        # (Security failures, e.g. a token granted for a wrong password, stand whatever else happened.)
        outcome = throttled(throttled_answers[-1].response_headers.get("retry-after"))
        message = outcome.message
    if unavailable_answers and not (isinstance(outcome, Failure) and outcome.security):
        # The server said it could not serve just then: whatever the check concluded, its rule was not
        # exercised (a refusal that is a 503 is no proof of a rule). Security failures stand.
        outcome = unavailable(unavailable_answers[-1].response_headers["retry-after"])
        message = outcome.message
    status = verdict(check, outcome, state.config)
    failure = outcome if isinstance(outcome, Failure) else None
    evidence = tuple(ctx.exchanges[-6:]) if status is not Status.PASS else ()
    # Every text and exchange is redacted again with all the run knows by now (tokens, keys, forgeries).
    return state.client.redact.result(
        Result(
            id=check.id,
            title=check.title,
            level=check.level,
            status=status,
            spec=check.spec,
            message=message,
            expected=failure.expected if failure else None,
            actual=failure.actual if failure and failure.actual else None,
            hint=failure.hint if failure else None,
            exchanges=evidence,
            duration_s=time.perf_counter() - started,
            low_confidence=low_confidence,
        )
    )


def said_unavailable(exchange: Exchange) -> bool:
    """A 503 with Retry-After (RFC 9110 §15.6.4, §10.2.3): the server's own word that it cannot serve for now.
    Not a server error on client input, and no verdict either way. A 503 without Retry-After stays a 5xx."""
    return exchange.status == 503 and "retry-after" in exchange.response_headers


def baseline_login(state: RunState) -> None:
    """Log in once (a token run: take the token). Unreachable target or rejected credentials stop the run (exit 2)."""
    ctx = Context(state)
    if state.token_source is not None:
        _baseline_token(state, ctx)
        return
    try:
        login = ctx.login("primary")
    except TransportError as exc:
        raise TargetUnreachableError(f"cannot reach {state.config.base_url}: {exc}") from None
    state.baseline = login
    if login.token is not None:
        _ask_for_the_me_scopes(state, ctx, login.token)
        return
    response = login.response
    endpoint = f"{state.config.base_url}{state.config.paths.token}"
    error = rejection_error(
        endpoint, state.config.username or "", response.status, login.body, response.header("retry-after")
    )
    if error is not None:
        raise error


def _baseline_token(state: RunState, ctx: Context) -> None:
    """A token run: the token (given, printed by the command, or minted) must reach the me path, else exit 2."""
    if state.issuer is not None:
        state.issuer.check_running()  # a stopped issuer, or one serving other keys, stops the run here
    token = state.token("primary")  # a failing, silent or slow token command stops the run here
    try:
        response = ctx.get(state.config.paths.me, token=token)
    except TransportError as exc:
        raise TargetUnreachableError(f"cannot reach {state.config.base_url}: {exc}") from None
    mode = state.config.issuer_mode
    if response.status == 401 and mode is not None:
        raise BaselineLoginError(
            f"the API refused a token of the test issuer (HTTP 401) at {state.config.paths.me}: check that it "
            f"trusts the issuer {mode.url} (discovery at {mode.endpoint}/.well-known/openid-configuration) with "
            f"audience {mode.audience!r}, and knows the user {mode.subject!r} (--subject; "
            f"issuer.user_claim names the claim it reads)"
        )
    if response.status == 401:
        raise BaselineLoginError("the token was refused (HTTP 401): is it expired, or for another audience?")
    if response.status == 403 and mode is not None:
        raise BaselineLoginError(
            f"the API refused a token of the test issuer at {state.config.paths.me} (HTTP 403): give the scope "
            "that operation needs with --scope (or name another protected GET operation with --me-path)"
        )
    if response.status == 403:
        raise BaselineLoginError(
            f"the token was refused at {state.config.paths.me} (HTTP 403): does it carry the scopes that operation "
            "needs? (or name another protected GET operation with --me-path)"
        )


def _ask_for_the_me_scopes(state: RunState, ctx: Context, token: str) -> None:
    """Log in again asking for the scopes the me path needs, when the default grant cannot reach it.

    RFC 6749 §3.3 lets a server grant no scope to a request that names none (FastAPI's scopes
    tutorial does), so the baseline token may be refused where the target's contract asks for a
    scope. The first login stays the baseline (the default grant, TOKEN-024 reads it); the scoped
    token becomes the run's primary token.
    """
    from .checks._capabilities import capabilities
    from .checks.scopes import answered_scope, claimed_scope

    needed = capabilities(ctx).operation_scopes.get(f"GET {state.config.paths.me}")
    baseline = state.baseline
    if not needed or baseline is None:
        return
    granted = answered_scope(baseline)
    granted = claimed_scope(token) if granted is None else granted
    scope = " ".join(needed)
    try:
        if granted is not None and set(needed) <= granted:
            return
        # The grant visibly lacks a needed scope, or nothing says what was granted: then ask the me path.
        if granted is None and 200 <= ctx.get(state.config.paths.me, token=token).status < 300:
            return
        scoped = ctx.login("primary", scope=scope)
    except TransportError:
        return
    if scoped.token is not None:
        state.replace_token("primary", scoped.token)
        state.baseline_scope = scope


def _still_authenticated(state: RunState) -> bool | None:
    """Does the baseline token still work? ``None`` when the probe cannot tell.

    Only a refusal with an HTTP answer (a 4xx other than 429) means a revoked token or a locked
    account. No HTTP answer (after the client's retry), throttling or a server error says nothing
    about the token.
    """
    token = state.token("primary")
    if token is None:
        return True
    try:
        response = Context(state).get(state.config.paths.me, token=token)
    except TransportError:
        return None
    if 200 <= response.status < 300:
        return True
    return False if 400 <= response.status < 500 and response.status != 429 else None


def _grouped(checks: Sequence[Check]) -> list[tuple[str, list[Check]]]:
    order = {name: index for index, name in enumerate(GROUP_ORDER)}
    groups: dict[str, list[Check]] = {}
    for check in checks:
        if check.id != FINAL_CHECK:
            groups.setdefault(check.group, []).append(check)
    return sorted(groups.items(), key=lambda item: order.get(item[0], len(order)))


def run_order(checks: Sequence[Check]) -> list[Check]:
    """``checks`` in the order ``run`` yields their results: area by area, the final baseline check last."""
    final = [check for check in checks if check.id == FINAL_CHECK]
    return [check for _group, members in _grouped(checks) for check in members] + final


def target_contract(config: RunConfig, contract: TargetContract | Mapping[str, Any] | None) -> TargetContract:
    """The run's contract: as given (a document means "the target's contract is this"), else from the config."""
    if contract is not None:
        return TargetContract.of(contract)
    return TargetContract.for_config(config.contract, config.contract_kit_version)


def run(
    config: RunConfig,
    checks: Sequence[Check],
    *,
    contract: TargetContract | Mapping[str, Any] | None = None,
    client: Client | None = None,
    progress: Progress = NO_PROGRESS,
) -> Iterator[Result]:
    """Yield one ``Result`` per check, in catalog order within each group.

    ``contract``: the target's contract (see ``conformance.target_contract``); by default the one the
    config names, else the document the target serves, else none (the core rules only).
    ``progress``: told which check the run waits for, and what the slow checks say (a terminal's status line).
    """
    target = target_contract(config, contract)
    owned = client is None
    client = client or Client(
        config.base_url,
        timeout_s=config.timeout_s,
        max_response_bytes=config.max_response_bytes,
        redactor=Redactor(config.secrets),
    )
    try:
        yield from _run(config, checks, target, client, progress)
    finally:
        progress.clear()
        if owned:
            client.close()


def _run(
    config: RunConfig, checks: Sequence[Check], contract: TargetContract, client: Client, progress: Progress
) -> Iterator[Result]:
    for secret, placeholder in config.secrets.items():
        client.redact.add(secret, placeholder)
    state = RunState(config, client, contract)
    state.progress = progress
    baseline_login(state)
    contract.resolve()  # before any check reads it: a served document is fetched now, once
    if (
        not config.token_run
        and state.token("primary") is None
        and LOGIN_CHECK in REGISTRY
        and all(c.id != LOGIN_CHECK for c in checks)
    ):
        # The login answered, but malformed (422, 5xx, no access_token): that is a TOKEN-001 failure,
        # reported even when TOKEN-001 was not selected, since everything else depends on it.
        checks = [REGISTRY[LOGIN_CHECK], *checks]
    low_confidence = False
    total, done = len(checks), 0
    with ThreadPoolExecutor(max_workers=max(1, config.workers), thread_name_prefix="check") as pool:
        for group, members in _grouped(checks):
            futures = [pool.submit(execute, check, state, low_confidence) for check in members]
            for check, future in zip(members, futures, strict=True):
                if not future.done():
                    progress.waiting(check, done + 1, total)
                result = future.result()
                progress.clear()
                done += 1
                yield result
            if group == "baseline" or low_confidence:
                continue
            still = _still_authenticated(state)
            if still is None:
                state.baseline_unchecked.append(group)  # a fault, not a revocation: said by BASE-003
            elif not still:
                state.disturbed_after = group
                low_confidence = True
    final = [check for check in checks if check.id == FINAL_CHECK]
    for check in final:
        progress.waiting(check, done + 1, total)
        result = execute(check, state, low_confidence)
        progress.clear()
        yield result
