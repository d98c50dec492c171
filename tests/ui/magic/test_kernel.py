"""The magic in a real kernel, and what loading it costs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.ui.magic.support import shown_text


def test_loading_does_not_import_the_sender_stack() -> None:
    code = (
        "import IPython, pandas, sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'cms_magic')\n"
        "print(' '.join(sorted(m for m in ('httpx', 'tenacity', 'ipywidgets', 'cms_magic.sending.client')"
        " if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""


def test_in_a_kernel_progress_keeps_updating_after_the_cell() -> None:
    """What a frontend receives: widget and display updates that outlive their cell."""
    manager = pytest.importorskip("jupyter_client.manager")
    kernel, client = manager.start_new_kernel(kernel_name="python3")
    seen: list[dict[str, Any]] = []  # every iopub message, whatever cell it belongs to

    def execute(code: str) -> list[dict[str, Any]]:
        msg_id = client.execute(code)
        mine: list[dict[str, Any]] = []
        while True:
            msg = client.get_iopub_msg(timeout=30)
            seen.append(msg)
            if msg["parent_header"].get("msg_id") == msg_id:
                mine.append(msg)
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return mine

    def of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
        return [m["content"] for m in messages if m["msg_type"] == kind]

    def widget_state(shown: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The bar's and the label's state (opened, then every update) of a displayed box."""
        box = shown["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        opened = {m["comm_id"]: m["data"]["state"] for m in of(seen, "comm_open")}
        bar, label = (ref.removeprefix("IPY_MODEL_") for ref in opened[box]["children"])
        states = {bar: dict(opened[bar]), label: dict(opened[label])}
        for update in of(seen, "comm_msg"):
            if update["comm_id"] in states:
                states[update["comm_id"]].update(update["data"]["state"])
        return states[bar], states[label]

    def receive_until(found: Callable[[], bool]) -> None:
        """Read iopub messages until ``found()`` (a background job's last words arrive from
        its done callback, which may run just after ``job.wait()`` returned)."""
        while not found():
            seen.append(client.get_iopub_msg(timeout=30))

    try:
        # 4 requests per second: the background sends outlast their cells
        execute(
            "%load_ext cms_magic\n%config CmsMagic.qps = 4\nimport pandas as pd\nimport cms_magic\n"
            "df = pd.DataFrame({'content': [str(i) for i in range(300)]})"
        )
        cell = execute("%cms_event r --df df --name n --endpoint local")
        (shown,) = of(cell, "display_data")  # one bar
        # said once: the bar turns into the summary; no summary line, no Out[] repr
        assert [s["text"] for s in of(cell, "stream")] == []
        assert of(cell, "execute_result") == []
        label = shown_text(widget_state(shown)[1]["value"])
        assert label.startswith("the local emulator: 300/300 events accepted in ")
        cell = execute("print(r.ok)")
        assert of(cell, "stream")[0]["text"] == "True\n"
        cell = execute("%cms_event --df df --name n --endpoint local")
        assert [s["text"] for s in of(cell, "stream")] == []
        assert of(cell, "execute_result") == []
        cell = execute("print(type(_).__name__, _ is cms_magic.last_result())")
        assert of(cell, "stream")[0]["text"] == "SendResult True\n"

        cell = execute("%cms_event job --df df --name n --endpoint local --background")
        (shown,) = of(cell, "display_data")
        box = shown["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        done = len(seen)
        execute("job.wait(20)")
        opened = {m["comm_id"]: m["data"]["state"] for m in of(seen, "comm_open")}
        bar_id, label_id = (ref.removeprefix("IPY_MODEL_") for ref in opened[box]["children"])

        def later() -> dict[str, dict[str, Any]]:
            states: dict[str, dict[str, Any]] = {bar_id: {}, label_id: {}}
            for update in of(seen[done:], "comm_msg"):
                if update["comm_id"] in states:
                    states[update["comm_id"]].update(update["data"]["state"])
            return states

        receive_until(lambda: "events accepted" in shown_text(later()[label_id].get("value", "")))
        assert later()[bar_id]["value"] == 300
        assert later()[bar_id]["bar_style"] == "success"
        # the bar closes with the result's own summary line
        assert shown_text(later()[label_id]["value"]).startswith(
            "the local emulator: 300/300 events accepted in "
        )

        cell = execute(
            "%config CmsMagic.progress = 'text'\n"
            "%cms_event job2 --df df --name n --endpoint local --background"
        )
        (line,) = of(cell, "display_data")
        display_id = line["transient"]["display_id"]
        done = len(seen)
        execute("job2.wait(20)")

        def updates() -> list[dict[str, Any]]:
            return [
                u
                for u in of(seen[done:], "update_display_data")
                if u["transient"]["display_id"] == display_id
            ]

        receive_until(lambda: bool(updates()) and "accepted" in updates()[-1]["data"]["text/plain"])
        assert updates()[-1]["data"]["text/plain"].startswith(
            "the local emulator: 300/300 events accepted in "
        )

        execute("mixed = pd.DataFrame({'content': ['ok', '']})")
        cell = execute(
            "%cms_event r --df mixed --name n --content-col content --endpoint local --raise"
        )
        (error,) = of(cell, "error")
        assert error["ename"] == "EventsNotAcceptedError"
        assert len(error["traceback"]) == 1  # one line, no traceback
        assert "1/2 events not accepted" in error["evalue"]

        cell = execute("%cms_event r --df nope --endpoint local")
        (usage,) = of(cell, "stream")
        assert usage["name"] == "stderr"
        assert usage["text"].strip() == (
            "UsageError: --df nope: no such variable, not a DataFrame; DataFrames here: df, mixed"
        )
    finally:
        client.stop_channels()
        kernel.shutdown_kernel(now=True)


def test_in_a_kernel_ctrl_c_is_one_line() -> None:
    """Interrupting the kernel during a send: one line (accepted, not sent, how to resume),
    no traceback, the partial result in the destination variable."""
    manager = pytest.importorskip("jupyter_client.manager")
    kernel, client = manager.start_new_kernel(kernel_name="python3")
    seen: list[dict[str, Any]] = []

    def of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
        return [m["content"] for m in messages if m["msg_type"] == kind]

    def execute(code: str) -> list[dict[str, Any]]:
        msg_id = client.execute(code)
        mine: list[dict[str, Any]] = []
        while not any(
            m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" for m in mine
        ):
            msg = client.get_iopub_msg(timeout=30)
            seen.append(msg)
            if msg["parent_header"].get("msg_id") == msg_id:
                mine.append(msg)
        return mine

    def bar_state(shown: dict[str, Any]) -> dict[str, Any]:
        box = shown["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
        opened = {m["comm_id"]: m["data"]["state"] for m in of(seen, "comm_open")}
        bar = opened[box]["children"][0].removeprefix("IPY_MODEL_")
        state = dict(opened[bar])
        for update in of(seen, "comm_msg"):
            if update["comm_id"] == bar:
                state.update(update["data"]["state"])
        return state

    try:
        execute(
            "%load_ext cms_magic\n%config CmsMagic.qps = 4\nimport pandas as pd\n"
            "big = pd.DataFrame({'content': [str(i) for i in range(4000)]})"
        )
        msg_id = client.execute("%cms_event big_r --df big --name n --endpoint local")
        mine: list[dict[str, Any]] = []

        def read_mine() -> None:
            msg = client.get_iopub_msg(timeout=30)
            seen.append(msg)
            if msg["parent_header"].get("msg_id") == msg_id:
                mine.append(msg)

        while not of(mine, "display_data"):
            read_mine()
        (bar_shown,) = of(mine, "display_data")
        while not bar_state(bar_shown).get("value"):  # the first rows are accepted: interrupt
            read_mine()
        kernel.interrupt_kernel()
        while not any(
            m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" for m in mine
        ):
            read_mine()
        (error,) = of(mine, "error")
        assert error["ename"] == "SendInterrupted"
        assert len(error["traceback"]) == 1  # one line, no traceback
        (line,) = error["traceback"]
        assert line.startswith("the local emulator: ")
        assert "/4,000 events accepted" in line
        assert "not sent; interrupted" in line
        assert "big_r.retry()" in line
        assert bar_state(bar_shown)["description"] == "interrupted"
        cell = execute("print(big_r.cancelled, 0 < big_r.accepted < 4000)")
        assert of(cell, "stream")[0]["text"] == "True True\n"
        # said once: nothing else in the interrupted cell's output (checked last)
        assert [s["text"] for s in of(mine, "stream")] == []
    finally:
        client.stop_channels()
        kernel.shutdown_kernel(now=True)
