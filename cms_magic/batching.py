"""Batching: one pure function from encoded events to request bodies.

A request holds at most :data:`~cms_magic.protocol.MAX_EVENTS_PER_REQUEST`
events and :data:`~cms_magic.protocol.MAX_BODY_BYTES` bytes of body. Sizes are
measured on the encoded JSON bytes, array punctuation included (``[``, ``]``
and the commas). An event too large to fit a request on its own is rejected
with a reason, never truncated. Events keep their order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cms_magic.errors import ConfigError
from cms_magic.events.convert import Event
from cms_magic.protocol import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST

__all__ = ["Batch", "BatchPlan", "plan_batches"]


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
