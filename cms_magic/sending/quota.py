"""Token buckets: the rate of requests, and the quota every send of a key shares.

:class:`TokenBucket` is thread-safe with an injected clock. One class serves
both sides: the sender reserves a slot before each request (and waits the
returned delay), the emulator asks whether a request may pass. ``rate`` tokens
are added per second up to ``capacity``; each request takes one.

:func:`shared_quota` is the process-wide bucket of one AccessKey, kept in
:mod:`cms_magic._state` (so ``_state.reset()`` forgets it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cms_magic import _state
from cms_magic.errors import ConfigError
from cms_magic.protocol import DEFAULT_QPS

__all__ = ["TokenBucket", "shared_quota"]


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
        self.rate = _check_rate(rate)
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
        checked = _check_rate(rate)
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


def _check_rate(rate: float) -> float:
    try:
        number = float(rate)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(rate, bool) or not number > 0:
        raise ConfigError("must be > 0 requests per second", option="qps", value=rate)
    return number


_quotas: _state.Registry[str, TokenBucket] = _state.registry("shared quotas")


def shared_quota(access_key_id: str, qps: float = DEFAULT_QPS) -> TokenBucket:
    """The process-wide token bucket of one AccessKey (one account's quota).

    Every send in this process with that key takes its request slots here, so
    two sends at once (a magic and the panel, say) share the rate. Requests
    are spaced ``1/qps`` apart (capacity 1: no bursts), which never exceeds
    the service's per-second limit. Asking again with another ``qps`` changes
    the rate for everyone using the key.
    """
    bucket = _quotas.get_or_create(access_key_id, lambda: TokenBucket(rate=qps, capacity=1))
    if bucket.rate != qps:
        bucket.set_rate(qps)
    return bucket
