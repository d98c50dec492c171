"""``%cms events|count|histogram`` (issue 15) against a real emulator on 127.0.0.1: events put
first with cms_magic.send, then read back through the magic as a user would."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import cms_magic
from cms_magic.emulator import DEMO_ACCESS_KEY_SECRET, EmulatorServer
from cms_magic.ui.magic.subcommands import CMS_HELP
from tests.ui.magic.support import CANARY, CANARY_ID, assert_usage_error, run

_SVG = "{http://www.w3.org/2000/svg}"


def _put(server: EmulatorServer) -> None:
    """Five events: three 'deploy' (group 7, one with CJK content), two 'alarm' (group 8)."""
    frame = pd.DataFrame(
        {
            "name": ["deploy", "deploy", "deploy", "alarm", "alarm"],
            "content": ["release 1.4", "部署 完成 <ok>", "release 1.5", "disk full", "cpu high"],
            "group_id": [7, 7, 7, 8, 8],
        }
    )
    result = cms_magic.send(
        frame,
        name_col="name",
        content_col="content",
        group_id_col="group_id",
        endpoint=server.url,
        credentials=server.credentials,
    )
    assert result.outcome == "ok", result.summary()


@pytest.fixture
def stored(emu: EmulatorServer, creds: None) -> EmulatorServer:
    _put(emu)
    return emu


def test_events_filters_and_the_summary_line(
    shell: InteractiveShell, stored: EmulatorServer
) -> None:
    ran = run(shell, f"%cms events --name deploy --since 1h --endpoint {stored.url}")
    assert ran.error is None, ran.stderr
    frame = ran.value
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns[:5]) == ["id", "time", "name", "group_id", "content"]
    assert set(frame["name"]) == {"deploy"}
    assert len(frame) == 3
    assert "部署 完成 <ok>" in set(frame["content"])
    assert str(frame["time"].dt.tz) == "UTC"
    line = next(x for x in ran.stdout.splitlines() if x.startswith(f"{stored.url}: "))
    assert line.startswith(f"{stored.url}: 3 events, since ")
    assert "(1h) until now" in line

    by_group = run(shell, f"%cms events --group-id 8 --endpoint {stored.url}").value
    assert set(by_group["content"]) == {"disk full", "cpu high"}
    searched = run(shell, f"%cms events --search 'release' --endpoint {stored.url}").value
    assert set(searched["content"]) == {"release 1.4", "release 1.5"}
    limited = run(shell, f"%cms events --limit 2 --endpoint {stored.url}").value
    assert len(limited) == 2


def test_tz_gives_times_in_that_zone(shell: InteractiveShell, stored: EmulatorServer) -> None:
    ran = run(shell, f"%cms events --tz Asia/Shanghai --endpoint {stored.url}")
    assert ran.error is None, ran.stderr
    assert str(ran.value["time"].dt.tz) == "Asia/Shanghai"


def test_an_empty_result_is_an_empty_frame(shell: InteractiveShell, stored: EmulatorServer) -> None:
    ran = run(shell, f"%cms events --name nothing-here --endpoint {stored.url}")
    assert ran.error is None, ran.stderr
    assert isinstance(ran.value, pd.DataFrame)
    assert ran.value.empty
    assert list(ran.value.columns) == ["id", "time", "name", "group_id", "content"]
    assert ": 0 events, since the start until now" in ran.stdout


def test_dest_receives_the_frame_and_the_cell_shows_none(
    shell: InteractiveShell, stored: EmulatorServer
) -> None:
    ran = run(shell, f"%cms events ev --name alarm --endpoint {stored.url}")
    assert ran.error is None, ran.stderr
    assert ran.value is None
    frame = shell.user_ns["ev"]
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 2
    assert ran.stdout.rstrip().endswith("-> ev")


def test_the_local_endpoint_and_the_configured_target(shell: InteractiveShell) -> None:
    from cms_magic import emulator

    server = emulator.embedded()
    _put_local = cms_magic.send(
        pd.DataFrame({"content": ["a", "b"]}), name="local-one", endpoint="local"
    )
    assert _put_local.outcome == "ok"
    assert server.url
    ran = run(shell, "%cms events --name local-one --endpoint local")
    assert ran.error is None, ran.stderr
    assert len(ran.value) == 2
    assert "the local emulator: 2 events" in ran.stdout
    run(shell, "%config CmsMagic.endpoint = 'local'")
    assert run(shell, "%cms count --name local-one").value == 2


def test_count_and_count_by_name(shell: InteractiveShell, stored: EmulatorServer) -> None:
    ran = run(shell, f"%cms count --endpoint {stored.url}")
    assert ran.error is None, ran.stderr
    assert ran.value == 5
    assert f"{stored.url}: 5 events" in ran.stdout
    assert run(shell, f"%cms count --name deploy --endpoint {stored.url}").value == 3
    per_name = run(shell, f"%cms count n --by-name --endpoint {stored.url}")
    assert per_name.value is None
    frame = shell.user_ns["n"]
    assert dict(zip(frame["name"], frame["count"], strict=True)) == {"deploy": 3, "alarm": 2}
    assert "5 events (2 names)" in per_name.stdout


def test_histogram_shows_an_svg_chart_and_stores_the_frame(
    shell: InteractiveShell, stored: EmulatorServer
) -> None:
    ran = run(shell, f"%cms histogram h --name deploy --since 1d --endpoint {stored.url}")
    assert ran.error is None, ran.stderr
    frame = shell.user_ns["h"]
    assert list(frame.columns) == ["start", "end", "count"]
    assert int(frame["count"].sum()) == 3
    charts = [o for o in ran.outputs if "image/svg+xml" in o]
    assert len(charts) == 1
    svg = charts[0]["image/svg+xml"]
    root = ET.fromstring(svg)  # noqa: S314 - our own output, checked for well-formedness
    bars = [r for r in root.iter(f"{_SVG}rect") if r.get("class") == "bar"]
    assert len(bars) == len(frame)
    assert "named deploy" in svg
    assert "#" in charts[0]["text/plain"] or "(no buckets)" in charts[0]["text/plain"]
    assert "3 events in" in ran.stdout


def test_histogram_title_is_escaped(shell: InteractiveShell, stored: EmulatorServer) -> None:
    ran = run(shell, f"%cms histogram --name '<b>&x' --endpoint {stored.url}")
    assert ran.error is None, ran.stderr
    svg = next(o["image/svg+xml"] for o in ran.outputs if "image/svg+xml" in o)
    assert "<b>" not in svg
    assert "&lt;b&gt;&amp;x" in svg
    ET.fromstring(svg)  # noqa: S314 - well-formed


def test_histogram_level_is_checked_by_the_core(
    shell: InteractiveShell, stored: EmulatorServer
) -> None:
    ran = run(shell, f"%cms histogram --level loud --endpoint {stored.url}")
    message = assert_usage_error(ran, "--level 'loud': must be one of CRITICAL, WARN, INFO")
    assert "UsageError: %cms histogram: --level" in message
    assert run(shell, f"%cms histogram --level info --endpoint {stored.url}").error is None


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("%cms events --since 1y", "--since '1y': must be a datetime, an ISO 8601 time"),
        ("%cms events --since 1h --until 2h", "--since '1h': is after until='2h'"),
        ("%cms count --name ''", "--name '': must be a non-empty string"),
        ("%cms events --limit 0", "--limit 0: must be an integer >= 1"),
        ("%cms events --group-id x", "%cms events: argument --group-id: invalid int value"),
        ("%cms events --endpoint public", "--endpoint"),
        ("%cms events 1abc", "DEST must be a Python name"),
        ("%cms events --internal", "unrecognized arguments: --internal"),
    ],
)
def test_errors_are_said_in_flags(
    shell: InteractiveShell, stored: EmulatorServer, line: str, needle: str
) -> None:
    if "--endpoint" not in line:
        line = f"{line} --endpoint {stored.url}"
    assert_usage_error(run(shell, line), needle)


def test_a_refused_signature_is_one_line_without_the_secret(
    shell: InteractiveShell, emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", CANARY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CANARY)
    ran = run(shell, f"%cms events --endpoint {emu.url}")
    message = assert_usage_error(ran, "%cms events: DescribeCustomEventAttribute: ")
    assert CANARY not in ran.shown
    assert CANARY not in message


def test_a_missing_permission_names_the_ram_action(shell: InteractiveShell, creds: None) -> None:
    from tests.ui.cli._helpers import RefusingOpenApi

    with RefusingOpenApi("NoPermission", 403) as url:
        for command, action in (
            ("events", "DescribeCustomEventAttribute"),
            ("count", "DescribeCustomEventCount"),
            ("histogram", "DescribeCustomEventHistogram"),
        ):
            ran = run(shell, f"%cms {command} --endpoint {url}")
            assert_usage_error(ran, f"missing RAM permission cms:{action}", "request id REQ-1")


def test_no_secret_in_any_output(shell: InteractiveShell, stored: EmulatorServer) -> None:
    shown: list[str] = []
    for line in (
        f"%cms events --endpoint {stored.url}",
        f"%cms count --by-name --endpoint {stored.url}",
        f"%cms histogram --endpoint {stored.url}",
        "%cms events --help",
    ):
        ran = run(shell, line)
        assert ran.error is None, (line, ran.stderr)
        shown.append(ran.shown + repr(ran.value))
    everything = "\n".join(shown)
    assert DEMO_ACCESS_KEY_SECRET not in everything


def test_help_lists_the_read_commands(shell: InteractiveShell) -> None:
    helped = run(shell, "%cms help").stdout
    for command in ("events", "count", "histogram"):
        assert f"%cms {command}" in helped
    assert "%cms events" in CMS_HELP
    ran = run(shell, "%cms events --help")
    for flag in ("--name", "--group-id", "--since", "--until", "--search", "--limit"):
        assert flag in ran.stdout
    assert "--endpoint" in ran.stdout
    assert "--internal" not in ran.stdout
    assert "--level" in run(shell, "%cms histogram --help").stdout
    assert "--by-name" in run(shell, "%cms count --help").stdout


def test_a_long_read_shows_progress_then_the_summary(
    shell: InteractiveShell, stored: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cms_magic import readback

    seen: list[Any] = []
    real = readback.query_events

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("progress"))
        return real(*args, page_size=2, **kwargs)

    monkeypatch.setattr(readback, "query_events", watched)
    ran = run(shell, f"%cms events --endpoint {stored.url}")
    assert ran.error is None, ran.stderr
    assert len(ran.value) == 5
    assert callable(seen[0])
    assert seen[0].text.endswith("5 events, since the start until now")


def test_in_a_kernel_the_line_turns_into_the_summary_and_the_chart_is_svg() -> None:
    """What a frontend receives from the read-back commands in a real kernel."""
    manager = pytest.importorskip("jupyter_client.manager")
    kernel, client = manager.start_new_kernel(kernel_name="python3")

    def execute(code: str) -> list[dict[str, Any]]:
        msg_id = client.execute(code)
        mine: list[dict[str, Any]] = []
        while True:
            msg = client.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") == msg_id:
                mine.append(msg)
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return mine

    def of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
        return [m["content"] for m in messages if m["msg_type"] == kind]

    try:
        execute("%load_ext cms_magic\nimport pandas as pd")
        execute("df = pd.DataFrame({'content': ['a', 'b', 'c']})")
        execute("%cms_event r --df df --name k --endpoint local")
        cell = execute("%cms events --name k --endpoint local")
        (line,) = of(cell, "display_data")
        assert line["data"]["text/plain"].startswith("the local emulator: reading")
        (last,) = of(cell, "update_display_data")
        assert last["transient"]["display_id"] == line["transient"]["display_id"]
        assert last["data"]["text/plain"].startswith("the local emulator: 3 events, since ")
        (value,) = of(cell, "execute_result")
        assert "text/html" in value["data"]  # the DataFrame
        assert of(cell, "error") == []

        cell = execute("%cms histogram h --name k --endpoint local")
        charts = [d for d in of(cell, "display_data") if "image/svg+xml" in d["data"]]
        assert len(charts) == 1
        assert charts[0]["data"]["image/svg+xml"].count('class="bar"') >= 1
        assert of(cell, "execute_result") == []
        cell = execute("print(int(h['count'].sum()))")
        assert of(cell, "stream")[0]["text"] == "3\n"
    finally:
        client.stop_channels()
        kernel.shutdown_kernel(now=True)


def test_no_credentials_is_one_short_line(shell: InteractiveShell) -> None:
    ran = run(shell, "%cms events --region cn-hangzhou")
    message = assert_usage_error(ran, "%cms events: no Alibaba Cloud credentials found")
    assert "Looked in" not in message
    assert "provide credentials through the environment" in message


def test_ctrl_c_is_one_line(
    shell: InteractiveShell, stored: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cms_magic import readback
    from cms_magic.ui.magic.readback import ReadInterrupted

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(readback, "query_events", interrupted)
    shell.user_ns["ev"] = "before"
    ran = run(shell, f"%cms events ev --endpoint {stored.url}")
    assert isinstance(ran.error, ReadInterrupted)
    assert str(ran.error) == "%cms events: interrupted, the read was cancelled; ev was not changed"
    assert shell.user_ns["ev"] == "before"
