"""What a send gives back: a :class:`SendResult`, or a :class:`SendJob` that will give one.

:class:`SendResult` is the finished, read-only view of a send (built by the
run's :class:`~cms_magic.sending.outcomes.ResultBuilder`):

- ``result.events``: one row per input row, indexed like the input, with
  ``status`` (``accepted``, ``rejected``, ``not_sent``, ``unknown`` or
  ``dry_run``), ``reason``, ``batch``, ``attempts``, ``request_id`` and
  ``possible_duplicate``;
- ``result.requests``: one row per request;
- ``result.ok``, ``result.outcome`` (``ok``, ``partial``, ``failed``, ``cancelled``,
  ``dry_run``), ``result.summary()`` (the one summary line every skin shows),
  ``result.failed()``, ``result.retry()``, ``result.raise_for_error()``.

**What the line points at.** ``summary(name)`` ends with what to do next, under the
name the reader reaches the result by: ``-> r.retry() resumes`` after a cancel or
an interruption that left rows not sent, ``-> r.failed()`` for rows to look at.
Each skin passes its own name (the magic its variable or
``cms_magic.last_result()``, the panel ``panel.result``, a job
``job.result()``), or its own words with ``next_step=`` (the command line's
``see failed.csv``), or ``name=None`` for no pointer. The reprs point at no
variable (they cannot know it): ``repr()`` is a short line of the counts
(``<SendResult 3 events in 0.1 s: 3 accepted>``) and the HTML repr the counts in
colour, the first rows not accepted and the methods to call, neither repeating
the summary line a progress bar has already turned into.

Status meanings: ``accepted``: the service answered HTTP 200 with code "200".
``rejected``: the row cannot be sent as it is (it failed validation, or the
service answered 400 for it); the reason says why. ``not_sent``: the row was
not delivered and may be sent again safely. ``unknown``: its request may or
may not have been delivered (for example a timeout after the request was
sent, or a 500/502/504 answer); resending may duplicate events, so it is not
done unless asked. ``possible_duplicate``: the row was accepted after an
earlier attempt that may have stored it too (an ambiguous answer retried with
``retry_ambiguous=True``, or an ``unknown`` row resent): the service may hold
it twice. ``summary()`` counts these rows.

**A result holds what it needs to resend**, not the run that made it: a
:class:`ResendSpec` with the input data, the mapping options and the
:class:`Resender` (the :class:`cms_magic.Client`, which is the target, the
credentials and the send options). :meth:`SendResult.retry` asks that resender
to send the chosen rows and merge them. This module imports nothing from
:mod:`cms_magic.sending` (the resender is typed by a protocol), so there is no
import cycle, and nothing of the finished run (its per-row buffers, its
connections) stays alive with the result.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import numpy as np

from cms_magic.errors import ConfigError, InternalError, SendError
from cms_magic.progress import Progress, ProgressCallback
from cms_magic.results_text import (
    ResultFacts,
    RowArrays,
    events_frame,
    result_html,
    result_repr,
    summary_line,
)

if TYPE_CHECKING:
    import pandas as pd

    from cms_magic.confirm import Confirmation, Lookup

__all__ = [
    "STATUSES",
    "JobControl",
    "Outcome",
    "RequestRecord",
    "ResendSpec",
    "Resender",
    "SendJob",
    "SendResult",
    "Settles",
    "Status",
]

Status = Literal["accepted", "rejected", "not_sent", "unknown", "dry_run"]
STATUSES: tuple[Status, ...] = ("accepted", "rejected", "not_sent", "unknown", "dry_run")
#: A whole send in one word (:attr:`SendResult.outcome`).
Outcome = Literal["ok", "partial", "failed", "cancelled", "dry_run"]
#: The byte that stands for each status in the per-row arrays.
CODES: dict[str, int] = {name: code for code, name in enumerate(STATUSES)}
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


@dataclass(frozen=True, slots=True)
class Settles:
    """What the rows of one request share, once per settle (a request's end, or one part
    of a bisected one) instead of once per row: its batch number, attempts, request (an
    index into the result's request ids, -1 for none) and reason (None for none). A row
    points at its settle (``group``, -1: no request ended it)."""

    batch: np.ndarray[Any, np.dtype[np.int32]]
    attempts: np.ndarray[Any, np.dtype[np.uint16]]
    request: np.ndarray[Any, np.dtype[np.int32]]
    reason: tuple[str | None, ...]

    @classmethod
    def none(cls) -> Settles:
        return cls(
            np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.uint16),
            np.zeros(0, dtype=np.int32),
            (),
        )

    def __len__(self) -> int:
        return len(self.batch)

    @property
    def nbytes(self) -> int:
        return int(self.batch.nbytes + self.attempts.nbytes + self.request.nbytes)

    def then(self, other: Settles, *, batch_offset: int, request_offset: int) -> Settles:
        """These settles followed by ``other``'s, renumbered to follow these."""
        return Settles(
            np.concatenate(
                [self.batch, np.where(other.batch >= 0, other.batch + batch_offset, -1)]
            ).astype(np.int32),
            np.concatenate([self.attempts, other.attempts]).astype(np.uint16),
            np.concatenate(
                [self.request, np.where(other.request >= 0, other.request + request_offset, -1)]
            ).astype(np.int32),
            self.reason + other.reason,
        )


def _settles_of_rows(
    batch: np.ndarray[Any, Any], attempts: np.ndarray[Any, Any], request: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], Settles]:
    """Per-row batch, attempts and request index as (group per row, settles)."""
    n = len(batch)
    if n == 0:
        return np.zeros(0, dtype=np.int32), Settles.none()
    b0, a0, r0 = int(batch[0]), int(attempts[0]), int(request[0])
    if (batch == b0).all() and (attempts == a0).all() and (request == r0).all():
        if (b0, a0, r0) == (-1, 0, -1):
            return np.full(n, -1, dtype=np.int32), Settles.none()
        one = Settles(
            np.asarray([b0], dtype=np.int32),
            np.asarray([a0], dtype=np.uint16),
            np.asarray([r0], dtype=np.int32),
            (None,),
        )
        return np.zeros(n, dtype=np.int32), one
    keys = np.stack([np.asarray(batch), np.asarray(attempts), np.asarray(request)], axis=1)
    unique, inverse = np.unique(keys.astype(np.int64), axis=0, return_inverse=True)
    settles = Settles(
        unique[:, 0].astype(np.int32),
        unique[:, 1].astype(np.uint16),
        unique[:, 2].astype(np.int32),
        (None,) * len(unique),
    )
    return inverse.reshape(-1).astype(np.int32), settles


class Resender(Protocol):
    """What can send rows of a result again (a :class:`cms_magic.Client` is one)."""

    def resend(
        self,
        previous: SendResult,
        positions: np.ndarray[Any, Any],
        *,
        background: bool,
        progress: ProgressCallback | None,
    ) -> SendResult | SendJob:
        """Send the rows of ``previous.request`` at ``positions``; merge into ``previous``."""
        ...


@dataclass(frozen=True, slots=True)
class ResendSpec:
    """What a result needs to resend some of its rows: the input, the options, the sender."""

    #: The input as given: a DataFrame, or the list of events / dicts.
    data: Any
    #: The mapping options given (``name_col``...), without the unset ones.
    mapping: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    #: Sends again with the same target, credentials and send options.
    sender: Resender | None = None

    def subset(self, positions: np.ndarray[Any, Any]) -> Any:
        """The input rows at ``positions``: a DataFrame for frame input, else a list."""
        if hasattr(self.data, "iloc"):
            return self.data.iloc[positions]
        return [self.data[i] for i in positions.tolist()]


class JobControl(Protocol):
    """The running send's side of a :class:`SendJob`."""

    @property
    def progress(self) -> Progress | None: ...

    def cancel(self) -> None: ...

    def abort(self) -> None: ...


class SendJob:
    """A send running in the background: ``.status``, ``.progress``, ``.wait()``,
    ``.result()``, ``.cancel()``.

    (It lives here, next to :class:`SendResult`, because each names the other:
    ``SendResult.retry(background=True)`` gives a job, a job gives a result.)
    """

    def __init__(self, future: concurrent.futures.Future[SendResult], control: JobControl) -> None:
        self._future = future
        self.control = control

    @property
    def status(self) -> Literal["running", "done", "cancelled", "failed"]:
        if not self._future.done():
            return "running"
        if self._future.cancelled():
            return "cancelled"
        if self._future.exception() is not None:
            return "failed"
        return "cancelled" if self._future.result().cancelled else "done"

    @property
    def progress(self) -> Progress | None:
        """The latest progress snapshot (None before the first request)."""
        return self.control.progress

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the send ends or ``timeout`` passes; True if it ended."""
        try:
            self._future.exception(timeout=timeout)
        except concurrent.futures.TimeoutError:
            return False
        return True

    def result(self, timeout: float | None = None) -> SendResult:
        """The result, waiting for it if needed."""
        return self._future.result(timeout=timeout)

    def cancel(self) -> None:
        """Stop at the next batch boundary. Requests in flight get a short grace
        (``cms_magic.sending.jobs.CANCEL_GRACE``, 1.5 s) to finish, then are abandoned as
        ``unknown``. The result keeps what was done; the rest is ``not_sent``
        (``result().retry()`` resumes)."""
        self.control.cancel()

    def abort(self) -> None:
        """Stop now: also cancel the requests in flight (their rows become ``unknown``,
        since they may or may not have arrived). A second Ctrl-C does this."""
        self.control.abort()

    def done(self) -> bool:
        """True when the send has ended (done, cancelled or failed)."""
        return self._future.done()

    def add_done_callback(self, callback: Callable[[SendJob], None]) -> None:
        """Call ``callback(job)`` when the send ends (at once if it already has).

        It runs in the thread that finishes the send: update widgets through
        traits, not by printing.
        """
        self._future.add_done_callback(lambda _: callback(self))

    def __repr__(self) -> str:
        """``<SendJob running: 1,200/5,000 events, 12 requests, 400 events/s, ETA 9.5s>``;
        once ended, the result's summary and where it is (``.result()``)."""
        future = self._future
        if not future.done():
            progress = self.progress
            return f"<SendJob running: {progress.line() if progress else 'starting'}>"
        if future.cancelled():
            return "<SendJob cancelled before it started>"
        failure = future.exception()
        if failure is not None:
            return f"<SendJob failed: {type(failure).__name__}: {failure}>"
        return f"<SendJob {self.status}: {future.result().summary(None)} (.result())>"


class SendResult:
    """The outcome of a send, row by row and request by request."""

    def __init__(
        self,
        *,
        status: np.ndarray[Any, Any],
        reasons: Mapping[int, str | None],
        request_ids: list[str],
        index: pd.Index | Sequence[Hashable] | None,
        request_records: list[RequestRecord],
        elapsed: float,
        group: np.ndarray[Any, Any] | None = None,
        settles: Settles | None = None,
        batch: np.ndarray[Any, Any] | None = None,
        attempts: np.ndarray[Any, Any] | None = None,
        request_index: np.ndarray[Any, Any] | None = None,
        error: SendError | None = None,
        request: ResendSpec | None = None,
        endpoint: str = "",
        cancelled: bool = False,
        possible_duplicate: np.ndarray[Any, Any] | None = None,
    ) -> None:
        """Rows are given either compactly, ``group`` (each row's settle, -1 for none) with
        ``settles`` (see :class:`Settles`), as the run's builder does, or per row as
        ``batch`` / ``attempts`` / ``request_index`` arrays (folded into settles here).
        ``reasons``: reasons of single rows, sparse; they win over their settle's (None:
        this row has no reason, whatever its settle's)."""
        n = len(status)
        self._status: np.ndarray[Any, Any] = np.asarray(status, dtype=np.uint8)
        self._duplicate: np.ndarray[Any, Any] = (
            np.zeros(n, dtype=bool) if possible_duplicate is None else possible_duplicate
        )
        if group is None:
            group, settles = _settles_of_rows(
                np.full(n, -1, dtype=np.int32) if batch is None else batch,
                np.zeros(n, dtype=np.uint16) if attempts is None else attempts,
                np.full(n, -1, dtype=np.int32) if request_index is None else request_index,
            )
        self._group: np.ndarray[Any, Any] = np.asarray(group, dtype=np.int32)
        self._settles: Settles = Settles.none() if settles is None else settles
        self._reasons: Mapping[int, str | None] = reasons
        self._request_ids = request_ids
        self._index = index
        self._counts: dict[str, int] | None = None
        self.request_records = request_records
        #: Seconds the send took (all attempts of a retried result together).
        self.elapsed = elapsed
        #: Why the whole send stopped early, or None: an :class:`~cms_magic.errors.AuthError`
        #: when the service refused the credentials (its hint says what to do), a
        #: :class:`~cms_magic.errors.SendError` when the input could not be read to the end.
        #: :meth:`raise_for_error` raises it.
        self.error = error
        #: True when the send was cancelled or interrupted before it finished.
        self.cancelled = cancelled
        #: The URL the events were sent to.
        self.endpoint = endpoint
        #: What this result needs to resend its rows (None if it was not made by a send).
        self.request = request
        self._events_frame: pd.DataFrame | None = None
        #: For a dry run: the first request as it would be sent (Authorization masked).
        self.preview: dict[str, Any] | None = None
        #: Warnings raised during the send (e.g. this machine's clock is off).
        self.warnings: list[str] = []
        #: What :meth:`confirm` found, in a few words (None: not confirmed).
        self.confirmed: str | None = None
        #: Copies the service holds per row, after :meth:`confirm` (-1: not looked up).
        self._copies: np.ndarray[Any, Any] | None = None

    # ----------------------------------------------------------------- frames

    @property
    def events(self) -> pd.DataFrame:
        """One row per input row, indexed like the input.

        Columns: status, reason, batch, attempts, request_id, possible_duplicate
        (accepted after an earlier attempt that may have stored the row too); after
        :meth:`confirm`, copies (how many the service holds; NA where not looked up).
        Compact dtypes: status, reason and request_id are categoricals (NaN where a row
        has none), batch and copies nullable ``Int32``, attempts ``int16``. Built on first
        use and kept; :meth:`failed_events` gives the rows not accepted without it.
        """
        if self._events_frame is None:
            self._events_frame = events_frame(self._rows())
        return self._events_frame

    def _rows(self) -> RowArrays:
        return RowArrays(
            status=self._status,
            duplicate=self._duplicate,
            group=self._group,
            settles=self._settles,
            reasons=self._reasons,
            request_ids=self._request_ids,
            index=self._index,
            copies=self._copies,
            not_sent_reason=NOT_SENT_REASON,
        )

    def failed_events(self, include_unknown: bool = True) -> pd.DataFrame:
        """The rows of :attr:`events` not accepted (``unknown`` ones unless excluded), built
        for those rows only: cheap for a large send however many rows were accepted (and
        its categoricals hold only these rows' reasons and request ids)."""
        return events_frame(self._rows(), np.flatnonzero(self.failed_mask(include_unknown)))

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this result keeps: per row (status, possible duplicate, which
        request ended it, copies after :meth:`confirm`) and per request (:class:`Settles`).
        Issue 16: at most 16 bytes a row after a send; not :attr:`events` once built."""
        arrays = [self._status, self._duplicate, self._group]
        if self._copies is not None:
            arrays.append(self._copies)
        return sum(a.nbytes for a in arrays) + self._settles.nbytes

    @property
    def requests(self) -> pd.DataFrame:
        """One row per request: batch, events, bytes, http_status, code, msg, request_id,
        attempts, latency_ms (of the last attempt, to 0.1 ms; :attr:`request_records` has
        it unrounded), sent_at, outcome."""
        import pandas as pd

        columns = list(RequestRecord.__dataclass_fields__)
        frame = pd.DataFrame([asdict(r) for r in self.request_records], columns=columns)
        frame["status"] = frame["status"].astype("Int64")
        # Shown to 0.1 ms (finer is noise for a network round trip); request_records keeps
        # the measured value.
        frame["latency_ms"] = frame["latency_ms"].astype(float).round(1)
        frame["sent_at"] = pd.to_datetime(frame["sent_at"], unit="s", utc=True)
        renamed: pd.DataFrame = frame.rename(columns={"status": "http_status"})
        return renamed

    # ----------------------------------------------------------------- verdicts

    def __len__(self) -> int:
        return len(self._status)

    def counts(self) -> dict[str, int]:
        """How many rows ended in each status (every status, zeros included)."""
        if self._counts is None:  # the rows never change: counted once, a byte at a time
            self._counts = {
                name: int(np.count_nonzero(self._status == code))
                for code, name in enumerate(STATUSES)
            }
        return dict(self._counts)

    @property
    def ok(self) -> bool:
        """True when every row was accepted (an empty input is ok)."""
        return self.counts()["accepted"] == len(self) and self.error is None

    @property
    def accepted(self) -> int:
        """How many rows were accepted."""
        return self.counts()["accepted"]

    @property
    def possibly_duplicated(self) -> int:
        """How many accepted rows the service may hold twice (``possible_duplicate``)."""
        return int(self._duplicate.sum())

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
        if self.request is None:
            return self.failed_events(include_unknown)
        return self.request.subset(positions)

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
        progress: ProgressCallback | None = ...,
    ) -> SendResult: ...

    @overload
    def retry(
        self,
        *,
        include_unknown: bool = ...,
        include_rejected: bool = ...,
        background: Literal[True],
        progress: ProgressCallback | None = ...,
    ) -> SendJob: ...

    def retry(
        self,
        *,
        include_unknown: bool = False,
        include_rejected: bool = False,
        background: bool = False,
        progress: ProgressCallback | None = None,
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
        sender = self.request.sender if self.request is not None else None
        if sender is None:
            raise ConfigError(
                "this result cannot be retried: it was not made by cms_magic.send",
                option="retry",
            )
        positions = np.flatnonzero(
            self.retry_mask(include_unknown=include_unknown, include_rejected=include_rejected)
        )
        return sender.resend(self, positions, background=background, progress=progress)

    # ----------------------------------------------------------------- confirming

    def batch_numbers(self) -> np.ndarray[Any, Any]:
        """Each row's request (batch) number, -1 for rows no request carried (read-only)."""
        numbers: np.ndarray[Any, Any] = np.append(self._settles.batch, -1)[self._group]
        numbers.flags.writeable = False
        return numbers

    def confirm_positions(self) -> np.ndarray[Any, Any]:
        """The rows :meth:`confirm` looks up: ``unknown`` ones and possible duplicates."""
        positions: np.ndarray[Any, Any] = np.flatnonzero(
            (self._status == UNKNOWN) | self._duplicate
        )
        return positions

    def accepted_positions(self, exclude: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Rows accepted, other than ``exclude``."""
        mask: np.ndarray[Any, Any] = self._status == ACCEPTED
        mask[np.asarray(exclude, dtype=np.int64)] = False
        positions: np.ndarray[Any, Any] = np.flatnonzero(mask)
        return positions

    def confirm(
        self,
        *,
        wait: float = 60.0,
        poll: float = 2.0,
        lag: float = 30.0,
        lookup: Lookup | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> SendResult:
        """Read back the rows that are ``unknown`` or possible duplicates, and say for each
        what the service holds; a new result (this one is unchanged).

        Found: ``accepted`` (confirmed), with the copies held (``copies`` column of
        :attr:`events`). Not found by a read-back made ``lag`` seconds or more after its
        request was last sent (the service's index may take that long to show an event):
        ``not_sent`` ("not stored"), so :meth:`retry` then resends exactly those. Polls
        every ``poll`` seconds for at most ``wait`` seconds; rows still inside their lag
        then, or whose read-back failed, stay ``unknown`` with why. Needs read permission
        (``cms:DescribeCustomEventAttribute``); ``lookup`` replaces the read-back (tests,
        another store), ``clock`` (epoch seconds) and ``sleep`` the waiting. See
        :mod:`cms_magic.confirm`.
        """
        import time

        from cms_magic.confirm import confirm

        if lookup is None:
            sender = self.request.sender if self.request is not None else None
            make = getattr(sender, "lookup", None)
            if make is None:
                raise ConfigError(
                    "this result cannot be confirmed: it was not made by cms_magic.send",
                    option="confirm",
                )
            lookup = make()
        found = confirm(
            self,
            lookup,
            wait=wait,
            poll=poll,
            lag=lag,
            clock=time.time if clock is None else clock,
            sleep=time.sleep if sleep is None else sleep,
        )
        return self._confirmed(found)

    def _confirmed(self, found: Confirmation) -> SendResult:
        status = self._status.copy()
        duplicate = self._duplicate.copy()
        reasons = dict(self._reasons)
        copies = (
            np.full(len(status), -1, dtype=np.int32)
            if self._copies is None
            else self._copies.copy()
        )
        tally = {"confirmed": 0, "not_stored": 0, "unconfirmed": 0}
        for position, verdict, held in zip(
            found.positions.tolist(), found.verdicts, found.copies.tolist(), strict=True
        ):
            tally[verdict] += 1
            copies[position] = held
            if verdict == "confirmed":
                status[position] = ACCEPTED
                duplicate[position] = held > 1
                reasons[position] = None  # not its request's reason any more
            elif verdict == "not_stored":
                status[position] = NOT_SENT
                duplicate[position] = False
                reasons[position] = (
                    "not stored (confirmed by read-back after the index lag): safe to resend"
                )
            else:
                reasons[position] = f"unknown: unconfirmed ({found.note or 'read-back gave up'})"
        result = SendResult(
            status=status,
            group=self._group,
            settles=self._settles,
            reasons=reasons,
            request_ids=self._request_ids,
            index=self._index,
            request_records=self.request_records,
            elapsed=self.elapsed,
            error=self.error,
            request=self.request,
            endpoint=self.endpoint,
            cancelled=self.cancelled,
            possible_duplicate=duplicate,
        )
        result._copies = copies
        result.warnings = list(self.warnings)
        words = [f"{tally['confirmed']:,} confirmed", f"{tally['not_stored']:,} not stored"]
        if tally["unconfirmed"]:
            words.append(f"{tally['unconfirmed']:,} unconfirmed")
        result.confirmed = "read back: " + ", ".join(words)
        return result

    def raise_for_error(self) -> SendResult:
        """Raise the error that stopped the whole send, if one did; else return this result.

        That is an :class:`~cms_magic.errors.AuthError` when the service refused the
        credentials, or a :class:`~cms_magic.errors.SendError` when the input could not
        be read to the end; its ``.result`` is this result. Rows that were merely not
        accepted are not an error here: check :attr:`ok` or :meth:`counts` for those.
        """
        if self.error is not None:
            raise self.error
        return self

    def merged(self, again: SendResult, positions: np.ndarray[Any, Any]) -> SendResult:
        """This result with the rows at ``positions`` replaced by ``again``'s rows (in order).

        ``again`` is the result of sending exactly those rows; its batch numbers
        and requests are renumbered to follow this result's.
        """
        if len(again) != len(positions):
            raise InternalError(
                f"{len(again)} new outcomes for {len(positions)} rows: one per row",
                option="positions",
                value=len(positions),
            )
        batches = self._settles.batch
        offset = int(batches.max()) + 1 if len(batches) and batches.max() >= 0 else 0
        status = self._status.copy()
        duplicate = self._duplicate.copy()
        # An unknown row (it may have been stored) accepted by the resend may now be there twice.
        duplicate[positions] = again._duplicate | (
            (self._status[positions] == UNKNOWN) & (again._status == ACCEPTED)
        )
        status[positions] = again._status
        group = self._group.copy()
        group[positions] = np.where(again._group >= 0, again._group + len(self._settles), -1)
        settles = self._settles.then(
            again._settles, batch_offset=offset, request_offset=len(self._request_ids)
        )
        reasons = dict(self._reasons)
        for p in positions.tolist():
            reasons.pop(p, None)
        mapped = positions.tolist()
        reasons.update({mapped[i]: r for i, r in again._reasons.items()})
        for p in positions[duplicate[positions] & ~again._duplicate].tolist():
            reasons[p] = (
                "accepted, possible duplicate: resent after an earlier send left it unknown "
                "(it may have been stored then)"
            )
        records = self.request_records + [
            RequestRecord(**{**asdict(r), "batch": r.batch + offset}) for r in again.request_records
        ]
        return SendResult(
            status=status,
            group=group,
            settles=settles,
            reasons=reasons,
            request_ids=self._request_ids + again._request_ids,
            index=self._index,
            request_records=records,
            elapsed=self.elapsed + again.elapsed,
            error=again.error,
            request=self.request,
            endpoint=again.endpoint or self.endpoint,
            cancelled=again.cancelled,
            possible_duplicate=duplicate,
        )

    @property
    def outcome(self) -> Outcome:
        """The send in one word, for a skin's colour or icon: ``ok`` (every row accepted),
        ``dry_run``, ``cancelled`` (cancelled or interrupted before the end), ``failed``
        (nothing accepted, or the whole send stopped on an error), else ``partial``."""
        counts = self.counts()
        if self.cancelled:
            return "cancelled"
        if self.error is not None:
            return "failed"
        if counts["dry_run"] and not (counts["rejected"] or counts["unknown"]):
            return "dry_run"
        if self.ok:
            return "ok"
        return "failed" if counts["accepted"] == 0 and not counts["dry_run"] else "partial"

    @property
    def resumable(self) -> bool:
        """True when :meth:`retry` would send something that may succeed now: rows not sent,
        a result made by a send, and no error (refused credentials) that would stop it again."""
        return (
            self.counts()["not_sent"] > 0
            and self.error is None
            and self.request is not None
            and self.request.sender is not None
        )

    def _facts(self) -> ResultFacts:
        return ResultFacts(
            counts=self.counts(),
            total=len(self),
            elapsed=self.elapsed,
            possibly_duplicated=self.possibly_duplicated,
            cancelled=self.cancelled,
            error=self.error,
            resumable=self.resumable,
            endpoint=self.endpoint,
            confirmed=self.confirmed,
            confirmable=self.request is not None and self.request.sender is not None,
        )

    def summary(
        self,
        name: str | None = "result",
        *,
        next_step: str | None = None,
        interrupted: bool = False,
    ) -> str:
        """One line: accepted out of total, the time, what else happened, what to do next.

        ``name`` is how the reader reaches this result (``"result"``, ``"r"``,
        ``"panel.result"``, ``"job.result()"``): the line ends by pointing at it,
        ``-> r.retry() resumes`` when rows were not sent and a retry can send them
        (after a cancel or an interruption), ``-> r.confirm()`` when rows are ``unknown``,
        ``-> r.failed()`` for rows to look at. ``name=None`` points at nothing.
        ``next_step`` replaces the pointer by the skin's own words (the command line's
        ``see failed.csv``); it is shown only when some rows were not accepted.
        ``interrupted`` (the skin saw a Ctrl-C) words a cancelled send as interrupted.
        """
        return summary_line(self._facts(), name, next_step=next_step, interrupted=interrupted)

    def __repr__(self) -> str:
        """``<SendResult 1,000 events in 1.2 s: 997 accepted, 3 rejected>``: short, complete,
        and not the summary line a progress bar already showed."""
        return result_repr(self._facts())

    def _repr_html_(self) -> str:
        """The counts in colour, where the events went, and the first rows not accepted
        with their reasons; not the summary line (a progress bar has shown it)."""
        positions = np.flatnonzero(self.failed_mask())[:5]
        failed = (
            events_frame(self._rows(), positions)[["status", "reason"]] if len(positions) else None
        )
        methods = ".events, .requests" + (", .failed()" if len(positions) else "")
        if self.counts()["unknown"] and self.request is not None and self.request.sender:
            methods += ", .confirm()"
        if self.resumable:
            methods += ", .retry()"
        return result_html(self._facts(), failed, methods)
