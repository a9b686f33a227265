"""Progress on a terminal: one status line on stderr for ``run`` and ``fuzz``, cleared, and nothing elsewhere."""

from __future__ import annotations

import io
import re
import sys
import threading
from typing import Any

import click
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conformance.cli import execute_run, terminal_progress
from conformance.client import Client, Redactor
from conformance.config import RunConfig
from conformance.context import Context
from conformance.fuzzing import (
    FuzzConfig,
    FuzzEvent,
    FuzzFinished,
    FuzzStarted,
    OperationStarted,
    OperationTested,
    run_fuzz,
)
from conformance.fuzzing.progress import FuzzProgress, terminal_fuzz_progress
from conformance.model import Level, Status
from conformance.progress import CLEAR, CheckProgress, StatusLine, terminal_status
from conformance.registry import REGISTRY, Check
from conformance.reporters.console import ConsoleReporter
from conformance.runner import run
from conformance.target_contract import TargetContract

from .fuzzing.live import serving
from .harness import BASE_URL, PRIMARY, config_for

TITLE = "A check that takes its time."


class Terminal(io.StringIO):
    """A stream that says it is a terminal; ``shown`` is set once a write carries ``wanted``."""

    def __init__(self, wanted: str = TITLE) -> None:
        super().__init__()
        self.wanted = wanted
        self.shown = threading.Event()

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.wanted in text:
            self.shown.set()
        return super().write(text)


def slow_check(shown: threading.Event) -> Check:
    """A check (not registered) that waits until the run shows it, then says how far it is."""

    def takes_its_time(ctx: Context) -> str | None:
        shown.wait(5)
        ctx.progress("half way")
        return None

    takes_its_time.__doc__ = TITLE
    return Check("ENUM-901", Level.MUST, ("test",), takes_its_time, group="enumeration")


def status_line(stream: Terminal, **changes: Any) -> StatusLine:
    settings: dict[str, Any] = {"color": False, "width": 200, "refresh_s": None, "clock": lambda: 0.0}
    return StatusLine(stream, **{**settings, **changes})


def test_a_status_line_is_drawn_in_place_counts_its_seconds_and_is_cleared() -> None:
    now = [100.0]
    terminal = Terminal()
    line = status_line(terminal, width=30, clock=lambda: now[0])
    line.show("[1/3] TOKEN-001")
    now[0] += 5
    line.redraw()
    line.show("x" * 40)  # a new subject: its seconds count from now; too long: cut to the width
    line.clear()
    line.clear()  # nothing shown: nothing written
    line.close()
    assert terminal.getvalue() == (f"{CLEAR}[1/3] TOKEN-001{CLEAR}[1/3] TOKEN-001 (5 s){CLEAR}{'x' * 28}…{CLEAR}")


def test_the_line_is_dim_unless_no_color() -> None:
    terminal = Terminal()
    status_line(terminal, color=True).show("text")
    assert terminal.getvalue() == CLEAR + click.style("text", dim=True)


def test_a_status_line_only_on_a_terminal_that_can_rewrite_a_line() -> None:
    assert terminal_status(io.StringIO(), {}) is None
    assert terminal_status(Terminal(), {"TERM": "dumb"}) is None
    plain = terminal_status(Terminal(), {"NO_COLOR": "1", "TERM": "xterm"})
    assert plain is not None and plain.color is False
    colored = terminal_status(Terminal(), {"TERM": "xterm"})
    assert colored is not None and colored.color is True


def test_the_run_shows_the_check_it_waits_for_and_its_note_then_clears(reference: FastAPI) -> None:
    terminal = Terminal()
    check = slow_check(terminal.shown)
    out = io.StringIO()
    with serving(reference) as base_url:
        progress = CheckProgress(status_line(terminal))
        summary = execute_run(config_for(base_url=base_url), [ConsoleReporter(out)], plan=[check], progress=progress)
    assert summary.counts[Status.PASS] == 1
    assert terminal.getvalue() == (
        f"{CLEAR}[1/1] ENUM-901     enumeration: {TITLE}{CLEAR}[1/1] ENUM-901     enumeration: half way{CLEAR}"
    )


def normalized(console: str) -> str:
    return re.sub(r" in \d+\.\d s\n$", " in N s\n", console)


def test_without_a_terminal_nothing_more_is_written_and_the_console_is_the_same(
    reference: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    with serving(reference) as base_url:
        config = config_for(base_url=base_url)

        def console_and_stderr(stderr: io.StringIO) -> tuple[str, str]:
            monkeypatch.setattr(sys, "stderr", stderr)
            out = io.StringIO()
            execute_run(config, [ConsoleReporter(out)], plan=[slow_check(shown)])
            return normalized(out.getvalue()), stderr.getvalue()

        shown = threading.Event()
        shown.set()  # no line to wait for without a terminal
        plain, nothing = console_and_stderr(io.StringIO())
        terminal = Terminal()
        shown = terminal.shown
        with_terminal, status = console_and_stderr(terminal)
        monkeypatch.setenv("TERM", "dumb")
        shown = threading.Event()
        shown.set()
        dumb, nothing_either = console_and_stderr(Terminal())
    assert nothing == "" and nothing_either == ""
    assert plain == with_terminal == dumb
    assert plain.splitlines()[1:] == [
        f"[1/1] ENUM-901     pass  {TITLE}",
        "",
        "note: contract: the target's /openapi.json: body shapes are checked against its schemas",
        "1 pass in N s",
    ]
    assert status.startswith(CLEAR) and status.endswith(CLEAR)
    drawn = {re.sub(r" \(\d+ s\)$", "", segment) for segment in status.split(CLEAR) if segment}
    assert drawn <= {f"\x1b[2m[1/1] ENUM-901     enumeration: {text}\x1b[0m" for text in (TITLE, "half way")}
    assert f"\x1b[2m[1/1] ENUM-901     enumeration: {TITLE}\x1b[0m" in drawn


class Notes:
    """A ``Progress`` that keeps what the checks say."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, str]] = []

    def waiting(self, check: Check, position: int, total: int) -> None:
        return None

    def note(self, check_id: str, text: str) -> None:
        self.notes.append((check_id, text))

    def clear(self) -> None:
        return None


def test_the_timing_check_says_why_it_takes_time(reference: FastAPI) -> None:
    config = config_for()
    notes = Notes()
    with TestClient(reference, base_url=BASE_URL, raise_server_exceptions=False) as http:
        client = Client(BASE_URL, http=http, redactor=Redactor(config.secrets))
        checks = [REGISTRY["ENUM-002"]]
        results = list(run(config, checks, contract=TargetContract.kit(), client=client, progress=notes))
    assert [r.id for r in results] == ["ENUM-002"]  # its verdict is test_enumeration's concern
    assert notes.notes[0] == ("ENUM-002", "timed failed logins 0/60 (unknown user vs wrong password)")
    later = re.compile(r"timed failed logins (\d+)/60, about \d+ s left \(unknown user vs wrong password\)")
    counts = [int(match[1]) for _, text in notes.notes[1:] if (match := later.fullmatch(text))]
    assert counts == list(range(2, 60, 2))
    assert {check_id for check_id, _ in notes.notes} == {"ENUM-002"}


def test_the_fuzz_line_shows_the_phase_the_operation_and_the_cases_so_far() -> None:
    terminal = Terminal()
    progress = FuzzProgress(status_line(terminal))
    events: list[FuzzEvent] = [
        FuzzStarted("http://127.0.0.1", "contract", ("POST /token", "GET /users/me"), 1, 5, None),
        OperationStarted("coverage", "POST /token"),
        OperationTested("coverage", "POST /token", 12, 0),
        OperationStarted("coverage", "GET /users/me"),
        OperationTested("coverage", "GET /users/me", 8, 0),
        OperationStarted("fuzzing", "POST /token"),
        OperationTested("fuzzing", "POST /token", 5, 0),
        OperationStarted("fuzzing", "GET /users/me"),
        OperationTested("fuzzing", "GET /users/me", 5, 0),
        OperationStarted("fuzzing", "POST /token"),  # --max-time: round two
    ]
    for event in events:
        progress.handle(event)
    progress.close()
    assert terminal.getvalue().split(CLEAR) == [
        "",
        "[coverage 1/2] POST /token: 0 cases so far",
        "",
        "[coverage 2/2] GET /users/me: 12 cases so far",
        "",
        "[fuzzing 1/2] POST /token: 20 cases so far",
        "",
        "[fuzzing 2/2] GET /users/me: 25 cases so far",
        "",
        "[fuzzing 1/2, round 2] POST /token: 30 cases so far",
        "",
    ]


def test_a_fuzz_run_says_which_operation_starts_before_it_reports_it(reference: FastAPI) -> None:
    with serving(reference) as base_url:
        target = RunConfig(base_url=base_url, primary=PRIMARY)
        config = FuzzConfig(target, max_examples=2, seed=7, exclude_paths=("/users",))
        events = list(run_fuzz(config))
    assert isinstance(events[-1], FuzzFinished) and not events[-1].summary.failed
    tested = [(i, e) for i, e in enumerate(events) if isinstance(e, OperationTested) and e.phase != "stateful"]
    assert tested
    for index, event in tested:
        assert events[index - 1] == OperationStarted(event.phase, event.operation)


def test_fuzz_and_run_draw_nothing_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert terminal_progress() is None
    assert terminal_fuzz_progress() is None
    monkeypatch.setattr(sys, "stderr", Terminal())
    monkeypatch.setenv("TERM", "xterm")
    assert terminal_progress() is not None
    assert terminal_fuzz_progress() is not None
