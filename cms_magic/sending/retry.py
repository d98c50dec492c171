"""When to try a request again, and how long to wait first: pure decisions.

- :class:`RetryPolicy`: the bounds (attempts, total time) and the backoff's shape;
- :func:`backoff`: the wait after attempt ``k`` (the server's ``Retry-After`` if
  it gave one, capped; else full jitter over an exponential ceiling);
- :func:`may_retry`: whether the budget allows another attempt (throttled attempts
  count against the time limit only).

The run draws the random number and reads the clock; these functions only
decide, so they are tested without an event loop or a real clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cms_magic.errors import ConfigError
from cms_magic.settings import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_TIME,
    check_count,
    check_seconds,
)

__all__ = ["DEFAULT_BASE_WAIT", "DEFAULT_MAX_WAIT", "RetryPolicy", "backoff", "may_retry"]

#: Seconds: the ceiling of the first wait (it doubles with each attempt).
DEFAULT_BASE_WAIT: Final = 0.25
#: Seconds: no wait is longer (a Retry-After included).
DEFAULT_MAX_WAIT: Final = 8.0


@dataclass(frozen=True)
class RetryPolicy:
    """How failed attempts are retried: exponential backoff with full jitter, bounded.

    Attempt ``k`` (from 1) waits ``random() * min(max_wait, base_wait * 2**(k-1))``
    seconds, or the server's ``Retry-After`` when it gives one (capped at
    ``max_wait``). At most ``max_attempts`` attempts and ``max_time`` seconds per request.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_time: float = DEFAULT_MAX_TIME
    base_wait: float = DEFAULT_BASE_WAIT
    max_wait: float = DEFAULT_MAX_WAIT

    def __post_init__(self) -> None:
        check_count(self.max_attempts, "max_attempts")
        check_seconds(self.max_time, "max_time")
        for option in ("base_wait", "max_wait"):
            value = getattr(self, option)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ConfigError("must be a number of seconds >= 0", option=option, value=value)


def backoff(policy: RetryPolicy, attempt: int, retry_after: float | None, draw: float) -> float:
    """Seconds to wait after attempt ``attempt`` (from 1) failed.

    ``retry_after`` is the server's hint (None if it gave none); ``draw`` a
    random number in [0, 1).
    """
    if retry_after is not None:
        return min(retry_after, policy.max_wait)
    ceiling = min(policy.max_wait, policy.base_wait * 2 ** (attempt - 1))
    return float(draw * ceiling)


def may_retry(policy: RetryPolicy, attempts: int, elapsed: float, *, throttled: int = 0) -> bool:
    """Whether another attempt fits the budget: ``attempts`` made so far, ``elapsed``
    seconds since the first began.

    ``throttled`` of those attempts were refused for the quota (403 Throttling, 429):
    they do not use up ``max_attempts`` (issue 16: a throttled row is delayed, not
    lost), so only ``max_time`` bounds them. The other attempts count as before.
    """
    if isinstance(throttled, bool) or not isinstance(throttled, int) or throttled < 0:
        raise ConfigError("must be a count >= 0", option="throttled", value=throttled)
    counted = attempts - min(throttled, attempts)
    return counted < policy.max_attempts and elapsed < policy.max_time
