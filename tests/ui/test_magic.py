"""The IPython skin, driven through a real ``InteractiveShell`` against emulators on 127.0.0.1.

Every test loads the extension into a fresh shell and runs cells as a user
would (``shell.run_cell("%%cms_event ...")``), capturing what the cell shows
with IPython's own ``capture_output``. The environment is isolated: a temporary
HOME (no ``~/.aliyun``), no Alibaba Cloud variables unless a test sets them.
"""

from __future__ import annotations

import _thread
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from IPython.utils.capture import capture_output
from traitlets import TraitError
from traitlets.config import Config

import cms_magic
from cms_magic import emulator
from cms_magic.credentials.static import Credentials
from cms_magic.errors import MappingError
from cms_magic.results import SendResult
from cms_magic.sending.client import Progress, SendJob, last_result
from cms_magic.ui.magic.magics import CmsMagic, EventsNotAcceptedError, refuse_secrets
from cms_magic.ui.render import PrintProgress, WidgetProgress, final_line

ENV_VARS = (
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",
    "ALIBABA_CLOUD_REGION_ID",
    "CMS_MAGIC_ENDPOINT",
)
CANARY = "SECRET-LEAK-CANARY-7f3a9"
CANARY_ID = "LTAIcanaryKeyId0001"


# --------------------------------------------------------------------------- fixtures


@dataclass
class Ran:
    """What one cell did: IPython's result, and everything it showed."""

    result: ExecutionResult
    stdout: str
    stderr: str
    outputs: list[dict[str, Any]]

    @property
    def value(self) -> Any:
        """The cell's displayed value."""
        return cast(Any, self.result).result

    @property
    def error(self) -> BaseException | None:
        return self.result.error_in_exec or self.result.error_before_exec

    @property
    def shown(self) -> str:
        rich = "\n".join(str(value) for data in self.outputs for value in data.values())
        return "\n".join([self.stdout, self.stderr, rich])


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emu() -> Iterator[emulator.EmulatorServer]:
    server = emulator.serve(qps=0)
    yield server
    server.stop()


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment holds the emulator's demo pair."""
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", emulator.DEMO_ACCESS_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", emulator.DEMO_ACCESS_KEY_SECRET)


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip: Any = InteractiveShell.instance(config=config)
    ip.run_cell("%load_ext cms_magic")
    ip.run_cell("import pandas as pd\ndf = pd.DataFrame({'kind': ['a', 'b'], 'n': [1, 2]})")
    yield ip
    emulator.stop_embedded()
    ip.run_cell("%unload_ext cms_magic")
    ip.history_manager.end_session()
    InteractiveShell.clear_instance()


def run(ip: Any, cell: str) -> Ran:
    with capture_output() as captured:
        result = ip.run_cell(cell)
    outputs = [dict(out.data) for out in captured.outputs]
    return Ran(result, captured.stdout, captured.stderr, outputs)


def magic(ip: InteractiveShell) -> CmsMagic:
    found = ip.magics_manager.registry["CmsMagic"]
    assert isinstance(found, CmsMagic)
    return found


def assert_usage_error(ran: Ran, *needles: str) -> str:
    """Exactly UsageError, one line on stderr, no traceback; returns the message."""
    assert type(ran.error) is UsageError, (ran.error, ran.stdout, ran.stderr)
    assert "Traceback" not in ran.shown
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith("UsageError: ")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --------------------------------------------------------------------------- loading


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


# --------------------------------------------------------------------------- input modes


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


def test_python_cell_whose_last_value_is_a_dataframe(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(
        shell,
        f"%%cms_event r --name-col kind --content-col note --endpoint {emu.url}\n"
        "print('building')\n"
        "pd.DataFrame({'kind': ['x', 'y', 'z'], 'note': ['1', '2', '3']})\n",
    )
    assert ran.error is None, ran.stderr
    assert ran.stdout.startswith("building\n")  # the cell's own output is still shown
    assert "3/3 events accepted" in ran.stdout
    assert [(e["name"], e["content"]) for e in emu.events()] == [
        ("x", "1"),
        ("y", "2"),
        ("z", "3"),
    ]


def test_python_cell_runs_in_the_user_namespace(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    run(shell, "base = 40")
    ran = run(
        shell,
        f"%%cms_event r --endpoint {emu.url}\nanswer = base + 2\n{{'name': 'n', 'content': str(answer)}}",
    )
    assert ran.error is None, ran.stderr
    assert shell.user_ns["answer"] == 42
    assert emu.events() == [{"content": "42", "name": "n"}]


def test_dict_and_list_of_dicts_get_the_default_name_and_group(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    run(shell, "%config CmsMagic.default_name = 'notes'")
    ran = run(
        shell,
        f"%%cms_event r --group-id 5 --endpoint {emu.url}\n"
        "[{'content': 'one'}, {'name': 'own', 'content': 'two', 'groupId': 9}]",
    )
    assert ran.error is None, ran.stderr
    assert emu.events() == [
        {"content": "one", "groupId": 5, "name": "notes"},
        {"content": "two", "groupId": 9, "name": "own"},
    ]


def test_a_string_last_value_is_the_content_of_one_event(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(shell, f"%%cms_event r --name deploy --endpoint {emu.url}\n'v' + '1.2'")
    assert ran.error is None, ran.stderr
    assert emu.events() == [{"content": "v1.2", "name": "deploy"}]


def test_printed_output_is_the_content_and_still_shown(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(
        shell,
        f"%%cms_event r --endpoint {emu.url}\n"
        "import sys\nprint('line one')\nprint('line two', file=sys.stderr)\n",
    )
    assert ran.error is None, ran.stderr
    assert "line one" in ran.stdout
    assert "line two" in ran.stderr
    assert emu.events() == [{"content": "line one\nline two", "name": "cms_magic"}]


def test_a_trailing_semicolon_means_send_what_was_printed(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(shell, f"%%cms_event r --endpoint {emu.url}\nprint('hi')\nlen('abc');")
    assert ran.error is None, ran.stderr
    assert emu.events() == [{"content": "hi", "name": "cms_magic"}]


def test_raw_cell_text_is_the_content_unexecuted(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    text = "release 1.4.2: {not python} ${HOME}\n  second line"
    ran = run(shell, f"%%cms_event r --raw --name deploy --endpoint {emu.url}\n{text}\n")
    assert ran.error is None, ran.stderr
    assert emu.events() == [{"content": text, "name": "deploy"}]


def test_json_cell_is_an_array_of_events(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    body = (
        '[{"name": "a", "content": "x", "groupId": 3, "time": "20171023T144439.948+0800"},'
        ' {"content": "no name"}, {"name": "bad", "content": ""}]'
    )
    ran = run(shell, f"%%cms_event r --json --endpoint {emu.url}\n{body}")
    assert ran.error is None, ran.stderr
    result = shell.user_ns["r"]
    assert list(result.events["status"]) == ["accepted", "accepted", "rejected"]
    assert "2/3 events accepted" in ran.stdout
    assert "1 rejected -> r.failed()" in ran.stdout
    assert [e["name"] for e in emu.events()] == ["a", "cms_magic"]


def test_without_a_variable_the_result_is_the_displayed_value(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    ran = run(shell, f"%cms_event --df df --name n --endpoint {emu.url}")
    assert isinstance(ran.value, SendResult)
    assert ran.value is last_result()
    assert "<SendResult 2/2 events accepted" in ran.stdout
    assert "cms-magic-result" in ran.value._repr_html_()
    summary = [line for line in ran.stdout.splitlines() if "events accepted" in line]
    assert summary[0].startswith(f"{emu.url}: 2/2 events accepted")


# --------------------------------------------------------------------------- behaviour


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
    assert isinstance(ran.error, KeyboardInterrupt)
    partial = last_result()
    assert isinstance(partial, SendResult)
    assert shell.user_ns["r"] is partial
    assert partial.cancelled
    assert 0 < partial.accepted < 1000
    assert f"{emu.url}: interrupted: {partial.accepted:,}/1,000 events accepted" in ran.stdout
    assert "partial result: r" in ran.stdout
    assert run(shell, "%cms last").value is partial


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
    assert "2 not sent -> r.failed()" in ran.stdout


def test_local_endpoint_uses_the_embedded_emulator_and_says_so(shell: InteractiveShell) -> None:
    ran = run(shell, "%cms_event r --df df --name n --endpoint local")
    assert ran.error is None, ran.stderr
    server = emulator.embedded_running()
    assert server is not None
    assert ran.stdout.startswith(f"local emulator {server.url} (demo credentials): 2/2")
    assert len(server.events()) == 2

    assert "running at" in run(shell, "%cms emulator status").stdout
    assert "demo AccessKey LTAI****Demo" in run(shell, "%cms emulator start").stdout
    assert "stopped" in run(shell, "%cms emulator stop").stdout
    assert "not running" in run(shell, "%cms emulator status").stdout
    assert "was not running" in run(shell, "%cms emulator stop").stdout


def test_without_a_target_it_says_how_to_choose_one(shell: InteractiveShell, creds: None) -> None:
    ran = run(shell, "%cms_event r --df df --name n")
    assert_usage_error(ran, "--endpoint local", "--region", "%config CmsMagic.region")
    assert emulator.embedded_running() is None  # never a silent fallback


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


# --------------------------------------------------------------------------- configuration


def test_config_precedence_flag_then_config_then_environment(
    shell: InteractiveShell,
    emu: emulator.EmulatorServer,
    creds: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with emulator.serve(qps=0) as second:
        monkeypatch.setenv("CMS_MAGIC_ENDPOINT", second.url)
        run(shell, "%cms_event r --df df --name env")
        assert len(second.events()) == 2

        text = run(shell, "%cms config").stdout
        assert re.search(
            r"endpoint\s+'http://127\.0\.0\.1:\d+'\s+environment \(CMS_MAGIC_ENDPOINT\)", text
        )

        run(shell, f"%config CmsMagic.endpoint = '{emu.url}'")
        run(shell, "%cms_event r --df df --name cfg")
        assert [e["name"] for e in emu.events()] == ["cfg", "cfg"]
        text = run(shell, "%cms config").stdout
        assert re.search(r"endpoint\s+'http://127\.0\.0\.1:\d+'\s+%config", text)
        assert re.search(r"qps\s+20\.0\s+default", text)
        assert re.search(r"credentials\s+LTAI\*\*\*\*Demo\s+environment", text)

        ran = run(shell, f"%cms_event r --df df --name flag --endpoint {second.url}")
        assert ran.error is None
        assert [e["name"] for e in second.events()] == ["env", "env", "flag", "flag"]
        assert magic(shell).endpoint == emu.url  # the flag changed nothing global

        run(shell, "%config CmsMagic.endpoint = None")
        run(shell, "%config CmsMagic.region = 'cn-shanghai'")
        run(shell, "%config CmsMagic.endpoint = None")
        # with an endpoint in the environment and a region in %config, %config wins
        ran = run(shell, "%cms_event r --df df --name n --dry-run")
        assert "region cn-shanghai: dry run" in ran.stdout


def test_an_ipython_config_file_setting_is_named_as_such(creds: None) -> None:
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.CmsMagic.region = "cn-shanghai"
    config.CmsMagic.qps = 5
    ip: Any = InteractiveShell.instance(config=config)
    try:
        run(ip, "%load_ext cms_magic")
        text = run(ip, "%cms config").stdout
        assert re.search(r"region\s+'cn-shanghai'\s+IPython config", text)
        assert re.search(r"qps\s+5\.0\s+IPython config", text)
        assert re.search(r"target\s+region cn-shanghai\s+IPython config", text)
        run(ip, "%config CmsMagic.qps = 6")
        assert re.search(r"qps\s+6\.0\s+%config", run(ip, "%cms config").stdout)
    finally:
        run(ip, "%unload_ext cms_magic")
        ip.history_manager.end_session()
        InteractiveShell.clear_instance()


def test_region_target_and_internal(shell: InteractiveShell, creds: None) -> None:
    run(shell, "%config CmsMagic.region = 'CN-Beijing'")
    assert magic(shell).region == "cn-beijing"
    ran = run(shell, "%cms_event r --df df --name n --dry-run --internal")
    assert "region cn-beijing (internal endpoint): dry run" in ran.stdout
    assert "first request: POST http://metrichub-cn-beijing.aliyun.com" in ran.stdout
    ran = run(shell, "%cms_event r --df df --name n --dry-run --region cn-hangzhou")
    assert "region cn-hangzhou: dry run" in ran.stdout


def test_traits_are_validated_on_assignment(
    shell: InteractiveShell, caplog: pytest.LogCaptureFixture
) -> None:
    cms = magic(shell)
    bad: list[tuple[str, Any, str]] = [
        ("region", "mars-1", "unknown region 'mars-1'"),
        ("endpoint", "cn-hangzhou", "for a region id use --region"),
        ("endpoint", "ftp://x", "takes an URL"),
        ("qps", -1, "qps must be >= 0"),
        ("concurrency", 0, "concurrency must be between 1 and 64"),
        ("max_retries", -1, "max_retries must be between 0 and 20"),
        ("timeout", 0, "timeout must be > 0"),
        ("group_id", -3, "group_id must be an integer >= 0"),
        ("default_name", " ", "default_name must be a non-empty"),
        ("profile", "", "profile must be a profile name"),
        ("progress", "fancy", "progress"),
    ]
    for name, value, message in bad:
        before = getattr(cms, name)
        with pytest.raises(TraitError, match=re.escape(message)):
            setattr(cms, name, value)
        assert getattr(cms, name) == before

    caplog.clear()
    run(shell, "%config CmsMagic.qps = -5")  # IPython logs the TraitError and goes on
    assert "CmsMagic.qps must be >= 0" in caplog.text
    assert cms.qps == 20.0

    run(shell, "%config CmsMagic.progress = False")
    assert cms.progress == "off"
    run(shell, "%config CmsMagic.progress = True")
    assert cms.progress == "auto"
    run(shell, "%config CmsMagic.endpoint = 'LOCAL'")
    assert cms.endpoint == "local"
    run(shell, "%config CmsMagic.endpoint = 'HTTP://Example.COM:8080/'")
    assert cms.endpoint == "http://example.com:8080"
    assert "CmsMagic.region" in run(shell, "%config CmsMagic").stdout


def test_short_errors_false_shows_the_real_exception(
    shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None
) -> None:
    run(shell, "%config CmsMagic.short_errors = False")
    ran = run(shell, f"%cms_event r --df df --content-col nope --name n --endpoint {emu.url}")
    assert isinstance(ran.error, MappingError)
    assert "Traceback" in ran.stdout + ran.stderr


# --------------------------------------------------------------------------- user errors


USER_ERRORS: list[tuple[str, str]] = [
    ("%cms_event r --df df --bogus", "unrecognized arguments: --bogus"),
    ("%cms_event r --df missing --name n --endpoint local", "DataFrames here: df"),
    ("%cms_event r --df base --name n --endpoint local", "--df base: an int, not a DataFrame"),
    ("%cms_event r --df df --name n --content-col nope --endpoint local", "--content-col 'nope'"),
    ("%cms_event r --df df --endpoint local", "--name"),
    ("%cms_event r --df df --name n --tz Nowhere/City --endpoint local", "--tz 'Nowhere/City'"),
    ("%cms_event r --df df --name n --group-id x --endpoint local", "invalid int value"),
    ("%cms_event r --df df --name n --group-id -1 --endpoint local", "--group-id must be"),
    ("%cms_event r --df df --name n --name-col kind --endpoint local", "give --name or --name-col"),
    ("%%cms_event r --df df --endpoint local\nprint(1)", "comments only"),
    ("%cms_event r --df df --name n --region mars-1", "unknown region 'mars-1'"),
    ("%cms_event r --df df --name n --endpoint cn-hangzhou", "use --region"),
    ("%cms_event r --df df --name n --endpoint http://u:p@h", "user info"),
    ("%cms_event r --df df --name n --endpoint local --region cn-hangzhou", "not both"),
    ("%cms_event r --df df --name n --endpoint local --internal", "--internal"),
    ("%cms_event r --df df --name n --endpoint local --profile p", "--profile"),
    ("%cms_event r --df df --name 'n --endpoint local", "No closing quotation"),
    ("%cms_event r --df df --name n --endpoint local --background --raise", "--raise"),
    ("%cms_event df --df df --name n --endpoint local", "write --df df"),
    ("%cms_event 1x --df df --endpoint local", "must be a Python name"),
    ("%cms_event r --raw --endpoint local", "line magic"),
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


def test_an_exception_in_the_cell_shows_its_traceback_and_sends_nothing(
    shell: InteractiveShell,
) -> None:
    ran = run(shell, "%%cms_event r --endpoint local\nx = 1\n1 / 0\n")
    assert type(ran.error) is UsageError
    assert "ZeroDivisionError" in ran.stdout  # the user's own traceback
    assert "magic.py" not in ran.stdout  # without the magic's frames
    assert "the cell raised ZeroDivisionError (above); nothing was sent" in ran.stderr
    assert "r" not in shell.user_ns


SECRET_LINES = [
    "--secret abc",
    "--access-key-secret abc",
    "--access_key_id abc",
    "--key abc",
    "--sts-token abc",
    "--password=abc",
    "LTAI5tAbCdEfGhIjKlMn",
    "--name STS.NUabcdefghijklmnop",
    "AccessKeySecret=abc",
    "--name access_key_secret:abc",
    "--content-template Ab3dEf7hIj1lMn0pQr5tUv9xYz2bCd",
]


@pytest.mark.parametrize("fragment", SECRET_LINES)
def test_secrets_on_the_line_are_refused_unread(shell: InteractiveShell, fragment: str) -> None:
    for line in (f"%cms_event r --df df {fragment}", f"%cms whoami {fragment}"):
        ran = run(shell, line)
        message = assert_usage_error(
            ran, "refuses credentials", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "--profile"
        )
        last = fragment.rsplit(maxsplit=1)[-1]
        value = last.partition("=")[2] or last
        assert value not in message


@pytest.mark.parametrize(
    "line",
    [
        "r --df df --name deploy --content-template '{host}: {message}'",
        "r --df key_frame --name token-refresh --endpoint https://metrichub-cms-cn-hangzhou.aliyuncs.com",
        "r --df df --name-col kind --time-col at --tz Asia/Shanghai --group-id 12345",
        "--df df --name password-reset --content-col secret_note",
    ],
)
def test_ordinary_lines_are_not_mistaken_for_secrets(line: str) -> None:
    refuse_secrets(line, "%%cms_event")


# --------------------------------------------------------------------------- %cms


def test_cms_helpers(shell: InteractiveShell, emu: emulator.EmulatorServer, creds: None) -> None:
    regions = run(shell, "%cms regions").value
    assert isinstance(regions, pd.DataFrame)
    assert "cn-hangzhou" in set(regions["id"])

    run(shell, f"%cms_event r --df df --name n --endpoint {emu.url}")
    last = run(shell, "%cms last").value
    assert last is shell.user_ns["r"]

    whoami = run(shell, "%cms whoami").stdout
    assert "credentials: AccessKey LTAI****Demo from environment" in whoami
    assert "target: none configured" in whoami
    run(shell, "%config CmsMagic.endpoint = 'local'")
    assert "target: the local emulator (--endpoint local) (from %config)" in (
        run(shell, "%cms whoami").stdout
    )

    panel = run(shell, "%cms panel")
    assert panel.error is None
    assert "panel" in panel.stdout or panel.value is not None
    helped = run(shell, "%cms").stdout
    assert all(f"%cms {c}" in helped for c in ("regions", "config", "whoami", "last", "panel"))


def test_cms_last_before_any_send(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    from cms_magic.sending import client as sender

    monkeypatch.setattr(sender, "_latest", [])
    ran = run(shell, "%cms last")
    assert ran.value is None
    assert "no send has finished" in ran.stdout


# --------------------------------------------------------------------------- progress


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


# --------------------------------------------------------------------------- secrets


def test_the_secret_appears_nowhere(
    shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", CANARY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CANARY)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with (
        emulator.serve(credentials=Credentials(CANARY_ID, CANARY), qps=0) as good,
        emulator.serve(credentials=Credentials(CANARY_ID, "another-secret"), qps=0) as refusing,
    ):
        cells = [
            "%config CmsMagic.max_retries = 0",
            f"%cms_event ok --df df --name n --endpoint {good.url}",
            f"%cms_event --df df --name n --endpoint {good.url}",
            f"%cms_event dry --df df --name n --dry-run --endpoint {good.url}",
            f"%cms_event job --df df --name n --background --endpoint {good.url}",
            "job.wait(10)",
            f"%cms_event refused --df df --name n --endpoint {refusing.url}",
            f"%cms_event unreachable --df df --name n --endpoint http://127.0.0.1:{closed}",
            f"%%cms_event printed --endpoint {good.url}\nprint('hello')",
            f"%cms_event raised --df df --name n --raise --endpoint {refusing.url}",
            "%cms_event bad --df df --content-col nope --endpoint local",
            "%cms_event bad --df df --secret " + CANARY,
            "%cms_event bad --df df --name n",
            "%cms_event bad --df df --name n --endpoint https://u:pw@example.com",
            "%cms config",
            "%cms whoami",
            "%cms last",
            f"%config CmsMagic.endpoint = '{good.url}'",
            "%cms config",
            "%cms_event ok2 --df df --name n",
            "%cms_event ok3 --df df --name n --endpoint local",
            "%cms emulator status",
        ]
        seen: list[str] = []
        for cell in cells:
            ran = run(shell, cell)
            seen.append(ran.shown)
            value = ran.value
            if value is not None:
                seen.append(repr(value))
                html = getattr(value, "_repr_html_", None)
                if callable(html):
                    seen.append(str(html()))
        assert shell.user_ns["job"].result().ok
        assert shell.user_ns["ok"].ok
        assert shell.user_ns["printed"].ok
        assert not shell.user_ns["refused"].ok
    combined = "\n".join(seen)
    for path in ("2/2 events accepted", "dry run: 2/2", "authorization: LTAI****0001"):
        assert path in combined, path  # the paths did run and show their output
    assert "refuses credentials" in combined
    assert "LTAI****0001" in combined
    leaks = [line for line in combined.splitlines() if CANARY in line]
    # The one line the user typed with the secret is refused, and not echoed.
    assert leaks == []
    for name, value in list(shell.user_ns.items()):
        if name in ("In", "_ih", "_i", "_ii", "_iii") or re.fullmatch(r"_i\d+", name):
            continue  # the input history holds what the user typed, nothing of ours
        texts = [repr(value)]
        if isinstance(value, SendResult):
            texts += [value._repr_html_(), value.events.to_string(), value.requests.to_string()]
            texts.append(repr(value.preview))
        assert not any(CANARY in text for text in texts), name


# --------------------------------------------------------------------------- cost


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


# --------------------------------------------------------------------------- in a real kernel


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
        later: dict[str, dict[str, Any]] = {bar_id: {}, label_id: {}}
        for update in of(seen[done:], "comm_msg"):
            if update["comm_id"] in later:
                later[update["comm_id"]].update(update["data"]["state"])
        assert later[bar_id]["value"] == 300
        assert later[bar_id]["bar_style"] == "success"
        assert "300/300 events accepted" in later[label_id]["value"]

        cell = execute(
            "%config CmsMagic.progress = 'text'\n"
            "%cms_event job2 --df df --name n --endpoint local --background"
        )
        (line,) = of(cell, "display_data")
        display_id = line["transient"]["display_id"]
        done = len(seen)
        execute("job2.wait(20)")
        updates = [
            u
            for u in of(seen[done:], "update_display_data")
            if u["transient"]["display_id"] == display_id
        ]
        assert "300/300 events accepted" in updates[-1]["data"]["text/plain"]

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
