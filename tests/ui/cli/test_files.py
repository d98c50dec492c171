"""What `cms-event send` reads and writes: unreadable inputs, the --failed-out file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from cms_magic.emulator import EmulatorServer, serve
from cms_magic.ui.cli import main
from tests.ui.cli._helpers import nothing_configured, rows_file


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[EmulatorServer]:
    nothing_configured(monkeypatch, tmp_path)
    with serve(qps=0) as emu:
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", emu.credentials.access_key_id)
        monkeypatch.setenv(
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET", emu.credentials.access_key_secret.reveal()
        )
        yield emu


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("bad.csv", b'name,content\na,"b\nc,d,e,f\n', "is not valid CSV: "),
        ("fields.csv", b"name,content\na,b\nc,d,e,f\n", "is not valid CSV: "),
        ("empty.csv", b"", "is empty (not even a header line)"),
        ("latin.csv", "name,content\na,caf\xe9\n".encode("latin-1"), "is not UTF-8 text"),
        ("bad.jsonl", b'{"name": "a", "content": "b"}\n{"name": \n', "is not valid JSON lines"),
        ("rows.xlsx", b"PK\x03\x04", "cannot tell its format from its name; cms-event reads CSV"),
        ("rows", b"name,content\na,b\n", "cannot tell its format from its name"),
    ],
)
def test_an_unreadable_file_is_one_line_naming_it_and_exit_2(
    name: str,
    data: bytes,
    problem: str,
    server: EmulatorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _write(tmp_path / name, data)
    code = main(["send", str(path), "--endpoint", server.url, "--content-col", "content"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith(f"cms-event: error: file '{path}': {problem}")
    assert captured.err.count("\n") == 1, captured.err  # one line, no traceback
    assert "Traceback" not in captured.err
    assert "sending" not in captured.err
    assert captured.out == ""
    assert server.requests() == []


def test_a_missing_file_and_a_directory(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.csv"
    assert main(["send", str(missing), "--endpoint", server.url]) == 2
    assert capsys.readouterr().err == f"cms-event: error: file '{missing}': no such file\n"
    assert main(["send", str(tmp_path), "--endpoint", server.url]) == 2
    assert capsys.readouterr().err == (
        f"cms-event: error: file '{tmp_path}': is a directory, not a file\n"
    )


def test_parquet_without_pyarrow_says_how_to_get_it(
    server: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def no_engine(*args: object, **kwargs: object) -> pd.DataFrame:
        raise ImportError("Unable to find a usable engine; tried using: 'pyarrow', 'fastparquet'.")

    monkeypatch.setattr(pd, "read_parquet", no_engine)
    path = _write(tmp_path / "rows.parquet", b"PAR1")
    assert main(["send", str(path), "--endpoint", server.url]) == 2
    assert capsys.readouterr().err == (
        f"cms-event: error: file '{path}': reading Parquet needs pyarrow: pip install pyarrow\n"
    )


def _send_with_failures(server: EmulatorServer, tmp_path: Path, failed: Path) -> int:
    path = tmp_path / "rows.jsonl"
    rows = [
        {"name": "a", "content": "x", "gid": 1},
        {"name": "", "content": "y", "gid": 2},
        {"name": "c", "content": "z", "gid": "bad"},
        {"name": "d", "content": "w", "gid": 4},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return main(
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


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_the_failed_out_file_holds_the_source_rows_with_status_and_reason(
    suffix: str, server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = tmp_path / f"failed{suffix}"
    assert _send_with_failures(server, tmp_path, failed) == 1
    out = capsys.readouterr().out
    written = pd.read_csv(failed) if suffix == ".csv" else pd.read_json(failed, lines=True)
    assert list(written.columns) == ["name", "content", "gid", "status", "reason"]
    assert written["content"].tolist() == ["y", "z"]
    assert written["status"].tolist() == ["rejected", "rejected"]
    assert "'groupId' (column 'gid') must be an integer" in written["reason"].iloc[1]
    assert all(isinstance(r, str) and r for r in written["reason"])
    assert out.count("\n") == 1
    assert f"-> 2 rows not accepted in {failed}" in out
    assert ".failed()" not in out


def test_without_failed_out_the_summary_suggests_it(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rows.csv"
    pd.DataFrame({"name": ["a", ""], "content": ["b", "c"]}).to_csv(path, index=False)
    assert main(["send", str(path), "--endpoint", server.url, "--content-col", "content"]) == 1
    out = capsys.readouterr().out
    assert out.endswith("-> keep them with --failed-out FILE\n")
    assert "result" not in out


def test_a_source_column_named_status_is_kept_and_the_outcome_named_apart(
    server: EmulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "rows.csv"
    pd.DataFrame({"name": [""], "content": ["b"], "status": ["open"]}).to_csv(path, index=False)
    failed = tmp_path / "failed.csv"
    code = main(
        [
            *["send", str(path), "--endpoint", server.url, "--content-col", "content"],
            *["--quiet", "--failed-out", str(failed)],
        ]
    )
    assert code == 1
    written = pd.read_csv(failed)
    assert list(written.columns) == ["name", "content", "status", "cms_status", "cms_reason"]
    assert written["status"].tolist() == ["open"]
    assert written["cms_status"].tolist() == ["rejected"]


def test_a_failed_out_file_is_rewritten_when_everything_is_accepted(
    server: EmulatorServer, tmp_path: Path
) -> None:
    failed = tmp_path / "failed.csv"
    failed.write_text("name,content,status,reason\na,old,not_sent,not sent\n")
    path = rows_file(tmp_path)
    arguments = ["send", str(path), "--endpoint", server.url, "--content-col", "content"]
    assert main([*arguments, "--quiet", "--failed-out", str(failed)]) == 0
    assert failed.read_text() == "name,content,status,reason\n"  # no stale rows to resend


def test_a_failed_out_file_sent_again_sends_its_source_rows_only(
    server: EmulatorServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = tmp_path / "failed.csv"
    failed.write_text(
        "host,count,status,reason\n"
        "a,1,not_sent,not sent: the send stopped before this row's request\n"
        "b,2,unknown,unknown: timed out\n"
    )
    # Whole-row content: the status and reason of the earlier send must not be in it.
    arguments = ["send", str(failed), "--endpoint", server.url, "--name", "disk", "--quiet"]
    assert main(arguments) == 0
    assert "its status and reason columns are not sent" in capsys.readouterr().err
    contents = [json.loads(e["content"]) for e in server.events()]
    assert contents == [{"host": "a", "count": 1}, {"host": "b", "count": 2}]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("missing/failed.csv", "cannot be written: its directory does not exist"),
        ("", "is a directory; give a file name"),
        ("failed.parquet", "writing Parquet needs pyarrow"),
    ],
)
def test_a_failed_out_that_cannot_be_written_is_said_before_sending(
    name: str,
    problem: str,
    server: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda n, *a: None if n in ("pyarrow", "fastparquet") else real_find_spec(n, *a),
    )
    target = tmp_path / name if name else tmp_path
    path = rows_file(tmp_path)
    arguments = ["send", str(path), "--endpoint", server.url, "--content-col", "content"]
    assert main([*arguments, "--failed-out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cms-event: error: --failed-out '{target}': {problem}"), err
    assert err.count("\n") == 1
    assert server.requests() == []


def test_a_failed_out_write_that_fails_after_the_send_is_one_line_and_exit_2(
    server: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cms_magic.ui.cli import send

    def disk_full(frame: pd.DataFrame, path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(send, "write_table", disk_full)
    path = tmp_path / "rows.csv"
    pd.DataFrame({"name": ["a", ""], "content": ["b", "c"]}).to_csv(path, index=False)
    failed = tmp_path / "failed.csv"
    arguments = ["send", str(path), "--endpoint", server.url, "--content-col", "content"]
    assert main([*arguments, "--quiet", "--failed-out", str(failed)]) == 2
    captured = capsys.readouterr()
    assert captured.err.endswith(
        f"cms-event: error: --failed-out '{failed}': cannot be written "
        "(No space left on device); 1 row not accepted not kept\n"
    )
    assert "Traceback" not in captured.err
    assert captured.out.startswith("1/2 events accepted")
