"""The adaptive rate: throttled answers lower a key's rate, and it probes back up.

For everything the shared buckets cannot see (other machines on the same account),
:class:`AdaptiveRate` does what botocore's *adaptive* retry mode does
(``botocore/retries/adaptive.py`` ``ClientRateLimiter`` and
``botocore/retries/throttling.py`` ``CubicCalculator``). Taken from there:

- CUBIC congestion control: a throttled answer remembers the rate in use as
  ``w_max`` and drops to ``beta * w_max`` (``beta`` 0.7); afterwards the rate is
  ``scale * (t - k) ** 3 + w_max`` with ``k = cbrt(w_max * (1 - beta) / scale)``
  (``scale`` 0.4), ``t`` the seconds since that answer: it climbs quickly, flattens
  near ``w_max`` and then probes above it;
- the limiter is off (the full rate) until the first throttled answer;
- a floor of 0.5 requests per second (botocore's ``TokenBucket._MIN_RATE``).

Changed here:

- the rate is capped at ``max_rate`` (the qps the sends of the key ask for): the
  quota never goes above what the user asked, and once the curve reaches it the
  limiter switches off again;
- botocore takes ``w_max`` as ``min(measured send rate, bucket rate)`` and caps the
  new rate at twice the measured rate, because its bucket is one client's and may sit
  far above what the client really sends. Ours is the key's shared bucket (process,
  host or Redis wide), whose rate is what every send of the key goes at together when
  busy, so ``w_max`` is the rate in use;
- many requests are in flight at once (``concurrency``), and their throttled answers
  come back together: after a decrease, throttled answers within ``cooldown`` seconds
  do not lower the rate again (one decrease per burst, as TCP reduces once per round
  trip), or 64 answers would take the rate to the floor.

Pure but for the injected ``clock``, and thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final

from cms_magic.errors import ConfigError

__all__ = ["BETA", "COOLDOWN", "MIN_RATE", "SCALE", "AdaptiveRate"]

#: The share of the rate kept after a throttled answer (botocore's CubicCalculator._BETA).
BETA: Final = 0.7
#: The CUBIC scale constant (botocore's CubicCalculator._SCALE_CONSTANT).
SCALE: Final = 0.4
#: Requests per second: the rate never goes below (botocore's TokenBucket._MIN_RATE).
MIN_RATE: Final = 0.5
#: Seconds after a decrease in which further throttled answers do not decrease again.
COOLDOWN: Final = 1.0


class AdaptiveRate:
    """The rate one key's sends may use now, lowered by throttled answers.

    >>> now = [0.0]
    >>> rate = AdaptiveRate(20, clock=lambda: now[0])
    >>> rate.rate
    20.0
    >>> round(rate.on_answer(throttled=True), 6)
    14.0
    >>> now[0] = 10.0
    >>> rate.rate
    20.0
    """

    __slots__ = ("_k", "_last_fail", "_lock", "_max_rate", "_w_max", "clock", "cooldown")

    def __init__(
        self,
        max_rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        cooldown: float = COOLDOWN,
    ) -> None:
        self._max_rate = _check_rate(max_rate)
        if isinstance(cooldown, bool) or not isinstance(cooldown, int | float) or cooldown < 0:
            raise ConfigError("must be a number of seconds >= 0", option="cooldown", value=cooldown)
        self.clock = clock
        self.cooldown = float(cooldown)
        self._lock = threading.Lock()
        self._w_max: float | None = None  # None: off (no throttled answer since the rate was full)
        self._k = 0.0
        self._last_fail = 0.0

    def __repr__(self) -> str:
        return f"AdaptiveRate(rate={self.rate:g}, max_rate={self._max_rate:g})"

    @property
    def max_rate(self) -> float:
        """The ceiling: the qps the sends ask for."""
        return self._max_rate

    @max_rate.setter
    def max_rate(self, value: float) -> None:
        checked = _check_rate(value)
        with self._lock:
            self._max_rate = checked

    @property
    def throttled(self) -> bool:
        """True while the rate is below ``max_rate`` because of throttled answers."""
        with self._lock:
            return self._current(self.clock()) < self._max_rate

    @property
    def rate(self) -> float:
        """Requests per second allowed now (``max_rate`` until a throttled answer)."""
        with self._lock:
            return self._current(self.clock())

    def on_answer(self, throttled: bool) -> float:
        """Record one answer (``throttled``: 403 Throttling / 429); return the rate now."""
        with self._lock:
            now = self.clock()
            current = self._current(now)
            if not throttled:
                if self._w_max is not None and current >= self._max_rate:
                    self._w_max = None  # back at the ceiling: off until the next throttle
                return current
            if self._w_max is not None and now - self._last_fail < self.cooldown:
                return current  # the same burst of in-flight answers
            self._w_max = current
            self._k = (current * (1 - BETA) / SCALE) ** (1 / 3)
            self._last_fail = now
            return self._current(now)

    def _current(self, now: float) -> float:
        if self._w_max is None:
            return self._max_rate
        elapsed = max(0.0, now - self._last_fail)
        cubic = SCALE * (elapsed - self._k) ** 3 + self._w_max
        return min(self._max_rate, max(MIN_RATE, cubic))


def _check_rate(rate: float) -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
        raise ConfigError("must be > 0 requests per second", option="qps", value=rate)
    return float(rate)
