"""The `cms-event` command line: files in, summary and exit status out."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from cms_magic import emulator
from cms_magic.emulator import EmulatorServer, serve
from cms_magic.ui.cli import main
from tests.ui.cli._helpers import nothing_configured, rows_file


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    with serve(qps=0) as emu:
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", emu.credentials.access_key_id)
        monkeypatch.setenv(
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET", emu.credentials.access_key_secret.reveal()
        )
        yield emu


def test_send_csv_all_accepted(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rows.csv"
    pd.DataFrame({"host": ["a", "b"], "msg": ["磁盘 🔥", "ok"]}).to_csv(path, index=False)
    code = main(
        [
            "send",
            str(path),
            "--endpoint",
            server.url,
            "--name",
            "disk",
            "--content-col",
            "msg",
            "--quiet",
        ]
    )
    assert code == 0
    assert "2/2 events accepted" in capsys.readouterr().out
    assert [e["content"] for e in server.events()] == ["磁盘 🔥", "ok"]


def test_send_jsonl_with_failures_writes_failed_out(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [
        {"name": "a", "content": "x", "gid": 1},
        {"name": "", "content": "y", "gid": 2},
        {"name": "c", "content": "z", "gid": "bad"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    failed = tmp_path / "failed.jsonl"
    code = main(
        [
            "send",
            str(path),
            "--endpoint",
            server.url,
            "--content-col",
            "content",
            "--group-id-col",
            "gid",
            "--quiet",
            "--failed-out",
            str(failed),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "1/3 events accepted" in captured.out
    assert "'groupId' (column 'gid') must be an integer" in captured.err
    written = [json.loads(line) for line in failed.read_text().splitlines()]
    assert [r["content"] for r in written] == ["y", "z"]


def test_dry_run_exit_code_and_nothing_sent(server: EmulatorServer, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    pd.DataFrame({"name": ["a"], "content": ["b"]}).to_csv(path, index=False)
    assert (
        main(
            [
                "send",
                str(path),
                "--endpoint",
                server.url,
                "--content-col",
                "content",
                "--dry-run",
                "--quiet",
            ]
        )
        == 0
    )
    assert server.requests() == []


def test_usage_errors_exit_2(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rows.csv"
    pd.DataFrame({"name": ["a"], "content": ["b"]}).to_csv(path, index=False)
    assert main(["send", str(path), "--endpoint", server.url, "--content-col", "nope"]) == 2
    assert capsys.readouterr().err == (  # said before anything says "sending"
        "cms-event: error: --content-col 'nope': no such column; columns: name, content\n"
    )
    missing = tmp_path / "missing.csv"
    assert main(["send", str(missing), "--endpoint", server.url]) == 2
    assert f"cms-event: error: file '{missing}': no such file" in capsys.readouterr().err
    assert main(["send", str(path), "--region", "mars-1"]) == 2
    assert "--region: unknown region 'mars-1'; valid region ids" in capsys.readouterr().err
    assert main(["send", str(path), "--endpoint", server.url, "--qps", "-1"]) == 2
    assert "--qps -1.0: must be a number >= 0" in capsys.readouterr().err


def test_missing_credentials_exit_2_and_say_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nothing_configured(monkeypatch, tmp_path)
    path = tmp_path / "rows.csv"
    pd.DataFrame({"name": ["a"], "content": ["b"]}).to_csv(path, index=False)
    assert (
        main(["send", str(path), "--endpoint", "http://127.0.0.1:9", "--content-col", "content"])
        == 2
    )
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in capsys.readouterr().err


def test_regions_and_module_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cms_magic", "regions"], check=True, capture_output=True, text=True
    ).stdout
    assert "ap-south-1" in out
    assert "http://metrichub-ap-south-1.aliyuncs.com" in out
    assert out.count("\n") == 17 + 3


def test_endpoint_local_says_it_is_local(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    pd.DataFrame({"name": ["a"], "content": ["b"]}).to_csv(path, index=False)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "cms_magic",
            "send",
            str(path),
            "--endpoint",
            "local",
            "--content-col",
            "content",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "local emulator" in run.stderr
    assert "1/1 event" in run.stdout


def test_emulator_subcommand_passes_its_options_through() -> None:
    command = [sys.executable, "-m", "cms_magic", "emulator", "--port", "0", "--qps", "5"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("cms_magic emulator listening on http://127.0.0.1:")
            quota = "".join(proc.stdout.readline() for _ in range(4))
            assert "5 requests/s" in quota
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.mark.parametrize("word", ["LOCAL", "Local"])
def test_endpoint_local_in_any_case(
    word: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    nothing_configured(monkeypatch, tmp_path)
    code = main(["send", str(rows_file(tmp_path)), "--endpoint", word, "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == (
        "cms-event: sending 1 row to the local emulator: nothing leaves this machine\n"
        "cms-event: not journaled (no --journal FILE or --failed-out FILE): a crash would "
        "forget what was delivered\n"
    )
    assert "1/1 event" in captured.out
    running = emulator.embedded_running()
    assert running is not None
    assert running.events() == [{"content": "row 0", "name": "a"}]


def test_with_nothing_configured_the_target_is_the_local_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nothing_configured(monkeypatch, tmp_path)
    code = main(["send", str(rows_file(tmp_path)), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "cms-event: sending 1 row to the local emulator" in captured.err
    assert "1/1 event" in captured.out


def test_with_cloud_credentials_configured_a_target_must_be_named(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["send", str(rows_file(tmp_path)), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("cms-event: error: no target is configured, and ")
    assert "the local emulator is not assumed" in err
    assert emulator.embedded_running() is None
    assert server.requests() == []


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("not a url", "--endpoint 'not a url': is not a URL"),
        ("ftp://127.0.0.1/x", "--endpoint 'ftp://127.0.0.1/x': endpoint URL must start with"),
    ],
)
def test_a_malformed_url_gets_a_message_about_urls(
    value: str,
    rule: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    nothing_configured(monkeypatch, tmp_path)
    assert main(["send", str(rows_file(tmp_path)), "--endpoint", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cms-event: error: {rule}")
    assert "valid region ids" not in err
    assert emulator.embedded_running() is None


def test_a_region_id_given_to_endpoint_is_that_region(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = rows_file(tmp_path)
    assert main(["send", str(path), "--endpoint", "CN-Hangzhou", "--dry-run", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "for region cn-hangzhou (public endpoint https://" in captured.err
    assert "dry run: 1/1 event" in captured.out


def test_the_send_options_come_from_the_options_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["send", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for flag in ("--name-col", "--time-col", "--region", "--endpoint", "--internal"):
        assert flag in shown
    for flag in ("--qps", "--concurrency", "--timeout", "--max-retries", "--retry-ambiguous"):
        assert flag in shown
    assert "(default: 20)" in shown  # settings.DEFAULT_QPS, through the table
    assert "(default: 4)" in shown


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--name", "", "--content-col", "content"], "--name '': must be a non-empty string"),
        (["--tz", "Mars/Olympus"], "--tz 'Mars/Olympus': "),
        (["--content-col", "mesage"], "did you mean 'message'?"),
        (["--group-id-col", "gid"], "--group-id-col 'gid': no such column"),
        (["--max-retries", "-1"], "--max-retries -1: "),
        (["--timeout", "0"], "--timeout 0.0: "),
        (["--concurrency", "0"], "--concurrency 0: "),
    ],
)
def test_errors_are_worded_in_flags_and_said_before_sending(
    flags: list[str],
    said: str,
    server: EmulatorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "rows.csv"
    pd.DataFrame({"host": ["a"], "message": ["disk full"]}).to_csv(path, index=False)
    code = main(["send", str(path), "--endpoint", server.url, "--name", "disk", *flags])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("cms-event: error: "), captured.err
    assert said in captured.err
    assert captured.err.count("\n") == 1  # nothing said "sending" first
    for python_words in ("name=", "tz=", "_col", "max_retries", "max_attempts", "timeout="):
        assert python_words not in captured.err
    assert server.requests() == []


def test_a_malformed_key_in_the_environment_is_named_by_its_variable(
    server: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI has spaces")
    path = rows_file(tmp_path)
    assert main(["send", str(path), "--endpoint", server.url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cms-event: error: ALIBABA_CLOUD_ACCESS_KEY_ID: must not contain"), err
    assert "access_key_id" not in err
    assert "spaces" not in err  # masked


def test_a_profile_that_does_not_exist_is_said_before_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nothing_configured(monkeypatch, tmp_path)
    path = rows_file(tmp_path)
    code = main(["send", str(path), "--endpoint", "http://127.0.0.1:9", "--profile", "work"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("cms-event: error: profile 'work' (from the profile argument)"), err
    assert "sending" not in err


def test_no_credentials_found_is_said_in_the_command_lines_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nothing_configured(monkeypatch, tmp_path)
    path = rows_file(tmp_path)
    assert main(["send", str(path), "--endpoint", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in err
    assert "access_key_id=" not in err
    assert "arguments access_key_id" not in err


def test_dry_run_previews_the_first_request_and_says_dry_run(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = rows_file(tmp_path, rows=3)
    arguments = ["send", str(path), "--endpoint", server.url, "--content-col", "content"]
    assert main([*arguments, "--dry-run", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "sending" not in captured.err
    assert captured.err.startswith("cms-event: dry run of 3 rows for ")
    assert "nothing is sent" in captured.err
    out = captured.out
    assert f"dry run: the first request would be POST {server.url}/" in out
    assert "authorization: " in out.lower()
    assert "<signature>" in out
    assert server.credentials.access_key_secret.reveal() not in out
    assert server.credentials.access_key_id not in out  # masked
    assert '"content":"row 0"' in out
    assert "body (" in out
    assert out.splitlines()[-1].startswith("dry run: 3/3 events")
    assert server.requests() == []


def test_the_bar_counts_rows_in_whole_numbers(
    server: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: the tqdm bar
    path = rows_file(tmp_path, rows=5)
    assert main(["send", str(path), "--endpoint", server.url, "--content-col", "content"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("cms-event: sending 5 rows to ")  # the bar comes after
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in last
    assert "5/5 rows" in last
    assert "1 request" in last
    assert "0.00" not in err
    assert "5.00" not in err


def test_off_a_terminal_progress_is_a_plain_line_for_sends_that_last() -> None:
    import io

    from cms_magic.progress import Progress
    from cms_magic.ui.cli.bar import RowBar

    now = [0.0]
    stream = io.StringIO()
    bar = RowBar(5000, stream=stream, clock=lambda: now[0])
    bar.show()

    def snapshot(done: int, requests: int, finished: bool = False) -> Progress:
        return Progress(
            total=5000,
            done=done,
            accepted=done,
            rejected=0,
            not_sent=5000 - done,
            unknown=0,
            requests=requests,
            errors=0,
            elapsed=now[0],
            finished=finished,
        )

    bar(snapshot(100, 1))  # within the first 2 s: nothing
    now[0] = 2.5
    bar(snapshot(1200, 12))
    now[0] = 3.0
    bar(snapshot(1300, 13))  # within 5 s of the last line
    bar(snapshot(5000, 50, finished=True))  # the summary line says the end
    bar.close()
    assert stream.getvalue() == "cms-event: 1,200/5,000 rows, 12 requests\n"


def test_failed_out_json_lines_are_readable_and_keep_their_zone(tmp_path: Path) -> None:
    import json

    import pandas as pd

    from cms_magic.ui.cli.tables import write_table

    frame = pd.DataFrame(
        {
            "content": ["error on /checkout"],
            "time": [pd.Timestamp("2024-03-01 08:00:00.123", tz="Asia/Shanghai")],
            "count": [pd.array([3], dtype="Int64")[0]],
            "status": ["not_sent"],
        }
    )
    path = tmp_path / "failed.jsonl"
    write_table(frame, path)
    text = path.read_text(encoding="utf-8")
    assert "\\/" not in text
    assert json.loads(text) == {
        "content": "error on /checkout",
        "time": "2024-03-01T08:00:00.123000+08:00",
        "count": 3,
        "status": "not_sent",
    }
