"""Token buckets and the quota every send of one AccessKey shares."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

import cms_magic
from cms_magic import _state
from cms_magic.credentials.static import Credentials
from cms_magic.emulator import Emulator, serve
from cms_magic.errors import ConfigError
from cms_magic.sending.client import Client, shared_quota
from cms_magic.sending.hostquota import host_quota
from cms_magic.sending.quota import SharedBucket, TokenBucket, lease, lease_for
from tests.conftest import FakeClock
from tests.sending._helpers import DEMO, frame


def test_token_bucket_with_a_fake_clock() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=20, capacity=1, clock=lambda: now[0])
    delays = [bucket.reserve() for _ in range(5)]
    assert delays == pytest.approx([0.0, 0.05, 0.10, 0.15, 0.20])
    now[0] = 10.0
    assert bucket.reserve() == 0.0
    emulator_bucket = TokenBucket(rate=20, clock=lambda: now[0])
    assert sum(emulator_bucket.try_acquire() for _ in range(25)) == 20
    now[0] += 0.5
    assert sum(emulator_bucket.try_acquire() for _ in range(25)) == 10


def test_quota_is_one_per_access_key_process_wide() -> None:
    a = Client("http://127.0.0.1:9", credentials=Credentials("LTAIshared0001", "s1"))
    b = Client("http://127.0.0.1:9", credentials=Credentials("LTAIshared0001", "s1"))
    c = Client("http://127.0.0.1:9", credentials=Credentials("LTAIother00002", "s2"))
    assert a.quota_bucket() is b.quota_bucket() is host_quota("LTAIshared0001", 20)
    assert a.quota_bucket() is not c.quota_bucket()
    assert Client("http://127.0.0.1:9", credentials=DEMO, qps=0).quota_bucket() is None


def test_two_concurrent_sends_share_the_quota_without_throttling() -> None:
    """Two sends at once, each alone allowed 20 req/s, against an emulator enforcing 20/s."""
    with serve(qps=20) as server:
        jobs = [
            cms_magic.send(
                frame(2_000, marker=f"job{k}"),
                endpoint=server.url,
                credentials=server.credentials,
                content_col="content",
                background=True,
                qps=20,
            )
            for k in range(2)
        ]
        results = [job.result(timeout=60) for job in jobs]
        statuses = [r["status"] for r in server.requests()]
    assert all(r.ok for r in results)
    assert statuses.count(200) == 40
    assert 403 not in statuses  # 40 requests at 20/s total: never throttled


def test_asking_with_another_qps_changes_the_rate_of_the_one_bucket() -> None:
    first = shared_quota("LTAIrate000001", 20)
    again = shared_quota("LTAIrate000001", 5)
    assert again is first
    assert first.rate == 5


def test_shared_quotas_live_in_the_resettable_state() -> None:
    first = shared_quota("LTAIreset00001", 20)
    assert "shared quotas" in _state.names()
    _state.reset()
    assert shared_quota("LTAIreset00001", 20) is not first


def test_a_bucket_refuses_a_bad_rate_with_fields() -> None:
    with pytest.raises(ConfigError) as info:
        TokenBucket(rate=0)
    assert (info.value.option, info.value.value) == ("qps", 0)
    with pytest.raises(ConfigError) as info:
        TokenBucket(rate=5, capacity=0.5)
    assert info.value.option == "capacity"


def test_set_rate_keeps_the_debt_and_spaces_at_the_new_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, capacity=1, clock=lambda: now[0])
    assert bucket.reserve() == 0.0
    bucket.set_rate(2)
    assert bucket.reserve() == pytest.approx(0.5)


# ----------------------------------------------------------------- leases (issue 12 #11)


def test_a_leased_bucket_runs_at_the_lowest_rate_of_its_users_on_a_fake_clock(
    clock: FakeClock,
) -> None:
    bucket = SharedBucket(20, clock=clock)
    with bucket.lease(20):
        assert bucket.rate == 20
        with bucket.lease(19):
            assert bucket.rate == 19
            with bucket.lease(20):  # a faster user joining never raises it
                assert bucket.rate == 19
            assert bucket.rate == 19
            delays = [bucket.reserve() for _ in range(20)]
            assert delays[-1] == pytest.approx(19 / 19)  # 20 requests take 1 s at 19/s
            clock.advance(2.0)
        assert bucket.rate == 20  # the slower send ended: the remaining user's rate
        assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.05, 0.10])
    assert not bucket.in_use
    assert bucket.rate == 20  # no user: left as it was until the next one


def test_a_lease_is_released_on_error_and_cancel(clock: FakeClock) -> None:
    bucket = SharedBucket(20, clock=clock)
    with bucket.lease(20):
        with pytest.raises(RuntimeError), bucket.lease(5):
            raise RuntimeError("boom")
        assert bucket.rate == 20

        async def cancelled() -> None:
            with bucket.lease(2):
                await asyncio.sleep(10)

        async def main() -> None:
            task = asyncio.create_task(cancelled())
            await asyncio.sleep(0)
            assert bucket.rate == 2
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert bucket.rate == 20


def test_shared_quota_never_resets_a_bucket_in_use() -> None:
    with lease("LTAIlease00001", 19) as bucket:
        assert shared_quota("LTAIlease00001", 20) is bucket
        assert bucket.rate == 19  # asking is not using: the user at 19 keeps its rate
        with lease("LTAIlease00001", 20):
            assert bucket.rate == 19
    assert shared_quota("LTAIlease00001", 20).rate == 20  # nobody in use: a lone user decides


def test_lease_for_leases_only_shared_buckets(clock: FakeClock) -> None:
    private = TokenBucket(rate=3, clock=clock)
    with lease_for(private, 1):
        assert private.rate == 3
    with lease_for(None, 1):
        pass
    shared = shared_quota("LTAIleasefor01", 20)
    with lease_for(shared, 7):
        assert shared.rate == 7
    assert not shared.in_use


def test_two_concurrent_sends_at_20_and_19_on_one_key_run_at_19_combined() -> None:
    """Two sends at once on one key, at qps 20 and 19, each holding its lease as the run
    does: the combined rate is the lower one, 19 requests per second (bounded: ~3 s)."""
    emulator = Emulator(qps=0)
    times: list[float] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            times.append(time.monotonic())
        return emulator.handle_request(request)

    def client(qps: float) -> Client:
        return Client(
            "http://127.0.0.1:9",
            credentials=DEMO,
            qps=qps,
            concurrency=2,
            transport=httpx.MockTransport(handler),
        )

    slow, fast = client(19), client(20)
    with lease(DEMO.access_key_id, 19), lease(DEMO.access_key_id, 20):
        jobs = [
            slow.send(frame(3_000, "slow"), content_col="content", background=True),
            fast.send(frame(3_000, "fast"), content_col="content", background=True),
        ]
        results = [job.result(timeout=30) for job in jobs]
    assert all(r.ok for r in results)
    assert len(times) == 60
    combined = (len(times) - 1) / (times[-1] - times[0])
    assert 15 < combined < 19.3
    # in no second more than 19 (+1 for the slot at its start)
    assert max(sum(1 for u in times if t <= u < t + 1.0) for t in times) <= 20
