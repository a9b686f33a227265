"""A fuzz run's status line on a terminal: the phase, the operation in flight, how far the phase is.

``[fuzzing 3/5] POST /token: 412 cases so far (14 s)``: schemathesis reports cases when an
operation finishes a phase, so the count is of the operations done, not live.
"""

from __future__ import annotations

from ..progress import StatusLine, terminal_status
from .model import FuzzEvent, FuzzStarted, OperationStarted, OperationTested


class FuzzProgress:
    """A ``FuzzReporter`` that draws the status line; listed first, it clears the line before the others print."""

    def __init__(self, line: StatusLine) -> None:
        self.line = line
        self.operations = 0
        self.cases = 0
        self.done: dict[str, int] = {}

    def handle(self, event: FuzzEvent) -> None:
        if isinstance(event, FuzzStarted):
            self.operations = len(event.operations)
        if not isinstance(event, OperationStarted):
            self.line.clear()
            if isinstance(event, OperationTested):
                self.cases += event.cases
                if event.phase != "stateful":
                    self.done[event.phase] = self.done.get(event.phase, 0) + 1
            return
        self.line.show(f"[{self._where(event.phase)}] {event.operation}: {self.cases} cases so far")

    def _where(self, phase: str) -> str:
        if phase == "stateful" or not self.operations:
            return phase
        laps, done = divmod(self.done.get(phase, 0), self.operations)
        lap = f", round {laps + 1}" if laps else ""  # --max-time: the fuzzing phase goes round again
        return f"{phase} {done + 1}/{self.operations}{lap}"

    def close(self) -> None:
        self.line.close()


def terminal_fuzz_progress() -> FuzzProgress | None:
    """The status line of a fuzz run on stderr when it is a terminal (not in CI logs), else ``None``."""
    line = terminal_status()
    return FuzzProgress(line) if line is not None else None
