"""Login throttling: after too many failed logins for a username, or from a client address, within
a window, further attempts get 429 with Retry-After until the oldest failure leaves the window.

No permanent lockout; unknown usernames are counted like known ones (so throttling tells nothing
about which accounts exist); a correct password is refused too while throttled, and is not even
checked, so the answer reveals nothing about it. State is in memory, bounded, per process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

MAX_TRACKED = 10_000  # keys per kind; the oldest are dropped beyond this


class FailureWindow:
    """Failure times per key within a sliding window."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if times is not None and not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 when it is not throttled."""
        if self.limit <= 0:
            return 0
        with self._lock:
            now = self.clock()
            times = self._recent(key, now)
            if times is None or len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[0] + self.window_s - now))

    def fail(self, key: str) -> None:
        if self.limit <= 0:
            return
        with self._lock:
            now = self.clock()
            times = self._recent(key, now)
            if times is None:
                if len(self._failures) >= MAX_TRACKED:
                    self._failures.pop(next(iter(self._failures)))
                times = self._failures[key] = deque(maxlen=self.limit)
            times.append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class LoginThrottle:
    """One window for usernames, one (more generous) for client addresses."""

    def __init__(
        self, per_username: int, per_client: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.usernames = FailureWindow(per_username, window_s, clock)
        self.clients = FailureWindow(per_client, window_s, clock)

    def retry_after(self, username: str, client: str) -> int:
        return max(self.usernames.retry_after(username), self.clients.retry_after(client))

    def failed(self, username: str, client: str) -> None:
        self.usernames.fail(username)
        self.clients.fail(client)

    def succeeded(self, username: str) -> None:
        self.usernames.clear(username)
