"""Collecting the outcome of every row while a send runs (the run's second idea).

:class:`ResultBuilder` keeps compact arrays (6 bytes per input row: status, possible
duplicate, which settle ended it; a request's batch, attempts, id and reason once per
request) and reasons of single rows only for rows that have one; workers settle rows as their requests
end, progress reads the counts in O(1), and :meth:`ResultBuilder.build` makes the
read-only :class:`~cms_magic.results.SendResult`.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cms_magic.errors import SendError
from cms_magic.results import (
    CODES,
    NOT_SENT,
    REJECTED,
    STATUSES,
    RequestRecord,
    ResendSpec,
    SendResult,
    Settles,
    Status,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ResultBuilder"]


class ResultBuilder:
    """Collects per-row outcomes during a send; thread-safe, 6 bytes per row.

    A row keeps its status (1 byte), whether it may be held twice (1 byte) and which
    *settle* ended it (4 bytes): the batch number, the attempts, the request id and the
    reason are the same for every row of one request, so they are kept once per settle
    (:class:`~cms_magic.results.Settles`), not once per row. Only reasons of single rows
    (a row rejected before any request) are kept per row, in a sparse dict.
    """

    def __init__(self, total: int, index: pd.Index | Sequence[Hashable] | None = None) -> None:
        self.total = total
        self.index = index  # the input's own index, by reference (never copied)
        self.status = np.full(total, NOT_SENT, dtype=np.uint8)
        #: Which settle ended each row (-1: none, rejected before any request or not sent).
        self.group = np.full(total, -1, dtype=np.int32)
        #: Accepted after an earlier attempt that may have stored the row too.
        self.duplicate = np.zeros(total, dtype=bool)
        #: Reasons of single rows (rejected before any request), sparse.
        self.reasons: dict[int, str] = {}
        # One entry per settle: its batch, attempts, request (into request_ids), reason.
        self._batches: list[int] = []
        self._attempts: list[int] = []
        self._requests: list[int] = []
        self._reasons: list[str | None] = []
        self.request_ids: list[str] = []
        self.requests: list[RequestRecord] = []
        #: Why the whole send stopped (refused credentials, unreadable input), or None.
        self.error: SendError | None = None
        self._lock = threading.Lock()
        # Rows per status, kept up to date on every change: progress reads it per request.
        self._counts = np.zeros(len(STATUSES), dtype=np.int64)
        self._counts[NOT_SENT] = total
        # Rows given a status by the run (a row not yet settled is pending, not "not sent").
        self._settled_count = 0

    def _set_status(self, where: np.ndarray[Any, Any], code: int) -> None:
        """Change the status of rows ``where`` (lock held), keeping the counts exact."""
        before = self.status[where]
        self._counts -= np.bincount(before, minlength=len(STATUSES))
        self._counts[code] += len(where)
        # A row is settled once it has a settle or a status other than the initial one.
        fresh = (before == NOT_SENT) & (self.group[where] < 0)
        self._settled_count += int(np.count_nonzero(fresh))
        self.status[where] = code

    def reject(self, rejected: dict[int, str]) -> None:
        """Rows that cannot become (or fit in) a request, with their reasons."""
        if not rejected:
            return
        with self._lock:
            where = np.fromiter(rejected.keys(), dtype=np.int64, count=len(rejected))
            self._set_status(where, REJECTED)
            self.group[where] = -1
            self.reasons.update(rejected)

    def settle(
        self,
        positions: Sequence[int],
        status: Status,
        reason: str | None,
        *,
        batch: int,
        attempts: int,
        request_id: str | None = None,
        possible_duplicate: bool = False,
    ) -> None:
        """Give rows of one request their final status (one reason for all of them);
        ``possible_duplicate``: accepted after an attempt that may have stored them too."""
        if not len(positions):
            return
        where = np.asarray(positions, dtype=np.int64)
        with self._lock:
            self._set_status(where, CODES[status])
            self.group[where] = len(self._batches)
            self._batches.append(batch)
            self._attempts.append(attempts)
            self._reasons.append(reason)
            if request_id is not None:
                self._requests.append(len(self.request_ids))
                self.request_ids.append(request_id)
            else:
                self._requests.append(-1)
            self.duplicate[where] = possible_duplicate
            if self.reasons:  # a row's own reason gives way to its request's
                for position in where.tolist():
                    self.reasons.pop(position, None)

    def add_request(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def counts(self) -> dict[str, int]:
        """Rows per status so far, in O(1)."""
        with self._lock:
            numbers = self._counts.tolist()
        return dict(zip(STATUSES, numbers, strict=True))

    def pending(self) -> int:
        """Rows the run has not settled yet (it will still send them, or stop first)."""
        with self._lock:
            return self.total - self._settled_count

    def stop(self, error: SendError) -> bool:
        """Record why the whole send stops; the first reason wins. True if it was the first."""
        with self._lock:
            if self.error is not None:
                return False
            self.error = error
            return True

    def build(
        self,
        *,
        elapsed: float,
        request: ResendSpec | None = None,
        endpoint: str = "",
        cancelled: bool = False,
    ) -> SendResult:
        """The read-only result: copies of the per-row arrays (the builder, and the run
        holding it, are freed after the send; nothing of theirs stays with the result)."""
        with self._lock:
            settles = Settles(
                batch=np.asarray(self._batches, dtype=np.int32),
                attempts=np.asarray(self._attempts, dtype=np.uint16),
                request=np.asarray(self._requests, dtype=np.int32),
                reason=tuple(self._reasons),
            )
            result = SendResult(
                status=self.status.copy(),
                group=self.group.copy(),
                settles=settles,
                reasons=dict(self.reasons),
                request_ids=list(self.request_ids),
                index=self.index,
                request_records=sorted(self.requests, key=lambda r: r.batch),
                elapsed=elapsed,
                error=self.error,
                request=request,
                endpoint=endpoint,
                cancelled=cancelled,
                possible_duplicate=self.duplicate.copy(),
            )
        if self.error is not None and self.error.result is None:
            self.error.result = result
        return result
