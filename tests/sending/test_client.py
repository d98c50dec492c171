"""The client: targets, inputs and options, end to end against the emulator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import cms_magic
from cms_magic.credentials.static import Credentials
from cms_magic.emulator import EmulatorServer, embedded
from cms_magic.errors import InputError, TargetError
from cms_magic.sending.client import Client
from cms_magic.sending.hostquota import host_quota
from cms_magic.settings import ENV_ENDPOINT, ENV_REGION
from cms_magic.targets import parse_target
from tests.sending._helpers import DEMO, frame


def test_end_to_end_1000_rows_every_row_has_a_status(emulator: EmulatorServer) -> None:
    n = 1000
    names: list[Any] = [f"事件-{i}" for i in range(n)]
    contents = [f"内容 {i} 🚀 payload" for i in range(n)]
    groups: list[Any] = [i % 5 for i in range(n)]
    names[10] = np.nan  # missing name
    groups[20] = "abc"  # not an integer
    contents[30] = "x" * (600 * 1024)  # too large for any request
    df = pd.DataFrame(
        {"name": names, "content": contents, "gid": groups}, index=range(5000, 5000 + n)
    )
    result = cms_magic.send(
        df,
        endpoint=emulator.url,
        credentials=emulator.credentials,
        content_col="content",
        group_id_col="gid",
        progress=False,
    )
    events = result.events
    assert list(events.index) == list(df.index)
    assert events["status"].notna().all()
    assert result.counts()["accepted"] == n - 3
    rejected = events[events["status"] == "rejected"]
    assert list(rejected.index) == [5010, 5020, 5030]
    assert "'name'" in rejected.loc[5010, "reason"]
    assert "'groupId'" in rejected.loc[5020, "reason"]
    assert "at most 512,000 bytes" in rejected.loc[5030, "reason"]
    stored = emulator.events()
    accepted_positions = np.flatnonzero(events["status"].to_numpy() == "accepted")
    assert [e["content"] for e in stored] == [contents[i] for i in accepted_positions]
    assert [e["name"] for e in stored] == [names[i] for i in accepted_positions]
    assert result.requests["http_status"].eq(200).all()
    assert "997/1,000 events accepted" in result.summary()
    assert "3 rejected -> result.failed()" in result.summary()
    assert list(result.failed().index) == [5010, 5020, 5030]


def test_list_of_events_and_dicts(emulator: EmulatorServer) -> None:
    result = cms_magic.send(
        [cms_magic.Event("a", "b", 1), {"name": "c", "content": "d"}, {"name": "x"}],
        endpoint=emulator.url,
        credentials=emulator.credentials,
        progress=False,
    )
    assert result.events["status"].tolist() == ["accepted", "accepted", "rejected"]
    assert [e["name"] for e in emulator.events()] == ["a", "c"]
    assert result.failed() == [{"name": "x"}]


def test_dry_run_sends_nothing_and_masks_the_preview(emulator: EmulatorServer) -> None:
    secret_creds = Credentials("LTAI5tDryRunKey0000abcd", "SECRET-dry-run-xyz")
    result = cms_magic.send(
        frame(250),
        endpoint=emulator.url,
        credentials=secret_creds,
        dry_run=True,
        progress=False,
    )
    assert result.counts()["dry_run"] == 250
    assert emulator.requests() == []
    assert result.preview is not None
    assert result.preview["headers"]["authorization"] == "LTAI****abcd:<signature>"
    assert "SECRET-dry-run-xyz" not in repr(result.preview)
    assert result.summary().startswith("dry run: 250/250 events would be sent")


def test_without_a_target_given_credentials_need_one_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in (ENV_ENDPOINT, ENV_REGION):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(TargetError, match="no target is configured") as info:
        cms_magic.send(frame(1), credentials=DEMO)
    assert isinstance(info.value, cms_magic.ConfigError)
    assert "'local' for the local emulator" in str(info.value)


@pytest.mark.parametrize("word", ["local", "LOCAL", "Local"])
def test_local_in_any_case_is_the_embedded_emulator_with_its_demo_key(word: str) -> None:
    client = Client(word, qps=0)
    assert client.target.is_local
    assert client.target.label == "the local emulator"
    assert client.credentials == DEMO
    result = cms_magic.send(frame(5), endpoint=word, content_col="content", progress=False, qps=0)
    assert result.ok
    server = embedded()
    assert result.endpoint == client.url == server.url
    assert [e["content"] for e in server.events()] == list(frame(5)["content"])


def test_a_target_is_used_as_is(emulator: EmulatorServer) -> None:
    target = parse_target(emulator.url)
    client = Client(target, credentials=DEMO, qps=0)
    assert client.target is target
    assert client.url == emulator.url
    assert client.send(frame(3), content_col="content", progress=False).ok


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("qps", -1),
        ("concurrency", 0),
        ("timeout", 0),
        ("chunk_rows", 0),
        ("max_bisect_requests", -1),
    ],
)
def test_bad_client_options_name_the_option(option: str, value: object) -> None:
    with pytest.raises(cms_magic.ConfigError) as info:
        Client("http://127.0.0.1:9", credentials=DEMO, **{option: value})  # type: ignore[arg-type]
    assert info.value.option == option
    assert info.value.value == value


def test_data_that_is_neither_a_frame_nor_records_is_an_input_error() -> None:
    with pytest.raises(InputError, match="must be a pandas DataFrame") as info:
        Client("http://127.0.0.1:9", credentials=DEMO).send(42)  # type: ignore[arg-type]
    assert info.value.option == "data"
    assert isinstance(info.value, TypeError)


def test_mapping_options_for_records_name_the_option() -> None:
    with pytest.raises(cms_magic.ConfigError, match="DataFrames only") as info:
        Client("http://127.0.0.1:9", credentials=DEMO).send([{"name": "a"}], name_col="n")
    assert info.value.option == "name_col"


def test_unknown_option_is_a_clear_error() -> None:
    with pytest.raises(cms_magic.ConfigError, match="unknown option") as info:
        Client("http://127.0.0.1:9", credentials=DEMO).send(frame(1), content_column="x")
    assert info.value.option == "content_column"
    assert info.value.hint == "did you mean 'content_col'?"


def test_a_send_holds_its_quota_lease_for_its_whole_run(emulator: EmulatorServer) -> None:
    """While a send at qps 19 runs, its key's shared bucket stays at 19 whoever asks for
    more; when it ends, the lease is released (issue 12 #11, the run's side)."""

    job = cms_magic.send(
        frame(5_000),
        endpoint=emulator.url,
        credentials=DEMO,
        content_col="content",
        background=True,
        qps=19,
    )
    reached = job.wait(0)
    try:
        give_up = 100
        while not reached and (job.progress is None or job.progress.requests < 1) and give_up:
            reached = job.wait(0.05)
            give_up -= 1
        assert not reached, "the send ended before it could be looked at"
        assert host_quota(DEMO.access_key_id, 20).rate == 19  # another send asks for 20
    finally:
        job.cancel()
        assert job.wait(10)
    assert host_quota(DEMO.access_key_id, 20).rate == 20  # released: no one holds it
