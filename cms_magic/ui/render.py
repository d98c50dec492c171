"""Progress renderers for the magic: an ipywidgets bar, or plain text.

Each renderer is a callable given to ``send(progress=...)``. The sender calls it
from its own thread (the library loop), so a renderer only assigns widget
traits or updates a display by id, never ``with out:`` and never
``clear_output``: one bar (or one line) per send, in the cell that started it,
still updating after the cell has finished for a background send.

The renderer is created, and its bar displayed, in the cell's thread before the
send starts; ipywidgets and ``IPython.display`` are imported only then.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from cms_magic.sending.client import Progress

__all__ = ["PrintProgress", "TextDisplayProgress", "WidgetProgress", "final_line"]

#: At most this many updates per second reach the frontend (the final one always does).
_UPDATES_PER_SECOND = 8.0


def final_line(progress: Progress, *, dry_run: bool = False) -> str:
    """The closing status of a send, from its last progress snapshot."""
    if dry_run:
        head = f"dry run: {progress.done:,}/{progress.total:,} events would be sent"
    else:
        head = (
            f"{progress.accepted:,}/{progress.total:,} events accepted in {progress.elapsed:.1f} s"
        )
    others = [
        f"{count:,} {what}"
        for count, what in (
            (progress.rejected, "rejected"),
            (progress.not_sent, "not sent"),
            (progress.unknown, "unknown"),
        )
        if count
    ]
    return head + ("; " + ", ".join(others) if others else "")


def _closing(progress: Progress, dry_run: bool, background: bool) -> str:
    """The status text: the running counts; at the end of a background send, its outcome.

    A foreground send ends with the magic's summary line just below, so its
    status keeps the counts instead of saying the same thing twice.
    """
    if progress.finished and background:
        return final_line(progress, dry_run=dry_run)
    return progress.line()


class _Throttle:
    """Lets an update through at most every ``interval`` seconds; thread-safe."""

    def __init__(self, interval: float, *, first_after: float = 0.0) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._next = time.monotonic() + first_after

    def ready(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                return False
            self._next = now + self._interval
            return True


class WidgetProgress:
    """An ``HBox`` of an ``IntProgress`` bar and a status ``Label``, displayed once."""

    def __init__(
        self, total: int, *, label: str, dry_run: bool = False, background: bool = False
    ) -> None:
        import ipywidgets as widgets
        from IPython import display as ipython_display

        display: Any = ipython_display.display

        self._dry_run = dry_run
        self._background = background
        self._label = label
        self._throttle = _Throttle(1.0 / _UPDATES_PER_SECOND)
        self.bar: Any = widgets.IntProgress(
            value=0, min=0, max=max(total, 1), description="cms_magic", bar_style="info"
        )
        self.status: Any = widgets.Label(value=f"{label}: starting, {total:,} events")
        self.box: Any = widgets.HBox([self.bar, self.status])
        display(self.box)

    def __call__(self, progress: Progress) -> None:
        if not progress.finished and not self._throttle.ready():
            return
        self.bar.max = max(progress.total, 1)
        self.bar.value = progress.done
        if progress.finished:
            failed = progress.rejected + progress.not_sent + progress.unknown
            if failed == 0:
                self.bar.bar_style = "success"
            elif progress.accepted == 0 and not self._dry_run:
                self.bar.bar_style = "danger"
            else:
                self.bar.bar_style = "warning"
        self.status.value = f"{self._label}: {_closing(progress, self._dry_run, self._background)}"


class TextDisplayProgress:
    """One plain-text line in the cell, updated in place by display id (in a kernel)."""

    def __init__(
        self, total: int, *, label: str, dry_run: bool = False, background: bool = False
    ) -> None:
        from IPython import display as ipython_display

        display: Any = ipython_display.display
        pretty: Any = ipython_display.Pretty
        self._pretty = pretty
        self._dry_run = dry_run
        self._background = background
        self._label = label
        self._throttle = _Throttle(1.0 / _UPDATES_PER_SECOND)
        self.handle: Any = display(pretty(f"{label}: starting, {total:,} events"), display_id=True)

    def __call__(self, progress: Progress) -> None:
        if not progress.finished and not self._throttle.ready():
            return
        text = _closing(progress, self._dry_run, self._background)
        if self.handle is not None:
            self.handle.update(self._pretty(f"{self._label}: {text}"))


class PrintProgress:
    """Plain lines on a stream (a terminal), only for sends that last: after 1 s, every 2 s.

    The final line is left to the magic's summary.
    """

    def __init__(self, stream: TextIO, *, label: str) -> None:
        self._stream = stream
        self._label = label
        self._throttle = _Throttle(2.0, first_after=1.0)

    def __call__(self, progress: Progress) -> None:
        if progress.finished or not self._throttle.ready():
            return
        self._stream.write(f"{self._label}: {progress.line()}\n")
        self._stream.flush()


class TqdmProgress:
    """A tqdm bar on stderr (the command line), throttled by :class:`cms_magic.progress.Throttle`.

    Give it to ``send(progress=TqdmProgress())``; tqdm is imported on the first update.
    """

    def __init__(self, *, desc: str = "cms_magic") -> None:
        from cms_magic.progress import Throttle

        self._desc = desc
        self._bar: Any = None
        self._done = 0
        self._throttle = Throttle()

    def __call__(self, progress: Progress) -> None:
        if not progress.finished and not self._throttle.ready():
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=progress.total, unit="ev", unit_scale=True, desc=self._desc)
        self._bar.update(progress.done - self._done)
        self._done = progress.done
        self._bar.set_postfix_str(
            f"{progress.requests} req, {progress.rejected} rejected, {progress.unknown} unknown",
            refresh=False,
        )
        if progress.finished:
            self._bar.close()
