"""``cms-event events|count|histogram`` (issue 15) against a real emulator on 127.0.0.1: events
put first with cms_magic.send, then read back as a shell user would."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import cms_magic
from cms_magic.emulator import EmulatorServer, serve
from cms_magic.ui.cli import main
from tests.ui.cli._helpers import (
    RefusingOpenApi,
    cms_event,
    environment_for,
    nothing_configured,
)

CONTENTS = ["release 1.4", '部署 完成, "quoted"\nline two', "release 1.5", "disk full", "cpu"]
CANARY = "SECRET-LEAK-CANARY-cli-5e1d"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[EmulatorServer]:
    nothing_configured(monkeypatch, tmp_path / "home")
    with serve(qps=0) as emu:
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", emu.credentials.access_key_id)
        monkeypatch.setenv(
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET", emu.credentials.access_key_secret.reveal()
        )
        frame = pd.DataFrame(
            {
                "name": ["deploy", "deploy", "deploy", "alarm", "alarm"],
                "content": CONTENTS,
                "group_id": [7, 7, 7, 8, 8],
            }
        )
        result = cms_magic.send(
            frame,
            name_col="name",
            content_col="content",
            group_id_col="group_id",
            endpoint=emu.url,
            credentials=emu.credentials,
        )
        assert result.outcome == "ok", result.summary()
        yield emu


def _read(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(list(arguments))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_events_as_csv_round_trip_with_pandas(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _read(
        capsys, "events", "--name", "deploy", "--since", "1h", "--endpoint", server.url
    )
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.columns) == ["id", "time", "name", "group_id", "content"]
    assert len(frame) == 3
    assert set(frame["content"]) == set(CONTENTS[:3])
    assert frame["group_id"].dtype == "int64"
    times = pd.to_datetime(frame["time"], format="ISO8601")
    assert str(times.dt.tz) == "UTC"
    assert all("T" in t and t.endswith("+00:00") for t in frame["time"])
    assert err.startswith(f"{server.url}: 3 events, since ")


def test_events_as_jsonl_to_a_file(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "out.jsonl"
    code, out, err = _read(capsys, "events", "--endpoint", server.url, "--output", str(path))
    assert code == 0, err
    assert out == ""
    assert err.rstrip().endswith(f"-> {path}")
    raw = path.read_bytes().decode("utf-8")
    assert "部署" in raw  # not \\u escaped
    rows = [json.loads(line) for line in raw.splitlines()]
    assert len(rows) == 5
    frame = pd.read_json(io.StringIO(raw), lines=True, dtype={"id": str})
    assert set(frame["content"]) == set(CONTENTS)
    assert set(frame["group_id"]) == {7, 8}
    assert all(r["time"].endswith("+00:00") for r in rows)
    code, out, _ = _read(
        capsys, "events", "--format", "jsonl", "--group-id", "8", "--endpoint", server.url
    )
    assert code == 0
    assert {json.loads(line)["content"] for line in out.splitlines()} == {"disk full", "cpu"}


def test_filters_limit_and_the_empty_result(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _read(capsys, "events", "--search", "release", "--endpoint", server.url)
    assert code == 0
    assert set(pd.read_csv(io.StringIO(out))["content"]) == {"release 1.4", "release 1.5"}
    code, out, _ = _read(capsys, "events", "--limit", "2", "--endpoint", server.url, "--quiet")
    assert len(pd.read_csv(io.StringIO(out))) == 2
    code, out, err = _read(capsys, "events", "--name", "none", "--endpoint", server.url)
    assert code == 0
    assert out.strip() == "id,time,name,group_id,content"
    assert "0 events" in err
    code, out, _ = _read(
        capsys, "events", "--name", "none", "--format", "jsonl", "--endpoint", server.url
    )
    assert out == ""


def test_count_and_by_name(server: EmulatorServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _read(capsys, "count", "--endpoint", server.url)
    assert (code, out) == (0, "5\n")
    assert "5 events" in err
    code, out, _ = _read(capsys, "count", "--name", "alarm", "--endpoint", server.url, "--quiet")
    assert out == "2\n"
    code, out, err = _read(capsys, "count", "--by-name", "--endpoint", server.url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "count"]
    assert {tuple(line.split()) for line in lines[1:]} == {("deploy", "3"), ("alarm", "2")}
    assert "5 events (2 names)" in err


def test_histogram_is_a_text_table_with_bars(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _read(capsys, "histogram", "--since", "1d", "--endpoint", server.url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["start", "end", "count"]
    counted = [line for line in lines[1:] if "#" in line]
    assert counted
    assert sum(int(line.split()[2]) for line in lines[1:]) == 5
    assert "5 events in" in err
    code, _, err = _read(capsys, "histogram", "--level", "warn", "--endpoint", server.url)
    assert code == 0, err


@pytest.mark.parametrize(
    ("arguments", "needle"),
    [
        (["events", "--since", "1y"], "--since '1y': must be a datetime, an ISO 8601 time"),
        (["count", "--since", "1h", "--until", "2h"], "--since '1h': is after until='2h'"),
        (["events", "--limit", "0"], "--limit 0: must be an integer >= 1"),
        (["histogram", "--level", "loud"], "--level 'loud': must be one of CRITICAL, WARN, INFO"),
        (["events", "--endpoint", "public"], "--endpoint"),
    ],
)
def test_bad_input_is_exit_2_in_flags(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str], arguments: list[str], needle: str
) -> None:
    if "--endpoint" not in arguments:
        arguments = [*arguments, "--endpoint", server.url]
    code, out, err = _read(capsys, *arguments)
    assert code == 2
    assert out == ""
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_argparse_mistakes_are_exit_2(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for arguments in (
        ["events", "--group-id", "x"],
        ["events", "--internal"],
        ["count", "--format", "csv"],
    ):
        with pytest.raises(SystemExit) as stopped:
            main(arguments)
        assert stopped.value.code == 2
    capsys.readouterr()


def test_a_missing_permission_is_exit_1_naming_the_ram_action(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with RefusingOpenApi("NoPermission", 403) as url:
        code, out, err = _read(capsys, "events", "--endpoint", url)
    assert code == 1
    assert out == ""
    assert "missing RAM permission cms:DescribeCustomEventAttribute" in err
    assert "request id REQ-1" in err
    assert len(err.strip().splitlines()) == 1


def test_a_refused_key_is_exit_1_without_the_secret(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIcanaryKeyId0002")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CANARY)
    code, out, err = _read(capsys, "count", "--endpoint", server.url)
    assert code == 1
    assert "DescribeCustomEventCount" in err
    assert CANARY not in out + err
    assert len(err.strip().splitlines()) == 1


def test_no_secret_in_any_output(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = server.credentials.access_key_secret.reveal()
    everything = []
    for command in ("events", "count", "histogram"):
        code, out, err = _read(capsys, command, "--endpoint", server.url)
        assert code == 0
        everything.append(out + err)
    assert secret not in "".join(everything)


def test_cjk_safe_in_an_ascii_locale_and_a_closed_pipe_is_quiet(
    server: EmulatorServer, tmp_path: Path
) -> None:
    env = environment_for(server, tmp_path)
    env["PYTHONIOENCODING"] = "ascii"
    env["LC_ALL"] = "C"
    done = subprocess.run(
        cms_event("events", "--format", "jsonl", "--endpoint", server.url),
        capture_output=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "部署".encode() in done.stdout


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`cms-event events | head -c 10` with more than a pipe's buffer to write."""
    with serve(qps=0) as emu:
        rows = pd.DataFrame({"content": [f"{i:05d} " + "x" * 300 for i in range(1200)]})
        sent = cms_magic.send(rows, name="bulk", endpoint=emu.url, credentials=emu.credentials)
        assert sent.outcome == "ok"
        env = environment_for(emu, tmp_path)
        with subprocess.Popen(
            cms_event("events", "--endpoint", emu.url, "--quiet"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        ) as child:  # fmt: skip
            assert child.stdout is not None
            assert len(child.stdout.read(10)) == 10
            child.stdout.close()
            stderr = child.stderr.read() if child.stderr is not None else b""
            code = child.wait(timeout=60)
    assert code == 0, stderr
    assert b"Traceback" not in stderr
    assert b"BrokenPipe" not in stderr
    assert stderr == b""


def test_read_progress_shows_only_reads_that_last_then_the_summary() -> None:
    from cms_magic.readback import ATTRIBUTE_ACTION, ReadProgress
    from cms_magic.ui.render import ReadProgressLine
    from tests.conftest import FakeClock

    clock = FakeClock(100.0)
    stream = io.StringIO()
    line = ReadProgressLine("the local emulator", stream=stream, clock=clock)
    line(ReadProgress(ATTRIBUTE_ACTION, 50, 1, 0.5))
    assert stream.getvalue() == ""  # a quick read says nothing until its summary
    clock.advance(1.0)
    line(ReadProgress(ATTRIBUTE_ACTION, 100, 2, 1.0))
    clock.advance(0.5)
    line(ReadProgress(ATTRIBUTE_ACTION, 150, 3, 1.5))  # throttled
    clock.advance(2.0)
    line(ReadProgress(ATTRIBUTE_ACTION, 400, 8, 3.5, limit=1000))
    line(ReadProgress(ATTRIBUTE_ACTION, 420, 9, 3.6, finished=True))  # the summary says it
    line.finish("420 events, since the start until now")
    line.finish("a second summary is ignored")
    line(ReadProgress(ATTRIBUTE_ACTION, 999, 20, 9.0))
    assert stream.getvalue().splitlines() == [
        "the local emulator: 100 events read, 2 pages, 100 events/s",
        "the local emulator: 400/1,000 events read, 8 pages, 114 events/s",
        "the local emulator: 420 events, since the start until now",
    ]


def test_tz_shows_times_in_that_zone(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _read(
        capsys, "events", "--tz", "Asia/Shanghai", "--since", "1h", "--endpoint", server.url
    )
    assert code == 0, err
    frame = pd.read_csv(io.StringIO(out))
    assert all(t.endswith("+08:00") for t in frame["time"])
    assert "+08:00 (1h) until now" in err
    code, _, err = _read(capsys, "count", "--tz", "Mars/Base", "--endpoint", server.url)
    assert code == 2
    assert "--tz 'Mars/Base': is not a known time zone" in err


def test_an_unwritable_output_is_exit_2_naming_the_flag(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "missing" / "out.csv"
    code, out, err = _read(capsys, "events", "--endpoint", server.url, "--output", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"cms-event: error: --output '{path}': cannot be written")
