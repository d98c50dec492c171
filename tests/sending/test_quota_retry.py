"""The retry budget and throttling (issue 16): a throttled attempt is delayed, not lost."""

from __future__ import annotations

import pytest

from cms_magic.errors import ConfigError
from cms_magic.sending.retry import RetryPolicy, may_retry


def test_existing_callers_keep_their_budget() -> None:
    policy = RetryPolicy(max_attempts=3, max_time=10)
    assert may_retry(policy, 1, 0.0)
    assert may_retry(policy, 2, 9.9)
    assert not may_retry(policy, 3, 0.0)
    assert not may_retry(policy, 1, 10.0)


def test_throttled_attempts_do_not_use_up_the_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, max_time=10)
    # 50 attempts, 48 of them throttled: 2 count, another one fits.
    assert may_retry(policy, 50, 5.0, throttled=48)
    assert not may_retry(policy, 50, 5.0, throttled=47)
    # Every attempt throttled: only the time limit ends them.
    assert may_retry(policy, 1_000, 9.99, throttled=1_000)
    assert not may_retry(policy, 1_000, 10.0, throttled=1_000)


def test_more_throttled_than_attempts_counts_none() -> None:
    policy = RetryPolicy(max_attempts=1, max_time=10)
    assert may_retry(policy, 2, 0.0, throttled=5)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "2"])
def test_a_bad_throttled_count_is_named(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        may_retry(RetryPolicy(), 1, 0.0, throttled=bad)  # type: ignore[arg-type]
    assert info.value.option == "throttled"
