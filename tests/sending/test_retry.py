"""Retry decisions: backoff and budget, pure, no event loop."""

from __future__ import annotations

import pytest

from cms_magic.errors import ConfigError
from cms_magic.sending.retry import RetryPolicy, backoff, may_retry
from cms_magic.settings import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_TIME


def test_defaults_come_from_settings() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.max_time) == (DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_TIME)


def test_full_jitter_over_a_doubling_ceiling_capped_at_max_wait() -> None:
    policy = RetryPolicy(base_wait=0.25, max_wait=8.0)
    assert [backoff(policy, k, None, 1.0) for k in range(1, 8)] == [
        0.25,
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        8.0,
    ]
    assert backoff(policy, 3, None, 0.5) == 0.5
    assert backoff(policy, 3, None, 0.0) == 0.0


def test_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(max_wait=8.0)
    assert backoff(policy, 1, 3.0, 0.9) == 3.0
    assert backoff(policy, 1, 60.0, 0.9) == 8.0


def test_the_budget_bounds_attempts_and_time() -> None:
    policy = RetryPolicy(max_attempts=3, max_time=25.0)
    assert may_retry(policy, 1, 0.0)
    assert may_retry(policy, 2, 24.9)
    assert not may_retry(policy, 3, 0.0)  # three attempts made: no fourth
    assert not may_retry(policy, 1, 25.0)  # out of time
    assert not may_retry(RetryPolicy(max_attempts=1), 1, 0.0)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_attempts", 0),
        ("max_attempts", 1.5),
        ("max_time", 0),
        ("base_wait", -1),
        ("max_wait", -0.1),
    ],
)
def test_a_bad_policy_names_the_option(option: str, value: float) -> None:
    with pytest.raises(ConfigError) as info:
        RetryPolicy(**{option: value})  # type: ignore[arg-type]
    assert info.value.option == option
    assert info.value.value == value
