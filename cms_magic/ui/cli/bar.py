"""The command line's progress: rows (whole numbers) on stderr.

On a terminal, a tqdm bar: ``cms-event:  40%|████      | 2,000/5,000 rows
[00:05<00:07, 20 requests]``. On anything else (a log file, CI), a plain line
for sends that last: after 2 s, then every 5 s, so a log gets no ``\\r`` frames.

It holds back what it is given until :meth:`RowBar.show` (the send has started
and the line saying so is printed), so nothing is drawn above that line; and it
counts rows settled out of the rows read, as integers (never ``0.00/5.00``).
:meth:`RowBar.close` ends it, saying ``interrupted`` when the send was stopped.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TextIO

from cms_magic.progress import Throttle

if TYPE_CHECKING:
    from cms_magic.progress import Progress

__all__ = ["RowBar"]

_FORMAT: Final = (
    "{desc}: {percentage:3.0f}%|{bar}| {n:,}/{total:,} rows [{elapsed}<{remaining}{postfix}]"
)


def _counts(progress: Progress, *, interrupted: bool = False) -> str:
    parts = []
    if progress.requests:
        parts.append(f"{progress.requests:,} request{'' if progress.requests == 1 else 's'}")
    if progress.rejected:
        parts.append(f"{progress.rejected:,} rejected")
    if progress.unknown:
        parts.append(f"{progress.unknown:,} unknown")
    if interrupted:
        parts.append("interrupted")
    return ", ".join(parts)


class RowBar:
    """Rows settled out of ``total``; a ``send(progress=...)`` callback (from the send's thread).

    ``stream`` defaults to ``sys.stderr`` as it is when the bar is made; ``clock`` paces
    the plain lines (tests inject one).
    """

    def __init__(
        self,
        total: int,
        *,
        desc: str = "cms-event",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._total = total
        self._desc = desc
        self._stream = stream if stream is not None else sys.stderr
        self._terminal = bool(getattr(self._stream, "isatty", lambda: False)())
        self._bar: Any = None
        self._latest: Progress | None = None
        self._shown = False
        self._closed = False
        self._lock = threading.Lock()
        self._throttle = (
            Throttle(clock=clock) if self._terminal else Throttle(5.0, first_after=2.0, clock=clock)
        )
        #: Set once a snapshot has been drawn.
        self.drawn = threading.Event()

    def show(self) -> None:
        """Start drawing (on a terminal, the latest snapshot at once if there is one)."""
        with self._lock:
            self._shown = True
            if self._latest is not None and self._terminal:
                self._draw(self._latest)

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            self._latest = progress
            if not self._shown or self._closed:
                return
            if progress.finished:
                if self._terminal:
                    self._draw(progress)
            elif self._throttle.ready():
                self._draw(progress)

    def close(self, *, interrupted: bool = False) -> None:
        """End the bar with the latest counts (``interrupted`` says so on the bar)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._bar is None and not (interrupted and self._shown):
                return  # no bar drawn (a quick send, not a terminal): the summary says it all
            if self._latest is not None:
                self._draw(self._latest, interrupted=interrupted)
            if self._bar is not None:
                self._bar.close()

    def _draw(self, progress: Progress, *, interrupted: bool = False) -> None:
        counts = _counts(progress, interrupted=interrupted)
        if not self._terminal:
            line = f"{self._desc}: {progress.done:,}/{self._total:,} rows"
            self._stream.write(line + (f", {counts}" if counts else "") + "\n")
            self._stream.flush()
            self.drawn.set()
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self._total,
                desc=self._desc,
                file=self._stream,
                bar_format=_FORMAT,
                dynamic_ncols=True,
            )
        self._bar.n = progress.done
        self._bar.set_postfix_str(counts, refresh=False)
        self._bar.refresh()
        self.drawn.set()
