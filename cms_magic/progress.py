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
    "duration",
    "plural",
    "progress_callback",
]

#: Updates per second a renderer shows at most (the final one always shows).
UPDATES_PER_SECOND = 8.0


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``count`` and the noun that agrees with it: ``1 request``, ``2 requests``, ``1,000 events``.

    The one helper every summary, bar and message uses; ``plural_form`` for nouns that
    do not just take an ``s``.
    """
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a running send, given to progress callbacks and ``SendJob.progress``.

    Every row is in one of: ``accepted``, ``rejected``, ``unknown`` (or a dry run's
    rows), which make up ``done``; ``not_sent`` (settled as not sent: this run will not
    send it, ``retry()`` can); and ``pending`` (not settled yet: the run will still
    send it). ``done + not_sent + pending == total``. A producer that does not count
    pending rows apart (``pending`` not given) has the rows it reports as not sent
    read as pending while the send runs, and as not sent once it has finished.

    ``max_rate`` is how many events per second the send's quota allows at most (its
    qps times the events per request; 0 when unknown or unlimited): with it the
    :attr:`eta` is known before the first answer, and never shorter than the quota
    makes possible.
    """

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
    pending: int = -1  # -1: not given (see above)
    max_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.pending < 0:
            waiting = 0 if self.finished else self.not_sent
            object.__setattr__(self, "pending", waiting)
            object.__setattr__(self, "not_sent", self.not_sent - waiting)

    @property
    def rate(self) -> float:
        """Rows settled per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left: the longer of the rate so far and the quota's best (``max_rate``);
        None when neither is known; 0 when finished."""
        left = self.pending
        if self.finished or left <= 0:
            return 0.0
        estimates = [left / r for r in (self.rate, self.max_rate) if r > 0]
        return max(estimates) if estimates else None

    def line(self) -> str:
        """A one-line status for renderers: ``1,200/5,000 events, 12 requests, 400 events/s,
        ETA 10s`` (the finished snapshot: ``..., done in 12s``)."""
        parts = [f"{self.done:,}/{plural(self.total, 'event')}", plural(self.requests, "request")]
        troubles = [
            f"{self.rejected:,} rejected" if self.rejected else "",
            f"{self.unknown:,} unknown" if self.unknown else "",
            f"{self.not_sent:,} not sent" if self.not_sent else "",
            plural(self.errors, "error") if self.errors else "",
        ]
        parts += [t for t in troubles if t]
        if self.finished:
            parts.append(f"done in {duration(self.elapsed)}")
        else:
            parts.append(f"{self.rate:,.0f} events/s")
            eta = self.eta
            parts.append("ETA ?" if eta is None else f"ETA {duration(eta)}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return self.line()

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in (
                "total",
                "done",
                "accepted",
                "rejected",
                "not_sent",
                "unknown",
                "pending",
                "requests",
                "errors",
            )
        )
        eta = self.eta
        shown_eta = "None" if eta is None else f"{eta:.1f}"
        return (
            f"Progress({fields}, elapsed={self.elapsed:.1f}, eta={shown_eta}, "
            f"finished={self.finished})"
        )


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


def duration(seconds: float) -> str:
    """``2.6s``, ``12s``, ``1m15s``, ``2h05m``: a duration as a bar shows it."""
    if seconds < 9.95:
        return f"{max(seconds, 0.0):.1f}s"
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
    line = progress.line()
    if progress.total:
        head, _, rest = line.partition(", ")
        line = f"{head} ({100 * progress.done // progress.total}%), {rest}"
    return "cms_magic: " + line


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
