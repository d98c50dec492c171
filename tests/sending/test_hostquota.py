"""The host-wide quota (issue 16): a key's bucket in a locked file, GCRA on one clock."""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

import pytest

from cms_magic import _state
from cms_magic.sending import hostquota
from cms_magic.sending.hostquota import (
    ENV_DIR,
    HostBucket,
    Slot,
    decode,
    encode,
    gcra,
    host_quota,
    quota_dir,
    quota_file_name,
)
from cms_magic.sending.quota import SharedBucket, lease_for
from tests.conftest import FakeClock

KEY = "LTAIhostquota0001"


def test_gcra_spaces_slots_by_the_interval() -> None:
    state = None
    delays = []
    for _ in range(5):
        delay, state = gcra(state, 10.0, 0.05)
        delays.append(delay)
    assert delays == pytest.approx([0.0, 0.05, 0.10, 0.15, 0.20])
    assert state is not None
    # Idle time is not banked: capacity 1, no burst after a pause.
    delay, state = gcra(state, 20.0, 0.05)
    assert delay == 0.0
    assert gcra(state, 20.0, 0.05)[0] == pytest.approx(0.05)


def test_gcra_keeps_a_slower_users_interval_while_it_holds() -> None:
    _, state = gcra(None, 0.0, 0.1, hold=2.0)  # a user at 10/s
    delay, state = gcra(state, 0.0, 0.05, hold=2.0)  # one at 20/s: still 0.1 apart
    assert delay == pytest.approx(0.1)
    assert state.slow == pytest.approx(0.1)
    delay, state = gcra(state, 3.0, 0.05, hold=2.0)  # the slow one has gone quiet
    assert delay == 0.0
    assert state.tat == pytest.approx(3.05)


def test_gcra_starts_afresh_after_a_clock_far_behind() -> None:
    stale = Slot(tat=1e9, slow=0.05, until=0.0)
    assert gcra(stale, 5.0, 0.05)[0] == 0.0


def test_records_round_trip_and_reject_garbage() -> None:
    state = Slot(12.5, 0.05, 14.5)
    raw = encode(state, boot="b1")
    assert len(raw) < 100
    assert decode(raw, boot="b1") == state
    assert decode(raw, boot="b2") is None  # another boot: CLOCK_MONOTONIC started again
    assert decode(b"", boot="b1") is None
    for bad in (b"junk", b"cms_magic-gcra/1 b1 1 2", b"cms_magic-gcra/1 b1 nan 1 1", b"\xff\xfe"):
        with pytest.raises(hostquota._Corrupt):
            decode(bad, boot="b1")


def test_the_directory_and_the_file_name(tmp_path: Path) -> None:
    assert quota_dir({ENV_DIR: str(tmp_path)}) == tmp_path
    assert quota_dir({"XDG_RUNTIME_DIR": str(tmp_path)}) == tmp_path / "cms_magic" / "quota"
    home = quota_dir({"XDG_RUNTIME_DIR": str(tmp_path / "missing")})
    assert home == Path.home() / ".cache" / "cms_magic" / "quota"
    name = quota_file_name(KEY)
    assert KEY not in name
    assert name != quota_file_name(KEY + "x")
    assert name == quota_file_name(KEY)
    # Machines sharing a home directory (NFS) have different clocks: never one file.
    assert quota_file_name(KEY, host="a") != quota_file_name(KEY, host="b")
    assert quota_file_name(KEY, host=socket.gethostname()) == name


def test_two_buckets_on_one_file_share_the_slots(tmp_path: Path, clock: FakeClock) -> None:
    a = HostBucket(KEY, 20, directory=tmp_path, clock=clock)
    b = HostBucket(KEY, 20, directory=tmp_path, clock=clock)  # its own descriptor, as a process
    other = HostBucket("LTAIother", 20, directory=tmp_path, clock=clock)
    delays = [a.reserve(), b.reserve(), a.reserve(), b.reserve()]
    assert delays == pytest.approx([0.0, 0.05, 0.10, 0.15])
    assert other.reserve() == 0.0
    assert a.host_wide
    assert isinstance(a, SharedBucket)
    assert a.path.parent == tmp_path
    assert oct(a.path.stat().st_mode & 0o777) == oct(0o600)
    assert KEY not in repr(a)
    assert KEY.encode() not in a.path.read_bytes()
    clock.advance(10)
    assert b.reserve() == 0.0


def test_threads_and_descriptors_never_get_the_same_slot(tmp_path: Path) -> None:
    buckets = [HostBucket(KEY, 100, directory=tmp_path, clock=lambda: 50.0) for _ in range(2)]
    delays: list[float] = []
    lock = threading.Lock()

    def work(bucket: HostBucket) -> None:
        mine = [bucket.reserve() for _ in range(50)]
        with lock:
            delays.extend(mine)

    threads = [threading.Thread(target=work, args=(buckets[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    slots = sorted(round(d * 100) for d in delays)
    assert slots == list(range(400))  # 400 distinct slots, 0.01 s apart


def test_a_lower_rate_elsewhere_slows_everyone(tmp_path: Path, clock: FakeClock) -> None:
    fast = HostBucket(KEY, 20, directory=tmp_path, clock=clock)
    slow = HostBucket(KEY, 20, directory=tmp_path, clock=clock)
    slow.on_answer(throttled=True)  # its adaptive rate: 14/s
    assert slow.rate == pytest.approx(14.0)
    assert slow.reserve() == 0.0
    assert fast.reserve() == pytest.approx(1 / 14)


def test_leases_set_the_rate(tmp_path: Path, clock: FakeClock) -> None:
    bucket = HostBucket(KEY, 20, directory=tmp_path, clock=clock)
    with lease_for(bucket, 10):
        assert bucket.rate == 10.0
        assert [bucket.reserve(), bucket.reserve()] == pytest.approx([0.0, 0.1])
    assert bucket.ceiling == 10.0


def test_a_corrupt_record_is_started_afresh_with_one_warning(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = HostBucket(KEY, 20, directory=tmp_path, clock=clock)
    bucket.reserve()
    bucket.path.write_bytes(b"\x00garbage that is not a record" * 30)
    with caplog.at_level(logging.WARNING, logger="cms_magic.sending.hostquota"):
        assert bucket.reserve() == 0.0
        assert bucket.reserve() == pytest.approx(0.05)
        bucket.path.write_bytes(b"junk")
        bucket.reserve()
    assert bucket.host_wide
    assert len(caplog.records) == 1
    assert "started afresh" in caplog.records[0].getMessage()
    assert decode(bucket.path.read_bytes()) is not None


def test_an_unusable_directory_falls_back_to_the_process_with_one_warning(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    bucket = HostBucket(KEY, 20, directory=blocker / "quota", clock=clock)
    with caplog.at_level(logging.WARNING, logger="cms_magic.sending.hostquota"):
        delays = [bucket.reserve() for _ in range(3)]
    assert delays == pytest.approx([0.0, 0.05, 0.10])  # still at the rate: the process's bucket
    assert not bucket.host_wide
    assert bucket.fallback_reason is not None
    assert len(caplog.records) == 1
    assert "cannot be used" in caplog.records[0].getMessage()
    assert KEY not in caplog.text


def test_a_symlinked_file_is_not_followed(tmp_path: Path, clock: FakeClock) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    os.symlink(target, tmp_path / quota_file_name(KEY))
    bucket = HostBucket(KEY, 20, directory=tmp_path, clock=clock)
    assert bucket.reserve() == 0.0
    assert not bucket.host_wide
    assert target.read_bytes() == b""


def test_host_quota_is_one_per_key_and_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "a"))
    first = host_quota(KEY, 20)
    assert host_quota(KEY, 20) is first
    assert host_quota(KEY, 5).rate == 5.0
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "b"))
    assert host_quota(KEY, 20) is not first
    assert "host quotas" in _state.names()
    _state.reset()
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "a"))
    assert host_quota(KEY, 20) is not first


def test_a_platform_without_flock_is_process_wide(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hostquota, "fcntl", None)
    bucket = HostBucket(KEY, 20, directory=tmp_path, clock=clock)
    assert not bucket.host_wide
    assert [bucket.reserve(), bucket.reserve()] == pytest.approx([0.0, 0.05])
    assert not bucket.path.exists()
