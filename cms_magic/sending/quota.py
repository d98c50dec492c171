"""Token buckets: the rate of requests, and the quota every send of a key shares.

:class:`TokenBucket` is thread-safe with an injected clock. One class serves
both sides: the sender reserves a slot before each request (and waits the
returned delay), the emulator asks whether a request may pass. ``rate`` tokens
are added per second up to ``capacity``; each request takes one.

:func:`shared_quota` is the process-wide bucket of one AccessKey (a
:class:`SharedBucket`), kept in :mod:`cms_magic._state` (so ``_state.reset()``
forgets it). Every send using the key holds a **lease** on it for as long as it
runs (:func:`lease`, :func:`lease_for`): the bucket runs at the lowest ``qps``
among the leases held, so sends at qps 20 and 19 on one key run at 19
together, not at 20 (or 39). A user joining never raises the rate, and it is
never reset while in use: only when the slower send lets go does it return to
the lowest rate of the users left.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from cms_magic import _state
from cms_magic.errors import ConfigError
from cms_magic.protocol import DEFAULT_QPS

__all__ = ["SharedBucket", "TokenBucket", "lease", "lease_for", "shared_quota"]


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


class SharedBucket(TokenBucket):
    """The bucket every send of one AccessKey shares (capacity 1: no bursts), at the lowest
    rate among the sends holding a :meth:`lease` on it.

    >>> now = [0.0]
    >>> bucket = SharedBucket(20, clock=lambda: now[0])
    >>> with bucket.lease(20), bucket.lease(19):
    ...     bucket.rate
    19.0
    """

    __slots__ = ("_users", "_users_lock")

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(rate, capacity=1, clock=clock)
        self._users: list[float] = []  # the qps of each lease held
        self._users_lock = threading.Lock()

    @property
    def in_use(self) -> bool:
        """True while a send holds a lease."""
        return bool(self._users)

    @contextlib.contextmanager
    def lease(self, qps: float) -> Iterator[SharedBucket]:
        """Use the bucket at no more than ``qps`` for the duration of the ``with`` block
        (released on error and cancellation too)."""
        rate = _check_rate(qps)
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
            if not self._users and self.rate != qps:
                self.set_rate(qps)


_quotas: _state.Registry[str, SharedBucket] = _state.registry("shared quotas")


def shared_quota(access_key_id: str, qps: float = DEFAULT_QPS) -> SharedBucket:
    """The process-wide token bucket of one AccessKey (one account's quota).

    Every send in this process with that key takes its request slots here, so
    two sends at once (a magic and the panel, say) share the rate. Requests
    are spaced ``1/qps`` apart (capacity 1: no bursts), which never exceeds
    the service's per-second limit. While sends hold leases on the bucket it
    runs at the lowest ``qps`` among them and asking does not change it;
    asking with another ``qps`` when no one uses it sets its rate.
    """
    bucket = _quotas.get_or_create(access_key_id, lambda: SharedBucket(qps))
    bucket.ask(qps)
    return bucket


def lease(
    access_key_id: str, qps: float = DEFAULT_QPS
) -> contextlib.AbstractContextManager[SharedBucket]:
    """Hold the key's shared bucket at no more than ``qps`` for a ``with`` block (a send's
    whole run): ``with lease(key, 19) as bucket: ...``."""
    return shared_quota(access_key_id, qps).lease(qps)


def lease_for(bucket: TokenBucket | None, qps: float) -> contextlib.AbstractContextManager[object]:
    """A run's lease on its quota: on a :class:`SharedBucket`, :meth:`SharedBucket.lease`
    at ``qps``; nothing for no bucket or a private one (an injected ``quota=``)."""
    if isinstance(bucket, SharedBucket):
        return bucket.lease(qps)
    return contextlib.nullcontext()
