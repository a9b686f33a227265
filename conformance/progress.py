"""Progress on a terminal: one status line on stderr, rewritten in place, saying what a long run is doing.

Shown only when stderr is a terminal (never in CI logs or files) and ``TERM`` is not ``dumb``;
``NO_COLOR`` leaves it unstyled. The line is cleared before anything else is printed, so the
output is the same as without it once the run is over.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, TextIO

import click

if TYPE_CHECKING:
    from .registry import Check

CLEAR = "\r\x1b[K"
SHOW_ELAPSED_FROM_S = 2.0  # the seconds spent on the current subject show from then on


class Progress(Protocol):
    """What the runner and the checks tell about a run in flight."""

    def waiting(self, check: Check, position: int, total: int) -> None:
        """The run now waits for ``check``, the ``position``-th result of ``total``."""

    def note(self, check_id: str, text: str) -> None:
        """``check_id`` says why it takes time (e.g. "60 timed logins: 12 done, about 9 s left")."""

    def clear(self) -> None:
        """Something else is about to be printed: take the line away."""


class NoProgress:
    """Progress nobody sees: the default of a run (tests, files, CI logs)."""

    def waiting(self, check: Check, position: int, total: int) -> None:
        return None

    def note(self, check_id: str, text: str) -> None:
        return None

    def clear(self) -> None:
        return None


NO_PROGRESS = NoProgress()


def wanted(stream: TextIO, env: Mapping[str, str]) -> bool:
    """A status line belongs on ``stream``: a terminal that can rewrite a line."""
    try:
        return stream.isatty() and env.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


class StatusLine:
    """One line on ``stream``, rewritten in place; ``show`` a subject, ``clear`` before printing anything else.

    With ``refresh_s`` a background thread redraws the line that often, so that the seconds spent on
    the current subject keep counting; ``None`` redraws only when told (tests).
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        color: bool = True,
        width: int | None = None,
        refresh_s: float | None = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.color = color
        self.width = width
        self.refresh_s = refresh_s
        self.clock = clock
        self._lock = threading.RLock()
        self._text: str | None = None
        self._since = 0.0
        self._shown = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def show(self, text: str, *, restart: bool = True) -> None:
        """Make ``text`` the line; ``restart=False`` keeps counting the seconds of the same subject."""
        with self._lock:
            if restart or self._text is None:
                self._since = self.clock()
            self._text = text
            self._draw()
        self._start_ticker()

    def clear(self) -> None:
        with self._lock:
            self._text = None
            if self._shown:
                self.stream.write(CLEAR)
                self.stream.flush()
                self._shown = False

    def close(self) -> None:
        """Clear the line and stop redrawing it."""
        self._stop.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join(timeout=2)
        self.clear()

    def redraw(self) -> None:
        with self._lock:
            if self._text is not None:
                self._draw()

    def _draw(self) -> None:
        text = self._text or ""
        elapsed = self.clock() - self._since
        if elapsed >= SHOW_ELAPSED_FROM_S:
            text += f" ({elapsed:.0f} s)"
        columns = (self.width or self._columns()) - 1  # the last column would wrap the line
        if len(text) > columns:
            text = text[: max(0, columns - 1)] + "…"
        styled = click.style(text, dim=True) if self.color else text
        self.stream.write(CLEAR + styled)
        self.stream.flush()
        self._shown = True

    def _columns(self) -> int:
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):  # not a real terminal (tests), or closed
            columns = 0
        return columns or shutil.get_terminal_size().columns  # a terminal of unknown size says 0

    def _start_ticker(self) -> None:
        if self.refresh_s is None or self._ticker is not None or self._stop.is_set():
            return
        interval = self.refresh_s

        def tick() -> None:
            while not self._stop.wait(interval):
                self.redraw()

        self._ticker = threading.Thread(target=tick, name="status-line", daemon=True)
        self._ticker.start()


class CheckProgress:
    """The ``Progress`` of a ``run`` on a ``StatusLine``: the check the run waits for, as its result line will read.

    ``[ 71/122] JWT-CLM-001  claims: waiting 75 s for the real token to expire (12 s)``
    """

    def __init__(self, line: StatusLine) -> None:
        self.line = line
        self._lock = threading.Lock()
        self._notes: dict[str, str] = {}
        self._current: tuple[Check, str] | None = None

    def waiting(self, check: Check, position: int, total: int) -> None:
        width = len(str(total))
        prefix = f"[{position:>{width}}/{total}] {check.id:<12} {check.group}: "
        with self._lock:  # held while drawing: a note from a check's thread never redraws a cleared line
            self._current = (check, prefix)
            self.line.show(prefix + self._notes.get(check.id, check.title))

    def note(self, check_id: str, text: str) -> None:
        with self._lock:
            self._notes[check_id] = text
            if self._current is not None and self._current[0].id == check_id:
                self.line.show(self._current[1] + text, restart=False)

    def clear(self) -> None:
        with self._lock:
            self._current = None
            self.line.clear()

    def close(self) -> None:
        self.line.close()


def terminal_status(stream: TextIO | None = None, env: Mapping[str, str] | None = None) -> StatusLine | None:
    """A status line on ``stream`` (stderr by default), or ``None`` where none belongs (not a terminal)."""
    stream = stream if stream is not None else sys.stderr
    env = os.environ if env is None else env
    if not wanted(stream, env):
        return None
    return StatusLine(stream, color=not env.get("NO_COLOR"))
