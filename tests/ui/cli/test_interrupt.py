"""`cms-event send` stopped by SIGINT or SIGTERM: nothing is lost for resuming.

A real child process sends to an emulator on loopback started here, slowed by its
quota; once the emulator has seen the first request, the child gets the signal.
The --failed-out file then holds every row not accepted, with its status and
reason, and with the events the emulator stored covers every input row exactly
once; the one summary line's resume command sends the rest.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from cms_magic.emulator import EmulatorServer, serve
from cms_magic.ui.cli.send import _Signals, _wait
from tests.ui.cli._helpers import cms_event, environment_for, rows_file, run

ROWS = 1500  # 15 requests of 100 events: about 3 s at 4 requests/s


@pytest.fixture
def slow_server() -> Iterator[EmulatorServer]:
    with serve(qps=5) as emu:
        yield emu


def _wait_for_requests(server: EmulatorServer, proc: subprocess.Popen[str], within: float) -> None:
    deadline = time.monotonic() + within
    while not server.requests():
        assert proc.poll() is None, "the send ended before it was interrupted"
        assert time.monotonic() < deadline, "no request reached the emulator in time"
        time.sleep(0.01)


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_keeps_every_row_not_accepted_and_says_how_to_resume(
    signum: signal.Signals, status: int, slow_server: EmulatorServer, tmp_path: Path
) -> None:
    source = rows_file(tmp_path, rows=ROWS)
    failed = tmp_path / "failed.csv"
    env = environment_for(slow_server, tmp_path)
    options = ["--endpoint", slow_server.url, "--content-col", "content", "--qps", "4"]
    command = cms_event("send", str(source), *options, "--failed-out", str(failed))
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            _wait_for_requests(slow_server, proc, within=30)
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == status, err
    assert "Traceback" not in err
    lines = out.splitlines()
    assert len(lines) == 1, out  # one summary line
    assert "; interrupted" in lines[0]
    # Journaled by default next to --failed-out: the same command resumes.
    assert f"not accepted in {failed}; resume: cms-event send {source} " in lines[0]
    assert Path(f"{failed}.journal").is_file()
    assert f"journal {failed}.journal" in err

    written = pd.read_csv(failed)
    assert list(written.columns) == ["name", "content", "status", "reason"]
    assert set(written["status"]) <= {"not_sent", "unknown", "rejected"}
    assert written["reason"].map(lambda r: isinstance(r, str) and bool(r)).all()
    stored = [e["content"] for e in slow_server.events()]
    assert 0 < len(stored) < ROWS, "the signal came after the end: nothing was interrupted"
    assert len(written) == ROWS - len(stored)
    everything = sorted([*stored, *written["content"]])
    assert everything == sorted(f"row {i}" for i in range(ROWS))  # each row exactly once

    # The summary's command resumes: the rest arrive, and the file is left empty.
    resume = shlex.split(lines[0].split("; resume: ", 1)[1])
    assert resume[:2] == ["cms-event", "send"]
    again = run(resume[1:], env)
    assert again.returncode == 0, again.stderr
    assert sorted(e["content"] for e in slow_server.events()) == sorted(
        f"row {i}" for i in range(ROWS)
    )
    assert pd.read_csv(failed).empty


@pytest.mark.timeout(60)
def test_a_signal_without_failed_out_suggests_it(
    slow_server: EmulatorServer, tmp_path: Path
) -> None:
    source = rows_file(tmp_path, rows=ROWS)
    env = environment_for(slow_server, tmp_path)
    options = ["--endpoint", slow_server.url, "--content-col", "content", "--qps", "4", "--quiet"]
    command = cms_event("send", str(source), *options)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        try:
            _wait_for_requests(slow_server, proc, within=30)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert out.count("\n") == 1
    assert out.endswith("; interrupted -> keep them with --failed-out FILE\n"), out


class _Job:
    """A job that ends once aborted; records what it was asked."""

    def __init__(self, signals: _Signals) -> None:
        self.asked: list[str] = []
        self.signals = signals
        self.waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        if self.waits == 2:  # a signal arrives while the send runs
            self.signals(signal.SIGINT, None)
        if self.waits == 4:  # and a second one
            self.signals(signal.SIGTERM, None)
        return "abort" in self.asked

    def cancel(self) -> None:
        self.asked.append("cancel")

    def abort(self) -> None:
        self.asked.append("abort")

    def result(self, timeout: float | None = None) -> str:
        return "partial"


def test_the_first_signal_cancels_and_a_second_aborts() -> None:
    signals = _Signals()
    job = _Job(signals)
    assert _wait(job, signals) == "partial"  # type: ignore[arg-type,comparison-overlap]
    assert job.asked == ["cancel", "abort"]
    assert signals.received == [signal.SIGINT, signal.SIGTERM]


def test_the_handlers_are_put_back_and_left_alone_off_the_main_thread() -> None:
    import threading

    before = signal.getsignal(signal.SIGTERM)
    signals = _Signals()
    with signals.installed():
        assert signal.getsignal(signal.SIGTERM) is signals
    assert signal.getsignal(signal.SIGTERM) is before

    seen: list[object] = []

    def elsewhere() -> None:
        with _Signals().installed():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join(10)
    assert seen == [before]
