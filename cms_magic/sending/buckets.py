"""The token buckets a key's sends share: :class:`TokenBucket` and :class:`SharedBucket`.

Kept apart from :mod:`cms_magic.sending.quota` (which re-exports both) so that the
host-wide and Redis buckets, which subclass :class:`SharedBucket`, and the ``quota=``
parser, which makes them, import without a cycle.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from cms_magic.errors import ConfigError
from cms_magic.sending.adaptive import AdaptiveRate

__all__ = ["SharedBucket", "TokenBucket", "check_rate"]


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
        self.rate = check_rate(rate)
        self.capacity = float(rate if capacity is None else capacity)
        if not self.capacity >= 1:
            raise ConfigError("must be >= 1 request", option="capacity", value=capacity)
        self.clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            self._updated = now

    def set_rate(self, rate: float) -> None:
        """Change the rate from now on (tokens earned so far are kept)."""
        checked = check_rate(rate)
        with self._lock:
            self._refill(self.clock())
            self.rate = checked

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


def check_rate(rate: float) -> float:
    try:
        number = float(rate)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(rate, bool) or not number > 0:
        raise ConfigError("must be > 0 requests per second", option="qps", value=rate)
    return number


class SharedBucket(TokenBucket):
    """The bucket every send of one AccessKey shares (capacity 1: no bursts), at the lowest
    rate among the sends holding a :meth:`lease` on it, lowered further while throttled
    answers say the account's quota is used elsewhere (:meth:`on_answer`).

    ``rate`` is the rate in use now: the leases' :attr:`ceiling`, or the
    :class:`~cms_magic.sending.adaptive.AdaptiveRate` below it after a throttled answer
    (``adaptive=False`` turns that off).

    >>> now = [0.0]
    >>> bucket = SharedBucket(20, clock=lambda: now[0])
    >>> with bucket.lease(20), bucket.lease(19):
    ...     bucket.rate
    19.0
    """

    __slots__ = ("_ceiling", "_users", "_users_lock", "adaptive")

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        adaptive: bool = True,
    ) -> None:
        super().__init__(rate, capacity=1, clock=clock)
        self._ceiling = self.rate
        #: Lowers the rate after throttled answers and probes back up (None: off).
        self.adaptive: AdaptiveRate | None = (
            AdaptiveRate(self.rate, clock=clock) if adaptive else None
        )
        self._users: list[float] = []  # the qps of each lease held
        self._users_lock = threading.Lock()

    @property
    def ceiling(self) -> float:
        """The rate the leases allow (the lowest ``qps`` among them); ``rate`` <= this."""
        return self._ceiling

    @property
    def in_use(self) -> bool:
        """True while a send holds a lease."""
        return bool(self._users)

    def set_rate(self, rate: float) -> None:
        """Set the ceiling (the leases' rate) from now on; the rate in use follows it."""
        checked = check_rate(rate)
        self._ceiling = checked
        if self.adaptive is not None:
            self.adaptive.max_rate = checked
        self._sync_rate()

    def current_rate(self) -> float:
        """The rate allowed now: the ceiling, or the adaptive rate while it is lower."""
        if self.adaptive is None:
            return self._ceiling
        return min(self._ceiling, self.adaptive.rate)

    def _sync_rate(self) -> float:
        rate = self.current_rate()
        if rate != self.rate:
            TokenBucket.set_rate(self, rate)
        return rate

    def on_answer(self, throttled: bool) -> None:
        """One answer came back: ``throttled`` (403 Throttling / 429) lowers the rate, and
        it climbs back over the next seconds (see :mod:`cms_magic.sending.adaptive`)."""
        if self.adaptive is not None:
            self.adaptive.on_answer(throttled)
            self._sync_rate()

    def reserve(self) -> float:
        self._sync_rate()
        return super().reserve()

    @contextlib.contextmanager
    def lease(self, qps: float) -> Iterator[SharedBucket]:
        """Use the bucket at no more than ``qps`` for the duration of the ``with`` block
        (released on error and cancellation too)."""
        rate = check_rate(qps)
        with self._users_lock:
            self._users.append(rate)
            self.set_rate(min(self._users))
        try:
            yield self
        finally:
            with self._users_lock:
                self._users.remove(rate)
                if self._users:
                    self.set_rate(min(self._users))

    def ask(self, qps: float) -> None:
        """A send is about to use the bucket at ``qps``: a bucket no one uses takes that
        rate; one in use keeps its users' rate (its lease will set it)."""
        with self._users_lock:
            if not self._users and self._ceiling != qps:
                self.set_rate(qps)
