"""What the emulator's stores are: the interfaces, the query and what it returns.

:class:`Store` is what the upload handler uses; :class:`EventStore` adds the read
actions' questions (:class:`EventQuery` in, :class:`StoredEvent` out). The SQLite
implementation is :mod:`cms_magic.emulator.store`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Protocol, runtime_checkable

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "Event",
    "EventQuery",
    "EventStore",
    "RequestRecord",
    "Store",
    "StoredEvent",
    "clamp",
    "event_time_ms",
]

#: SQLite's integers (64-bit signed).
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1

#: One accepted event as parsed from the body (``name``, ``content``, maybe ``groupId``, ``time``).
Event = dict[str, Any]
#: One request's log record (see :meth:`cms_magic.emulator.Emulator.requests`).
RequestRecord = dict[str, Any]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_TIME_PATTERN: Final = re.compile(r"^\d{8}T\d{6}\.\d{3}[+-]\d{4}$", re.ASCII)


class Store(Protocol):
    """What a place for events and request records must do; every method is thread-safe."""

    def add(self, events: Sequence[Mapping[str, Any]], *, request: Mapping[str, Any]) -> None:
        """Log one request and keep the events it delivered (none if refused), together."""
        ...

    def events(self, offset: int = 0, limit: int | None = None) -> list[Event]:
        """The accepted events in the order received, from ``offset``, at most ``limit``."""
        ...

    def requests(self) -> list[RequestRecord]:
        """Every request's record, in the order handled."""
        ...

    def count(self) -> int:
        """How many events are kept."""
        ...

    def clear(self) -> None:
        """Forget every event and every request record."""
        ...


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which stored events a read action asks for; ``None`` means any.

    ``since_ms``/``until_ms`` bound the event's time (epoch milliseconds, both
    inclusive). ``keywords`` are alternatives, each a tuple of keywords that must all
    be substrings of the content (case-sensitive): ``(("a", "b"), ("c",))`` is
    "a and b, or c"; ``()`` is no condition.
    """

    name: str | None = None
    event_id: str | None = None
    group_id: int | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    keywords: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One stored event as the read actions see it."""

    id: str
    name: str
    content: str
    #: 0 when the event was sent without one (the service's "no application group").
    group_id: int
    #: The event's time (epoch ms): its ``time`` if it had one, else ``stored_ms``.
    time_ms: int
    stored_ms: int


@runtime_checkable
class EventStore(Store, Protocol):
    """A :class:`Store` that answers the read actions' questions."""

    delay: float

    def add(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        request: Mapping[str, Any],
        stored_at: float | None = None,
    ) -> None:
        """As :meth:`Store.add`; ``stored_at`` (epoch seconds) defaults to the store's clock."""
        ...

    def query(
        self,
        query: EventQuery,
        *,
        offset: int = 0,
        limit: int | None = None,
        now: float | None = None,
    ) -> list[StoredEvent]:
        """The visible events matching ``query``, newest first (time, then id)."""
        ...

    def count_matching(self, query: EventQuery, *, now: float | None = None) -> int:
        """How many visible events match ``query``."""
        ...

    def count_by_name(
        self, query: EventQuery, *, now: float | None = None
    ) -> list[tuple[str, int, int]]:
        """``(name, how many, latest time_ms)`` of the visible matches, by name."""
        ...

    def histogram(
        self, query: EventQuery, *, width_ms: int, now: float | None = None
    ) -> list[tuple[int, int, int]]:
        """``(start_ms, end_ms, count)`` buckets over ``[since_ms, until_ms]``."""
        ...


def event_time_ms(value: object) -> int | None:
    """An event's ``time`` (``yyyyMMddTHHmmss.SSS±zzzz`` or epoch ms) as epoch ms, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return clamp(value)
    if not isinstance(value, str):
        return None
    if value.isascii() and value.isdigit():
        return clamp(int(value))
    if not _TIME_PATTERN.match(value):
        return None
    try:
        moment = datetime.strptime(value, "%Y%m%dT%H%M%S.%f%z")
    except ValueError:
        return None
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def clamp(value: int) -> int:
    """``value`` within SQLite's 64-bit integers."""
    return max(INT_MIN, min(INT_MAX, value))
