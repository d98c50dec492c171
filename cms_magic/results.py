"""What happened to every event and every request of a send.

:class:`ResultBuilder` collects outcomes while a send runs (cheap numpy arrays,
one slot per input row); :class:`SendResult` is the finished, read-only view:

- ``result.events``: one row per input row, indexed like the input, with
  ``status`` (``accepted``, ``rejected``, ``not_sent``, ``unknown`` or
  ``dry_run``), ``reason``, ``batch``, ``attempts`` and ``request_id``;
- ``result.requests``: one row per request;
- ``result.ok``, ``result.summary()``, ``result.failed()``, ``result.counts()``.

Status meanings: ``accepted`` the service answered 200 with code "200";
``rejected`` the row can never be sent as is (validation, or the service said
400), the reason says why; ``not_sent`` the row was not delivered and may be
sent again safely; ``unknown`` the request may or may not have been delivered
(a timeout after it was sent): resending may duplicate events.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["STATUSES", "RequestRecord", "ResultBuilder", "SendResult"]

Status = Literal["accepted", "rejected", "not_sent", "unknown", "dry_run"]
STATUSES: tuple[Status, ...] = ("accepted", "rejected", "not_sent", "unknown", "dry_run")

NOT_SENT_REASON = "not sent: the send stopped before this row's request"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as it ended (after retries)."""

    batch: int
    events: int
    bytes: int
    status: int | None  # HTTP status; None when no response came back
    code: str | None
    msg: str
    request_id: str | None
    attempts: int
    latency_ms: float
    sent_at: float  # epoch seconds of the last attempt
    outcome: Status


class ResultBuilder:
    """Collects per-row outcomes during a send; thread-safe."""

    def __init__(self, total: int, index: pd.Index | Sequence[Hashable] | None = None) -> None:
        self.total = total
        self.index = index
        self.status = np.full(total, "not_sent", dtype=object)
        self.reason = np.full(total, NOT_SENT_REASON, dtype=object)
        self.batch = np.full(total, -1, dtype=np.int64)
        self.attempts = np.zeros(total, dtype=np.int64)
        self.request_id = np.full(total, None, dtype=object)
        self.requests: list[RequestRecord] = []
        self.error: str | None = None
        self._lock = threading.Lock()

    def reject(self, rejected: dict[int, str]) -> None:
        """Rows that cannot become (or fit in) a request."""
        if not rejected:
            return
        with self._lock:
            where = np.fromiter(rejected.keys(), dtype=np.int64, count=len(rejected))
            self.status[where] = "rejected"
            self.reason[where] = list(rejected.values())

    def settle(
        self,
        positions: Sequence[int],
        status: Status,
        reason: str | None,
        *,
        batch: int,
        attempts: int,
        request_id: str | None,
    ) -> None:
        """Give every row of a batch (or part of one) its final status."""
        if not positions:
            return
        where = np.asarray(positions, dtype=np.int64)
        with self._lock:
            self.status[where] = status
            self.reason[where] = reason
            self.batch[where] = batch
            self.attempts[where] = attempts
            self.request_id[where] = request_id

    def add_request(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def done(self) -> int:
        """Rows that have a final status other than not_sent (progress)."""
        return int((self.status != "not_sent").sum())

    def build(
        self,
        *,
        elapsed: float,
        source: Any = None,
        resend: Callable[[SendResult, bool], SendResult] | None = None,
        endpoint: str = "",
        cancelled: bool = False,
    ) -> SendResult:
        with self._lock:
            return SendResult(
                status=self.status.copy(),
                reason=self.reason.copy(),
                batch=self.batch.copy(),
                attempts=self.attempts.copy(),
                request_id=self.request_id.copy(),
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
        reason: np.ndarray[Any, Any],
        batch: np.ndarray[Any, Any],
        attempts: np.ndarray[Any, Any],
        request_id: np.ndarray[Any, Any],
        index: pd.Index | Sequence[Hashable] | None,
        request_records: list[RequestRecord],
        elapsed: float,
        error: str | None = None,
        source: Any = None,
        resend: Callable[[SendResult, bool], SendResult] | None = None,
        endpoint: str = "",
        cancelled: bool = False,
    ) -> None:
        self._status = status
        self._reason = reason
        self._batch = batch
        self._attempts = attempts
        self._request_id = request_id
        self._index = index
        self.request_records = request_records
        #: Seconds the send took.
        self.elapsed = elapsed
        #: Why the whole send stopped early (bad credentials...), or None.
        self.error = error
        #: True when the send was cancelled or interrupted before it finished.
        self.cancelled = cancelled
        #: The URL the events were sent to.
        self.endpoint = endpoint
        self._source = source
        self._resend = resend
        self._events_frame: pd.DataFrame | None = None

    # ----------------------------------------------------------------- frames

    @property
    def events(self) -> pd.DataFrame:
        """One row per input row (indexed like the input): status, reason, batch, attempts, request_id."""
        if self._events_frame is None:
            import pandas as pd

            index = self._index if self._index is not None else pd.RangeIndex(len(self._status))
            frame = pd.DataFrame(
                {
                    "status": pd.Categorical(self._status, categories=list(STATUSES)),
                    "reason": self._reason,
                    "batch": self._batch,
                    "attempts": self._attempts,
                    "request_id": self._request_id,
                },
                index=pd.Index(index) if not isinstance(index, pd.Index) else index,
            )
            frame["batch"] = frame["batch"].astype("Int64").where(frame["batch"] >= 0)
            self._events_frame = frame
        return self._events_frame

    @property
    def requests(self) -> pd.DataFrame:
        """One row per request: batch, events, bytes, HTTP status, code, msg, request id, ..."""
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
        """How many rows ended in each status (all statuses, zeros included)."""
        values, numbers = np.unique(self._status.astype(str), return_counts=True)
        found = dict(zip(values.tolist(), numbers.tolist(), strict=True))
        return {status: int(found.get(status, 0)) for status in STATUSES}

    @property
    def ok(self) -> bool:
        """True when every row was accepted (an empty input is ok)."""
        return bool((self._status == "accepted").all())

    @property
    def accepted(self) -> int:
        return int((self._status == "accepted").sum())

    def failed_mask(self, include_unknown: bool = True) -> np.ndarray[Any, Any]:
        wanted = ["rejected", "not_sent"] + (["unknown"] if include_unknown else [])
        return np.isin(self._status.astype(str), wanted)

    def failed(self, include_unknown: bool = True) -> Any:
        """The source rows that were not accepted (a DataFrame for frame input, else a list).

        ``unknown`` rows are included by default so nothing is hidden; pass
        ``include_unknown=False`` for the rows that are safe to resend.
        """
        mask = self.failed_mask(include_unknown)
        if self._source is None:
            return self.events[mask]
        if hasattr(self._source, "iloc"):
            return self._source.iloc[np.flatnonzero(mask)]
        return [self._source[i] for i in np.flatnonzero(mask).tolist()]

    def retry(self, *, include_unknown: bool = False) -> SendResult:
        """Send again the rows that were not sent (and, if asked, the unknown ones).

        Rows ``rejected`` by validation are not resent (they would fail the
        same way). The new result covers every row of this one: rows already
        accepted keep their status.
        """
        if self._resend is None:
            raise RuntimeError("this result cannot be retried (it was not made by cms_magic.send)")
        return self._resend(self, include_unknown)

    def summary(self) -> str:
        """One line: accepted out of total, time, and what else happened, with where to look."""
        counts = self.counts()
        total = len(self)
        head = f"{counts['accepted']:,}/{total:,} events accepted in {self.elapsed:.1f} s"
        if counts["dry_run"]:
            head = f"dry run: {counts['dry_run']:,}/{total:,} events would be sent"
        others = [
            f"{counts[s]:,} {s.replace('_', ' ')}"
            for s in ("rejected", "not_sent", "unknown")
            if counts[s]
        ]
        line = head + ("; " + ", ".join(others) if others else "")
        if self.cancelled:
            line += "; stopped early"
        if self.error:
            line += f"; stopped: {self.error}"
        if others:
            line += " -> result.failed()"
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
        rows = ""
        failed = self.events[self.failed_mask()].head(5)
        if len(failed):
            rows = failed[["status", "reason"]].to_html(max_rows=5, notebook=False, border=0)
        return (
            '<div class="cms-magic-result">'
            f"<div>{html.escape(self.summary())}</div>"
            f"<table><tr>{cells}</tr></table>{rows}</div>"
        )
