"""Narrowing a rejected batch down to its bad events: pure decisions of the bisection.

When the service answers 400 for a batch, one or more of its events is bad and
the others may be fine. The run posts each half again, and each half of a
rejected half, until the bad events stand alone, within a budget of requests
per batch (``max_bisect_requests``): a batch of 100 with a few poisoned events
needs a few dozen. Rows left in a rejected group when the budget runs out get
a reason that says so, and how to narrow again.
"""

from __future__ import annotations

from typing import Literal

from cms_magic.results import Status

__all__ = ["BisectBudget", "Step", "next_step", "unnarrowed_reason"]

#: What to do with a request's rows once it ended.
Step = Literal["settle", "split", "unnarrowed"]


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


def next_step(status: Status, size: int, budget: BisectBudget, *, stopping: bool) -> Step:
    """``split`` a rejected group of several rows (spending budget), mark it ``unnarrowed``
    when it cannot be split further, else ``settle`` the rows as they are."""
    if status != "rejected" or size <= 1:
        return "settle"
    if not stopping and budget.take():
        return "split"
    return "unnarrowed"


def unnarrowed_reason(reason: str | None, limit: int) -> str:
    """The reason of rows left in a rejected group the bisection could not split."""
    return (reason or "") + (
        f" (the batch could not be narrowed further within max_bisect_requests="
        f"{limit}: good events may be among these; resend "
        "them with result.retry(include_rejected=True) to narrow again)"
    )
