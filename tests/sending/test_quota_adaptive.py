"""The key's bucket and the adaptive rate (issue 16): SharedBucket.on_answer."""

from __future__ import annotations

import pytest

from cms_magic.sending.quota import SharedBucket, shared_quota
from tests.conftest import FakeClock


def test_a_throttled_answer_spaces_the_slots_wider(clock: FakeClock) -> None:
    bucket = SharedBucket(20, clock=clock)
    assert [bucket.reserve(), bucket.reserve()] == pytest.approx([0.0, 0.05])
    clock.advance(1)
    bucket.on_answer(throttled=True)
    assert bucket.rate == pytest.approx(14.0)
    assert bucket.ceiling == 20.0
    assert [bucket.reserve(), bucket.reserve()] == pytest.approx([0.0, 1 / 14])


def test_the_rate_probes_back_up_to_the_ceiling(clock: FakeClock) -> None:
    bucket = SharedBucket(20, clock=clock)
    bucket.on_answer(throttled=True)
    rates = []
    for _ in range(40):
        clock.advance(0.1)
        bucket.on_answer(throttled=False)
        rates.append(bucket.rate)
    assert rates == sorted(rates)
    assert rates[0] < 20.0
    assert rates[-1] == 20.0
    assert bucket.adaptive is not None
    assert not bucket.adaptive.throttled


def test_the_rate_follows_time_without_answers(clock: FakeClock) -> None:
    bucket = SharedBucket(20, clock=clock)
    bucket.on_answer(throttled=True)
    clock.advance(10)
    bucket.reserve()  # reserving reads the rate now
    assert bucket.rate == 20.0


def test_leases_and_the_adaptive_rate_together(clock: FakeClock) -> None:
    bucket = SharedBucket(20, clock=clock)
    with bucket.lease(10):
        assert bucket.rate == 10.0
        bucket.on_answer(throttled=True)
        assert bucket.rate == pytest.approx(7.0)
        with bucket.lease(5):
            assert bucket.rate == 5.0  # the lower ceiling wins
        assert bucket.rate == pytest.approx(7.0, abs=0.5)
    clock.advance(60)
    assert bucket.current_rate() == 10.0  # the ceiling the last lease left


def test_adaptive_false_keeps_the_leases_rate(clock: FakeClock) -> None:
    bucket = SharedBucket(20, clock=clock, adaptive=False)
    bucket.on_answer(throttled=True)
    assert bucket.rate == 20.0
    assert bucket.adaptive is None


def test_the_process_bucket_learns_for_every_send_of_the_key() -> None:
    first = shared_quota("LTAIadaptive0001", 20)
    first.on_answer(throttled=True)
    assert shared_quota("LTAIadaptive0001", 20).rate < 20.0
