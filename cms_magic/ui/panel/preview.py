"""The live preview of the Data section: what the mapping makes of the chosen frame.

:class:`LivePreview` is what the panel shows as the mapping changes. The first events
come at once, from the first rows only (a few, more only when those are rejected), so
a change costs the same at a thousand rows and at a million. The headline counts the
WHOLE frame, as a send does it (:func:`cms_magic.batching.count_frame`): at once for a
small frame; for a large one it says "counting…" and a background thread fills it in
(``1,000,000 rows → 999,998 events in 10,000 requests; 2 rejected by validation ·
about 8 min at 20 requests/s``). A change of mapping or frame stops the count under
way at its next chunk, and only the latest count is ever shown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from cms_magic.batching import FrameCount, count_frame
from cms_magic.events import events_from_frame
from cms_magic.progress import plural
from cms_magic.protocol import DEFAULT_QPS
from cms_magic.ui.panel import html

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COUNT_AT_ONCE_CELLS",
    "COUNT_AT_ONCE_ROWS",
    "LivePreview",
    "counting_line",
    "duration_text",
    "headline",
]

#: A frame of at most this many rows (and :data:`COUNT_AT_ONCE_CELLS` cells) is counted
#: at once; a larger one in the background.
COUNT_AT_ONCE_ROWS: Final = 5_000
COUNT_AT_ONCE_CELLS: Final = 100_000
#: Rows converted at most for the first events when the first rows are rejected.
_HEAD_MAX_ROWS: Final = 3_000
_PREVIEW_EVENTS: Final = 3


# ----------------------------------------------------------------- the live form


def first_events(frame: pd.DataFrame, options: Mapping[str, Any]) -> list[bytes]:
    """The first few events of ``frame``, converting only the first rows (more of them only
    while those are rejected, up to a few thousand)."""
    rows = _PREVIEW_EVENTS
    while True:
        conversion = events_from_frame(frame.iloc[:rows], **options)
        if len(conversion) >= _PREVIEW_EVENTS or rows >= min(len(frame), _HEAD_MAX_ROWS):
            return conversion.payloads[:_PREVIEW_EVENTS]
        rows = min(rows * 10, _HEAD_MAX_ROWS)


def duration_text(seconds: float) -> str:
    """``under a second``, ``about 40 s``, ``about 8 min``, ``about 2 h 05 min``."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h {rest:02d} min"


def _rate(qps: float) -> str:
    return f"{qps:g} request/s" if qps == 1 else f"{qps:g} requests/s"


def headline(count: FrameCount, index: pd.Index, qps: float = DEFAULT_QPS) -> str:
    """The whole frame's counts: ``rows → events in requests; n rejected by validation``,
    the time the requests take at the quota, and the first reasons."""
    cls = ' class="cms-bad"' if count.rejected else ""
    seconds = count.seconds_at(qps)
    when = (
        f" · {duration_text(seconds)} at {_rate(qps)}"
        if seconds is not None and count.requests
        else ""
    )
    return (
        f"{_bold(count.rows, 'row')} → {_bold(count.events, 'event')} in "
        f"{_bold(count.requests, 'request')}; <span{cls}><b>{count.rejected:,}</b> rejected "
        f"by validation</span>{html.muted(when) if when else ''}{_reasons(count, index)}"
    )


def _bold(count: int, noun: str) -> str:
    number, word = plural(count, noun).split(" ", 1)
    return f"<b>{number}</b> {word}"


def counting_line(rows: int) -> str:
    """The headline while the count runs."""
    return f"{_bold(rows, 'row')} → " + html.muted("counting events and requests…")


def _reasons(count: FrameCount, index: pd.Index) -> str:
    if not count.rejected:
        return ""
    items = sorted(count.reasons.items())[: html.SHOWN_REASONS]
    lines = "".join(
        f"<li>row {html.esc(index[position])}: {html.esc(reason)}</li>"
        for position, reason in items
    )
    more = count.rejected - len(items)
    tail = f"<li class='cms-muted'>and {more:,} more</li>" if more else ""
    return f'<ul class="cms-reasons" style="margin:2px 0">{lines}{tail}</ul>'


def _count_error(exc: BaseException) -> str:
    return html.bad(f"could not count the frame: {html.message(exc)}")


class _Count:
    """One count's identity: the latest is the only one shown; an older one stops."""

    __slots__ = ("_stopped",)

    def __init__(self) -> None:
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def stopped(self) -> bool:
        return self._stopped.is_set()

    def settle(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a newer change; True if this count was stopped."""
        return self._stopped.wait(seconds) if seconds > 0 else self._stopped.is_set()


class LivePreview:
    """The Data section's preview: the first events at once, the whole frame counted.

    ``show_counts`` and ``show_events`` put HTML into the panel (called on the caller's
    thread by :meth:`update`, and from the count's thread when it ends). ``start`` runs
    ``target(*args)`` in a background thread (default: a daemon thread of its own; the
    panel passes its workers' start, so its ``wait`` waits for counts too). ``qps`` is the
    quota the duration is estimated at. A background count starts after ``settle``
    seconds without a newer change, so typing in a control does not start a count per
    keystroke.
    """

    def __init__(
        self,
        show_counts: Callable[[str], None],
        show_events: Callable[[str], None],
        *,
        start: Callable[..., None] | None = None,
        qps: float = DEFAULT_QPS,
        settle: float = 0.2,
    ) -> None:
        self._show_counts = show_counts
        self._show_events = show_events
        self._start = start or self._thread
        self.qps = qps
        self.settle = settle
        self._lock = threading.Lock()
        self._current: _Count | None = None
        self._threads: list[threading.Thread] = []

    def update(self, frame: pd.DataFrame, options: Mapping[str, Any]) -> None:
        """Show what ``options`` make of ``frame``: the first events and the counts line
        (``counting…`` for a large frame, filled in when the count ends).

        Raises what the conversion raises (a :class:`~cms_magic.errors.MappingError`
        naming the option) for a mapping that cannot work; the count under way stops.
        """
        count = self._begin()
        events = first_events(frame, options)
        self._show_events(html.events_preview(events))
        rows = len(frame)
        if rows <= COUNT_AT_ONCE_ROWS and rows * max(frame.shape[1], 1) <= COUNT_AT_ONCE_CELLS:
            self._show_counts(self._counts(frame, options, count))
            return
        self._show_counts(counting_line(rows))
        self._start(self._count, frame, dict(options), count)

    def stop(self) -> None:
        """Stop the count under way (its result is never shown)."""
        with self._lock:
            if self._current is not None:
                self._current.stop()
            self._current = None

    def wait(self, timeout: float | None = None) -> bool:
        """Join the counts this preview's own threads run; True if they have all ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def _begin(self) -> _Count:
        count = _Count()
        with self._lock:
            if self._current is not None:
                self._current.stop()
            self._current = count
        return count

    def _counts(self, frame: pd.DataFrame, options: Mapping[str, Any], count: _Count) -> str:
        found = count_frame(frame, options, stop=count.stopped)
        return headline(found, frame.index, self.qps) if found is not None else ""

    def _count(self, frame: pd.DataFrame, options: Mapping[str, Any], count: _Count) -> None:
        if count.settle(self.settle):
            return  # a newer change came within the settle time (e.g. typing a template)
        try:
            text = self._counts(frame, options, count)
        except Exception as exc:  # e.g. the frame changed under the count
            text = _count_error(exc)
        with self._lock:
            if count.stopped() or count is not self._current:
                return
            self._show_counts(text)

    def _thread(self, target: Callable[..., object], *args: Any) -> None:
        thread = threading.Thread(
            target=target, args=args, name="cms_magic preview count", daemon=True
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
