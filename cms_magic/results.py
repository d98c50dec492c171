"""What happened to every event and every request of a send.

:class:`ResultBuilder` collects outcomes while a send runs, in compact arrays
(one byte of status per input row; reasons only for rows that have one);
:class:`SendResult` is the finished, read-only view:

- ``result.events``: one row per input row, indexed like the input, with
  ``status`` (``accepted``, ``rejected``, ``not_sent``, ``unknown`` or
  ``dry_run``), ``reason``, ``batch``, ``attempts`` and ``request_id``;
- ``result.requests``: one row per request;
- ``result.ok``, ``result.summary()``, ``result.failed()``, ``result.retry()``.

Status meanings: ``accepted``: the service answered HTTP 200 with code "200".
``rejected``: the row cannot be sent as it is (it failed validation, or the
service answered 400 for it); the reason says why. ``not_sent``: the row was
not delivered and may be sent again safely. ``unknown``: its request may or
may not have been delivered (for example a timeout after the request was
sent); resending may duplicate events, so it is not done unless asked.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from cms_magic.sending.client import SendJob

__all__ = ["STATUSES", "RequestRecord", "ResultBuilder", "SendResult"]

Status = Literal["accepted", "rejected", "not_sent", "unknown", "dry_run"]
STATUSES: tuple[Status, ...] = ("accepted", "rejected", "not_sent", "unknown", "dry_run")
_CODE: dict[str, int] = {name: code for code, name in enumerate(STATUSES)}
ACCEPTED, REJECTED, NOT_SENT, UNKNOWN, DRY_RUN = range(5)

NOT_SENT_REASON = "not sent: the send stopped before this row's request"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as it ended (after its retries)."""

    batch: int
    events: int
    bytes: int
    status: int | None  # HTTP status; None when no response came back
    code: str | None
    msg: str
    request_id: str | None
    attempts: int
    latency_ms: float  # of the last attempt
    sent_at: float  # epoch seconds of the last attempt
    outcome: Status


class ResultBuilder:
    """Collects per-row outcomes during a send; thread-safe, O(1 byte) per row."""

    def __init__(self, total: int, index: pd.Index | Sequence[Hashable] | None = None) -> None:
        self.total = total
        self.index = index
        self.status = np.full(total, NOT_SENT, dtype=np.uint8)
        self.batch = np.full(total, -1, dtype=np.int32)
        self.attempts = np.zeros(total, dtype=np.uint16)
        self.reasons: dict[int, str] = {}
        self.request_index = np.full(total, -1, dtype=np.int32)  # into request_ids
        self.request_ids: list[str] = []
        self.requests: list[RequestRecord] = []
        self.error: str | None = None
        self._lock = threading.Lock()
        # Rows per status, kept up to date on every change: progress reads it per request.
        self._counts = np.zeros(len(STATUSES), dtype=np.int64)
        self._counts[NOT_SENT] = total

    def _set_status(self, where: np.ndarray[Any, Any], code: int) -> None:
        """Change the status of rows ``where`` (lock held), keeping the counts exact."""
        self._counts -= np.bincount(self.status[where], minlength=len(STATUSES))
        self._counts[code] += len(where)
        self.status[where] = code

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
    ) -> None:
        """Give rows of one request their final status (one reason for all of them)."""
        if not positions:
            return
        where = np.asarray(positions, dtype=np.int64)
        with self._lock:
            self._set_status(where, _CODE[status])
            self.batch[where] = batch
            self.attempts[where] = attempts
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

    def build(
        self,
        *,
        elapsed: float,
        source: Any = None,
        resend: Callable[[SendResult, np.ndarray[Any, Any], bool, Any], Any] | None = None,
        endpoint: str = "",
        cancelled: bool = False,
    ) -> SendResult:
        with self._lock:
            return SendResult(
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
                source=source,
                resend=resend,
                endpoint=endpoint,
                cancelled=cancelled,
            )


class SendResult:
    """The outcome of a send, row by row and request by request."""

    def __init__(
        self,
        *,
        status: np.ndarray[Any, Any],
        batch: np.ndarray[Any, Any],
        attempts: np.ndarray[Any, Any],
        reasons: dict[int, str],
        request_index: np.ndarray[Any, Any],
        request_ids: list[str],
        index: pd.Index | Sequence[Hashable] | None,
        request_records: list[RequestRecord],
        elapsed: float,
        error: str | None = None,
        source: Any = None,
        resend: Callable[[SendResult, np.ndarray[Any, Any], bool, Any], Any] | None = None,
        endpoint: str = "",
        cancelled: bool = False,
    ) -> None:
        self._status = status
        self._batch = batch
        self._attempts = attempts
        self._reasons = reasons
        self._request_index = request_index
        self._request_ids = request_ids
        self._index = index
        self.request_records = request_records
        #: Seconds the send took (all attempts of a retried result together).
        self.elapsed = elapsed
        #: Why the whole send stopped early (refused credentials...), or None.
        self.error = error
        #: True when the send was cancelled or interrupted before it finished.
        self.cancelled = cancelled
        #: The URL the events were sent to.
        self.endpoint = endpoint
        self._source = source
        self._resend = resend
        self._events_frame: pd.DataFrame | None = None
        #: For a dry run: the first request as it would be sent (Authorization masked).
        self.preview: dict[str, Any] | None = None
        #: Warnings raised during the send (e.g. this machine's clock is off).
        self.warnings: list[str] = []

    # ----------------------------------------------------------------- frames

    @property
    def events(self) -> pd.DataFrame:
        """One row per input row, indexed like the input.

        Columns: status, reason, batch, attempts, request_id.
        """
        if self._events_frame is None:
            import pandas as pd

            n = len(self._status)
            index = self._index if self._index is not None else pd.RangeIndex(n)
            reasons = np.full(n, None, dtype=object)
            if self._reasons:
                where = np.fromiter(self._reasons.keys(), dtype=np.int64, count=len(self._reasons))
                reasons[where] = list(self._reasons.values())
            reasons[(self._status == NOT_SENT) & (reasons == None)] = NOT_SENT_REASON  # noqa: E711
            ids = np.asarray([*self._request_ids, None], dtype=object)
            request_id = ids[self._request_index]  # -1 picks the trailing None
            frame = pd.DataFrame(
                {
                    "status": pd.Categorical.from_codes(
                        self._status.astype(np.int8), categories=pd.Index(list(STATUSES))
                    ),
                    "reason": reasons,
                    "batch": pd.array(np.where(self._batch >= 0, self._batch, 0), dtype="Int64"),
                    "attempts": self._attempts.astype(np.int64),
                    "request_id": request_id,
                },
                index=index if isinstance(index, pd.Index) else pd.Index(index),
            )
            frame.loc[self._batch < 0, "batch"] = pd.NA
            self._events_frame = frame
        return self._events_frame

    @property
    def requests(self) -> pd.DataFrame:
        """One row per request: batch, events, bytes, http_status, code, msg, request_id,
        attempts, latency_ms, sent_at, outcome."""
        import pandas as pd

        columns = list(RequestRecord.__dataclass_fields__)
        frame = pd.DataFrame([asdict(r) for r in self.request_records], columns=columns)
        frame["status"] = frame["status"].astype("Int64")
        frame["sent_at"] = pd.to_datetime(frame["sent_at"], unit="s", utc=True)
        renamed: pd.DataFrame = frame.rename(columns={"status": "http_status"})
        return renamed

    # ----------------------------------------------------------------- verdicts

    def __len__(self) -> int:
        return len(self._status)

    def counts(self) -> dict[str, int]:
        """How many rows ended in each status (every status, zeros included)."""
        numbers = np.bincount(self._status, minlength=len(STATUSES))
        return {name: int(numbers[code]) for code, name in enumerate(STATUSES)}

    @property
    def ok(self) -> bool:
        """True when every row was accepted (an empty input is ok)."""
        return bool((self._status == ACCEPTED).all()) and self.error is None

    @property
    def accepted(self) -> int:
        """How many rows were accepted."""
        return int((self._status == ACCEPTED).sum())

    def failed_mask(self, include_unknown: bool = True) -> np.ndarray[Any, Any]:
        """Boolean per row: not accepted (``unknown`` counted unless excluded)."""
        mask: np.ndarray[Any, Any] = (self._status == REJECTED) | (self._status == NOT_SENT)
        if include_unknown:
            mask |= self._status == UNKNOWN
        return mask

    def failed(self, include_unknown: bool = True) -> Any:
        """The source rows that were not accepted: a DataFrame for frame input, else a list.

        ``unknown`` rows are included by default so nothing is hidden; pass
        ``include_unknown=False`` for just the rows that are safe to resend.
        """
        positions = np.flatnonzero(self.failed_mask(include_unknown))
        if self._source is None:
            return self.events.iloc[positions]
        if hasattr(self._source, "iloc"):
            return self._source.iloc[positions]
        return [self._source[i] for i in positions.tolist()]

    def retry_mask(
        self, *, include_unknown: bool = False, include_rejected: bool = False
    ) -> np.ndarray[Any, Any]:
        """Boolean per row: what :meth:`retry` would resend."""
        mask: np.ndarray[Any, Any] = self._status == NOT_SENT
        if include_unknown:
            mask |= self._status == UNKNOWN
        if include_rejected:
            mask |= self._status == REJECTED
        return mask

    @overload
    def retry(
        self,
        *,
        include_unknown: bool = ...,
        include_rejected: bool = ...,
        background: Literal[False] = ...,
        progress: Callable[[Any], None] | None = ...,
    ) -> SendResult: ...

    @overload
    def retry(
        self,
        *,
        include_unknown: bool = ...,
        include_rejected: bool = ...,
        background: Literal[True],
        progress: Callable[[Any], None] | None = ...,
    ) -> SendJob: ...

    def retry(
        self,
        *,
        include_unknown: bool = False,
        include_rejected: bool = False,
        background: bool = False,
        progress: Callable[[Any], None] | None = None,
    ) -> SendResult | SendJob:
        """Send again the rows that were not sent; a new result over all the rows.

        Rows already accepted keep their status; the others take the outcome of
        the new attempt. ``unknown`` rows are resent only with
        ``include_unknown=True``: some of them may have arrived, and the API has
        no way to tell, so resending may duplicate events. ``rejected`` rows
        (invalid, or refused by the service with a 400) would fail the same way:
        fix them (``failed()`` gives the source rows) or pass
        ``include_rejected=True``. ``background=True`` returns a ``SendJob``
        whose result is the merged one; ``progress`` is as for ``send``.
        """
        if self._resend is None:
            raise RuntimeError("this result cannot be retried: it was not made by cms_magic.send")
        positions = np.flatnonzero(
            self.retry_mask(include_unknown=include_unknown, include_rejected=include_rejected)
        )
        outcome: SendResult | SendJob = self._resend(self, positions, background, progress)
        return outcome

    def merged(self, again: SendResult, positions: np.ndarray[Any, Any]) -> SendResult:
        """This result with the rows at ``positions`` replaced by ``again``'s rows (in order).

        ``again`` is the result of sending exactly those rows; its batch numbers
        and requests are renumbered to follow this result's.
        """
        if len(again) != len(positions):
            raise ValueError(f"{len(again)} new outcomes for {len(positions)} rows")
        offset = int(self._batch.max()) + 1 if len(self._batch) and self._batch.max() >= 0 else 0
        status = self._status.copy()
        batch = self._batch.copy()
        attempts = self._attempts.copy()
        request_index = self._request_index.copy()
        status[positions] = again._status
        batch[positions] = np.where(again._batch >= 0, again._batch + offset, -1)
        attempts[positions] = again._attempts
        shifted = again._request_index.astype(np.int64)
        request_index[positions] = np.where(shifted >= 0, shifted + len(self._request_ids), -1)
        reasons = dict(self._reasons)
        for p in positions.tolist():
            reasons.pop(p, None)
        mapped = positions.tolist()
        reasons.update({mapped[i]: r for i, r in again._reasons.items()})
        records = self.request_records + [
            RequestRecord(**{**asdict(r), "batch": r.batch + offset}) for r in again.request_records
        ]
        return SendResult(
            status=status,
            batch=batch,
            attempts=attempts,
            reasons=reasons,
            request_index=request_index,
            request_ids=self._request_ids + again._request_ids,
            index=self._index,
            request_records=records,
            elapsed=self.elapsed + again.elapsed,
            error=again.error,
            source=self._source,
            resend=self._resend,
            endpoint=again.endpoint or self.endpoint,
            cancelled=again.cancelled,
        )

    def summary(self, name: str = "result") -> str:
        """One line: accepted out of total, the time, what else happened and where to look.

        ``name`` is what the pointer at the failed rows calls this result
        (``-> result.failed()``).
        """
        counts = self.counts()
        total = len(self)
        if counts["dry_run"]:
            head = f"dry run: {counts['dry_run']:,}/{total:,} events would be sent"
        else:
            head = f"{counts['accepted']:,}/{total:,} events accepted in {self.elapsed:.1f} s"
        others = [
            f"{counts[s]:,} {s.replace('_', ' ')}"
            for s in ("rejected", "not_sent", "unknown")
            if counts[s]
        ]
        line = head + ("; " + ", ".join(others) if others else "")
        if self.cancelled:
            line += "; cancelled"
        if self.error:
            line += f"; stopped: {self.error}"
        if others:
            line += f" -> {name}.failed()"
        return line

    def __repr__(self) -> str:
        return f"<SendResult {self.summary()}>"

    def _repr_html_(self) -> str:
        counts = self.counts()
        colours = {
            "accepted": "#2e7d32",
            "rejected": "#c62828",
            "not_sent": "#ef6c00",
            "unknown": "#6a1b9a",
            "dry_run": "#1565c0",
        }
        cells = "".join(
            f'<td style="padding:2px 8px;color:{colours[s]}"><b>{counts[s]:,}</b> {s}</td>'
            for s in STATUSES
            if counts[s]
        )
        failed = ""
        positions = np.flatnonzero(self.failed_mask())[:5]
        if len(positions):
            failed = self.events.iloc[positions][["status", "reason"]].to_html(
                notebook=False, border=0
            )
        return (
            '<div class="cms-magic-result">'
            f"<div>{html.escape(self.summary())}</div>"
            f"<table><tr>{cells}</tr></table>{failed}</div>"
        )
