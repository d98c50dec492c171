"""Progress renderers for the skins: an ipywidgets bar, a text line in the cell, plain
lines on a terminal, and a tqdm bar for the command line.

Each renderer is a callable given to ``send(progress=...)`` (the one hook of
:mod:`cms_magic.progress`), and each lets updates through the one
:class:`~cms_magic.progress.Throttle`. The sender calls it from its own thread
(the library loop), so a renderer only assigns widget traits or updates a
display by id, never ``with out:`` and never ``clear_output``: one bar (or one
line) per send, in the cell that started it, still updating after the cell has
finished for a background send.

A renderer shows the running counts (:meth:`Progress.line`). The closing words
are the result's own summary line (:meth:`cms_magic.results.SendResult.summary`),
given to :meth:`finish` by the skin when a background job is done; a foreground
send's summary is printed by the skin just below the bar, so it is not repeated.

The renderer is created, and its bar displayed, in the cell's thread before the
send starts; ipywidgets and ``IPython.display`` are imported only then.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TextIO

from cms_magic.progress import UPDATES_PER_SECOND, Throttle

if TYPE_CHECKING:
    from cms_magic.progress import Progress

__all__ = ["PrintProgress", "TextDisplayProgress", "TqdmProgress", "WidgetProgress"]


class _Closable:
    """A renderer whose last words, once :meth:`finish` gave them, no update replaces."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._lock = threading.Lock()
        #: Set once :meth:`finish` has shown the last words (a thread may wait on it).
        self.closed = threading.Event()

    def finish(self, line: str) -> None:
        """Show ``line`` (the result's summary) as the final status; later updates are ignored."""
        with self._lock:
            self._show(f"{self._label}: {line}")
            self.closed.set()

    def _update(self, text: str) -> None:
        with self._lock:
            if not self.closed.is_set():
                self._show(f"{self._label}: {text}")

    def _show(self, text: str) -> None:
        raise NotImplementedError


class WidgetProgress(_Closable):
    """An ``HBox`` of an ``IntProgress`` bar and a status ``Label``, displayed once."""

    def __init__(
        self, total: int, *, label: str, dry_run: bool = False, background: bool = False
    ) -> None:
        import ipywidgets as widgets
        from IPython import display as ipython_display

        super().__init__(label)
        display: Any = ipython_display.display
        self._dry_run = dry_run
        self._background = background
        self._throttle = Throttle(1.0 / UPDATES_PER_SECOND)
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
        self._update(progress.line())

    def _show(self, text: str) -> None:
        self.status.value = text


class TextDisplayProgress(_Closable):
    """One plain-text line in the cell, updated in place by display id (in a kernel)."""

    def __init__(
        self, total: int, *, label: str, dry_run: bool = False, background: bool = False
    ) -> None:
        from IPython import display as ipython_display

        super().__init__(label)
        display: Any = ipython_display.display
        pretty: Any = ipython_display.Pretty
        self._pretty = pretty
        self._dry_run = dry_run
        self._background = background
        self._throttle = Throttle(1.0 / UPDATES_PER_SECOND)
        self.handle: Any = display(pretty(f"{label}: starting, {total:,} events"), display_id=True)

    def __call__(self, progress: Progress) -> None:
        if not progress.finished and not self._throttle.ready():
            return
        self._update(progress.line())

    def _show(self, text: str) -> None:
        if self.handle is not None:
            self.handle.update(self._pretty(text))


class PrintProgress:
    """Plain lines on a stream (a terminal), only for sends that last: after 1 s, every 2 s.

    The final line is left to the magic's summary.
    """

    def __init__(self, stream: TextIO, *, label: str) -> None:
        self._stream = stream
        self._label = label
        self._throttle = Throttle(2.0, first_after=1.0)

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
