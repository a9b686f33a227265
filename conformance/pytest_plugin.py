"""The suite inside a pytest session: ``pytest --jwt-conformance CONFIG.yaml``.

Installed with the package (entry point ``pytest11`` ``jwt_conformance``: the tiny ``jwt_conformance_pytest``
module, which imports this one only when the option is given; ``-p no:jwt_conformance`` disables it).

With it, every check the config selects becomes a test item ``CONFIG.yaml::CHECK-ID``, in the order
the suite runs them, and the suite runs once, lazily, when the first of them runs (against the
config's ``base_url``, with its users, keys, profile, level and selection). Verdicts map to outcomes:

- pass, info: passed (a message, if any, in the item's report section ``jwt-conformance``);
- fail: failed, with the problem, expected, actual, fix and the redacted curl of the evidence;
- warn: passed with a ``ConformanceWarning`` (fails like any failure when the config sets ``strict``);
- skip: skipped with the reason;
- error: an error (so is every item when the run cannot start: target unreachable, login refused).

``-k`` selects checks by ID or area (``-k JWT-ALG``, ``-k "claims and not JWT-CLM-001"``): only the
selected checks are run. Code that wants the results themselves calls ``run_suite(CONFIG)``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from .cli import plan_for
from .config import RunConfig, build_config
from .errors import ConformanceError
from .model import Result, Status
from .redaction import Redactor, for_config
from .registry import Check
from .reporters import finding_lines
from .runner import run, run_order

OPTION = "--jwt-conformance"
PLUGIN_NAME = "jwt-conformance-session"
SECTION = "jwt-conformance"
_SESSION = pytest.StashKey["ConformanceSession"]()


class ConformanceWarning(UserWarning):
    """A check whose verdict is warn: a SHOULD broken, or a MUST relaxed by the ``fastapi`` profile."""


def run_suite(
    config_path: str | os.PathLike[str],
    *,
    select: Sequence[str] = (),
    skip: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> list[Result]:
    """Run the suite as ``jwt-conformance run --config CONFIG_PATH`` does; its results, redacted, in run order.

    ``select`` and ``skip`` (ID prefixes) replace the config's own. Raises ``ConformanceError`` when the
    run cannot start (a bad config, an unreachable target, refused credentials).
    """
    flags = {"select": tuple(select), "skip": tuple(skip)}
    config = build_config(flags, env=env, config_file=Path(config_path))
    redact = for_config(config)
    return [redact.result(result) for result in run(config, plan_for(config))]


def activate(config: pytest.Config) -> None:
    """Register the suite's hooks in a session started with ``--jwt-conformance CONFIG``."""
    value = config.getoption("jwt_conformance")
    path = (config.invocation_params.dir / str(value)).resolve()
    try:
        run_config = build_config({}, config_file=path)
        plan = run_order(plan_for(run_config))
    except ConformanceError as exc:
        raise pytest.UsageError(f"{OPTION} {value}: {exc}") from None
    session = ConformanceSession(path, run_config, plan)
    config.stash[_SESSION] = session
    config.pluginmanager.register(session, PLUGIN_NAME)


class SuiteError(Exception):
    """The suite could not run (target unreachable, login refused): every check item is an error."""


class Suite:
    """One run of the suite, started by the first item that asks for a result and read as far as needed."""

    def __init__(self, config: RunConfig, checks: Sequence[Check]) -> None:
        self.config = config
        self.checks = list(checks)
        self.redact: Redactor = for_config(config)
        self._stream: Iterator[Result] | None = None
        self._results: dict[str, Result] = {}
        self._error: SuiteError | None = None
        self._unasked: list[Result] = []  # results of checks the run adds (TOKEN-001 when the login is malformed)

    @property
    def started(self) -> bool:
        return self._stream is not None

    def result(self, check_id: str) -> Result:
        while check_id not in self._results:
            if self._error is not None:
                raise self._error
            if self._stream is None:
                self._stream = run(self.config, self.checks)
            try:
                result = next(self._stream)
            except StopIteration:
                self._error = SuiteError(f"the run ended without a result for {check_id}")
            except ConformanceError as exc:
                self._error = SuiteError(f"the suite could not run against {self.config.base_url}: {exc}")
            else:
                result = self.redact.result(result)
                self._results[result.id] = result
                if all(check.id != result.id for check in self.checks):
                    self._unasked.append(result)
        return self._results[check_id]

    def take_unasked(self) -> list[Result]:
        """Results of checks nobody selected but the run needed (said once, by the item that read them)."""
        taken, self._unasked = self._unasked, []
        return taken

    def close(self) -> None:
        if self._stream is not None:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()


def describe(result: Result) -> str:
    """A failure as the console's findings show it: problem, expected, actual, fix, and the curl to repeat it."""
    lines = [f"{result.id} [{result.level}] {result.title}", f"  spec:     {', '.join(result.spec)}"]
    lines.append(f"  problem:  {result.message}")
    lines += [f"  {label + ':':<9} {value}" for label, value in finding_lines(result)]
    if result.exchanges:
        lines.append(f"  repro:    {result.exchanges[-1].curl}")
    if result.low_confidence:
        lines.append("  note:     low confidence: the baseline token stopped working earlier in the run")
    return "\n".join(lines)


class CheckItem(pytest.Item):
    """One check of the suite; its verdict decides the outcome."""

    def __init__(self, *, check: Check, suite: Suite, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.suite = suite
        self.extra_keyword_matches.update({check.group, str(check.level)})
        self.user_properties.append(("requirement", check.title))

    def setup(self) -> None:
        try:
            result = self.suite.result(self.check.id)
        except SuiteError as exc:
            pytest.fail(str(exc), pytrace=False)
        if result.status is Status.ERROR:
            pytest.fail(describe(result), pytrace=False)

    def runtest(self) -> None:
        result = self.suite.result(self.check.id)
        unasked = [r for r in self.suite.take_unasked() if r.status in (Status.FAIL, Status.ERROR)]
        if unasked:
            said = "\n  (run although not selected: every check needs the login)"
            pytest.fail("\n\n".join(describe(r) + said for r in unasked), pytrace=False)
        if result.status is Status.FAIL:
            pytest.fail(describe(result), pytrace=False)
        if result.status is Status.SKIP:
            pytest.skip(result.message)
        if result.message:
            self.add_report_section("call", SECTION, result.message)
        if result.status is Status.WARN:
            warnings.warn_explicit(
                ConformanceWarning(f"{result.id}: {result.message}"),
                ConformanceWarning,
                filename=str(self.path),
                lineno=0,  # no line of the config file to quote
            )

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.check.id}: {self.check.title}"


class SuiteFile(pytest.File):
    """The config file: its checks are the items."""

    def collect(self) -> Iterator[CheckItem]:
        session = self.config.stash[_SESSION]
        for check in session.plan:
            yield CheckItem.from_parent(self, name=check.id, check=check, suite=session.suite)


class ConformanceSession:
    """The plugin's hooks in a session started with ``--jwt-conformance``."""

    def __init__(self, path: Path, config: RunConfig, plan: Sequence[Check]) -> None:
        self.path = path
        self.plan = list(plan)
        self.suite = Suite(config, self.plan)

    def pytest_report_header(self) -> str:
        config = self.suite.config
        strict = ", strict" if config.strict else ""
        return f"jwt-conformance: {len(self.plan)} checks against {config.base_url} (profile {config.profile}{strict})"

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
        if file_path.resolve() != self.path:
            return None
        return SuiteFile.from_parent(parent, path=file_path)

    @pytest.hookimpl(tryfirst=True)  # before -k and -m deselect
    def pytest_collection_modifyitems(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        if any(isinstance(item, CheckItem) for item in items):
            return  # the config file was among the paths collected
        items.extend(SuiteFile.from_parent(session, path=self.path).collect())

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Only the checks still selected (after -k, -m, --deselect) will run."""
        chosen = {item.check.id for item in session.items if isinstance(item, CheckItem)}
        self.suite.checks = [check for check in self.plan if check.id in chosen]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if isinstance(item, CheckItem) and report.skipped and isinstance(report.longrepr, tuple):
            # "SKIPPED CONFIG.yaml::CHECK-ID: reason", not the line of this module that skipped it
            report.longrepr = cast(tuple[str, int, str], (item.nodeid, None, report.longrepr[2]))
        crash = getattr(report.longrepr, "reprcrash", None)
        if isinstance(item, CheckItem) and report.failed and crash is not None:
            # the short summary (untrimmed on CI) names the check in one line; the details are above it
            crash.message = crash.message.split("\n", 1)[0]
        return report

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.suite.started:
            terminalreporter.write_line(
                f"jwt-conformance: {len(self.suite.checks)} of the config's {len(self.plan)} checks run against "
                f"{self.suite.config.base_url}"
            )

    def pytest_sessionfinish(self) -> None:
        self.suite.close()
