"""Collecting the outcome of every row while a send runs (the run's second idea).

:class:`ResultBuilder` keeps compact arrays, one byte of status per input row
and reasons only for rows that have one; workers settle rows as their requests
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
    Status,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ResultBuilder"]


class ResultBuilder:
    """Collects per-row outcomes during a send; thread-safe, O(1 byte) per row."""

    def __init__(self, total: int, index: pd.Index | Sequence[Hashable] | None = None) -> None:
        self.total = total
        self.index = index
        self.status = np.full(total, NOT_SENT, dtype=np.uint8)
        self.batch = np.full(total, -1, dtype=np.int32)
        self.attempts = np.zeros(total, dtype=np.uint16)
        #: Accepted after an earlier attempt that may have stored the row too.
        self.duplicate = np.zeros(total, dtype=bool)
        self.reasons: dict[int, str] = {}
        self.request_index = np.full(total, -1, dtype=np.int32)  # into request_ids
        self.request_ids: list[str] = []
        self.requests: list[RequestRecord] = []
        #: Why the whole send stopped (refused credentials, unreadable input), or None.
        self.error: SendError | None = None
        self._lock = threading.Lock()
        # Rows per status, kept up to date on every change: progress reads it per request.
        self._counts = np.zeros(len(STATUSES), dtype=np.int64)
        self._counts[NOT_SENT] = total
        # Rows given a status by the run (a row not yet settled is pending, not "not sent").
        self._settled = np.zeros(total, dtype=bool)
        self._settled_count = 0

    def _set_status(self, where: np.ndarray[Any, Any], code: int) -> None:
        """Change the status of rows ``where`` (lock held), keeping the counts exact."""
        self._counts -= np.bincount(self.status[where], minlength=len(STATUSES))
        self._counts[code] += len(where)
        self.status[where] = code
        self._settled_count += int(np.count_nonzero(~self._settled[where]))
        self._settled[where] = True

    def reject(self, rejected: dict[int, str]) -> None:
        """Rows that cannot become (or fit in) a request, with their reasons."""
        if not rejected:
            return
        with self._lock:
            where = np.fromiter(rejected.keys(), dtype=np.int64, count=len(rejected))
            self._set_status(where, REJECTED)
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
        if not positions:
            return
        where = np.asarray(positions, dtype=np.int64)
        with self._lock:
            self._set_status(where, CODES[status])
            self.batch[where] = batch
            self.attempts[where] = attempts
            self.duplicate[where] = possible_duplicate
            if reason is None:
                if self.reasons:
                    for position in positions:
                        self.reasons.pop(position, None)
            else:
                self.reasons.update(dict.fromkeys(positions, reason))
            if request_id is not None:
                self.request_index[where] = len(self.request_ids)
                self.request_ids.append(request_id)

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
        with self._lock:
            result = SendResult(
                status=self.status.copy(),
                batch=self.batch.copy(),
                attempts=self.attempts.copy(),
                reasons=dict(self.reasons),
                request_index=self.request_index.copy(),
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
