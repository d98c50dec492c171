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
from typing import Final

from cms_magic import _state
from cms_magic.errors import ConfigError
from cms_magic.protocol import DEFAULT_QPS
from cms_magic.sending.adaptive import AdaptiveRate

__all__ = [
    "DEFAULT_QUOTA",
    "QUOTA_MODES",
    "QuotaFactory",
    "SharedBucket",
    "TokenBucket",
    "lease",
    "lease_for",
    "quota_factory",
    "resolve_quota",
    "shared_quota",
]


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
        checked = _check_rate(rate)
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
            if not self._users and self._ceiling != qps:
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


# ---------------------------------------------------------------------- the quota= spec

#: What a bucket is made from: ``factory(quota_key, qps)`` gives the bucket (None: no limit).
QuotaFactory = Callable[[str, float], "TokenBucket | None"]
#: The named modes of ``quota=``.
QUOTA_MODES: Final = ("host", "process", "off")
#: Every process of the user on this machine shares a key's bucket.
DEFAULT_QUOTA: Final = "host"
_REDIS_SCHEMES: Final = ("redis://", "rediss://", "unix://")
_RULE: Final = (
    "must be 'host' (every process of this user on this machine, the default), 'process', "
    "'off', a redis://host:port/db URL, or a TokenBucket"
)


def quota_factory(quota: object = None) -> QuotaFactory:
    """Read a ``quota=`` setting: how each send gets its bucket, per quota key and qps.

    - ``None`` or ``"host"``: :func:`~cms_magic.sending.hostquota.host_quota`, one bucket
      for every process of the user on this machine (a locked file), the default;
    - ``"process"``: :func:`shared_quota`, one bucket per key in this process;
    - ``"off"``: no client-side limit (the service's throttling and the adaptive retry
      still apply);
    - ``"redis://host:port/db"`` (``rediss://``, ``unix://``): one bucket for every client
      of the Redis server (:func:`~cms_magic.sending.redisquota.redis_quota`; needs
      ``pip install cms_magic[redis]``);
    - a :class:`TokenBucket`: used as is, whatever the key and qps.

    A ``qps`` of 0 gives no bucket (the client-side limit off) except for a given
    :class:`TokenBucket`. Errors are :class:`~cms_magic.errors.ConfigError` naming
    ``quota``, the rule and the value (a Redis password masked). Checked now, so a bad
    setting fails before anything is sent.
    """
    if quota is None:
        quota = DEFAULT_QUOTA
    if isinstance(quota, TokenBucket):
        bucket = quota
        return lambda key, qps: bucket
    if not isinstance(quota, str):
        raise ConfigError(_RULE, option="quota", value=quota)
    text = quota.strip()
    mode = text.lower()
    if mode == "host":
        from cms_magic.sending.hostquota import host_quota

        return _unless_off(host_quota)
    if mode == "process":
        return _unless_off(shared_quota)
    if mode == "off":
        return lambda key, qps: None
    if mode.startswith(_REDIS_SCHEMES):
        from cms_magic.sending.redisquota import check_redis_url, redis_quota

        url = check_redis_url(text)
        return _unless_off(lambda key, qps: redis_quota(url, key, qps))
    from cms_magic.sending.redisquota import mask_url

    raise ConfigError(_RULE, option="quota", value=mask_url(text))


def resolve_quota(quota: object, key: str, qps: float) -> TokenBucket | None:
    """The bucket ``quota=`` gives a send with quota key ``key`` at ``qps`` (None: no limit)."""
    return quota_factory(quota)(key, qps)


def _unless_off(make: Callable[[str, float], SharedBucket]) -> QuotaFactory:
    def factory(key: str, qps: float) -> TokenBucket | None:
        if qps == 0:
            return None
        return make(key, qps)

    return factory
