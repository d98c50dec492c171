"""The renderers: a bar that fits its container, shows an ETA, and turns into the summary."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from cms_magic.progress import Progress
from cms_magic.results import SendResult
from cms_magic.ui.render import PrintProgress, TextDisplayProgress, TqdmProgress, WidgetProgress
from tests.results_support import make_result


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip: Any = InteractiveShell.instance(config=config)
    yield ip
    ip.history_manager.end_session()
    InteractiveShell.clear_instance()


def result(*codes: int, cancelled: bool = False) -> SendResult:
    return make_result(*codes, resender=True, cancelled=cancelled)


def snapshot(done: int, total: int = 4, *, finished: bool = False) -> Progress:
    return Progress(total, done, done, 0, total - done, 0, 1, 0, 0.5, finished)


def test_the_widget_fits_its_container_and_its_status_wraps(shell: InteractiveShell) -> None:
    with capture_output():
        bar = WidgetProgress(4, label="here")
    box = bar.box.layout
    assert (box.width, box.max_width, box.flex_flow) == ("100%", "100%", "row wrap")
    assert bar.bar.layout.width == "auto"  # not a fixed width that clips at ~1000 px
    assert bar.bar.layout.flex == "0 1 360px"
    assert type(bar.status).__name__ == "HTML"  # a Label never wraps: it clips
    assert "white-space:normal" in bar.status.value
    assert bar.text == "here: starting, 4 events"


def test_the_widget_shows_the_eta_and_plurals(shell: InteractiveShell) -> None:
    with capture_output():
        bar = WidgetProgress(4, label="here")
    bar(snapshot(1))
    assert bar.text == "here: 1/4 events, 1 request, 2 events/s, ETA 1.5s"
    assert bar.status.value.endswith(">here: 1/4 events, 1 request, 2 events/s, ETA 1.5s</span>")


def test_the_widget_turns_into_the_summary_line_when_the_send_ends(
    shell: InteractiveShell,
) -> None:
    with capture_output() as captured:
        bar = WidgetProgress(3, label="here")
    assert len(captured.outputs) == 1
    bar(snapshot(3, 3, finished=True))
    done = result(0, 0, 1)
    closing = threading.Thread(target=bar.finish, args=(done,), kwargs={"name": "r"})
    closing.start()  # a background job's done callback runs in the library's thread
    closing.join()
    assert bar.closed.is_set()
    assert bar.text == f"here: {done.summary('r')}"
    assert bar.text.endswith("1 rejected -> r.failed()")
    assert "-&gt; r.failed()" in bar.status.value  # escaped in the HTML
    assert (bar.bar.description, bar.bar.bar_style) == ("done", "warning")
    bar(snapshot(1, 3))  # a late snapshot does not replace the last words
    bar.finish("something else")
    assert bar.text == f"here: {done.summary('r')}"


def test_an_interrupted_send_says_so_and_how_to_resume(shell: InteractiveShell) -> None:
    with capture_output():
        bar = WidgetProgress(3, label="here")
    assert bar.bar.description == "sending"
    bar(snapshot(1, 3, finished=True))
    assert bar.bar.bar_style == "warning"  # the frozen orange bar...
    assert bar.bar.description == "done"  # no longer "sending", even with no finish()
    bar.finish(result(0, 2, 2, cancelled=True), name="r", interrupted=True)
    assert bar.bar.description == "interrupted"  # ...now says what happened
    assert bar.text == (
        "here: 1/3 events accepted in 0.5 s; 2 not sent; interrupted -> r.retry() resumes"
    )
    assert (bar.bar.value, bar.bar.max) == (1, 3)


@pytest.mark.parametrize(
    ("codes", "word", "style"),
    [
        ((0, 0), "done", "success"),
        ((1, 1), "failed", "danger"),
        ((4, 4), "dry run", "success"),
    ],
)
def test_the_bar_says_how_the_send_ended(
    shell: InteractiveShell, codes: tuple[int, ...], word: str, style: str
) -> None:
    with capture_output():
        bar = WidgetProgress(len(codes), label="here")
    bar.finish(result(*codes))
    assert (bar.bar.description, bar.bar.bar_style) == (word, style)
    cancelled = result(0, 2, cancelled=True)
    with capture_output():
        other = WidgetProgress(2, label="here")
    other.finish(cancelled, name="job.result()")
    assert other.bar.description == "cancelled"
    assert other.text.endswith("; cancelled -> job.result().retry() resumes")


def test_the_text_line_turns_into_the_summary(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        line = TextDisplayProgress(2, label="here")
        line(snapshot(2, 2, finished=True))
        line.finish(result(0, 0), name="r")
    shown = [o.data["text/plain"] for o in captured.outputs]
    assert shown[0] == "here: starting, 2 events"
    assert shown[-1] == "here: 2/2 events accepted in 0.5 s"
    assert len(shown) == 3  # the first display and two updates of it, no new line


def test_plain_lines_end_with_the_summary() -> None:
    stream = io.StringIO()
    printer = PrintProgress(stream, label="x")
    printer(snapshot(1))  # held back: sends that end within a second print one line
    printer(snapshot(4, finished=True))
    printer.finish(result(0, 2, cancelled=True), name="r", interrupted=True)
    assert stream.getvalue() == (
        "x: 1/2 events accepted in 0.5 s; 1 not sent; interrupted -> r.retry() resumes\n"
    )


def test_the_tqdm_bar_counts_whole_events(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = TqdmProgress(desc="cms-event")
    bar(Progress(5, 1, 1, 0, 4, 0, 1, 0, 0.5))
    bar(Progress(5, 5, 5, 0, 0, 0, 2, 0, 1.0, finished=True))
    text = err.getvalue()
    assert "5.00" not in text  # not 0.00/5.00
    assert "5/5" in text
    assert "2 requests" in text
