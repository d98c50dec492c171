"""The adaptive rate (issue 16): throttled answers lower it, it probes back up (CUBIC)."""

from __future__ import annotations

import pytest

from cms_magic.errors import ConfigError
from cms_magic.sending.adaptive import BETA, MIN_RATE, AdaptiveRate
from tests.conftest import FakeClock


def test_full_rate_until_the_first_throttled_answer(clock: FakeClock) -> None:
    rate = AdaptiveRate(20, clock=clock)
    for _ in range(100):
        assert rate.on_answer(throttled=False) == 20.0
        clock.advance(0.05)
    assert rate.rate == 20.0
    assert not rate.throttled


def test_a_throttled_answer_lowers_the_rate_by_beta(clock: FakeClock) -> None:
    rate = AdaptiveRate(20, clock=clock)
    assert rate.on_answer(throttled=True) == pytest.approx(20 * BETA)
    assert rate.throttled
    assert rate.rate == pytest.approx(14.0)


def test_the_rate_climbs_back_along_the_cubic_curve(clock: FakeClock) -> None:
    rate = AdaptiveRate(20, clock=clock)
    rate.on_answer(throttled=True)
    seen = []
    for _ in range(30):
        clock.advance(0.1)
        seen.append(rate.rate)
    assert seen == sorted(seen)  # never goes down without a throttle
    k = (20 * (1 - BETA) / 0.4) ** (1 / 3)  # back at w_max after k seconds (about 2.47)
    assert seen[0] < 20
    assert seen[-1] == 20.0
    assert seen[int(k * 10) - 2] < 20.0
    assert not rate.throttled
    assert rate.on_answer(throttled=False) == 20.0


def test_answers_of_one_burst_lower_the_rate_once(clock: FakeClock) -> None:
    rate = AdaptiveRate(20, clock=clock, cooldown=1.0)
    rates = [rate.on_answer(throttled=True) for _ in range(64)]  # 64 in flight
    assert min(rates) == pytest.approx(14.0)
    clock.advance(1.0)
    lower = rate.on_answer(throttled=True)  # a later throttle lowers again from the rate now
    assert lower < 14.0
    assert lower == pytest.approx(rate.rate)


def test_repeated_throttles_go_down_to_the_floor_not_below(clock: FakeClock) -> None:
    rate = AdaptiveRate(20, clock=clock, cooldown=0)
    for _ in range(100):
        rate.on_answer(throttled=True)
    assert rate.rate == MIN_RATE


def test_the_ceiling_follows_max_rate(clock: FakeClock) -> None:
    rate = AdaptiveRate(20, clock=clock)
    rate.max_rate = 5
    assert rate.rate == 5.0
    assert rate.on_answer(throttled=True) == pytest.approx(3.5)
    clock.advance(60)
    assert rate.rate == 5.0


@pytest.mark.parametrize("bad", [0, -1, True, "20", None])
def test_bad_rates_are_named(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        AdaptiveRate(bad)  # type: ignore[arg-type]
    assert info.value.option == "qps"
    with pytest.raises(ConfigError, match="cooldown"):
        AdaptiveRate(20, cooldown=-1)
