"""The command line's journal (issue 16): journaled by default next to --failed-out (or told
why not), ``cms-event journal PATH``, and kill -9 of ``cms-event send`` at random points of a
50,000-row send, then the same command again: every row once, the rows in flight at the
kill named ``unknown``, and ``--confirm`` resolving them."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from cms_magic.emulator import EmulatorServer, serve
from tests.ui.cli._helpers import cms_event, environment_for, rows_file, run

ROWS = 50_000


@pytest.fixture
def server() -> EmulatorServer:
    with serve(qps=0) as emu:
        yield emu


def test_failed_out_journals_next_to_it_and_journal_shows_it(
    server: EmulatorServer, tmp_path: Path
) -> None:
    source = rows_file(tmp_path, rows=250)
    failed = tmp_path / "failed.csv"
    env = environment_for(server, tmp_path)
    common = ["--endpoint", server.url, "--content-col", "content", "--quiet"]
    sent = run(["send", str(source), *common, "--failed-out", str(failed)], env)
    assert sent.returncode == 0, sent.stderr
    journal = Path(f"{failed}.journal")
    assert f"journal {journal}" in sent.stderr
    shown = run(["journal", str(journal), "--output", str(tmp_path / "state.csv")], env)
    assert shown.returncode == 0, shown.stderr
    assert "250" in shown.stdout
    assert "accepted" in shown.stdout
    assert (tmp_path / "state.csv").read_text(encoding="utf-8").count("accepted") == 250
    again = run(["send", str(source), *common, "--failed-out", str(failed)], env)
    assert again.returncode == 0, again.stderr
    assert len(server.events()) == 250  # the journal knew: nothing sent twice


def test_without_a_journal_the_send_says_why_and_confirm_needs_one(
    server: EmulatorServer, tmp_path: Path
) -> None:
    source = rows_file(tmp_path, rows=3)
    env = environment_for(server, tmp_path)
    common = ["--endpoint", server.url, "--content-col", "content", "--quiet"]
    plain = run(["send", str(source), *common], env)
    assert plain.returncode == 0, plain.stderr
    assert "not journaled (no --journal FILE or --failed-out FILE)" in plain.stderr
    off = run(
        ["send", str(source), *common, "--failed-out", str(tmp_path / "f.csv"), "--no-journal"], env
    )
    assert off.returncode == 0, off.stderr
    assert "not journaled (--no-journal)" in off.stderr
    confirm = run(["send", str(source), *common, "--confirm"], env)
    assert confirm.returncode == 2
    assert "--confirm" in confirm.stderr
    assert "needs a journal" in confirm.stderr
    missing = run(["journal", str(tmp_path / "nope.journal")], env)
    assert missing.returncode == 2
    assert "no such journal file" in missing.stderr


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("seed", [11, 12])
def test_kill_9_of_cms_event_send_then_the_same_command_resumes(
    seed: int, server: EmulatorServer, tmp_path: Path
) -> None:
    source = rows_file(tmp_path, rows=ROWS)
    journal = tmp_path / "send.journal"
    env = environment_for(server, tmp_path)
    command = [
        "send", str(source), "--endpoint", server.url, "--content-col", "content",
        "--qps", "0", "--quiet", "--journal", str(journal),
    ]  # fmt: skip
    kill_at = random.Random(seed).randrange(2_000, ROWS - 5_000)
    with subprocess.Popen(
        cms_event(*command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as child:
        deadline = time.monotonic() + 120
        try:
            while server.emulator.store.count() < kill_at:
                assert child.poll() is None, "the send ended before the kill"
                assert time.monotonic() < deadline, "the send did not progress"
                time.sleep(0.005)  # polling the emulator's count, not a stand-in for sync
            child.send_signal(signal.SIGKILL)
        finally:
            child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert server.emulator.store.count() < ROWS

    resumed = run(command, env)
    assert resumed.returncode in (0, 1), resumed.stderr
    held = Counter(str(e["content"]) for e in server.events())
    assert max(held.values()) == 1  # nothing stored twice
    summary = resumed.stdout.strip().splitlines()[-1]
    assert "accepted" in summary

    confirmed = run([*command, "--confirm"], env)
    assert confirmed.returncode == 0, confirmed.stderr
    assert Counter(str(e["content"]) for e in server.events()) == Counter(
        {f"row {i}": 1 for i in range(ROWS)}
    )
