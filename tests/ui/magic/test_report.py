"""What a cell shows while it sends: one widget bar, a text line, or plain lines."""

from __future__ import annotations

import threading

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from cms_magic import Progress, emulator
from cms_magic.ui.render import PrintProgress, WidgetProgress, final_line
from tests.ui.magic.support import run


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
    assert bar.status.value.startswith("here: 4/10 events")
    bar(snapshot(10, finished=True, rejected=1))
    assert bar.bar.value == 10
    assert bar.bar.bar_style == "warning"
    assert bar.status.value == "here: 9/10 events accepted in 0.5 s; 1 rejected"
    assert final_line(snapshot(10, finished=True), dry_run=True).startswith("dry run: 10/10")


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
