"""Where the emulator keeps what it was sent: the accepted events and the log of requests.

:class:`Store` is the interface the handler uses; :class:`MemoryStore` keeps
everything in memory (the default). The shape is a database's on purpose: one
``add`` per request stores its accepted events and its log record together
(one transaction), reads return fresh copies (rows, not live objects), and
events are read in the order received with ``offset`` and ``limit``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cms_magic.errors import ConfigError

__all__ = ["Event", "MemoryStore", "RequestRecord", "Store"]

#: One accepted event as parsed from the body (``name``, ``content``, maybe ``groupId``, ``time``).
Event = dict[str, Any]
#: One request's log record (see :meth:`cms_magic.emulator.Emulator.requests`).
RequestRecord = dict[str, Any]


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


class MemoryStore:
    """A :class:`Store` in memory: two lists under one lock."""

    __slots__ = ("_events", "_lock", "_requests")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[Mapping[str, Any]] = []
        self._requests: list[Mapping[str, Any]] = []

    def __repr__(self) -> str:
        with self._lock:
            return f"MemoryStore({len(self._events)} events, {len(self._requests)} requests)"

    def add(self, events: Sequence[Mapping[str, Any]], *, request: Mapping[str, Any]) -> None:
        """Log one request and keep its events; the store owns what it is given from now on
        (the handler hands over freshly parsed objects, so nothing is copied here)."""
        with self._lock:
            self._events.extend(events)
            self._requests.append(request)

    def events(self, offset: int = 0, limit: int | None = None) -> list[Event]:
        _check_window(offset, limit)
        with self._lock:
            stop = None if limit is None else offset + limit
            return [dict(event) for event in self._events[offset:stop]]

    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return [dict(record) for record in self._requests]

    def count(self) -> int:
        with self._lock:
            return len(self._events)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
            self._requests.clear()


def _check_window(offset: int, limit: int | None) -> None:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ConfigError("must be a whole number >= 0", option="offset", value=offset)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigError("must be a whole number >= 0 or None", option="limit", value=limit)
