"""How a running send reports progress: one snapshot type, one hook, one throttle.

The core reports through a callable, :data:`ProgressCallback`, given a
:class:`Progress` snapshot after every request (and once more with
``finished=True``). It is called from the send's own thread, so a renderer must
be quick and thread-safe; every renderer lets updates through the same
:class:`Throttle` (at most a few per second, the final one always).

Renderers live with the skins (``cms_magic.ui.render``: the widget, the cell's
text line, tqdm for the command line), except :class:`TextProgress`: a plain
line on stderr, redrawn in place, which a ``send()`` from a terminal shows by
default. The core imports no tqdm, IPython or ipywidgets.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

__all__ = [
    "Progress",
    "ProgressCallback",
    "TextProgress",
    "Throttle",
    "progress_callback",
]

#: Updates per second a renderer shows at most (the final one always shows).
UPDATES_PER_SECOND = 8.0


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a running send, given to progress callbacks and ``SendJob.progress``."""

    total: int
    done: int
    accepted: int
    rejected: int
    not_sent: int
    unknown: int
    requests: int
    errors: int
    elapsed: float
    finished: bool = False

    @property
    def rate(self) -> float:
        """Rows settled per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far (None before there is a rate; 0 when finished)."""
        if self.finished or self.done >= self.total:
            return 0.0
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None

    def line(self) -> str:
        """A one-line status for text renderers."""
        parts = [f"{self.done:,}/{self.total:,} events", f"{self.requests:,} requests"]
        if self.rejected or self.unknown or self.errors:
            parts.append(
                f"{self.rejected:,} rejected, {self.unknown:,} unknown, {self.errors:,} errors"
            )
        parts.append(f"{self.rate:,.0f} events/s")
        return ", ".join(parts)


#: The hook: called with each snapshot, from the send's thread.
ProgressCallback = Callable[[Progress], None]


class Throttle:
    """Lets an update through at most every ``interval`` seconds; thread-safe.

    ``first_after`` holds back the first one (a renderer that shows only sends
    that last). ``clock`` is injectable for tests.
    """

    __slots__ = ("_clock", "_interval", "_lock", "_next")

    def __init__(
        self,
        interval: float = 1.0 / UPDATES_PER_SECOND,
        *,
        first_after: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._next = clock() + first_after

    def ready(self) -> bool:
        """True (and the next update is due ``interval`` from now) if an update may show."""
        now = self._clock()
        with self._lock:
            if now < self._next:
                return False
            self._next = now + self._interval
            return True


def _duration(seconds: float) -> str:
    whole = int(seconds + 0.5)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def text_line(progress: Progress) -> str:
    """``cms_magic: 1,200/5,000 events (24%), 12 requests, 400 events/s, ETA 10s``."""
    share = f" ({100 * progress.done // progress.total}%)" if progress.total else ""
    parts = [
        f"{progress.done:,}/{progress.total:,} events{share}",
        f"{progress.requests:,} requests",
    ]
    failed = progress.rejected + progress.unknown
    if failed:
        parts.append(f"{progress.rejected:,} rejected, {progress.unknown:,} unknown")
    if progress.finished:
        parts.append(f"done in {_duration(progress.elapsed)}")
    else:
        parts.append(f"{progress.rate:,.0f} events/s")
        eta = progress.eta
        parts.append("ETA ?" if eta is None else f"ETA {_duration(eta)}")
    return "cms_magic: " + ", ".join(parts)


class TextProgress:
    """One plain-text line on a stream (stderr by default), redrawn in place with ``\\r``.

    Throttled; the final snapshot is always drawn and ends the line.
    """

    def __init__(self, stream: TextIO | None = None, *, throttle: Throttle | None = None) -> None:
        self._stream = stream
        self._throttle = throttle or Throttle()
        self._width = 0
        self._lock = threading.Lock()

    def __call__(self, progress: Progress) -> None:
        if not progress.finished and not self._throttle.ready():
            return
        stream = self._stream or sys.stderr
        text = text_line(progress)
        with self._lock:
            padding = " " * max(0, self._width - len(text))
            self._width = len(text)
            stream.write("\r" + text + padding + ("\n" if progress.finished else ""))
            stream.flush()


def progress_callback(
    progress: bool | ProgressCallback | None, *, background: bool = False
) -> ProgressCallback | None:
    """What ``send(progress=...)`` means: a callable is used as is; ``True`` is a
    :class:`TextProgress` on stderr; ``None`` is that too for a foreground send
    from a terminal (stderr a TTY), else nothing; ``False`` is nothing."""
    if callable(progress):
        return progress
    if progress is None:
        progress = (not background) and sys.stderr.isatty()
    return TextProgress() if progress else None
