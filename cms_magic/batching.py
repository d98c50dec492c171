"""Batching: one pure function from encoded events to request bodies, and the count of a
whole frame's requests.

A request holds at most :data:`~cms_magic.protocol.MAX_EVENTS_PER_REQUEST`
events and :data:`~cms_magic.protocol.MAX_BODY_BYTES` bytes of body. Sizes are
measured on the encoded JSON bytes, array punctuation included (``[``, ``]``
and the commas). An event too large to fit a request on its own is rejected
with a reason, never truncated. Events keep their order.

:func:`count_frame` converts and packs a frame the way a send does (the same chunks,
the same plan per chunk), keeping only the counts, so what it says is what a send of
that frame will do: rows, events, requests and the rows rejected by validation, and
how long the requests take at a quota (:meth:`FrameCount.seconds_at`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from cms_magic.errors import ConfigError
from cms_magic.events.convert import Event, EventMapping, iter_conversions
from cms_magic.protocol import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST
from cms_magic.settings import DEFAULT_CHUNK_ROWS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Batch", "BatchPlan", "FrameCount", "count_frame", "plan_batches"]

#: Reasons :func:`count_frame` keeps (those of the first rejected rows).
KEPT_REASONS: Final = 20


@dataclass(frozen=True, slots=True)
class Batch:
    """One request's worth of events: their source positions, payloads and the exact body."""

    number: int
    positions: tuple[int, ...]
    payloads: tuple[bytes, ...]
    body: bytes

    def __len__(self) -> int:
        return len(self.positions)


@dataclass
class BatchPlan:
    """The batches, plus the events that fit in no request (position -> reason)."""

    batches: list[Batch]
    rejected: dict[int, str] = field(default_factory=dict)


def plan_batches(
    events: Sequence[bytes] | Sequence[Event],
    max_events: int = MAX_EVENTS_PER_REQUEST,
    max_bytes: int = MAX_BODY_BYTES,
    *,
    positions: Sequence[int] | np.ndarray[Any, Any] | None = None,
    first_number: int = 0,
) -> BatchPlan:
    """Pack events, in order, into as few requests as the limits allow.

    ``events`` are encoded payloads (compact JSON bytes) or :class:`Event`
    objects. ``positions`` are the events' source positions (default
    ``0..n-1``); batches are numbered from ``first_number``.
    """
    if not 1 <= max_events <= MAX_EVENTS_PER_REQUEST:
        raise ConfigError(
            f"must be 1..{MAX_EVENTS_PER_REQUEST} events per request",
            option="max_events",
            value=max_events,
        )
    if not 3 <= max_bytes <= MAX_BODY_BYTES:
        raise ConfigError(
            f"must be 3..{MAX_BODY_BYTES} bytes per request body",
            option="max_bytes",
            value=max_bytes,
        )
    encoded = bool(events) and not isinstance(events[0], Event)  # one kind per call
    payloads: Sequence[bytes] = (
        events if encoded or not events else [e.to_json() for e in events]  # type: ignore[assignment,union-attr]
    )
    where: list[int]
    if positions is None:
        where = list(range(len(payloads)))
    elif isinstance(positions, np.ndarray):
        where = positions.tolist()
    else:
        where = [int(p) for p in positions]
    if len(where) != len(payloads):
        raise ConfigError(
            f"gives {len(where)} positions for {len(payloads)} events: one per event",
            option="positions",
            value=len(where),
        )

    sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=len(payloads))
    oversize = sizes + 2 > max_bytes
    rejected: dict[int, str] = {
        where[i]: (
            f"the event is {int(sizes[i]) + 2:,} bytes as a request body; a request holds at "
            f"most {max_bytes:,} bytes, so it cannot be sent (shorten 'content')"
        )
        for i in np.flatnonzero(oversize).tolist()
    }
    if rejected:
        keep = np.flatnonzero(~oversize).tolist()
        payloads = [payloads[i] for i in keep]
        where = [where[i] for i in keep]
        sizes = sizes[keep]
    # Greedy packing in order. Byte limits rarely bind for typical events, so whole
    # blocks of ``max_events`` are checked at once with prefix sums; only a block
    # that does not fit is packed event by event.
    ends = np.concatenate(([0], np.cumsum(sizes + 1)))  # each event plus its comma
    batches: list[Batch] = []
    number = first_number
    n = len(payloads)
    start = 0
    while start < n:
        stop = min(start + max_events, n)
        if int(ends[stop] - ends[start]) + 1 > max_bytes:  # 2 brackets - 1 comma
            stop = start + 1
            while stop < n and stop - start < max_events:
                if int(ends[stop + 1] - ends[start]) + 1 > max_bytes:
                    break
                stop += 1
        parts = tuple(payloads[start:stop])
        batches.append(
            Batch(number, tuple(where[start:stop]), parts, b"[" + b",".join(parts) + b"]")
        )
        number += 1
        start = stop
    return BatchPlan(batches, rejected)


@dataclass(frozen=True, slots=True)
class FrameCount:
    """What a send of a whole frame does: ``rows`` in, ``events`` in ``requests``, and
    ``rejected`` rows (by validation, or too large for a request); ``reasons`` holds the
    first of them (row position -> reason, at most :data:`KEPT_REASONS`)."""

    rows: int
    events: int
    requests: int
    rejected: int
    reasons: dict[int, str]

    def seconds_at(self, qps: float) -> float | None:
        """Seconds the requests take at ``qps`` requests per second (None: no limit, 0)."""
        return self.requests / qps if qps > 0 else None


def count_frame(
    df: pd.DataFrame,
    mapping: Mapping[str, Any],
    *,
    max_events: int = MAX_EVENTS_PER_REQUEST,
    max_bytes: int = MAX_BODY_BYTES,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    stop: Callable[[], bool] | None = None,
) -> FrameCount | None:
    """Convert and pack ``df`` with the mapping options as a send does, keeping only counts.

    Memory stays flat (a chunk at a time). ``stop`` is asked before each chunk: when it
    says True the count ends and None is returned (e.g. the mapping changed meanwhile).
    Raises :class:`~cms_magic.errors.MappingError` for a mapping that cannot work.
    """
    resolved = EventMapping(**mapping).resolved(list(df.columns))
    events = requests = rejected = 0
    reasons: dict[int, str] = {}
    chunks = iter_conversions(df, resolved, chunk_rows=chunk_rows)
    while not (stop is not None and stop()):
        chunk = next(chunks, None)
        if chunk is None:
            return FrameCount(len(df), events, requests, rejected, reasons)
        plan = plan_batches(chunk.payloads, max_events, max_bytes, positions=chunk.positions)
        requests += len(plan.batches)
        events += len(chunk) - len(plan.rejected)
        bad = {**chunk.rejected, **plan.rejected}
        rejected += len(bad)
        if len(reasons) < KEPT_REASONS:
            for position in sorted(bad)[: KEPT_REASONS - len(reasons)]:
                reasons[position] = bad[position]
    return None
