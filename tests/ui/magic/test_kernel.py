"""The magic in a real kernel, and what loading it costs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest


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

    def receive_until(found: Callable[[], bool]) -> None:
        """Read iopub messages until ``found()`` (a background job's last words arrive from
        its done callback, which may run just after ``job.wait()`` returned)."""
        while not found():
            seen.append(client.get_iopub_msg(timeout=30))

    try:
        # 4 requests per second: the background sends outlast their cells
        execute(
            "%load_ext cms_magic\n%config CmsMagic.qps = 4\nimport pandas as pd\n"
            "df = pd.DataFrame({'content': [str(i) for i in range(300)]})"
        )
        cell = execute("%cms_event r --df df --name n --endpoint local")
        assert len(of(cell, "display_data")) == 1  # one bar
        assert "300/300 events accepted" in of(cell, "stream")[-1]["text"]

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

        receive_until(lambda: "events accepted" in later()[label_id].get("value", ""))
        assert later()[bar_id]["value"] == 300
        assert later()[bar_id]["bar_style"] == "success"
        # the bar closes with the result's own summary line
        assert later()[label_id]["value"].startswith(
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
