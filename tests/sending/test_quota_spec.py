"""The quota= setting (issue 16): host (default), process, off, redis://, a TokenBucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from cms_magic.errors import ConfigError
from cms_magic.sending.hostquota import ENV_DIR, HostBucket, host_quota
from cms_magic.sending.quota import (
    DEFAULT_QUOTA,
    SharedBucket,
    TokenBucket,
    quota_factory,
    resolve_quota,
    shared_quota,
)

KEY = "LTAIquotaspec001"


@pytest.fixture(autouse=True)
def _quota_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DIR, str(tmp_path))


def test_the_default_is_the_host_wide_bucket() -> None:
    assert DEFAULT_QUOTA == "host"
    bucket = resolve_quota(None, KEY, 20)
    assert isinstance(bucket, HostBucket)
    assert bucket is host_quota(KEY, 20)
    assert resolve_quota("host", KEY, 20) is bucket
    assert resolve_quota(" HOST ", KEY, 20) is bucket


def test_process_off_and_a_given_bucket() -> None:
    process = resolve_quota("process", KEY, 20)
    assert type(process) is SharedBucket
    assert process is shared_quota(KEY, 20)
    assert resolve_quota("off", KEY, 20) is None
    mine = TokenBucket(5)
    assert resolve_quota(mine, KEY, 20) is mine
    assert resolve_quota(mine, KEY, 0) is mine


def test_qps_zero_turns_the_client_limit_off() -> None:
    for spec in (None, "host", "process"):
        assert resolve_quota(spec, KEY, 0) is None


def test_a_factory_gives_one_bucket_per_key() -> None:
    factory = quota_factory("host")
    assert factory(KEY, 20) is factory(KEY, 20)
    assert factory(KEY, 20) is not factory(KEY + "2", 20)


@pytest.mark.parametrize(
    "bad", ["hots", "", "http://127.0.0.1:6379", 20, True, ["host"], "redis://:pw1234@h:x/0"]
)
def test_bad_settings_name_quota_the_rule_and_the_value(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        quota_factory(bad)
    error = info.value
    assert error.option == "quota"
    text = str(error)
    assert "quota" in text
    assert "pw1234" not in text
    if not (isinstance(bad, str) and bad.startswith("redis")):
        assert "'host'" in text
        assert "redis://host:port/db" in text
    else:
        assert "redis://host:port/db" in text
