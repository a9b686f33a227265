"""``run_fuzz(config)``: schemathesis against the target with every check and real tokens; yields events.

It chooses the contract first (``contracts.py``: ``--contract``, else the target's own
``/openapi.json``, else the kit's core operations judged by the core rules), logs in (refused
credentials or no answer stop the run, as for ``jwt-conformance run``), then drives schemathesis's
engine: every check, positive and negative data, the ``ignored_auth`` probes, the kit's own
``unissued_token_rejected`` check, malformed tokens and the real login mixed into the generated
data (``generation.py``). It never prints: the CLI hands the events to reporters.

A token run (``--token``, ``--token-command``, issuer mode) never logs in: it takes its token as
``jwt-conformance run`` does (the same baseline: a token the me path refuses stops the run), fuzzes
the operations that take a bearer token only, and gets a new token before the current one expires.

Nothing is written to the working directory: schemathesis's cache and Hypothesis's example
database are off (a run is repeated by its seed alone), and Hypothesis's own caches go to a
temporary directory unless ``HYPOTHESIS_STORAGE_DIRECTORY`` names one.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import schemathesis
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.engine import Status as EngineStatus, StopReason, events, from_schema

from ..client import Client, Redactor
from ..config import RunConfig
from ..errors import ConfigError, FuzzerError
from . import checks as _checks  # registers unissued_token_rejected with schemathesis
from .auth import BearerAuth
from .collector import Collector, in_contract_order
from .config import FuzzConfig
from .contracts import CORE, SERVED, FuzzContract, choose_contract, core_contract, protected_only
from .generation import FuzzTarget, flatmap_case_hook, map_case
from .model import (
    AbsentOperation,
    FuzzError,
    FuzzEvent,
    FuzzFinished,
    FuzzStarted,
    FuzzSummary,
    OperationStarted,
    OperationTested,
)
from .tokens import (
    PASSWORD,
    RefreshingTokens,
    RunTokens,
    TokenEndpointError,
    TokenSource,
    run_tokens,
    token_origin,
)

STATEFUL = "stateful"
STATEFUL_LABEL = "sequences of operations (links)"


def schemathesis_settings(config: FuzzConfig, seed: int, core_rules: bool = False) -> dict[str, Any]:
    """The schemathesis configuration of a run, as the keys of a ``schemathesis.toml``.

    ``core_rules``: the contract's response schemas are not the target's (``contracts.py``), so
    ``response_schema_conformance`` is off.
    """
    settings: dict[str, Any] = {
        "seed": seed,
        "base-url": config.target.base_url,
        "workers": config.workers,
        "request-timeout": config.target.timeout_s,
        "max-redirects": 0,
        "continue-on-failure": True,
        "checks": {"enabled": True, "response_schema_conformance": {"enabled": not core_rules}},
        "generation": {"mode": "all", "max-examples": config.max_examples, "database": "none"},
        "cache": {"enabled": False},
        # The kit redacts with placeholders that keep the curl reproductions runnable.
        "output": {"sanitization": {"enabled": False}},
    }
    if config.max_time_s is not None:
        settings["max-time"] = config.max_time_s
    return settings


def _provider(tokens: RefreshingTokens) -> type:
    class PasswordFlowAuth(BearerAuth):
        source = tokens

    return PasswordFlowAuth


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def load_schema(contract: FuzzContract, settings: dict[str, Any], exclude_paths: Sequence[str] = ()) -> Any:
    try:
        config = schemathesis.Config.from_dict(settings)
        schema = schemathesis.openapi.from_dict(contract.document, config=config)
    except Exception as exc:  # schemathesis's loader errors have no common base worth naming
        raise FuzzerError(f"schemathesis cannot load the contract {contract.location}: {_first_line(exc)}") from None
    if contract.path is not None:  # references to other files resolve from the contract's own
        schema.location = contract.path.absolute().as_uri()
    known = set(schema.raw_schema.get("paths", {}))
    unknown = [p for p in exclude_paths if p not in known]
    if unknown:
        raise ConfigError(
            f"--exclude-path {unknown[0]}: the contract fuzzed ({contract.location}) has no such path; "
            f"its paths: {', '.join(sorted(known))}"
        )
    return schema.exclude(path=list(exclude_paths)) if exclude_paths else schema


@contextmanager
def _hypothesis_storage() -> Iterator[None]:
    """Hypothesis keeps caches in ``./.hypothesis``; during a run they live in a temporary directory instead."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="jwt-conformance-hypothesis-") as directory:
        set_hypothesis_home_dir(directory)
        try:
            yield
        finally:
            set_hypothesis_home_dir(None)  # back to Hypothesis's own default


def run_fuzz(config: FuzzConfig, *, client: Client | None = None) -> Iterator[FuzzEvent]:
    """Yield ``FuzzStarted``, then ``OperationTested`` and ``FuzzError`` as they happen, then ``FuzzFinished``."""
    with _hypothesis_storage():
        yield from _run_fuzz(config, client)


def _run_fuzz(config: FuzzConfig, client: Client | None) -> Iterator[FuzzEvent]:
    started = time.perf_counter()
    target_config = config.target
    primary = target_config.primary
    if primary is None and not target_config.token_run:
        raise FuzzerError("fuzzing needs --username and a password, or --token, --token-command or issuer mode")
    seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    redact = Redactor(target_config.secrets)
    owned = client is None
    if client is None:
        client = Client(target_config.base_url, timeout_s=target_config.timeout_s, redactor=redact)
    else:  # the given client's redaction is the report's: it learns the run's secrets
        redact = client.redact
        for secret, placeholder in target_config.secrets.items():
            redact.add(secret, placeholder)
    schema: Any = None
    tokens: RefreshingTokens | None = None
    try:
        contract, notes = _contract(target_config, client), []
        try:
            schema = load_schema(
                contract, schemathesis_settings(config, seed, contract.core_rules), config.exclude_paths
            )
        except FuzzerError as exc:
            if contract.source != SERVED:
                raise
            notes.append(f"{exc}: the core operations are fuzzed instead (pass a corrected copy with --contract)")
            contract = _core(target_config)
            schema = load_schema(contract, schemathesis_settings(config, seed, core_rules=True), config.exclude_paths)
        operations = tuple(result.ok().label for result in schema.get_all_operations() if result.ok() is not None)
        if not operations and primary is None:
            raise FuzzerError(
                f"{contract.location} has no operation that takes a bearer token, and a run with a token fuzzes "
                "only those: give the API's contract with --contract, or log in with --username and a password"
            )
        summary = FuzzSummary(
            base_url=target_config.base_url,
            contract=contract.location,
            seed=seed,
            max_examples=config.max_examples,
            source=contract.source,
            core_rules=contract.core_rules,
        )
        summary.notes += [*notes, *contract.left_out]
        if primary is None:
            tokens = run_tokens(target_config, client)
        else:
            tokens = TokenSource(
                client, primary, target_config.paths.token, on_token=lambda token: redact.add(token, "${ACCESS_TOKEN}")
            )
            try:
                tokens.login()
            except TokenEndpointError as exc:
                summary.notes.append(f"{exc}: secured operations are fuzzed without a token")
        summary.token_source = tokens.kind
        target = FuzzTarget(primary, target_config.paths.token)
        schema.auth(refresh_interval=None)(_provider(tokens))
        schema.hooks.register_hook_with_name(flatmap_case_hook(target), "flatmap_case")
        schema.hooks.register_hook_with_name(map_case, "map_case")
        schema.hooks.register_hook_with_name(_checks.filter_failure_hook(target), "filter_failure")
        _checks.TARGETS[id(schema)] = target
        summary.operations = operations
        yield FuzzStarted(
            target_config.base_url,
            contract.location,
            operations,
            seed,
            config.max_examples,
            config.max_time_s,
            source=contract.source,
            description=contract.description,
            rules=contract.rules,
            tokens=token_origin(target_config, tokens),
        )
        collector = Collector(redact)
        yield from _drive(schema, collector, summary, redact)
        summary.absent = collector.absent_operations(operations)
        summary.findings = in_contract_order(collector.kept(summary.absent), operations)
        summary.notes += [_absent_note(absent, contract) for absent in summary.absent]
        if operations and len(summary.absent) == len(operations):
            summary.errors.append(
                FuzzError("the target", f"none of the {len(operations)} operations fuzzed is on {client.base_url}")
            )
    finally:
        if schema is not None:
            _checks.TARGETS.pop(id(schema), None)
        if owned:
            client.close()
    assert tokens is not None
    summary.logins = tokens.obtained if tokens.kind == PASSWORD else 0
    summary.tokens = tokens.count
    summary.tokens_described = tokens.described()
    if tokens.failed_refreshes:
        what = "token refreshes" if tokens.kind == PASSWORD else "attempts to get a new token"
        summary.notes.append(
            f"{tokens.failed_refreshes} {what} failed; the last: {redact(tokens.last_refresh_error or '')}"
        )
    if isinstance(tokens, RunTokens) and tokens.expired():
        summary.notes.append(
            "the given token expired during the run: later requests carried an expired token; pass --token-command "
            "(a command that prints a fresh token) so that the fuzzer gets a new one in time"
        )
    summary.duration_s = time.perf_counter() - started
    yield FuzzFinished(summary)


def _contract(config: RunConfig, client: Client) -> FuzzContract:
    contract = choose_contract(config, client)
    return protected_only(contract) if config.token_run else contract


def _core(config: RunConfig) -> FuzzContract:
    contract = core_contract(config)
    return protected_only(contract) if config.token_run else contract


def _absent_note(absent: AbsentOperation, contract: FuzzContract) -> str:
    path = absent.operation.split(" ", 1)[-1]
    dropped = ""
    if absent.left_out:
        dropped = (
            "; its finding is left out" if absent.left_out == 1 else f"; its {absent.left_out} findings are left out"
        )
    instead = (
        "name the target's own paths (--token-path, --me-path, --protected-path, or paths and capabilities in "
        "the config file)"
        if contract.source == CORE
        else "fuzz a contract of your own with --contract"
    )
    return (
        f"{absent.operation} is not on the target: it answered 404 or 405 to {absent.not_found} of its "
        f"{absent.requests} requests and never succeeded{dropped}. Leave it out with --exclude-path {path}, "
        f"or {instead}"
    )


def _drive(schema: Any, collector: Collector, summary: FuzzSummary, redact: Redactor) -> Iterator[FuzzEvent]:
    rounds: dict[tuple[str, str], int] = {}  # with --max-time the fuzzing phase cycles through the operations
    stateful = [0, 0]  # cases, new failures: the stateful phase's many short scenarios make one line
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            phase = _phase_name(event.phase)
            recorder = event.recorder
            cases = len(recorder.cases)
            summary.cases += cases
            skipped = event.skip_reason if event.status == EngineStatus.SKIP else None
            failures = collector.scenario(phase, recorder)
            if phase == STATEFUL:
                stateful[0] += cases
                stateful[1] += failures
                continue
            key = (phase, recorder.label)
            rounds[key] = rounds.get(key, 0) + 1
            yield OperationTested(phase, recorder.label, cases, failures, skipped, rounds[key])
        elif isinstance(event, events.ScenarioStarted) and event.label and _phase_name(event.phase) != STATEFUL:
            yield OperationStarted(_phase_name(event.phase), event.label)
        elif isinstance(event, events.PhaseStarted) and _phase_name(event.phase.name) == STATEFUL:
            yield OperationStarted(STATEFUL, STATEFUL_LABEL)
        elif isinstance(event, events.PhaseFinished) and _phase_name(event.phase.name) == STATEFUL and stateful[0]:
            yield OperationTested(STATEFUL, STATEFUL_LABEL, stateful[0], stateful[1])
        elif isinstance(event, events.NonFatalError):
            error = FuzzError(event.label, redact(event.info.format().strip()))
            summary.errors.append(error)
            yield error
        elif isinstance(event, events.FatalError):
            raise FuzzerError(f"schemathesis stopped: {redact(str(event.exception)).strip().splitlines()[0]}")
        elif isinstance(event, events.EngineFinished):
            yield from _stopped(event.stop_reason, summary)


def _phase_name(phase: Any) -> str:
    return str(getattr(phase, "value", phase)).lower()


def _stopped(reason: StopReason, summary: FuzzSummary) -> Iterator[FuzzEvent]:
    if reason is StopReason.MAX_TIME:
        summary.notes.append("the run stopped at --max-time: what had not been tested yet was left out")
    elif reason is StopReason.SERVER_UNAVAILABLE:
        error = FuzzError("the target", "the server stopped responding, and the run was cut short")
        summary.errors.append(error)
        yield error
    elif reason is StopReason.INTERRUPTED:
        summary.notes.append("the run was interrupted: the summary covers what was tested until then")
