"""Progress renderers for the skins: an ipywidgets bar, a text line in the cell, plain
lines on a terminal, and a tqdm bar for the command line.

Each renderer is a callable given to ``send(progress=...)`` (the one hook of
:mod:`cms_magic.progress`), and each lets updates through the one
:class:`~cms_magic.progress.Throttle`. The sender calls it from its own thread
(the library loop), so a renderer only assigns widget traits or updates a
display by id, never ``with out:`` and never ``clear_output``: one bar (or one
line) per send, in the cell that started it, still updating after the cell has
finished for a background send.

While the send runs a renderer shows the running counts and the ETA
(:meth:`Progress.line`). When it ends, the skin calls :meth:`finish` with the
result: the bar (or the line) **turns into the result's summary line**
(:meth:`cms_magic.results.SendResult.summary`), so the skin prints nothing more.
``finish(result, name="r")`` names the result as the reader reaches it;
``finish(result, interrupted=True)`` after a Ctrl-C makes the bar say
"interrupted" and the line say how to resume; ``finish("text")`` shows a line of
the skin's own. The first call to :meth:`finish` wins; no later update replaces it.

The renderer is created, and its bar displayed, in the cell's thread before the
send starts; ipywidgets and ``IPython.display`` are imported only then.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TextIO, cast

from cms_magic.progress import UPDATES_PER_SECOND, Throttle, plural

if TYPE_CHECKING:
    from cms_magic.progress import Progress
    from cms_magic.readback import ReadProgress
    from cms_magic.readback_times import TimeLike
    from cms_magic.results import Outcome, SendResult
    from cms_magic.targets import Target

__all__ = [
    "PrintProgress",
    "ReadProgressLine",
    "TextDisplayProgress",
    "TqdmProgress",
    "WidgetProgress",
    "read_label",
    "read_summary",
    "read_window",
]

#: What the widget bar says (its description) and its colour, by the result's outcome.
_BAR_WORDS: Final[dict[str, tuple[str, str]]] = {
    "ok": ("done", "success"),
    "dry_run": ("dry run", "success"),
    "partial": ("done", "warning"),
    "failed": ("failed", "danger"),
    "cancelled": ("cancelled", "warning"),
}

#: The status text wraps inside its container instead of being clipped.
_STATUS_STYLE: Final = "white-space:normal;overflow-wrap:anywhere;line-height:1.4"


class _Closable:
    """A renderer whose last words, once :meth:`finish` gave them, no update replaces."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._lock = threading.Lock()
        #: Set once :meth:`finish` has shown the last words (a thread may wait on it).
        self.closed = threading.Event()
        #: The line shown now, as plain text (the label, a colon, the status).
        self.text = ""

    def finish(
        self,
        result: SendResult | str,
        *,
        name: str | None = "result",
        next_step: str | None = None,
        interrupted: bool = False,
    ) -> None:
        """Turn the bar into the last words: the result's summary line (``name``,
        ``next_step`` and ``interrupted`` as for :meth:`SendResult.summary`), or a line
        of the skin's own. Only the first call shows; later updates are ignored."""
        if isinstance(result, str):
            line, outcome = result, None
        else:
            line = result.summary(name, next_step=next_step, interrupted=interrupted)
            outcome = result.outcome
        with self._lock:
            if self.closed.is_set():
                return
            self.text = f"{self._label}: {line}"
            self._close(outcome, interrupted=interrupted, result=result)
            self.closed.set()

    def _update(self, text: str) -> None:
        with self._lock:
            if not self.closed.is_set():
                self.text = f"{self._label}: {text}"
                self._show()

    def _close(
        self, outcome: Outcome | None, *, interrupted: bool, result: SendResult | str
    ) -> None:
        self._show()

    def _show(self) -> None:
        raise NotImplementedError


class WidgetProgress(_Closable):
    """An ``IntProgress`` bar and a status line that fit their container (they wrap onto
    two lines when it is narrow; the status wraps too), displayed once."""

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
            value=0,
            min=0,
            max=max(total, 1),
            description="sending",
            bar_style="info",
            style={"description_width": "initial"},
            layout=widgets.Layout(flex="0 1 360px", min_width="160px", width="auto"),
        )
        self.status: Any = widgets.HTML(
            layout=widgets.Layout(flex="1 1 320px", min_width="0", width="auto")
        )
        self.box: Any = widgets.HBox(
            [self.bar, self.status],
            layout=widgets.Layout(
                width="100%", max_width="100%", flex_flow="row wrap", align_items="center"
            ),
        )
        self._update(f"starting, {plural(total, 'event')}")
        # By display id, so that the finished bar's plain-text form can become the summary
        # line: a notebook saved without widget state (nbconvert, GitHub) still shows it.
        self.handle: Any = display(self.box, display_id=True)

    def __call__(self, progress: Progress) -> None:
        if not progress.finished and not self._throttle.ready():
            return
        with self._lock:
            if self.closed.is_set():
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
                self.bar.description = "failed" if self.bar.bar_style == "danger" else "done"
        self._update(progress.line())

    def _close(
        self, outcome: Outcome | None, *, interrupted: bool, result: SendResult | str
    ) -> None:
        if not isinstance(result, str):
            counts = result.counts()
            self.bar.max = max(len(result), 1)
            self.bar.value = len(result) - counts["not_sent"]
        if outcome is not None:
            word, style = _BAR_WORDS[outcome]
            self.bar.description = "interrupted" if interrupted else word
            self.bar.bar_style = style
        elif interrupted:
            self.bar.description = "interrupted"
            self.bar.bar_style = "warning"
        self._show()
        if self.handle is not None:
            view = {"version_major": 2, "version_minor": 0, "model_id": self.box.model_id}
            bundle = {"application/vnd.jupyter.widget-view+json": view, "text/plain": self.text}
            self.handle.update(bundle, raw=True)

    def _show(self) -> None:
        self.status.value = f'<span style="{_STATUS_STYLE}">{html.escape(self.text)}</span>'


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
        self.text = f"{label}: starting, {plural(total, 'event')}"
        self.handle: Any = display(pretty(self.text), display_id=True)

    def __call__(self, progress: Progress) -> None:
        if not progress.finished and not self._throttle.ready():
            return
        self._update(progress.line())

    def _show(self) -> None:
        if self.handle is not None:
            self.handle.update(self._pretty(self.text))


class PrintProgress(_Closable):
    """Plain lines on a stream (a terminal), only for sends that last: after 1 s, every 2 s.

    The finished snapshot prints nothing; :meth:`finish` prints the summary line.
    """

    def __init__(self, stream: TextIO, *, label: str) -> None:
        super().__init__(label)
        self._stream = stream
        self._throttle = Throttle(2.0, first_after=1.0)

    def __call__(self, progress: Progress) -> None:
        if progress.finished or not self._throttle.ready():
            return
        self._update(progress.line())

    def _show(self) -> None:
        self._stream.write(self.text + "\n")
        self._stream.flush()


class TqdmProgress:
    """A tqdm bar on stderr (the command line), throttled by :class:`cms_magic.progress.Throttle`.

    Give it to ``send(progress=TqdmProgress())``; tqdm is imported on the first update.
    Counts are whole numbers (``3/5``), scaled (``1.2k/5.0k``) only from a thousand events.
    """

    def __init__(self, *, desc: str = "cms_magic") -> None:
        self._desc = desc
        self._bar: Any = None
        self._done = 0
        self._throttle = Throttle()

    def __call__(self, progress: Progress) -> None:
        if not progress.finished and not self._throttle.ready():
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=progress.total,
                unit=" events",
                unit_scale=progress.total >= 1000,
                desc=self._desc,
            )
        self._bar.update(progress.done - self._done)
        self._done = progress.done
        troubles = [
            f"{count:,} {word}"
            for count, word in (
                (progress.rejected, "rejected"),
                (progress.unknown, "unknown"),
                (progress.not_sent, "not sent"),
            )
            if count
        ]
        self._bar.set_postfix_str(
            ", ".join([plural(progress.requests, "request"), *troubles]), refresh=False
        )
        if progress.finished:
            self._bar.close()


# ---- read-back (issue 15) ----------------------------------------------------------------


class ReadProgressLine:
    """A read's progress (:class:`cms_magic.readback.ReadProgress`) as one line that turns
    into the read's summary (:meth:`finish`).

    ``stream=None`` (a kernel): one plain-text display, created now in the cell's thread and
    updated by display id (at most :data:`~cms_magic.progress.UPDATES_PER_SECOND` times a
    second). A stream (a terminal, the CLI's stderr): a line only for reads that last (after
    ``first_after`` seconds, then every ``interval``), and the summary line at the end. The
    read calls it from the library loop's thread. ``clock`` is the throttle's (tests).
    """

    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        first_after: float = 1.0,
        interval: float = 2.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._label = label
        self._stream = stream
        self._lock = threading.Lock()
        self.closed = threading.Event()
        self.handle: Any = None
        ticks = clock or time.monotonic
        if stream is None:
            from IPython import display as ipython_display

            pretty: Any = ipython_display.Pretty
            self._pretty = pretty
            self._throttle = Throttle(1.0 / UPDATES_PER_SECOND, clock=ticks)
            self.text = f"{label}: reading"
            display: Any = ipython_display.display
            self.handle = display(self._pretty(self.text), display_id=True)
        else:
            self._throttle = Throttle(interval, first_after=first_after, clock=ticks)
            self.text = ""

    def __call__(self, progress: ReadProgress) -> None:
        if progress.finished or not self._throttle.ready():
            return
        self._say(progress.line(), last=False)

    def finish(self, line: str) -> None:
        """The last words (the summary line); only the first call shows."""
        self._say(line, last=True)

    def _say(self, line: str, *, last: bool) -> None:
        with self._lock:
            if self.closed.is_set():
                return
            self.text = f"{self._label}: {line}"
            if self.handle is not None:
                self.handle.update(self._pretty(self.text))
            elif self._stream is not None:
                self._stream.write(self.text + "\n")
                self._stream.flush()
            if last:
                self.closed.set()


def read_label(target: Target) -> str:
    """How a read's summary names its target: ``the local emulator``, ``region cn-hangzhou
    (https://metrics.cn-hangzhou.aliyuncs.com)``, or the endpoint's URL (the OpenAPI's,
    not the upload endpoint a send's label names)."""
    from cms_magic.readback import openapi_url

    if target.is_local:
        return "the local emulator"
    url = openapi_url(target)
    if target.kind == "region" and target.region:
        return f"region {target.region} ({url})"
    return url


def _iso(millis: int | None, tz: object) -> str | None:
    if millis is None:
        return None
    from datetime import datetime, timezone

    from cms_magic.errors import CmsError
    from cms_magic.readback_times import zone

    moment = datetime.fromtimestamp(millis / 1000, timezone.utc)
    if tz is not None:
        try:
            shown = zone(cast("str", tz))
        except CmsError:
            shown = None
        moment = moment.astimezone(shown) if shown is not None else moment.astimezone()
    return moment.isoformat(timespec="seconds")


def read_window(since: object, until: object, tz: object = None) -> str:
    """The window as a summary says it: ``since 2026-12-01T08:00:00+00:00 (1h) until now``
    (times in ``tz`` when given, else UTC). Bounds the core will refuse are said as given
    (the read's own error says why)."""
    from cms_magic.errors import CmsError
    from cms_magic.readback_times import parse_bound, zone

    parts: list[str] = []
    for word, value, empty in (("since", since, "the start"), ("until", until, "now")):
        try:
            read_in = zone(cast("str", tz)) if tz is not None else None
            millis = parse_bound(cast("TimeLike", value), option=word, clock=time.time, tz=read_in)
        except CmsError:
            millis = None
        shown = _iso(millis, tz)
        if shown is None:
            parts.append(f"{word} {value if value is not None else empty}")
        elif isinstance(value, str) and value.strip() != shown:
            parts.append(f"{word} {shown} ({value.strip()})")
        else:
            parts.append(f"{word} {shown}")
    return " ".join(parts)


def read_summary(
    what: str, *, since: object, until: object, tz: object = None, dest: str | None = None
) -> str:
    """A read's one line after the target's label: ``12 events, since ... until now -> ev``
    (``what`` is the count said: ``plural(12, 'event')``, ``30 events in 12 buckets``)."""
    line = f"{what}, {read_window(since, until, tz)}"
    return f"{line} -> {dest}" if dest else line
