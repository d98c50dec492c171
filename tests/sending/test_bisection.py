"""Narrowing a refused batch: halves by count for a 400, halves by bytes for a 413 (pure)."""

from __future__ import annotations

import pytest

from cms_magic.sending.bisection import BisectBudget, next_step, split_by_bytes


def test_a_413_splits_by_bytes_from_the_same_budget() -> None:
    budget = BisectBudget(4)
    assert next_step("rejected", 10, budget, stopping=False, too_large=True) == "split_bytes"
    assert budget.remaining == 2
    assert next_step("rejected", 1, budget, stopping=False, too_large=True) == "settle"
    assert next_step("rejected", 5, budget, stopping=True, too_large=True) == "unnarrowed"
    assert next_step("rejected", 5, budget, stopping=False, too_large=True) == "split_bytes"
    assert next_step("rejected", 5, budget, stopping=False, too_large=True) == "unnarrowed"


@pytest.mark.parametrize(
    ("sizes", "cut"),
    [
        ([50] * 40, 20),
        ([2_000] + [50] * 39, 1),
        ([50] * 39 + [2_000], 39),
        ([10, 1_000], 1),
        ([1_000, 10], 1),
        ([1, 1, 1], 1),
        ([3, 1, 1, 1, 1, 1], 2),
    ],
)
def test_split_by_bytes_cuts_at_the_half_of_the_bytes(sizes: list[int], cut: int) -> None:
    assert split_by_bytes(sizes) == cut
    assert 1 <= cut <= len(sizes) - 1


def test_split_by_bytes_needs_two_payloads() -> None:
    with pytest.raises(ValueError, match="two payloads"):
        split_by_bytes([5])
