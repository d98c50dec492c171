"""What a journal says: the per-row :class:`JournalState` a resumed run starts from, and
:func:`read_journal`'s :class:`JournalReport` (a summary line and a DataFrame) for people.

Both come from one replay of the journal's log (:func:`cms_magic.sending.journal_store.replay`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from cms_magic.batching import Batch
from cms_magic.progress import plural
from cms_magic.results import ACCEPTED, NOT_SENT, REJECTED, STATUSES, UNKNOWN, Status
from cms_magic.sending import journal_store as store
from cms_magic.sending.journal_store import JournalError, JournalTarget

if TYPE_CHECKING:
    import sqlite3

    import pandas as pd

__all__ = ["JournalReport", "JournalState", "read_journal", "read_state"]


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


@dataclass(frozen=True, eq=False)
class JournalState:
    """What a journal says about every row.

    ``status[i]`` is row ``i``'s :mod:`cms_magic.results` code (``ACCEPTED``,
    ``REJECTED``, ``UNKNOWN`` or ``NOT_SENT``: never sent, or refused before being
    stored, so safe to send); ``in_flight[i]``: its request was written as going out and
    no answer was recorded (its status is ``UNKNOWN``). ``reasons``: rows not accepted
    that have one. ``frontier``: the last batch planned (-1: none). ``finished``: the
    last run closed the journal (False: it stopped without, e.g. killed).
    """

    path: str
    target: JournalTarget
    total: int
    status: np.ndarray[Any, np.dtype[np.uint8]]
    in_flight: np.ndarray[Any, np.dtype[np.bool_]]
    reasons: dict[int, str]
    created: datetime
    updated: datetime
    frontier: int
    runs: int
    finished: bool

    @property
    def counts(self) -> dict[str, int]:
        """Rows per state: accepted, rejected, unknown (with in_flight), in_flight, not_sent."""
        numbers = np.bincount(self.status, minlength=len(STATUSES))
        return {
            "accepted": int(numbers[ACCEPTED]),
            "rejected": int(numbers[REJECTED]),
            "unknown": int(numbers[UNKNOWN]),
            "in_flight": int(np.count_nonzero(self.in_flight)),
            "not_sent": int(numbers[NOT_SENT]),
        }

    def not_sent(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The positions of the rows a resumed run sends."""
        return np.flatnonzero(self.status == NOT_SENT).astype(np.int64)

    def groups(self) -> Iterator[tuple[Status, str | None, np.ndarray[Any, np.dtype[np.int64]]]]:
        """The rows already settled, as (status, reason, positions) groups: what a resumed
        run gives its result builder before sending (``builder.settle`` per group)."""
        accepted = np.flatnonzero(self.status == ACCEPTED).astype(np.int64)
        if len(accepted):
            yield "accepted", None, accepted
        by_reason: dict[tuple[int, str | None], list[int]] = {}
        for code in (REJECTED, UNKNOWN):
            for position in np.flatnonzero(self.status == code).tolist():
                by_reason.setdefault((code, self.reasons.get(position)), []).append(position)
        for (code, reason), positions in by_reason.items():
            yield STATUSES[code], reason, np.asarray(positions, dtype=np.int64)

    def to_send(self, batch: Batch) -> Batch | None:
        """``batch`` restricted to its rows still to send (None: none is)."""
        where = np.asarray(batch.positions, dtype=np.int64)
        keep = self.status[where] == NOT_SENT
        if bool(keep.all()):
            return batch
        if not bool(keep.any()):
            return None
        index = np.flatnonzero(keep).tolist()
        payloads = tuple(batch.payloads[i] for i in index)
        positions = tuple(batch.positions[i] for i in index)
        return Batch(batch.number, positions, payloads, b"[" + b",".join(payloads) + b"]")


def read_state(path: str, conn: sqlite3.Connection) -> tuple[JournalState, store.Replay]:
    """The journal's state (and the replay it came from) read through ``conn``."""
    meta = store.read_meta(path, conn)
    total = int(meta["total"])
    replay = store.replay(conn, total)
    rows = np.flatnonzero((replay.status != ACCEPTED) & (replay.last >= 0))
    (frontier,) = conn.execute("SELECT coalesce(max(batch), -1) FROM plan").fetchone()
    created = float(meta["created"])
    state = JournalState(
        path=path,
        target=JournalTarget(meta["target_url"], meta["target_key"], meta["target_shown"]),
        total=total,
        status=replay.status,
        in_flight=replay.in_flight,
        reasons=replay.reasons(rows),
        created=_when(created),
        updated=_when(replay.updated if replay.updated is not None else created),
        frontier=int(frontier),
        runs=replay.runs,
        finished=replay.finished,
    )
    return state, replay


@dataclass(frozen=True, eq=False)
class JournalReport:
    """:func:`read_journal`'s answer: the :class:`JournalState` and, per row, the batch
    and the request id of the record that gave the row its state."""

    state: JournalState
    batch: np.ndarray[Any, np.dtype[np.int32]]
    request_ids: np.ndarray[Any, np.dtype[np.object_]]

    def summary(self) -> str:
        """A few lines: the journal, its target, the rows per state, when, what next."""
        state = self.state
        counts = state.counts
        unknown = f"{counts['unknown']:,} unknown"
        if counts["in_flight"]:
            unknown += f" ({counts['in_flight']:,} in flight when it was last written)"
        stamp = "%Y-%m-%d %H:%M:%S UTC"
        if state.finished:
            ended = "the last run ended normally"
        elif state.runs:
            ended = "the last run stopped without ending (killed, or still running)"
        else:
            ended = "no run yet"
        lines = [
            f"journal {state.path}: {plural(state.total, 'row')} to {state.target}",
            f"  {counts['accepted']:,} accepted, {counts['rejected']:,} rejected, {unknown}, "
            f"{counts['not_sent']:,} not sent",
            f"  created {state.created.strftime(stamp)}, last written "
            f"{state.updated.strftime(stamp)}; {plural(state.runs, 'run')}, {ended}",
        ]
        if counts["not_sent"]:
            lines.append("  -> the same send with this journal sends the rows not sent")
        return "\n".join(lines)

    def frame(self) -> pd.DataFrame:
        """One row per input row: ``row`` (position), ``status`` (accepted, rejected,
        unknown, not_sent), ``in_flight``, ``reason``, ``batch`` (``<NA>``: not planned yet),
        ``request_id``."""
        import pandas as pd

        state = self.state
        reasons = np.full(state.total, None, dtype=object)
        if state.reasons:
            where = np.fromiter(state.reasons, dtype=np.int64, count=len(state.reasons))
            reasons[where] = list(state.reasons.values())
        batch = pd.array(np.where(self.batch >= 0, self.batch, 0).astype(np.int64), dtype="Int64")
        frame: pd.DataFrame = pd.DataFrame(
            {
                "row": np.arange(state.total, dtype=np.int64),
                "status": pd.Categorical.from_codes(
                    state.status.astype(np.int8), categories=pd.Index(list(STATUSES))
                ),
                "in_flight": state.in_flight.copy(),
                "reason": reasons,
                "batch": batch,
                "request_id": self.request_ids,
            }
        )
        frame.loc[self.batch < 0, "batch"] = pd.NA
        return frame

    def __str__(self) -> str:
        return self.summary()


def read_journal(path: str | os.PathLike[str]) -> JournalReport:
    """The state of the journal at ``path`` (while a send writes it, too), to read:
    ``.summary()`` and ``.frame()``. Raises :class:`JournalError` for no journal there."""
    import sqlite3

    where = os.path.abspath(os.fspath(path))
    if not os.path.isfile(where):
        raise JournalError(where, "no such journal file")
    try:
        conn = store.connect(where, create=False)
    except sqlite3.DatabaseError as exc:
        raise JournalError(where, f"is not a usable cms_magic journal ({exc})") from None
    try:
        state, replay = read_state(where, conn)
        planned = store.planned_batches(conn, state.total)
    except sqlite3.DatabaseError as exc:
        raise JournalError(where, f"is not a usable cms_magic journal ({exc})") from None
    finally:
        conn.close()
    named = replay.last >= 0
    batch = planned
    request_ids = np.full(state.total, None, dtype=object)
    if replay.records:
        batches = np.array([r.batch for r in replay.records], dtype=np.int32)
        ids = np.array([r.request_id for r in replay.records], dtype=object)
        batch = np.where(named, batches[np.maximum(replay.last, 0)], planned).astype(np.int32)
        request_ids[named] = ids[replay.last[named]]
    return JournalReport(state, batch, request_ids)
