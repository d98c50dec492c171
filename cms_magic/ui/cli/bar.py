"""The command line's progress bar: rows (whole numbers) on stderr, through tqdm.

It holds back what it is given until :meth:`RowBar.show` (the send has started
and the line saying so is printed), so nothing is drawn above that line. The
bar counts rows settled out of the rows read, as integers (``3/5 rows``, never
``0.00/5.00``); :meth:`RowBar.close` ends it, saying ``interrupted`` when the
send was stopped.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from cms_magic.progress import Throttle

if TYPE_CHECKING:
    from cms_magic.progress import Progress

__all__ = ["RowBar"]


class RowBar:
    """A tqdm bar of rows; a ``send(progress=...)`` callback (called from the send's thread)."""

    def __init__(self, total: int, *, desc: str = "cms-event") -> None:
        self._total = total
        self._desc = desc
        self._bar: Any = None
        self._latest: Progress | None = None
        self._shown = False
        self._closed = False
        self._lock = threading.Lock()
        self._throttle = Throttle()
        #: Set once the first snapshot has been drawn (a test, or a waiter, may watch it).
        self.drawn = threading.Event()

    def show(self) -> None:
        """Start drawing (the latest snapshot at once, if there is one)."""
        with self._lock:
            self._shown = True
            if self._latest is not None:
                self._draw(self._latest)

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            self._latest = progress
            if not self._shown or self._closed:
                return
            if progress.finished or self._throttle.ready():
                self._draw(progress)

    def close(self, *, interrupted: bool = False) -> None:
        """End the bar with the latest counts (``interrupted`` says so on the bar)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if not self._shown:
                return
            if self._latest is not None:
                self._draw(self._latest, interrupted=interrupted)
            if self._bar is not None:
                self._bar.close()

    def _draw(self, progress: Progress, *, interrupted: bool = False) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self._total, unit=" rows", desc=self._desc, dynamic_ncols=True)
        self._bar.n = progress.done
        requests = f"{progress.requests:,} request{'' if progress.requests == 1 else 's'}"
        parts = [requests]
        if progress.rejected:
            parts.append(f"{progress.rejected:,} rejected")
        if progress.unknown:
            parts.append(f"{progress.unknown:,} unknown")
        if interrupted:
            parts.append("interrupted")
        self._bar.set_postfix_str(", ".join(parts), refresh=False)
        self._bar.refresh()
        self.drawn.set()
