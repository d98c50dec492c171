"""The journal of a send (issue 16): open, refuse, record, crash at every step, kill -9,
size, threads and asyncio workers, no secret written, the report."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cms_magic.batching import Batch, plan_batches
from cms_magic.credentials.static import Credentials
from cms_magic.emulator import Emulator
from cms_magic.results import ACCEPTED, NOT_SENT, REJECTED, UNKNOWN
from cms_magic.sending.journal import (
    Fingerprinter,
    Journal,
    JournalError,
    JournalMismatchError,
    JournalState,
    JournalTarget,
    read_journal,
)
from cms_magic.sending.journal_store import pack_positions, unpack_positions
from cms_magic.sending.keys import quota_key
from tests.conftest import FakeClock

REPO = Path(__file__).resolve().parents[2]
KEY_ID = "LTAI5tJournalKey0001abcd"
URL = "http://127.0.0.1:9"


def payloads(n: int, marker: str = "row", start: int = 0) -> list[bytes]:
    return [b'{"name":"j","content":"%s %d"}' % (marker.encode(), i) for i in range(start, n)]


def batches(n: int, per: int = 4, marker: str = "row") -> list[Batch]:
    return plan_batches(payloads(n, marker), max_events=per).batches


def fingerprinter(per: int = 4, chunk_rows: int = 1000) -> Fingerprinter:
    return Fingerprinter(chunk_rows=chunk_rows, max_events=per, max_bytes=512_000)


def target(url: str = URL, key: str = KEY_ID) -> JournalTarget:
    return JournalTarget.of(url, key)


def open_journal(path: Path, total: int = 20, **kw: Any) -> Journal:
    kw.setdefault("fingerprint", fingerprinter())
    kw.setdefault("target", target())
    return Journal.open(path, total=total, **kw)


def copy_as_crashed(path: Path, to: Path) -> Path:
    """The files of an open journal as a process killed now would leave them (the main
    file and its WAL; the shared-memory index is rebuilt by the next open)."""
    shutil.copyfile(path, to)
    wal = Path(str(path) + "-wal")
    if wal.exists():
        shutil.copyfile(wal, str(to) + "-wal")
    return to


# --------------------------------------------------------------------------- pieces


@pytest.mark.parametrize(
    "positions",
    [
        [],
        [7],
        list(range(5, 105)),
        [0, 1, 2, 5, 6, 9],
        [3, 1, 2],
        [0, 2**40],
        list(range(0, 3_000_000, 3)),
    ],
)
def test_positions_pack_and_unpack(positions: list[int]) -> None:
    blob = pack_positions(positions)
    assert unpack_positions(blob).tolist() == positions
    if positions == list(range(5, 105)):
        assert len(blob) == 13  # a run of rows: 13 bytes whatever its length


def test_fingerprints_follow_rows_and_events() -> None:
    one, two = fingerprinter(), fingerprinter()
    a = one.prints(batches(12))
    assert [p.digest for p in a] == [p.digest for p in two.prints(batches(12))]
    assert one.digest() == two.digest()
    other_events = fingerprinter().prints(batches(12, marker="other"))
    assert [p.digest for p in a] != [p.digest for p in other_events]
    moved = [
        Batch(b.number, tuple(p + 1 for p in b.positions), b.payloads, b.body) for b in batches(12)
    ]
    assert all(x.digest != y.digest for x, y in zip(a, fingerprinter().prints(moved), strict=True))
    assert len(a[0].digest) == 16


# --------------------------------------------------------------------------- open, refuse


def test_a_new_journal_has_every_row_not_sent(tmp_path: Path) -> None:
    with open_journal(tmp_path / "j.db", total=20) as journal:
        assert not journal.resumed
        state = journal.state()
        assert state.counts == {
            "accepted": 0,
            "rejected": 0,
            "unknown": 0,
            "in_flight": 0,
            "not_sent": 20,
        }
        assert state.frontier == -1
        assert state.runs == 1
        assert not state.finished
        assert state.target == target()
    with open_journal(tmp_path / "j.db", total=20) as again:
        assert again.resumed
        assert again.initial.finished
        assert again.initial.runs == 1


@pytest.mark.parametrize(
    ("change", "differs", "words"),
    [
        ({"target": JournalTarget.of("http://127.0.0.1:10", KEY_ID)}, "target", "another target"),
        ({"target": JournalTarget.of(URL, "LTAI5tOtherKey0002wxyz")}, "target", "wxyz"),
        ({"total": 21}, "data", "20 rows, this send 21"),
        ({"fingerprint": fingerprinter(per=5)}, "options", "max_events=4 (now 5)"),
    ],
)
def test_a_journal_of_another_send_is_refused_at_open(
    tmp_path: Path, change: dict[str, Any], differs: str, words: str
) -> None:
    path = tmp_path / "j.db"
    open_journal(path).close()
    with pytest.raises(JournalMismatchError) as caught:
        open_journal(path, **change)
    error = caught.value
    assert error.differs == differs
    assert error.option == "journal"
    text = str(error)
    assert str(path) in text
    assert words in text
    assert "give a new journal path, or delete" in text
    open_journal(path).close()  # the refusal changed nothing, and released the lock


def test_other_data_is_refused_at_the_first_batch_that_differs(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with open_journal(path) as journal:
        fp = fingerprinter()
        journal.plan(fp.prints(batches(20)))
        assert journal.frontier == 4
    changed = payloads(20)
    changed[9] = b'{"name":"j","content":"edited"}'
    with open_journal(path) as journal:
        prints = fingerprinter().prints(plan_batches(changed, max_events=4).batches)
        journal.plan(prints[:2])  # batches 0 and 1 are the same: checked, not written again
        with pytest.raises(JournalMismatchError) as caught:
            journal.plan(prints[2:])
        assert caught.value.differs == "data"
        assert caught.value.batch == 2
        assert "batch 2 (rows 8-11) holds other events" in str(caught.value)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM plan").fetchone() == (5,)
    conn.close()


def test_a_resumed_run_is_verified_once_it_planned_the_batches_the_journal_knew(
    tmp_path: Path,
) -> None:
    def verified(journal: Journal) -> bool:  # read anew each time (not narrowed)
        return journal.verified

    path = tmp_path / "j.db"
    with open_journal(path) as journal:
        assert verified(journal)  # a new journal: nothing to check
        journal.plan(fingerprinter().prints(batches(20)))
        journal.end_of_plan()
    with open_journal(path) as journal:
        prints = fingerprinter().prints(batches(20))
        assert not verified(journal)
        journal.plan(prints[:3])
        assert not verified(journal)  # batches 3 and 4 not checked yet: hold them back
        journal.plan(prints[3:])
        assert verified(journal)
    with open_journal(path) as journal:
        journal.plan(fingerprinter().prints(batches(12)))  # same rows, fewer batches
        with pytest.raises(JournalMismatchError, match="it planned 5 batches, this send 3"):
            journal.end_of_plan()


def test_other_rows_are_named_too(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with open_journal(path) as journal:
        journal.plan(fingerprinter().prints(batches(20)))
        shifted = plan_batches(payloads(20)[1:], max_events=4, positions=range(1, 20)).batches
        with pytest.raises(JournalMismatchError, match=r"batch 0 .* holds other rows"):
            journal.plan(fingerprinter().prints(shifted))


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.txt"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalError, match="is not a usable cms_magic journal"):
        open_journal(garbage)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="not a cms_magic journal"):
        open_journal(other)
    with pytest.raises(JournalError, match="no such journal file"):
        read_journal(tmp_path / "missing.db")
    with pytest.raises(JournalError, match="cannot be opened"):
        open_journal(tmp_path / "no such folder" / "j.db")


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with open_journal(path) as journal:
        with pytest.raises(JournalError, match="in use by another send"):
            open_journal(path)
        assert read_journal(path).state.runs == 1  # reading is fine meanwhile
        journal.sending(0, [0, 1, 2, 3], attempt=1)
    open_journal(path).close()
    closed = open_journal(path)
    closed.close()
    closed.close()  # idempotent
    with pytest.raises(JournalError, match="is closed"):
        closed.sending(0, [0], attempt=1)


# --------------------------------------------------------------------------- records


def test_records_before_and_after_give_each_row_its_state(tmp_path: Path) -> None:
    clock = FakeClock(1_800_000_000.0)
    plan = batches(20)
    with open_journal(tmp_path / "j.db", clock=clock) as journal:
        journal.plan(fingerprinter().prints(plan))
        journal.sending(0, plan[0].positions, attempt=1, digest=b"\x01" * 16)
        assert journal.state().in_flight[:4].all()
        journal.settled(plan[0].positions, "accepted", None, batch=0, request_id="req-0")
        journal.sending(1, plan[1].positions, attempt=1)
        journal.settled(plan[1].positions, "not_sent", "not sent: throttled", batch=1)
        journal.sending(2, plan[2].positions[:2], attempt=1)  # a bisected batch's halves
        journal.settled(plan[2].positions[:2], "rejected", "rejected: bad", batch=2)
        journal.sending(2, plan[2].positions[2:], attempt=1)
        journal.settled(plan[2].positions[2:], "unknown", "unknown: 502", batch=2)
        clock.advance(5)
        journal.sending(3, plan[3].positions, attempt=2)
        journal.rejected({19: "rejected: 'name' is empty"})
        state = journal.state()
    status = state.status.tolist()
    assert status[:4] == [ACCEPTED] * 4
    assert status[4:8] == [NOT_SENT] * 4  # answered not_sent: sent again on resume
    assert status[8:10] == [REJECTED] * 2
    assert status[10:12] == [UNKNOWN] * 2
    assert status[12:16] == [UNKNOWN] * 4
    assert state.in_flight[12:16].all()
    assert status[16:19] == [NOT_SENT] * 3
    assert status[19] == REJECTED
    assert int(np.count_nonzero(state.in_flight)) == 4
    assert state.reasons[8] == "rejected: bad"
    assert state.reasons[10] == "unknown: 502"
    assert state.reasons[19] == "rejected: 'name' is empty"
    assert "in flight" in state.reasons[12]
    assert "batch 3, attempt 2" in state.reasons[12]
    assert 0 not in state.reasons
    assert 16 not in state.reasons
    assert state.updated.timestamp() == 1_800_000_005.0
    assert state.created.timestamp() == 1_800_000_000.0
    assert state.status.nbytes + state.in_flight.nbytes == 2 * state.total  # 2 bytes a row


def test_the_state_a_resumed_run_starts_from(tmp_path: Path) -> None:
    plan = batches(20)
    path = tmp_path / "j.db"
    with open_journal(path) as journal:
        journal.plan(fingerprinter().prints(plan))
        for batch in plan[:2]:
            journal.sending(batch.number, batch.positions, attempt=1)
            journal.settled(batch.positions, "accepted", None, batch=batch.number)
        journal.sending(2, plan[2].positions, attempt=1)  # killed here: in flight
        journal.settled(plan[2].positions[:1], "rejected", "rejected: x", batch=2)
    with open_journal(path) as journal:
        state = journal.initial
        assert state.not_sent().tolist() == list(range(12, 20))
        assert state.to_send(plan[0]) is None
        assert state.to_send(plan[2]) is None
        assert state.to_send(plan[3]) is plan[3]
        groups = {(s, r): p.tolist() for s, r, p in state.groups()}
        assert groups[("accepted", None)] == list(range(8))
        assert groups[("rejected", "rejected: x")] == [8]
        ((status, reason),) = [k for k in groups if k[0] == "unknown"]
        assert groups[(status, reason)] == [9, 10, 11]
        assert reason is not None
    partial = JournalState.__new__(JournalState)  # to_send of a batch half settled
    object.__setattr__(partial, "status", np.array([ACCEPTED, NOT_SENT, NOT_SENT, ACCEPTED]))
    half = partial.to_send(plan[0])
    assert half is not None
    assert half.positions == (1, 2)
    assert half.body == b"[" + b",".join(plan[0].payloads[1:3]) + b"]"


def test_rejections_known_at_open_are_not_written_again(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with open_journal(path) as journal:
        journal.rejected({3: "bad 3", 5: "bad 5"})
    with open_journal(path) as journal:
        journal.rejected({3: "bad 3", 5: "bad 5", 7: "bad 7"})
        assert journal.state().reasons == {3: "bad 3", 5: "bad 5", 7: "bad 7"}
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM log WHERE kind = 4").fetchone() == (2,)
    conn.close()


def test_a_dry_run_is_not_journaled(tmp_path: Path) -> None:
    with open_journal(tmp_path / "j.db") as journal, pytest.raises(ValueError, match="dry"):
        journal.settled([0], "dry_run", None, batch=0)


def test_durable_journals_fsync_every_commit(tmp_path: Path) -> None:
    with open_journal(tmp_path / "j.db", durable=True) as journal:
        assert journal._live().execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    with open_journal(tmp_path / "k.db") as journal:
        conn = journal._live()
        assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


# --------------------------------------------------------------------------- crashes


def _scripted_send(plan: list[Batch]) -> list[tuple[Callable[[Journal], None], dict[int, str]]]:
    """A send's journal calls, each with what it changes per row in a model of the
    state (status name, or 'in_flight')."""
    steps: list[tuple[Callable[[Journal], None], dict[int, str]]] = []

    def rows(positions: tuple[int, ...], state: str) -> dict[int, str]:
        return dict.fromkeys(positions, state)

    def add(call: Callable[[Journal], None], change: dict[int, str]) -> None:
        steps.append((call, change))

    prints = fingerprinter().prints(plan)
    add(lambda j: j.plan(prints[:3]), {})
    add(lambda j: j.rejected({23: "rejected: too large"}), {23: "rejected"})
    b0, b1, b2, b3, b4 = plan[:5]
    add(lambda j: j.sending(0, b0.positions, attempt=1), rows(b0.positions, "in_flight"))
    add(lambda j: j.sending(1, b1.positions, attempt=1), rows(b1.positions, "in_flight"))
    add(
        lambda j: j.settled(b0.positions, "accepted", None, batch=0), rows(b0.positions, "accepted")
    )
    add(lambda j: j.plan(prints[3:]), {})
    add(lambda j: j.sending(1, b1.positions, attempt=2), rows(b1.positions, "in_flight"))
    add(
        lambda j: j.settled(b1.positions, "accepted", None, batch=1), rows(b1.positions, "accepted")
    )
    left, right = b2.positions[:2], b2.positions[2:]
    add(lambda j: j.sending(2, b2.positions, attempt=1), rows(b2.positions, "in_flight"))
    add(lambda j: j.sending(2, left, attempt=1), rows(left, "in_flight"))
    add(lambda j: j.settled(left, "rejected", "rejected: bad", batch=2), rows(left, "rejected"))
    add(lambda j: j.sending(2, right, attempt=1), rows(right, "in_flight"))
    add(lambda j: j.settled(right, "accepted", None, batch=2), rows(right, "accepted"))
    add(lambda j: j.sending(3, b3.positions, attempt=1), rows(b3.positions, "in_flight"))
    add(
        lambda j: j.settled(b3.positions, "unknown", "unknown: 504", batch=3),
        rows(b3.positions, "unknown"),
    )
    add(lambda j: j.sending(4, b4.positions, attempt=1), rows(b4.positions, "in_flight"))
    add(
        lambda j: j.settled(b4.positions, "not_sent", "not sent: throttled", batch=4),
        rows(b4.positions, "not_sent"),
    )
    return steps


def test_the_state_after_a_crash_at_every_step(tmp_path: Path) -> None:
    plan = batches(24)[:6]
    steps = _scripted_send(plan)
    codes = {"accepted": ACCEPTED, "rejected": REJECTED, "unknown": UNKNOWN, "not_sent": NOT_SENT}
    for stop in range(len(steps) + 1):
        path = tmp_path / f"run{stop}.db"
        model = dict.fromkeys(range(24), "not_sent")
        with open_journal(path, total=24) as journal:
            for call, change in steps[:stop]:
                call(journal)
                model.update(change)
            crashed = copy_as_crashed(path, tmp_path / f"crashed{stop}.db")
        state = read_journal(crashed).state
        assert not state.finished  # no close record: the run was killed
        expected = [codes.get(model[i], UNKNOWN) for i in range(24)]
        assert state.status.tolist() == expected, f"after step {stop}"
        flying = [model[i] == "in_flight" for i in range(24)]
        assert state.in_flight.tolist() == flying, f"after step {stop}"
        with open_journal(crashed, total=24) as resumed:  # it opens to resume
            assert resumed.initial.status.tolist() == expected


_CHILD = textwrap.dedent(
    """
    import sys
    from cms_magic.batching import plan_batches
    from cms_magic.sending.journal import Fingerprinter, Journal, JournalTarget

    def say(line):  # one write per line: a kill never tears one (print writes in pieces)
        sys.stdout.write(line + "\\n")
        sys.stdout.flush()

    path, total = sys.argv[1], int(sys.argv[2])
    payloads = [b'{"name":"k","content":"%d"}' % i for i in range(total)]
    fingerprint = Fingerprinter(chunk_rows=1000, max_events=10, max_bytes=512000)
    journal = Journal.open(
        path, fingerprint=fingerprint, target=JournalTarget.of("http://127.0.0.1:9", "LTAI5tKill"),
        total=total,
    )
    state = journal.initial
    window = []  # the requests "in flight": 3 at a time
    for start in range(0, total, 1000):
        planned = plan_batches(
            payloads[start:start + 1000], 10, positions=range(start, min(total, start + 1000)),
            first_number=start // 10,
        ).batches
        journal.plan(fingerprint.prints(planned))
        for batch in planned:
            batch = state.to_send(batch)
            if batch is None:
                continue
            journal.sending(batch.number, batch.positions, attempt=1)
            say("S %d" % batch.number)
            window.append(batch)
            if len(window) == 3:
                done = window.pop(0)
                journal.settled(done.positions, "accepted", None, batch=done.number,
                                request_id="r%d" % done.number)
                say("A %d" % done.number)
    for done in window:
        journal.settled(done.positions, "accepted", None, batch=done.number)
        say("A %d" % done.number)
    journal.close()
    say("END")
    """
)


def _child(path: Path, total: int) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(total)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def _lines_until(child: subprocess.Popen[str], count: int) -> list[str]:
    assert child.stdout is not None
    lines: list[str] = []
    for line in child.stdout:
        lines.append(line.split("\n")[0])
        if len(lines) >= count:
            break
    return lines


@pytest.mark.parametrize("seed", [16, 61])
def test_kill_9_at_random_points_leaves_a_consistent_journal(tmp_path: Path, seed: int) -> None:
    # Large enough that no round reaches the end: a child can run ahead of the reader by
    # a pipe's buffer (~8,000 lines, ~4,000 requests) before it blocks.
    total, rng = 300_000, random.Random(seed)
    path = tmp_path / "killed.db"
    ever_in_flight: set[int] = set()
    for _round in range(5):
        child = _child(path, total)
        try:
            lines = _lines_until(child, rng.randint(5, 3_000))
            child.kill()  # SIGKILL: no close, no flush, no atexit
            assert child.stdout is not None
            lines += child.stdout.read().splitlines()  # what it printed before it died
        finally:
            child.wait(timeout=30)
            if child.stdout:
                child.stdout.close()
        assert "END" not in lines
        conn = sqlite3.connect(path)  # recovers the WAL like any reader
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
        state = read_journal(path).state
        assert not state.finished
        counts = state.counts
        assert counts["accepted"] + counts["unknown"] + counts["not_sent"] == total
        for line in lines:
            kind, number = line.split()
            rows = state.status[int(number) * 10 : int(number) * 10 + 10]
            if kind == "A":  # answered before the kill: accepted
                assert (rows == ACCEPTED).all(), line
            else:  # written before it went out: accepted or in flight, never "not sent"
                assert (rows != NOT_SENT).all(), line
        # In flight at this kill: at most the 3 requests of the window, and one written
        # but not printed yet (the rows in flight at earlier kills stay so: never resent).
        now_in_flight = set(np.flatnonzero(state.in_flight).tolist())
        assert ever_in_flight <= now_in_flight
        assert 0 < len(now_in_flight - ever_in_flight) <= 4 * 10
        ever_in_flight = now_in_flight
    child = _child(path, total)  # the last run goes to the end
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    assert out.strip().endswith("END")
    state = read_journal(path).state
    assert state.finished
    assert state.runs == 6
    unknown = set(np.flatnonzero(state.status == UNKNOWN).tolist())
    assert unknown == ever_in_flight  # never resent, reported unknown
    assert state.counts["accepted"] == total - len(unknown)


# --------------------------------------------------------------------------- size, threads


def test_size_per_million_rows(tmp_path: Path) -> None:
    """10,000 requests of 100 rows, each planned, sent and settled: the file's size."""
    path = tmp_path / "million.db"
    fp = Fingerprinter(chunk_rows=10_000, max_events=100, max_bytes=512_000)
    with Journal.open(path, fingerprint=fp, target=target(), total=1_000_000) as journal:
        body = b"[" + b",".join([b'{"name":"j","content":"x"}'] * 100) + b"]"
        for chunk in range(100):
            planned = [
                Batch(n, tuple(range(n * 100, n * 100 + 100)), (), body)
                for n in range(chunk * 100, chunk * 100 + 100)
            ]
            journal.plan(fp.prints(planned))
            for batch in planned:
                journal.sending(batch.number, batch.positions, attempt=1, digest=b"m" * 16)
                request_id = f"{batch.number:08d}-0000-4000-8000-000000000000"
                journal.settled(
                    batch.positions, "accepted", None, batch=batch.number, request_id=request_id
                )
        assert journal.state().counts["accepted"] == 1_000_000
    size = path.stat().st_size + _size(Path(str(path) + "-wal"))
    assert size < 3_500_000, f"{size:,} bytes per million rows"


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def test_asyncio_workers_and_a_planning_thread_share_one_journal(tmp_path: Path) -> None:
    """Workers on the event loop write before/after records between awaits while the
    producer plans chunks in a worker thread, as the run does: every record lands, in an
    order where each request's answer follows its "sending" record."""
    total, per = 4_000, 10
    plan = batches(total, per=per)
    fp = fingerprinter(per=per)
    path = tmp_path / "j.db"

    async def main(journal: Journal) -> None:
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=16)
        loop = asyncio.get_running_loop()

        def plan_chunk(chunk: list[Batch]) -> None:
            journal.plan(fp.prints(chunk))

        async def produce() -> None:
            for start in range(0, len(plan), 40):
                chunk = plan[start : start + 40]
                await loop.run_in_executor(None, plan_chunk, chunk)
                for batch in chunk:
                    await queue.put(batch)
            for _ in range(8):
                await queue.put(None)

        async def work() -> None:
            while (batch := await queue.get()) is not None:
                journal.sending(batch.number, batch.positions, attempt=1)
                await asyncio.sleep(0)  # the request is out; other workers run
                journal.settled(batch.positions, "accepted", None, batch=batch.number)

        await asyncio.gather(produce(), *(work() for _ in range(8)))

    with Journal.open(path, fingerprint=fp, target=target(), total=total) as journal:
        asyncio.run(main(journal))
    state = read_journal(path).state
    assert state.counts["accepted"] == total
    assert state.frontier == len(plan) - 1
    conn = sqlite3.connect(path)
    order = conn.execute("SELECT kind, batch FROM log WHERE kind IN (2, 3) ORDER BY seq").fetchall()
    conn.close()
    sent: set[int] = set()
    for kind, number in order:
        if kind == 2:
            sent.add(number)
        else:
            assert number in sent
    assert len(order) == 2 * len(plan)


def test_threads_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    plan = batches(2_000, per=10)
    with open_journal(tmp_path / "j.db", total=2_000, fingerprint=fingerprinter(per=10)) as journal:

        def write(part: list[Batch]) -> None:
            for batch in part:
                journal.sending(batch.number, batch.positions, attempt=1)
                journal.settled(batch.positions, "accepted", None, batch=batch.number)

        threads = [threading.Thread(target=write, args=(plan[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert journal.state().counts["accepted"] == 2_000


# --------------------------------------------------------------------------- secrets, report


def test_no_secret_is_ever_written(tmp_path: Path) -> None:
    secret, token = "JournalSecret-0123456789abcdef", "JournalToken-" + "t" * 40
    credentials = Credentials(KEY_ID, secret, token)
    journal_target = JournalTarget.of(URL, quota_key(credentials))
    path = tmp_path / "j.db"
    plan = batches(8)
    with open_journal(path, total=8, target=journal_target) as journal:
        journal.plan(fingerprinter().prints(plan))
        journal.sending(0, plan[0].positions, attempt=1)
        journal.settled(plan[0].positions, "rejected", "rejected: 400 InvalidParameter", batch=0)
        journal.sending(1, plan[1].positions, attempt=1)
        texts = [repr(journal), repr(journal.state()), str(journal_target), repr(journal_target)]
        on_disk = path.read_bytes() + Path(str(path) + "-wal").read_bytes()
    with pytest.raises(JournalMismatchError) as caught:
        open_journal(path, total=8, target=JournalTarget.of(URL, "LTAI5tSomeoneElse99zz"))
    report = read_journal(path)
    texts += [str(caught.value), report.summary(), report.frame().to_string()]
    on_disk += path.read_bytes()
    for text in texts:
        assert secret not in text
        assert token not in text
        assert KEY_ID not in text
    for value in (secret, token, KEY_ID):
        assert value.encode() not in on_disk
    assert "LTAI****abcd" in report.summary()  # the key is shown masked


def test_read_journal_summary_and_frame(tmp_path: Path) -> None:
    clock = FakeClock(1_800_000_000.0)
    plan = batches(12)
    path = tmp_path / "j.db"
    with open_journal(path, total=12, clock=clock) as journal:
        journal.plan(fingerprinter().prints(plan[:2]))
        journal.sending(0, plan[0].positions, attempt=1)
        journal.settled(plan[0].positions, "accepted", None, batch=0, request_id="req-0")
        journal.rejected({11: "rejected: bad"})
        clock.advance(60)
        journal.sending(1, plan[1].positions, attempt=1)
        report = read_journal(path)  # while the send writes it
    text = report.summary()
    assert f"journal {path}: 12 rows to {URL} (key LTAI****abcd)" in text
    assert (
        "4 accepted, 1 rejected, 4 unknown (4 in flight when it was last written), 3 not sent"
        in text
    )
    assert "created 2027-01-15 08:00:00 UTC, last written 2027-01-15 08:01:00 UTC" in text
    assert "1 run, the last run stopped without ending" in text
    assert "sends the rows not sent" in text
    frame = report.frame()
    assert list(frame.columns) == ["row", "status", "in_flight", "reason", "batch", "request_id"]
    assert len(frame) == 12
    assert frame["row"].tolist() == list(range(12))
    assert frame["status"].tolist() == ["accepted"] * 4 + ["unknown"] * 4 + ["not_sent"] * 3 + [
        "rejected"
    ]
    assert frame["batch"].tolist()[:8] == [0] * 4 + [1] * 4
    assert frame["batch"].isna().tolist()[8:] == [True] * 4  # not planned (batch 2) / rejected
    assert frame["request_id"].tolist()[:4] == ["req-0"] * 4
    assert frame["request_id"].isna()[4]
    assert frame["reason"][11] == "rejected: bad"
    assert "in flight" in frame["reason"][5]
    assert frame["in_flight"].tolist() == [False] * 4 + [True] * 4 + [False] * 4
    assert "the last run ended normally" in str(read_journal(path))


def test_importing_the_journal_does_not_load_sqlite(tmp_path: Path) -> None:
    code = "import sys, cms_magic.sending.journal; print('sqlite3' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- through a run


class _Crash:
    """Answers through the emulator until request ``at``: then snapshots the journal as a
    kill would leave it, and nothing more reaches the service."""

    def __init__(self, emulator: Any, journal: Path, snapshot: Path, at: int) -> None:
        self.emulator, self.journal, self.snapshot, self.at = emulator, journal, snapshot, at
        self.count = 0

    def __call__(self, request: Any) -> Any:
        import httpx

        self.count += 1
        if self.count == self.at:
            copy_as_crashed(self.journal, self.snapshot)
        if self.count >= self.at:
            raise httpx.ConnectError("the process was killed")
        return self.emulator.handle_request(request)


def _journaled_send(client: Any, df: Any, path: Path) -> Any:
    """A send with a journal, as a user makes it (the run's own wiring)."""
    return client.send(df, name_col="name", content_col="content", journal=path)


@pytest.mark.parametrize("crash_at", [1, 7, 23])
def test_a_run_resumed_from_a_crashed_journal_stores_each_row_at_most_once(
    tmp_path: Path, crash_at: int
) -> None:
    from collections import Counter

    from tests.sending._helpers import frame, no_sleep_client

    df = frame(3_000)
    emulator = Emulator(qps=0)
    live, crashed = tmp_path / "live.db", tmp_path / "crashed.db"
    first = no_sleep_client(
        _Crash(emulator, live, crashed, crash_at), concurrency=4, chunk_rows=500, max_events=50
    )
    _journaled_send(first, df, live)
    before = read_journal(crashed).state
    assert before.counts["in_flight"] >= 1  # the request at the crash went out, unanswered
    assert before.counts["accepted"] + before.counts["unknown"] + before.counts["not_sent"] == 3_000

    again = no_sleep_client(emulator.handle_request, concurrency=4, chunk_rows=500, max_events=50)
    result = _journaled_send(again, df, crashed)
    copies = Counter(event["content"] for event in emulator.events())
    held = np.array([copies[f"row-{i}"] for i in range(3_000)])
    assert held.max() == 1  # nothing stored twice
    assert (held[before.status == ACCEPTED] == 1).all()
    assert (held[before.status == NOT_SENT] == 1).all()  # sent by the resumed run
    unknown = before.status == UNKNOWN  # in flight at the crash: reported, not resent
    assert result.counts()["unknown"] == int(unknown.sum())
    assert result.accepted == 3_000 - int(unknown.sum())
    after = read_journal(crashed).state
    assert after.counts["not_sent"] == 0
    assert (after.status[unknown] == UNKNOWN).all()


def test_a_run_with_other_data_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    from tests.sending._helpers import frame, no_sleep_client

    emulator = Emulator(qps=0)
    path = tmp_path / "j.db"
    first = no_sleep_client(
        _Crash(emulator, path, tmp_path / "c.db", 5), chunk_rows=500, max_events=50
    )
    _journaled_send(first, frame(3_000), path)
    stored = len(emulator.events())
    other = frame(3_000, marker="edited")
    again = no_sleep_client(emulator.handle_request, chunk_rows=500, max_events=50)
    result = _journaled_send(again, other, path)
    assert len(emulator.events()) == stored  # nothing more was sent
    assert result.error is not None
    assert isinstance(result.error.__cause__, JournalMismatchError)
    assert "batch 0 (rows 0-49) holds other events" in str(result.error)
