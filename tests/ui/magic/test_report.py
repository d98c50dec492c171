"""What a cell shows while it sends: one widget bar, a text line, or plain lines."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from cms_magic import Progress, emulator
from cms_magic.ui.magic import report
from cms_magic.ui.render import PrintProgress, WidgetProgress
from tests.ui.magic.support import run, shown_text


def test_widget_progress_shows_one_bar_updated_through_traits(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    run(shell, "%config CmsMagic.progress = 'widget'")
    run(shell, "big = pd.DataFrame({'content': [str(i) for i in range(250)]})")
    ran = run(shell, f"%cms_event r --df big --name n --endpoint {emu.url}")
    assert ran.error is None, ran.stderr
    widgets = [o for o in ran.outputs if "application/vnd.jupyter.widget-view+json" in o]
    assert len(widgets) == 1
    assert len(ran.outputs) == 1  # one display in all: no second bar, no clear_output
    # ... updated in place when done: its plain-text form becomes the summary line
    (update,) = ran.updates
    assert "250/250 events accepted" in update["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in update


def test_widget_renderer_from_a_worker_thread(shell: InteractiveShell) -> None:
    def snapshot(done: int, *, finished: bool = False, rejected: int = 0) -> Progress:
        return Progress(10, done, done - rejected, rejected, 10 - done, 0, 1, 0, 0.5, finished)

    with capture_output() as captured:
        bar = WidgetProgress(10, label="here", background=True)
    assert len(captured.outputs) == 1
    worker = threading.Thread(target=bar, args=(snapshot(4),))
    worker.start()
    worker.join()
    assert (bar.bar.value, bar.bar.max) == (4, 10)
    assert shown_text(bar.status.value).startswith("here: 4/10 events")
    bar(snapshot(10, finished=True, rejected=1))
    assert bar.bar.value == 10
    assert bar.bar.bar_style == "warning"
    assert shown_text(bar.status.value) == "here: " + snapshot(10, finished=True, rejected=1).line()
    assert not bar.closed.is_set()
    closing = threading.Thread(target=bar.finish, args=("the summary line",))
    closing.start()
    closing.join()
    assert bar.closed.is_set()
    assert shown_text(bar.status.value) == "here: the summary line"
    bar(snapshot(10, finished=True))  # a late snapshot does not replace the last words
    assert shown_text(bar.status.value) == "here: the summary line"


def test_a_background_send_closes_its_bar_with_the_results_summary(
    shell: InteractiveShell,
    emu: emulator.EmulatorServer,
    creds: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Any] = []
    real = report.renderer

    def keep(*args: Any, **kwargs: Any) -> Any:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(report, "renderer", keep)
    run(shell, "%config CmsMagic.progress = 'widget'")
    run(shell, "mixed = pd.DataFrame({'content': ['ok', '', 'fine']})")
    ran = run(
        shell,
        f"%cms_event job --df mixed --name n --content-col content --background "
        f"--endpoint {emu.url}",
    )
    assert ran.error is None, ran.stderr
    (bar,) = made
    assert isinstance(bar, WidgetProgress)
    assert bar.closed.wait(10)  # set by the job's done callback, in the library's thread
    result = shell.user_ns["job"].result()
    assert shown_text(bar.status.value) == f"{emu.url}: {result.summary('job.result()')}"
    assert shown_text(bar.status.value).endswith(
        "2/3 events accepted in " + f"{result.elapsed:.1f} s; 1 rejected -> job.result().failed()"
    )
    assert bar.bar.bar_style == "warning"


def test_text_progress_only_for_sends_that_last() -> None:
    class Stream:
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> int:
            self.text += text
            return len(text)

        def flush(self) -> None:
            pass

    stream = Stream()
    printer = PrintProgress(stream, label="x")  # type: ignore[arg-type]
    printer(Progress(5, 1, 1, 0, 4, 0, 1, 0, 0.1))
    printer(Progress(5, 5, 5, 0, 0, 0, 1, 0, 0.2, finished=True))
    assert stream.text == ""
