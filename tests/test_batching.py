"""Batching is pure: at most 100 events and MAX_BODY_BYTES per body, measured on encoded bytes."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cms_magic.batching import plan_batches
from cms_magic.errors import ConfigError
from cms_magic.events.convert import Event
from cms_magic.protocol import MAX_BODY_BYTES


def payload(size: int) -> bytes:
    """An encoded event of exactly ``size`` bytes."""
    base = b'{"content":"","name":"n"}'
    return base[:12] + b"x" * (size - len(base)) + base[12:]


def test_at_most_100_events_per_batch() -> None:
    plan = plan_batches([payload(30)] * 250)
    assert [len(b) for b in plan.batches] == [100, 100, 50]
    assert [b.number for b in plan.batches] == [0, 1, 2]
    assert plan.batches[2].positions == tuple(range(200, 250))


def test_body_bytes_include_array_punctuation_exactly() -> None:
    # Three events of 100 bytes: 2 + 300 + 2 commas = 304 bytes fits 304, not 303.
    assert len(plan_batches([payload(100)] * 3, max_bytes=304).batches) == 1
    assert [len(b) for b in plan_batches([payload(100)] * 3, max_bytes=303).batches] == [2, 1]


def test_bodies_are_valid_json_arrays_of_the_events() -> None:
    events = [Event(f"n{i}", "中文😀" * i) for i in range(1, 6)]
    plan = plan_batches(events, max_events=2)
    decoded = [e for b in plan.batches for e in orjson.loads(b.body)]
    assert decoded == [e.to_dict() for e in events]


def test_an_oversize_event_is_rejected_not_truncated() -> None:
    big = payload(MAX_BODY_BYTES - 1)
    plan = plan_batches([payload(20), big, payload(20)], positions=[5, 6, 7])
    assert 6 in plan.rejected
    assert "at most 512,000 bytes" in plan.rejected[6]
    assert [b.positions for b in plan.batches] == [(5, 7)]


def test_an_event_exactly_at_the_limit_fits_alone() -> None:
    plan = plan_batches([payload(20), payload(MAX_BODY_BYTES - 2)])
    assert not plan.rejected
    assert [len(b) for b in plan.batches] == [1, 1]
    assert len(plan.batches[1].body) == MAX_BODY_BYTES


def test_invalid_limits() -> None:
    with pytest.raises(ValueError, match="max_events"):
        plan_batches([], max_events=101)
    with pytest.raises(ValueError, match="max_bytes"):
        plan_batches([], max_bytes=MAX_BODY_BYTES + 1)


@given(
    sizes=st.lists(st.integers(min_value=25, max_value=5000), max_size=300),
    max_events=st.integers(min_value=1, max_value=100),
    max_bytes=st.integers(min_value=100, max_value=20_000),
)
def test_every_event_lands_once_in_order_within_limits(
    sizes: list[int], max_events: int, max_bytes: int
) -> None:
    plan = plan_batches([payload(s) for s in sizes], max_events, max_bytes)
    placed = [p for b in plan.batches for p in b.positions]
    assert sorted(placed + list(plan.rejected)) == list(range(len(sizes)))
    assert placed == sorted(placed)
    for batch in plan.batches:
        assert 1 <= len(batch) <= max_events
        assert len(batch.body) <= max_bytes
    for position in plan.rejected:
        assert sizes[position] + 2 > max_bytes


def test_invalid_limits_are_config_errors_with_fields() -> None:
    with pytest.raises(ConfigError) as info:
        plan_batches([], max_events=0)
    assert (info.value.option, info.value.value) == ("max_events", 0)
    with pytest.raises(ConfigError) as info:
        plan_batches([b"{}"], positions=[1, 2])
    assert (info.value.option, info.value.value) == ("positions", 2)
