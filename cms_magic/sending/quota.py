"""A thread-safe token bucket with an injected clock.

One class serves both sides: the sender reserves a slot before each request
(and waits the returned delay), the emulator asks whether a request may pass.
``rate`` tokens are added per second up to ``capacity``; each request takes one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` requests per second on average, bursts of at most ``capacity``.

    >>> now = [0.0]
    >>> bucket = TokenBucket(rate=2, capacity=1, clock=lambda: now[0])
    >>> bucket.reserve(), bucket.reserve(), bucket.reserve()
    (0.0, 0.5, 1.0)
    """

    __slots__ = ("_lock", "_tokens", "_updated", "capacity", "clock", "rate")

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0 requests per second, got {rate!r}")
        self.rate = float(rate)
        self.capacity = float(rate if capacity is None else capacity)
        if self.capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity!r}")
        self.clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            self._updated = now

    def try_acquire(self) -> bool:
        """Take a token if one is there now; never waits, never goes into debt."""
        with self._lock:
            self._refill(self.clock())
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False

    def reserve(self) -> float:
        """Take a token, going into debt if needed; return the seconds to wait before using it.

        Callers that reserve concurrently get successive slots, ``1 / rate``
        apart, so together they never exceed the rate.
        """
        with self._lock:
            now = self.clock()
            self._refill(now)
            self._tokens -= 1
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.rate
