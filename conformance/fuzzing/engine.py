"""``run_fuzz(config)``: schemathesis against the target with every check and real tokens; yields events.

It logs in first (refused credentials or no answer stop the run, as for ``jwt-conformance run``),
then drives schemathesis's engine: every check, positive and negative data, the ``ignored_auth``
probes, the kit's own ``unissued_token_rejected`` check, malformed tokens and the real login mixed
into the generated data (``generation.py``). It never prints: the CLI hands the events to reporters.

Nothing is written to the working directory: schemathesis's cache and Hypothesis's example
database are off (a run is repeated by its seed alone), and Hypothesis's own caches go to a
temporary directory unless ``HYPOTHESIS_STORAGE_DIRECTORY`` names one.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.engine import Status as EngineStatus, StopReason, events, from_schema

from ..client import Client, Redactor
from ..contract import default_contract_path, load_contract
from ..errors import ConfigError, FuzzerError
from . import checks as _checks  # registers unissued_token_rejected with schemathesis
from .auth import BearerAuth
from .config import FuzzConfig
from .generation import FuzzTarget, flatmap_case_hook, map_case
from .model import Finding, FuzzError, FuzzEvent, FuzzFinished, FuzzStarted, FuzzSummary, OperationTested
from .tokens import TokenEndpointError, TokenSource

EXCERPT_CHARS = 500
STATEFUL = "stateful"
# Any JWT in an answer (the token endpoint issues them to the fuzzer's valid logins) is redacted.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def schemathesis_settings(config: FuzzConfig, seed: int) -> dict[str, Any]:
    """The schemathesis configuration of a run, as the keys of a ``schemathesis.toml``."""
    settings: dict[str, Any] = {
        "seed": seed,
        "base-url": config.target.base_url,
        "workers": config.workers,
        "request-timeout": config.target.timeout_s,
        "max-redirects": 0,
        "continue-on-failure": True,
        "checks": {"enabled": True},
        "generation": {"mode": "all", "max-examples": config.max_examples, "database": "none"},
        "cache": {"enabled": False},
        # The kit redacts with placeholders that keep the curl reproductions runnable.
        "output": {"sanitization": {"enabled": False}},
    }
    if config.max_time_s is not None:
        settings["max-time"] = config.max_time_s
    return settings


def _provider(tokens: TokenSource) -> type:
    class PasswordFlowAuth(BearerAuth):
        source = tokens

    return PasswordFlowAuth


class _Collector:
    """Turns schemathesis's recorded scenarios into distinct, redacted findings."""

    def __init__(self, redact: Redactor) -> None:
        self.redact = redact
        self.findings: dict[tuple[str, str, str, str], Finding] = {}
        self.answers: dict[str, Counter[int]] = {}  # statuses seen, by operation

    def missing_operations(self) -> list[tuple[str, int]]:
        """Operations that answered 404 to every request: the target may not have them at all."""
        return [(op, seen[404]) for op, seen in self.answers.items() if seen and seen[404] == seen.total()]

    def scenario(self, phase: str, recorder: Any) -> int:
        seen = self.answers.setdefault(recorder.label, Counter())
        for interaction in recorder.interactions.values():
            if getattr(interaction, "response", None) is not None:
                seen[int(interaction.response.status_code)] += 1
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
                    self.findings[key] = _counted(known)
                    continue
                new += 1
                self.findings[key] = self._finding(phase, operation, node.name, failure, info, recorder, case_id)
        return new

    def _finding(
        self, phase: str, operation: str, check: str, failure: Any, info: Any, recorder: Any, case_id: str
    ) -> Finding:
        interaction = recorder.interactions.get(failure.case_id or case_id) or recorder.interactions.get(case_id)
        response = getattr(interaction, "response", None)
        excerpt = None
        if response is not None and response.content:
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
            curl=_runnable(self.redact(info.code_sample)),
            status=None if response is None else int(response.status_code),
            response_excerpt=excerpt,
        )


def _counted(finding: Finding) -> Finding:
    return replace(finding, occurrences=finding.occurrences + 1)


def _runnable(curl: str) -> str:
    """Single-quoted arguments holding a ``${PLACEHOLDER}`` are re-quoted so that the shell expands it."""

    def requote(match: re.Match[str]) -> str:
        inner = match.group(1)
        if "${" not in inner:
            return match.group(0)
        return '"' + inner.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'

    return re.sub(r"'([^']*)'", requote, curl)


def _in_contract_order(findings: Iterable[Finding], operations: Sequence[str]) -> list[Finding]:
    rank = {operation: index for index, operation in enumerate(operations)}
    return sorted(findings, key=lambda f: (rank.get(f.operation, len(rank)), f.check))


def load_schema(path: Path, settings: dict[str, Any], exclude_paths: Sequence[str] = ()) -> Any:
    try:
        config = schemathesis.Config.from_dict(settings)
        schema = schemathesis.openapi.from_path(str(path), config=config)
    except Exception as exc:  # schemathesis's loader errors have no common base worth naming
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FuzzerError(f"schemathesis cannot load the contract {path}: {first}") from None
    known = set(schema.raw_schema.get("paths", {}))
    unknown = [p for p in exclude_paths if p not in known]
    if unknown:
        raise ConfigError(
            f"--exclude-path {unknown[0]}: the contract {path} has no such path; its paths: {', '.join(sorted(known))}"
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
    contract_path = target_config.contract or default_contract_path()
    load_contract(contract_path)  # an unreadable contract gets the kit's one-line error
    seed = config.seed if config.seed is not None else secrets.randbelow(2**31)
    schema = load_schema(contract_path, schemathesis_settings(config, seed), config.exclude_paths)
    redact = Redactor(target_config.secrets)
    owned = client is None
    client = client or Client(target_config.base_url, timeout_s=target_config.timeout_s, redactor=redact)
    tokens = TokenSource(
        client,
        target_config.primary,
        target_config.paths.token,
        on_token=lambda token: redact.add(token, "${ACCESS_TOKEN}"),
    )
    summary = FuzzSummary(
        base_url=target_config.base_url, contract=str(contract_path), seed=seed, max_examples=config.max_examples
    )
    try:
        try:
            tokens.login()
        except TokenEndpointError as exc:
            summary.notes.append(f"{exc}: secured operations are fuzzed without a token")
        target = FuzzTarget(target_config.primary, target_config.paths.token)
        schema.auth(refresh_interval=None)(_provider(tokens))
        schema.hooks.register_hook_with_name(flatmap_case_hook(target), "flatmap_case")
        schema.hooks.register_hook_with_name(map_case, "map_case")
        schema.hooks.register_hook_with_name(_checks.filter_failure_hook(target), "filter_failure")
        _checks.TARGETS[id(schema)] = target
        operations = tuple(result.ok().label for result in schema.get_all_operations() if result.ok() is not None)
        summary.operations = operations
        yield FuzzStarted(
            target_config.base_url, str(contract_path), operations, seed, config.max_examples, config.max_time_s
        )
        collector = _Collector(redact)
        yield from _drive(schema, collector, summary, redact)
        summary.findings = _in_contract_order(collector.findings.values(), operations)
        for operation, count in collector.missing_operations():
            path = operation.split(" ", 1)[-1]
            summary.notes.append(
                f"{operation} answered 404 to all {count} requests: if the target does not implement it, leave it "
                f"out with --exclude-path {path}, or fuzz against your own contract with --contract"
            )
    finally:
        _checks.TARGETS.pop(id(schema), None)
        if owned:
            client.close()
    summary.logins = tokens.logins
    if tokens.failed_refreshes:
        summary.notes.append(
            f"{tokens.failed_refreshes} token refreshes failed; the last: {redact(tokens.last_refresh_error or '')}"
        )
    summary.duration_s = time.perf_counter() - started
    yield FuzzFinished(summary)


def _drive(schema: Any, collector: _Collector, summary: FuzzSummary, redact: Redactor) -> Iterator[FuzzEvent]:
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
        elif isinstance(event, events.PhaseFinished) and _phase_name(event.phase.name) == STATEFUL and stateful[0]:
            yield OperationTested(STATEFUL, "sequences of operations (links)", stateful[0], stateful[1])
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
