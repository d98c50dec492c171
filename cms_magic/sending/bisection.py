"""Narrowing a rejected batch down to its bad events: pure decisions of the bisection.

When the service answers 400 for a batch, one or more of its events is bad and
the others may be fine. The run posts each half again, and each half of a
rejected half, until the bad events stand alone, within a budget of requests
per batch (``max_bisect_requests``): a batch of 100 with a few poisoned events
needs a few dozen. Rows left in a rejected group when the budget runs out get
a reason that says so, and how to narrow again.

When the service answers 413 (the body is too large for it), nothing is wrong
with the events: the run posts each half *by bytes* again (:func:`split_by_bytes`,
so one big event does not keep a count-halved body over the limit), from the
same budget. An event refused as too large on its own is rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from cms_magic.results import Status

__all__ = ["BisectBudget", "Step", "next_step", "split_by_bytes", "unnarrowed_reason"]

#: What to do with a request's rows once it ended: ``split`` in halves by count (a 400),
#: ``split_bytes`` in halves by bytes (a 413).
Step = Literal["settle", "split", "split_bytes", "unnarrowed"]


class BisectBudget:
    """The requests one batch may still spend on bisection (each split costs two)."""

    __slots__ = ("limit", "remaining")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.remaining = limit

    def take(self) -> bool:
        """Spend two requests on a split, if there are two left."""
        if self.remaining < 2:
            return False
        self.remaining -= 2
        return True


def next_step(
    status: Status, size: int, budget: BisectBudget, *, stopping: bool, too_large: bool = False
) -> Step:
    """``split`` a rejected group of several rows (spending budget; ``split_bytes`` when it
    was refused as ``too_large``), mark it ``unnarrowed`` when it cannot be split further,
    else ``settle`` the rows as they are."""
    if status != "rejected" or size <= 1:
        return "settle"
    if not stopping and budget.take():
        return "split_bytes" if too_large else "split"
    return "unnarrowed"


def split_by_bytes(sizes: Sequence[int]) -> int:
    """Where to cut payloads of these ``sizes`` (two or more) into halves by bytes: the
    first index of the second half, from 1 to ``len(sizes) - 1``."""
    if len(sizes) < 2:
        raise ValueError("two payloads or more are needed to split")
    half = sum(sizes) / 2
    running = 0
    for i, size in enumerate(sizes):
        if running + size / 2 >= half:  # this payload's middle is past the half
            return min(max(i, 1), len(sizes) - 1)
        running += size
    return len(sizes) - 1


def unnarrowed_reason(reason: str | None, limit: int) -> str:
    """The reason of rows left in a rejected group the bisection could not split."""
    return (reason or "") + (
        f" (the batch could not be narrowed further within max_bisect_requests="
        f"{limit}: good events may be among these; resend "
        "them with result.retry(include_rejected=True) to narrow again)"
    )
