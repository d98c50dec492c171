"""The Redis quota (issue 16): one bucket per key through a real redis-server on loopback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cms_magic import _state
from cms_magic.errors import ConfigError
from cms_magic.sending import redisquota
from cms_magic.sending.quota import SharedBucket, lease_for, quota_factory
from cms_magic.sending.redisquota import (
    INSTALL_HINT,
    RedisBucket,
    check_redis_url,
    mask_url,
    redis_key,
    redis_quota,
)
from tests import redis_support
from tests.conftest import FakeClock
from tests.redis_support import start_redis

KEY = "LTAIredisquota001"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def fresh_key(request: pytest.FixtureRequest) -> str:
    return f"{KEY}-{request.node.name}"


def test_slots_are_spaced_by_the_servers_clock(redis_url: str, fresh_key: str) -> None:
    a = RedisBucket(redis_url, fresh_key, 20)
    b = RedisBucket(redis_url, fresh_key, 20)  # another client, as another host
    delays = [a.reserve(), b.reserve(), a.reserve(), b.reserve()]
    # Slots 0.05 s apart on the server's clock; each delay is measured when its call ran.
    assert delays[0] == pytest.approx(0.0, abs=0.01)
    for k in range(1, 4):
        assert delays[k] == pytest.approx(0.05 * k, abs=0.02)
    assert a.shared
    assert isinstance(a, SharedBucket)
    a.close()
    assert a.reserve() >= 0.0  # connects again
    assert a.shared


def test_threads_on_two_clients_never_share_a_slot(redis_url: str, fresh_key: str) -> None:
    # 2 req/s: slots 0.5 s apart, and 200 calls take far less than 0.25 s, so each delay
    # rounds to its slot's number.
    buckets = [RedisBucket(redis_url, fresh_key, 2) for _ in range(2)]
    delays: list[float] = []
    lock = threading.Lock()

    def work(bucket: RedisBucket) -> None:
        mine = [bucket.reserve() for _ in range(50)]
        with lock:
            delays.extend(mine)

    threads = [threading.Thread(target=work, args=(buckets[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(round(d * 2) for d in delays) == list(range(200))


def test_a_slower_client_slows_the_others(redis_url: str, fresh_key: str) -> None:
    fast = RedisBucket(redis_url, fresh_key, 20)
    slow = RedisBucket(redis_url, fresh_key, 20)
    with lease_for(slow, 5):
        assert slow.reserve() == pytest.approx(0.0, abs=0.01)
        assert fast.reserve() == pytest.approx(0.2, abs=0.02)


def test_the_key_in_redis_is_a_hash_with_an_expiry(redis_url: str, fresh_key: str) -> None:
    import redis

    bucket = RedisBucket(redis_url, fresh_key, 20)
    bucket.reserve()
    client = redis.Redis.from_url(redis_url)
    keys = [k.decode() for k in client.keys("cms_magic:quota:*")]
    assert redis_key(fresh_key) in keys
    assert all(KEY not in k for k in keys)
    assert 0 < client.pttl(redis_key(fresh_key)) <= 63_000
    client.close()


def test_an_unreachable_server_falls_back_with_one_warning(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with start_redis(tmp_path) as url:
        pass  # stopped: nothing listens on its port any more
    bucket = RedisBucket(url, KEY, 20, clock=clock, timeout=0.2, retry_after=5)
    with caplog.at_level(logging.WARNING, logger="cms_magic.sending.redisquota"):
        delays = [bucket.reserve() for _ in range(3)]
        clock.advance(6)  # tried again, still down: no second warning
        bucket.reserve()
    assert delays == pytest.approx([0.0, 0.05, 0.10])  # the process's bucket, at the rate
    assert not bucket.shared
    assert len(caplog.records) == 1
    assert "cannot be used" in caplog.records[0].getMessage()


def test_urls_are_checked_and_passwords_masked() -> None:
    assert check_redis_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert check_redis_url("unix:///run/redis.sock")
    assert mask_url("redis://:hunter2@h:1/0") == "redis://:***@h:1/0"
    assert mask_url("redis://me:hunter2@h/0") == "redis://me:***@h/0"
    for bad in ("redis://:hunter2@h:notaport/0", "redis://:hunter2@/0", "redis://:hunter2@h/x"):
        with pytest.raises(ConfigError) as info:
            check_redis_url(bad)
        assert info.value.option == "quota"
        assert "hunter2" not in str(info.value)
        assert "redis://host:port/db" in str(info.value)
    bucket_repr = repr(RedisBucket("redis://:hunter2@127.0.0.1:9/0", KEY, 20))
    assert "hunter2" not in bucket_repr


def test_a_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise ImportError(name)

    monkeypatch.setattr(redisquota.importlib, "import_module", missing)
    with pytest.raises(ConfigError) as info:
        quota_factory("redis://127.0.0.1:6379/0")
    assert info.value.option == "quota"
    assert info.value.hint == INSTALL_HINT
    assert "cms_magic[redis]" in str(info.value)


def test_redis_quota_is_one_per_url_and_key(redis_url: str) -> None:
    first = redis_quota(redis_url, KEY, 20)
    assert redis_quota(redis_url, KEY, 20) is first
    assert quota_factory(redis_url)(KEY, 20) is first
    assert quota_factory(redis_url)(KEY, 0) is None
    _state.reset()
    assert redis_quota(redis_url, KEY, 20) is not first


def test_a_missing_redis_server_skips_here_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_support.shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install redis-server"):
        redis_support.redis_binary()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required in CI"):
        redis_support.redis_binary()
