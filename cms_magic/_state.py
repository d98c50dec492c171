"""Every piece of process-wide state cms_magic keeps, and the one :func:`reset` for all of it.

The package keeps a few things for the life of a process, each for a reason:

- the latest send's result (``cms_magic.last_result()``, also after a Ctrl-C);
- the shared quota of each AccessKey (every send in the process with one key
  shares the account's 20 requests per second);
- the endpoints already warned about a skewed clock (one warning each);
- the embedded emulator (what ``local`` means), started on first use.

Each lives in a :class:`Slot` (one value) or a :class:`Registry` (values by
key) made by :func:`slot` or :func:`registry`. The owning module keeps the
typed handle; this module keeps the list of them, so :func:`reset` (the test
suite's autouse fixture, or a user who wants a fresh start) clears everything
at once, and :func:`names` says what there is. This module imports nothing of
ours: any module may use it without an import cycle.

One thing is deliberately not here: the library's event loop thread
(:mod:`cms_magic.sending._loop`). It is machinery, not remembered state: a
reset that stopped it could strand a background send still running on it,
and a new loop per reset would leak a thread each time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Registry", "Slot", "names", "registry", "reset", "slot"]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_ALL: list[Slot[object] | Registry[object, object]] = []
_ALL_LOCK = threading.Lock()


class Slot(Generic[T]):
    """One process-wide value (or none), thread-safe; ``close`` runs on it at :func:`reset`."""

    __slots__ = ("_close", "_lock", "_value", "name")

    def __init__(self, name: str, close: Callable[[T], object] | None = None) -> None:
        self.name = name
        self._close = close
        self._lock = threading.RLock()
        self._value: T | None = None

    def get(self) -> T | None:
        with self._lock:
            return self._value

    def set(self, value: T | None) -> None:
        with self._lock:
            self._value = value

    def get_or_create(self, create: Callable[[], T]) -> T:
        """The value, made by ``create`` the first time (once, also under concurrent calls)."""
        with self._lock:
            if self._value is None:
                self._value = create()
            return self._value

    def pop(self) -> T | None:
        """Take the value out (None if there was none)."""
        with self._lock:
            value, self._value = self._value, None
            return value

    def reset(self) -> None:
        value = self.pop()
        if value is not None and self._close is not None:
            self._close(value)

    def __repr__(self) -> str:
        return f"<Slot {self.name}: {'set' if self.get() is not None else 'empty'}>"


class Registry(Generic[K, V]):
    """Process-wide values by key, thread-safe."""

    __slots__ = ("_items", "_lock", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.RLock()
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._items.get(key)

    def get_or_create(self, key: K, create: Callable[[], V]) -> V:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                found = self._items[key] = create()
            return found

    def add(self, key: K, value: V) -> bool:
        """Store ``value`` under ``key`` unless there is one; True if it was stored."""
        with self._lock:
            if key in self._items:
                return False
            self._items[key] = value
            return True

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __iter__(self) -> Iterator[K]:
        with self._lock:
            return iter(list(self._items))

    def reset(self) -> None:
        with self._lock:
            self._items.clear()

    def __repr__(self) -> str:
        return f"<Registry {self.name}: {len(self)} items>"


def slot(name: str, close: Callable[[T], object] | None = None) -> Slot[T]:
    """A new process-wide :class:`Slot`, known to :func:`reset`."""
    made: Slot[T] = Slot(name, close)
    with _ALL_LOCK:
        _ALL.append(made)  # type: ignore[arg-type]
    return made


def registry(name: str) -> Registry[K, V]:
    """A new process-wide :class:`Registry`, known to :func:`reset`."""
    made: Registry[K, V] = Registry(name)
    with _ALL_LOCK:
        _ALL.append(made)  # type: ignore[arg-type]
    return made


def names() -> list[str]:
    """The names of every piece of process-wide state made so far."""
    with _ALL_LOCK:
        return [item.name for item in _ALL]


def reset() -> None:
    """Forget all process-wide state: the latest result, the quotas, the warnings given,
    and stop the embedded emulator. Safe to call at any time between sends."""
    with _ALL_LOCK:
        items = list(_ALL)
    for item in items:
        item.reset()
