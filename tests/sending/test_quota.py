"""Token buckets and the quota every send of one AccessKey shares."""

from __future__ import annotations

import pytest

import cms_magic
from cms_magic import _state
from cms_magic.credentials.static import Credentials
from cms_magic.emulator import serve
from cms_magic.errors import ConfigError
from cms_magic.sending.client import Client, shared_quota
from cms_magic.sending.quota import TokenBucket
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
    assert a.quota_bucket() is b.quota_bucket() is shared_quota("LTAIshared0001")
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
