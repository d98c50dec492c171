"""What the magic shows: the progress renderer a cell gets, and its one-line reports.

The summary line itself is :meth:`cms_magic.results.SendResult.summary`; this
module only puts the target's name in front of it and says where the result is.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from cms_magic.progress import Progress
    from cms_magic.results import SendJob, SendResult

__all__ = [
    "PROGRESS_MODES",
    "SendInterrupted",
    "background_line",
    "close_when_done",
    "interrupted",
    "out",
    "preview_text",
    "renderer",
    "say_summary",
    "summary",
]

#: ``%config CmsMagic.progress`` values.
PROGRESS_MODES: Final = ("auto", "widget", "text", "off")


def out(text: str) -> None:
    """One line of the magic's output, on the cell's stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def summary(result: SendResult, dest: str | None) -> str:
    """The result's summary line, pointing at the variable that holds it."""
    return result.summary(_name(dest))


def say_summary(
    renderer: Callable[..., None] | None, label: str, result: SendResult, dest: str | None
) -> None:
    """Say a finished send's summary once: the bar turns into it, or one printed line."""
    finish = getattr(renderer, "finish", None)
    if callable(finish):
        finish(result, name=_name(dest))
    else:
        out(f"{label}: {summary(result, dest)}")


class SendInterrupted(KeyboardInterrupt):
    """Ctrl-C during a send: still a ``KeyboardInterrupt`` (a run of cells stops), shown
    by IPython as its one line, without a traceback (``_render_traceback_``)."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def interrupted(
    renderer: Callable[..., None] | None, label: str, partial: SendResult, dest: str | None
) -> SendInterrupted:
    """After Ctrl-C: a bar in the cell says "interrupted" (its counts as they were), and the
    exception to raise carries the one line: what was accepted, what was not sent, how to
    resume (the result's summary, pointing at ``.retry()``)."""
    finish = getattr(renderer, "finish", None)
    if callable(finish) and not isinstance(renderer, _plain_lines()):
        finish("interrupted", interrupted=True)  # plain lines would print a second line
    return SendInterrupted(f"{label}: {partial.summary(_name(dest), interrupted=True)}")


def _plain_lines() -> type:
    from cms_magic.ui import render

    return render.PrintProgress


def _name(dest: str | None) -> str:
    return dest or "cms_magic.last_result()"


def renderer(
    mode: str,
    *,
    in_kernel: bool,
    total: int,
    label: str,
    background: bool,
    dry_run: bool,
) -> Callable[[Progress], None] | None:
    """The progress renderer a cell gets: a widget, a text line, plain lines, or none."""
    from cms_magic.ui import render

    if mode == "off":
        return None
    wants_widget = mode == "widget" or (mode == "auto" and in_kernel)
    if wants_widget and importlib.util.find_spec("ipywidgets") is not None:
        return render.WidgetProgress(total, label=label, dry_run=dry_run, background=background)
    if in_kernel:
        return render.TextDisplayProgress(
            total, label=label, dry_run=dry_run, background=background
        )
    if background:
        return None  # a terminal: lines from a thread would land in the prompt
    return render.PrintProgress(sys.stdout, label=label)


def background_line(label: str, total: int, dest: str | None) -> str:
    """What a background send says when it starts."""
    name = dest or "the job shown below"
    return (
        f"{label}: sending {total:,} events in the background -> {name} "
        "(.status, .progress, .wait(), .result(), .cancel(); %cms last when done)"
    )


def close_when_done(job: SendJob, renderer: Callable[[Progress], None], dest: str | None) -> None:
    """When a background job is done, its renderer closes with the result's summary line."""
    finish = getattr(renderer, "finish", None)
    if not callable(finish):
        return
    name = f"{dest}.result()" if dest else "cms_magic.last_result()"

    def done(finished: SendJob) -> None:
        if finished.status in ("done", "cancelled"):
            finish(finished.result(), name=name)

    job.add_done_callback(done)


def preview_text(preview: Mapping[str, Any] | None) -> str:
    """The first request of a dry run: method, URL, headers (Authorization masked), body."""
    if not preview:
        return "(no request would be sent: no event passed validation)"
    lines = [
        f"first request: {preview['method']} {preview['url']} ({preview['body_bytes']:,} bytes)"
    ]
    lines += [f"  {name}: {value}" for name, value in preview["headers"].items()]
    lines.append(f"body: {preview['body_preview']}")
    return "\n".join(lines)
