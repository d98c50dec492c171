"""``%%cms_event`` end to end: parse, send through the core, bind the result, one summary line."""

from __future__ import annotations

import _thread
import socket
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import cms_magic
from cms_magic import SendJob, emulator, last_result
from cms_magic.credentials.static import Credentials
from cms_magic.errors import MappingError
from cms_magic.results import SendResult
from cms_magic.ui.magic.magics import CmsMagic, EventsNotAcceptedError
from tests.ui.magic.support import assert_usage_error, magic, run


def test_loading_twice_is_harmless_and_unload_removes_the_magics(
    shell: InteractiveShell,
) -> None:
    first = magic(shell)
    run(shell, "%load_ext cms_magic")
    cms_magic.load_ipython_extension(shell)
    assert magic(shell) is first
    assert sum(isinstance(c, CmsMagic) for c in shell.configurables) == 1

    run(shell, "%unload_ext cms_magic")
    assert cast(Any, shell).find_cell_magic("cms_event") is None
    assert cast(Any, shell).find_line_magic("cms") is None
    assert not any(isinstance(c, CmsMagic) for c in shell.configurables)
    assert type(run(shell, "%cms help").error) is UsageError

    run(shell, "%load_ext cms_magic")
    assert "%cms regions" in run(shell, "%cms help").stdout


def test_help_lists_every_option(shell: InteractiveShell) -> None:
    ran = run(shell, "%%cms_event?")
    options = [
        "--df",
        "--raw",
        "--json",
        "--name",
        "--name-col",
        "--content-col",
        "--content-template",
        "--group-id",
        "--group-id-col",
        "--time-col",
        "--tz",
        "--region",
        "--internal",
        "--endpoint",
        "--profile",
        "--qps",
        "--quota",
        "--concurrency",
        "--timeout",
        "--max-retries",
        "--retry-ambiguous",
        "--journal",
        "--confirm",
        "--dry-run",
        "--background",
        "--quiet",
        "--raise",
        "dest_var",
    ]
    for option in options:
        assert option in ran.stdout, option
    parser = cast(Any, shell).find_cell_magic("cms_event").parser
    declared = {s for action in parser._actions for s in action.option_strings}
    assert declared == {o for o in options if o.startswith("--")}


def test_df_rows_go_to_the_destination_variable(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(shell, f"%cms_event res --df df --name-col kind --endpoint {emu.url}")
    assert ran.error is None
    result = shell.user_ns["res"]
    assert isinstance(result, SendResult)
    assert result.ok
    assert list(result.events["status"]) == ["accepted", "accepted"]
    assert ran.stdout.strip() == f"{emu.url}: 2/2 events accepted in {result.elapsed:.1f} s"
    assert [e["name"] for e in emu.events()] == ["a", "b"]
    assert ran.value is None  # nothing displayed when a variable receives it


def test_df_cell_form_with_mapping_flags(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    run(shell, "host = 'not expanded: no_var_expand'")
    run(
        shell,
        "frame = pd.DataFrame({'host': ['h1'], 'msg': ['up'], 'g': [7], "
        "'at': [pd.Timestamp('2024-05-01 12:00:00')]})",
    )
    ran = run(
        shell,
        f"%%cms_event r --df frame --name boot --content-template '{{host}}: {{msg}}' "
        f"--group-id-col g --time-col at --tz Asia/Shanghai --endpoint {emu.url}\n"
        "# the rows of frame\n",
    )
    assert ran.error is None, ran.stderr
    assert emu.events() == [
        {"content": "h1: up", "groupId": 7, "name": "boot", "time": "20240501T120000.000+0800"}
    ]


def test_the_summary_is_said_once_and_the_result_is_underscore(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(shell, f"%cms_event --df df --name n --endpoint {emu.url}")
    assert ran.error is None, ran.stderr
    result = last_result()
    assert isinstance(result, SendResult)
    # one line: the summary; no Out[] repr repeating it
    assert ran.stdout == f"{emu.url}: 2/2 events accepted in {result.elapsed:.1f} s\n"
    assert ran.value is None
    assert ran.outputs == []
    assert shell.user_ns["_"] is result  # kept as IPython keeps a shown value
    assert cast(Any, shell).user_ns["Out"][cast(Any, shell).execution_count - 1] is result
    assert run(shell, "%cms last").value is result

    # a line-magic assignment gets None (the help says to name the variable instead)
    ran = run(shell, f"r = %cms_event --df df --name n --endpoint {emu.url}")
    assert shell.user_ns["r"] is None
    assert ran.stdout.count("events accepted") == 1


def test_a_bar_that_can_finish_turns_into_the_summary(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    """In a kernel the bar (a widget, or a text line) is told the summary; nothing else
    says it."""
    from cms_magic.ui.magic import report

    finished: list[str] = []

    class Bar:
        def __call__(self, progress: object) -> None:
            pass

        def finish(self, result: SendResult, *, name: str) -> None:
            finished.append(result.summary(name))

    original = report.renderer
    try:
        cast(Any, report).renderer = lambda *a, **k: Bar()
        ran = run(shell, f"%cms_event r --df df --name n --endpoint {emu.url}")
    finally:
        cast(Any, report).renderer = original
    assert ran.error is None, ran.stderr
    assert finished == [shell.user_ns["r"].summary("r")]
    assert ran.stdout == ""
    assert ran.outputs == []


def test_dry_run_shows_the_masked_request_and_sends_nothing(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(shell, f"%cms_event r --df df --name n --dry-run --endpoint {emu.url}")
    assert ran.error is None, ran.stderr
    result = shell.user_ns["r"]
    assert list(result.events["status"]) == ["dry_run", "dry_run"]
    assert f"{emu.url}: dry run: 2/2 events would be sent" in ran.stdout
    assert f"first request: POST {emu.url}/event/custom/upload" in ran.stdout
    assert "authorization: LTAI****Demo:<signature>" in ran.stdout
    assert emulator.DEMO_ACCESS_KEY_ID not in ran.stdout
    assert 'body: [{"content":' in ran.stdout
    assert emu.requests() == []


def test_background_returns_a_job_at_once(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    run(shell, "big = pd.DataFrame({'content': [str(i) for i in range(250)]})")
    ran = run(shell, f"%cms_event job --df big --name bg --background --endpoint {emu.url}")
    assert ran.error is None, ran.stderr
    job = shell.user_ns["job"]
    assert isinstance(job, SendJob)
    assert "sending 250 events in the background -> job" in ran.stdout
    assert job.wait(10)
    assert job.result().ok
    assert len(emu.events()) == 250

    ran = run(shell, f"%cms_event --df big --name bg --background --endpoint {emu.url}")
    shown = ran.value
    assert isinstance(shown, SendJob)
    assert shown.wait(10)
    assert "<SendJob done: 250/250 events accepted" in repr(shown)


def test_quiet_prints_nothing(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(shell, f"%cms_event r --df df --name n --quiet --endpoint {emu.url}")
    assert ran.error is None
    assert ran.stdout == ""
    assert ran.outputs == []
    assert shell.user_ns["r"].ok


def test_raise_stops_a_run_when_events_are_not_accepted(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    run(shell, "mixed = pd.DataFrame({'content': ['ok', '']})")
    ran = run(
        shell,
        f"%cms_event r --df mixed --name n --content-col content --raise --endpoint {emu.url}",
    )
    assert isinstance(ran.error, EventsNotAcceptedError)
    assert "Traceback" not in ran.shown
    assert "1/2 events not accepted" in ran.stdout + ran.stderr
    assert shell.user_ns["r"] is ran.error.result  # kept for inspection

    ok = run(shell, f"%cms_event r --df df --name n --raise --endpoint {emu.url}")
    assert ok.error is None


def test_ctrl_c_keeps_the_partial_result(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    run(shell, "%config CmsMagic.qps = 4")
    run(shell, "%config CmsMagic.concurrency = 1")
    run(shell, "big = pd.DataFrame({'content': [str(i) for i in range(1000)]})")

    def interrupt_after_the_first_request() -> None:
        while not emu.requests():
            time.sleep(0.01)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_after_the_first_request, daemon=True).start()
    ran = run(shell, f"%cms_event r --df big --name n --endpoint {emu.url}")
    assert isinstance(ran.error, KeyboardInterrupt)  # a run of cells stops here
    partial = last_result()
    assert isinstance(partial, SendResult)
    assert shell.user_ns["r"] is partial
    assert partial.cancelled
    assert 0 < partial.accepted < 1000
    # one line: what was accepted, what was not sent, how to resume; no traceback
    lines = [line for line in ran.shown.splitlines() if line.strip()]
    assert len(lines) == 1, ran.shown
    (line,) = lines
    assert line == f"{emu.url}: {partial.summary('r', interrupted=True)}"
    assert line.startswith(f"{emu.url}: {partial.accepted:,}/1,000 events accepted")
    assert f"{partial.counts()['not_sent']:,} not sent; interrupted" in line
    assert "r.retry()" in line
    assert "Traceback" not in ran.shown
    assert run(shell, "%cms last").value is partial

    emu.reset()  # no requests: the next interrupt waits for the next send's first one
    threading.Thread(target=interrupt_after_the_first_request, daemon=True).start()
    ran = run(shell, f"%cms_event --df big --name n --endpoint {emu.url}")
    assert isinstance(ran.error, KeyboardInterrupt)
    lines = [line for line in ran.shown.splitlines() if line.strip()]
    assert len(lines) == 1, ran.shown
    assert "cms_magic.last_result().retry()" in lines[0]


def test_failures_are_in_the_result_and_the_summary_says_where(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Credentials("LTAIotherKeyId00001", "another-secret")
    with emulator.serve(credentials=other, qps=0) as refusing:
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIunknownKey00001")
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-secret")
        ran = run(shell, f"%cms_event r --df df --name n --endpoint {refusing.url}")
    assert ran.error is None
    line = ran.stdout.strip()
    assert "0/2 events accepted" in line
    assert "stopped: the service refused the credentials LTAI****0001" in line
    assert line.endswith("-> r.failed()")
    assert not shell.user_ns["r"].ok


def test_an_unreachable_endpoint_leaves_rows_not_sent(shell: InteractiveShell, creds: None) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run(shell, "%config CmsMagic.max_retries = 0")
    ran = run(shell, f"%cms_event r --df df --name n --endpoint http://127.0.0.1:{port}")
    assert ran.error is None
    assert "0/2 events accepted" in ran.stdout
    assert "2 not sent -> r." in ran.stdout  # the result's own pointer, at the variable
    assert ran.stdout.strip().endswith(shell.user_ns["r"].summary("r"))


def test_no_credentials_is_one_line_that_says_how(shell: InteractiveShell) -> None:
    ran = run(shell, "%cms_event r --df df --name n --region cn-hangzhou")
    assert_usage_error(
        ran,
        "no Alibaba Cloud credentials found",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "--profile",
    )


def test_a_profile_is_read_from_the_aliyun_cli_config(
    shell: InteractiveShell, emu: emulator.EmulatorServer, tmp_path: Path
) -> None:
    (tmp_path / ".aliyun").mkdir()
    (tmp_path / ".aliyun" / "config.json").write_text(
        '{"profiles": [{"name": "emu", "mode": "AK", '
        f'"access_key_id": "{emulator.DEMO_ACCESS_KEY_ID}", '
        f'"access_key_secret": "{emulator.DEMO_ACCESS_KEY_SECRET}"}}]}}'
    )
    ran = run(shell, f"%cms_event r --df df --name n --profile emu --endpoint {emu.url}")
    assert ran.error is None, ran.stderr
    assert shell.user_ns["r"].ok
    missing = run(shell, f"%cms_event r --df df --name n --profile nope --endpoint {emu.url}")
    assert_usage_error(missing, "profile 'nope'")


def test_short_errors_false_shows_the_real_exception(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    run(shell, "%config CmsMagic.short_errors = False")
    ran = run(shell, f"%cms_event r --df df --content-col nope --name n --endpoint {emu.url}")
    assert isinstance(ran.error, MappingError)
    assert "Traceback" in ran.stdout + ran.stderr


USER_ERRORS: list[tuple[str, str]] = [
    ("%cms_event r --df df --bogus", "unrecognized arguments: --bogus"),
    ("%cms_event r --df missing --name n --endpoint local", "DataFrames here: df"),
    ("%cms_event r --df base --name n --endpoint local", "--df base: an int, not a DataFrame"),
    ("%cms_event r --df df --name n --content-col nope --endpoint local", "--content-col 'nope'"),
    ("%cms_event r --df df --endpoint local", "--name"),
    ("%cms_event r --df df --name n --tz Nowhere/City --endpoint local", "--tz 'Nowhere/City'"),
    ("%cms_event r --df df --name n --group-id x --endpoint local", "invalid int value"),
    ("%cms_event r --df df --name n --group-id -1 --endpoint local", "--group-id -1: must be"),
    ("%cms_event r --df df --name n --name-col kind --endpoint local", "--name-col 'kind': cannot"),
    ("%%cms_event r --df df --endpoint local\nprint(1)", "comments only"),
    ("%cms_event r --df df --name n --region mars-1", "--region: unknown region 'mars-1'"),
    ("%cms_event r --df df --name n --endpoint http://u:p@h", "user info"),
    (
        "%cms_event r --df df --name n --endpoint local --region cn-hangzhou",
        "or a region, not both",
    ),
    ("%cms_event r --df df --name n --endpoint local --internal", "applies to a region id"),
    ("%cms_event r --df df --name n --endpoint local --profile p", "--profile 'p': does not apply"),
    ("%cms_event r --df df --name 'n --endpoint local", "No closing quotation"),
    ("%cms_event r --df df --name n --endpoint local --background --raise", "--raise"),
    ("%cms_event df --df df --name n --endpoint local", "write --df df"),
    ("%cms_event 1x --df df --endpoint local", "must be a Python name"),
    ("%cms_event r --raw --endpoint local", "nothing to send: the cell is empty (without a cell"),
    (
        "%%cms_event r --raw --endpoint local\n",
        "nothing to send: the cell is empty (without a cell",
    ),
    ("%%cms_event r --raw --json --endpoint local\nx", "--raw or --json"),
    ("%%cms_event r --raw --endpoint local\n\n   \n", "empty"),
    ("%%cms_event r --json --endpoint local\n[1, 2", "not valid JSON"),
    ('%%cms_event r --json --endpoint local\n"text"', "a string"),
    ("%%cms_event r --time-col t --endpoint local\n'text'", "--time-col map DataFrame"),
    ("%%cms_event r --endpoint local\nx = (", "not valid Python"),
    ("%%cms_event r --endpoint local\nx = 1", "printed nothing"),
    ("%%cms_event r --endpoint local\n41 + 1", "last value is an int"),
    ("%%cms_event r --endpoint local\n['a', 'b']", "a list of str"),
    ("%%cms_event r --endpoint local\n''", "empty string"),
    ("%cms bogus", "unknown subcommand 'bogus'"),
    ("%cms emulator restart", "start|stop|status"),
    ("%cms config now", "takes no arguments"),
]


@pytest.mark.parametrize(("cell", "needle"), USER_ERRORS)
def test_user_errors_are_one_line_without_traceback(
    shell: InteractiveShell, cell: str, needle: str
) -> None:
    run(shell, "base = 1")
    ran = run(shell, cell)
    assert_usage_error(ran, needle)
    assert emulator.embedded_running() is None or not emulator.embedded_running().events()  # type: ignore[union-attr]


def test_a_mapping_error_names_the_flag_and_keeps_the_column_names(
    shell: InteractiveShell,
) -> None:
    run(
        shell,
        "alerts = pd.DataFrame({c: ['x'] for c in ['name', 'time', 'group_id', 'content', 'tz']})",
    )
    ran = run(shell, "%cms_event --df alerts --time-col when")
    message = assert_usage_error(ran)
    assert message == (
        "UsageError: --time-col 'when': no such column; columns: name, time, group_id, content, tz"
    )
