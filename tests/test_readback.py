"""Read-back (issue 15) over httpx.MockTransport: a fake CloudMonitor that verifies every ACS3
signature and answers api-shapes.md's shapes; paging at its boundaries, limit, filters by
their parameter names, relative times on a fake clock, dtypes, targets, errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest

from cms_magic.credentials.static import Credentials
from cms_magic.errors import CmsError, ConfigError, TargetError
from cms_magic.openapi.client import OpenApiClient
from cms_magic.openapi.errors import (
    OpenApiError,
    OpenApiPermissionError,
    OpenApiServerError,
)
from cms_magic.readback import (
    ATTRIBUTE_ACTION,
    COUNT_ACTION,
    DEFAULT_PAGE_SIZE,
    HISTOGRAM_ACTION,
    ReadProgress,
    count_events,
    event_histogram,
    openapi_url,
    query_events,
)
from cms_magic.readback_times import parse_bound, time_window
from cms_magic.sending.retry import RetryPolicy
from cms_magic.targets import parse_target
from tests.conftest import FakeClock
from tests.credentials.test_locals import renderings
from tests.openapi.test_client import KEY_ID, SECRET, FakeOpenApi, Seen, _replying, answer, error

NOW = 1_764_579_600.0  # 2025-12-01T09:00:00Z
KEYS = Credentials(KEY_ID, SECRET)


def stored(count: int, *, start_ms: int = 1_764_500_000_000) -> list[dict[str, str]]:
    """Events as DescribeCustomEventAttribute gives them (every value a string)."""
    return [
        {
            "Id": f"ev-{i:05d}",
            "Name": "deploy" if i % 2 else "中文 事件",
            "GroupId": str(i % 3),
            "Time": str(start_ms + i * 1000),
            "Content": f'{{"n": {i}}}',
        }
        for i in range(count)
    ]


def pages(events: list[dict[str, str]]) -> Callable[[Seen], httpx.Response]:
    """A DescribeCustomEventAttribute that pages ``events`` by PageNumber/PageSize."""

    def reply(seen: Seen) -> httpx.Response:
        assert seen.action == ATTRIBUTE_ACTION
        number, size = int(seen.params["PageNumber"]), int(seen.params["PageSize"])
        chunk = events[(number - 1) * size : number * size]
        body = {
            "Code": "200",
            "Message": "",
            "RequestId": f"R{number}",
            "Success": "true",
            "CustomEvents": {"CustomEvent": chunk},
        }
        return answer(body)

    return reply


def reader(fake: FakeOpenApi, clock: FakeClock) -> OpenApiClient:
    return OpenApiClient(
        "https://metrics.cn-hangzhou.aliyuncs.com",
        KEYS,
        transport=fake.transport,
        clock=clock,
        monotonic=clock,
        sleep=clock.sleep,
        random=lambda: 0.5,
        retry=RetryPolicy(max_attempts=3, max_time=30),
    )


@pytest.fixture
def now() -> FakeClock:
    return FakeClock(NOW)


# ---- paging ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "calls"),
    [
        (0, 1),
        (1, 1),
        (DEFAULT_PAGE_SIZE, 2),
        (DEFAULT_PAGE_SIZE + 1, 2),
        (3 * DEFAULT_PAGE_SIZE, 4),
    ],
)
def test_paging_reads_everything_at_the_boundaries(now: FakeClock, count: int, calls: int) -> None:
    events = stored(count)
    fake = FakeOpenApi(pages(events))
    frame = query_events(client=reader(fake, now))
    assert list(frame["id"]) == [e["Id"] for e in events]
    assert [int(s.params["PageNumber"]) for s in fake.seen] == list(range(1, calls + 1))
    assert {s.params["PageSize"] for s in fake.seen} == {str(DEFAULT_PAGE_SIZE)}


@pytest.mark.parametrize(
    ("count", "limit", "calls"), [(10, 3, 1), (10, 4, 1), (25, 10, 3), (7, 10, 2)]
)
def test_limit_stops_the_paging(now: FakeClock, count: int, limit: int, calls: int) -> None:
    fake = FakeOpenApi(pages(stored(count)))
    frame = query_events(client=reader(fake, now), limit=limit, page_size=4)
    assert len(frame) == min(count, limit)
    assert len(fake.seen) == calls
    assert fake.seen[0].params["PageSize"] == str(min(4, limit))


def test_progress_is_called_per_page_and_once_finished(now: FakeClock) -> None:
    seen: list[ReadProgress] = []
    fake = FakeOpenApi(pages(stored(25)))
    query_events(client=reader(fake, now), page_size=10, progress=seen.append)
    assert [(p.events, p.pages, p.finished) for p in seen] == [
        (10, 1, False),
        (20, 2, False),
        (25, 3, True),
    ]
    assert seen[-1].line().startswith("25 events read, 3 pages, done in")
    limited: list[ReadProgress] = []
    query_events(
        client=reader(FakeOpenApi(pages(stored(25))), now),
        page_size=10,
        limit=15,
        progress=limited.append,
    )
    assert str(limited[0]).startswith("10/15 events read, 1 page")
    assert (limited[-1].events, limited[-1].finished) == (15, True)


def test_a_service_ignoring_page_number_is_an_error_not_a_loop(now: FakeClock) -> None:
    events = stored(5)

    def same_page(seen: Seen) -> httpx.Response:
        return answer({"Code": "200", "Success": "true", "CustomEvents": {"CustomEvent": events}})

    fake = FakeOpenApi(same_page)
    with pytest.raises(OpenApiError, match="page 2 repeats page 1"):
        query_events(client=reader(fake, now), page_size=5)
    assert len(fake.seen) == 2


def test_missing_or_null_lists_are_empty_and_a_wrong_shape_is_malformed(now: FakeClock) -> None:
    for body in (
        {"Code": "200"},
        {"Code": "200", "CustomEvents": None},
        {"Code": "200", "CustomEvents": {"CustomEvent": None}},
    ):
        frame = query_events(client=reader(FakeOpenApi(_replying(answer(body))), now))
        assert frame.empty
        assert list(frame.columns) == ["id", "time", "name", "group_id", "content"]
    bad = {"Code": "200", "CustomEvents": {"CustomEvent": "nope"}}
    with pytest.raises(OpenApiError, match="MalformedAnswer"):
        query_events(client=reader(FakeOpenApi(lambda seen: answer(bad)), now))


# ---- frames ------------------------------------------------------------------------------


def test_the_events_frame_has_proper_dtypes(now: FakeClock) -> None:
    events = stored(3)
    events[0]["RegionId"] = "cn-hangzhou"  # a field the shape does not list is kept
    frame = query_events(client=reader(FakeOpenApi(pages(events)), now))
    assert list(frame.columns) == ["id", "time", "name", "group_id", "content", "region_id"]
    assert str(frame["time"].dt.tz) == "UTC"
    assert frame["time"][1] == pd.Timestamp(1_764_500_001_000, unit="ms", tz="UTC")
    assert frame["group_id"].dtype == "int64"
    assert list(frame["group_id"]) == [0, 1, 2]
    assert pd.api.types.is_string_dtype(frame["name"])
    assert frame["name"][0] == "中文 事件"
    assert frame["content"][2] == '{"n": 2}'
    empty = query_events(client=reader(FakeOpenApi(pages([])), now))
    assert empty.dtypes.to_dict() == frame.drop(columns="region_id").dtypes.to_dict()


def test_tz_converts_the_returned_times(now: FakeClock) -> None:
    frame = query_events(client=reader(FakeOpenApi(pages(stored(1))), now), tz="Asia/Shanghai")
    assert str(frame["time"].dt.tz) == "Asia/Shanghai"
    assert frame["time"][0].utcoffset() == timedelta(hours=8)


def test_an_odd_group_id_or_time_is_missing_not_a_crash(now: FakeClock) -> None:
    events = stored(2)
    events[1]["GroupId"] = "x"
    events[1]["Time"] = "later"
    frame = query_events(client=reader(FakeOpenApi(pages(events)), now))
    assert str(frame["group_id"].dtype) == "Int64"
    assert frame["group_id"].isna().tolist() == [False, True]
    assert frame["time"].isna().tolist() == [False, True]


def test_count_sums_the_services_rows_or_returns_them(now: FakeClock) -> None:
    rows = [
        {"Name": "a", "Num": 3, "Time": 1_764_500_000_000},
        {"Name": "b", "Num": 4, "Time": 1_764_500_000_000},
    ]
    body = {"Code": "200", "Success": True, "CustomEventCounts": {"CustomEventCount": rows}}
    fake = FakeOpenApi(lambda seen: answer(body))
    assert count_events("a", client=reader(fake, now)) == 7
    frame = count_events(client=reader(fake, now), by_name=True)
    assert list(frame.columns) == ["name", "count", "time"]
    assert frame["count"].dtype == "int64"
    assert str(frame["time"].dt.tz) == "UTC"
    assert {s.action for s in fake.seen} == {COUNT_ACTION}
    assert "PageNumber" not in fake.seen[0].params
    assert fake.seen[0].params["Name"] == "a"
    empty = FakeOpenApi(lambda seen: answer({"Code": "200", "Success": True}))
    assert count_events(client=reader(empty, now)) == 0


def test_the_histogram_frame_and_level(now: FakeClock) -> None:
    buckets = [
        {"StartTime": 1_764_500_000_000, "EndTime": 1_764_500_060_000, "Count": 2},
        {"StartTime": 1_764_500_060_000, "EndTime": 1_764_500_120_000, "Count": 0},
    ]
    body = {"Code": "200", "Success": "true", "EventHistograms": {"EventHistogram": buckets}}
    fake = FakeOpenApi(lambda seen: answer(body))
    frame = event_histogram("deploy", level="warn", client=reader(fake, now))
    assert list(frame.columns) == ["start", "end", "count"]
    assert list(frame["count"]) == [2, 0]
    assert frame["count"].dtype == "int64"
    assert frame["start"][1] == pd.Timestamp(1_764_500_060_000, unit="ms", tz="UTC")
    assert fake.seen[0].action == HISTOGRAM_ACTION
    assert fake.seen[0].params == {"Name": "deploy", "Level": "WARN"}
    with pytest.raises(ConfigError, match="level='DEBUG': must be one of CRITICAL, WARN, INFO"):
        event_histogram(level="DEBUG", client=reader(fake, now))


# ---- filters and times -------------------------------------------------------------------


def test_filters_are_sent_with_the_services_parameter_names(now: FakeClock) -> None:
    fake = FakeOpenApi(pages([]))
    since = datetime(2025, 11, 30, 9, 0, tzinfo=timezone.utc)
    query_events(
        "deploy failed", group_id=42, event_id="ev-7", search="ValueError and cell",
        since=since, until="15m", client=reader(fake, now), clock=now,
    )  # fmt: skip
    assert fake.seen[0].params == {
        "Name": "deploy failed",
        "GroupId": "42",
        "EventId": "ev-7",
        "SearchKeywords": "ValueError and cell",
        "StartTime": str(int(since.timestamp() * 1000)),
        "EndTime": str(int((NOW - 900) * 1000)),
        "PageNumber": "1",
        "PageSize": str(DEFAULT_PAGE_SIZE),
    }


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("1h", 3600),
        ("7d", 7 * 86400),
        ("2w", 14 * 86400),
        (" 1.5h ", 5400),
        ("now", 0),
        ("1H", 3600),
    ],
)
def test_relative_times_count_back_from_the_clock(now: FakeClock, text: str, seconds: int) -> None:
    assert parse_bound(text, option="since", clock=now) == round((NOW - seconds) * 1000)
    now.advance(60)
    assert parse_bound(text, option="since", clock=now) == round((NOW + 60 - seconds) * 1000)


def test_absolute_times_aware_naive_days_and_iso_texts() -> None:
    clock = FakeClock(NOW)
    shanghai = ZoneInfo("Asia/Shanghai")
    aware = datetime(2025, 12, 1, 17, 0, tzinfo=shanghai)
    assert parse_bound(aware, option="since", clock=clock) == NOW * 1000
    assert (
        parse_bound(datetime(2025, 12, 1, 17, 0), option="since", clock=clock, tz=shanghai)
        == NOW * 1000
    )
    assert (
        parse_bound(date(2025, 12, 1), option="since", clock=clock, tz=timezone.utc)
        == (NOW - 9 * 3600) * 1000
    )
    assert parse_bound("2025-12-01T09:00:00Z", option="until", clock=clock) == NOW * 1000
    assert parse_bound("2025-12-01T17:00+08:00", option="until", clock=clock) == NOW * 1000
    naive_local = datetime(2025, 12, 1, 9, 0)
    assert parse_bound(naive_local, option="since", clock=clock) == round(
        naive_local.timestamp() * 1000
    )
    assert parse_bound(pd.Timestamp("2025-12-01T09:00Z"), option="since", clock=clock) == NOW * 1000


def test_a_dst_edge_is_read_in_the_zone_given() -> None:
    clock = FakeClock(NOW)
    berlin = ZoneInfo("Europe/Berlin")
    before = parse_bound(datetime(2025, 10, 26, 1, 59), option="since", clock=clock, tz=berlin)
    after = parse_bound(datetime(2025, 10, 26, 3, 0), option="since", clock=clock, tz=berlin)
    assert before is not None
    assert after is not None
    assert after - before == (61 + 60) * 60 * 1000  # 02:00-03:00 happens twice that night


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("1y", None, "since='1y': must be a datetime, an ISO 8601 time, or a time before now"),
        (None, 12, "until=12: must be a datetime"),
        ("yesterday", None, "since='yesterday'"),
        ("1h", "2h", "since='1h': is after until='2h'"),
        ("99999999d", None, "since='99999999d': "),
        (datetime(1960, 1, 1, tzinfo=timezone.utc), None, "must be between 1970 and 9999"),
    ],
)
def test_bad_times_name_the_parameter_rule_and_value(since: Any, until: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        time_window(since, until, clock=FakeClock(NOW))
    assert message in str(caught.value)
    assert caught.value.option in ("since", "until")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"group_id": -1}, "group_id=-1: must be an integer >= 0"),
        ({"group_id": True}, "group_id=True"),
        ({"limit": 0}, "limit=0: must be an integer >= 1"),
        ({"page_size": 2.5}, "page_size=2.5"),
        ({"name": ""}, "name='': must be a non-empty string"),
        ({"search": 3}, "search=3"),
        ({"tz": "Mars/Base"}, "tz='Mars/Base': is not a known time zone"),
    ],
)
def test_bad_arguments_fail_before_any_request(
    now: FakeClock, options: dict[str, Any], message: str
) -> None:
    fake = FakeOpenApi(pages([]))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        query_events(client=reader(fake, now), **options)
    assert fake.seen == []


# ---- targets -----------------------------------------------------------------------------


def test_a_region_means_its_openapi_endpoint_not_the_upload_one() -> None:
    fake = FakeOpenApi(pages(stored(2)))
    frame = query_events(region="cn-shanghai", credentials=KEYS, transport=fake.transport)
    assert len(frame) == 2
    assert fake.seen[0].headers["host"] == "metrics.cn-shanghai.aliyuncs.com"
    internal = parse_target("cn-beijing", internal=True)
    assert openapi_url(internal) == "https://metrics.cn-beijing.aliyuncs.com"


def test_an_endpoint_url_is_used_as_is() -> None:
    count_body = {"Code": "200", "Success": True, "CustomEventCounts": {"CustomEventCount": []}}
    fake = FakeOpenApi(lambda seen: answer(count_body))
    count_events(endpoint="http://127.0.0.1:9", credentials=KEYS, transport=fake.transport)
    assert fake.seen[0].headers["host"] == "127.0.0.1:9"


def test_public_names_no_region_for_the_openapi() -> None:
    with pytest.raises(TargetError, match="regional: name a region"):
        query_events(endpoint="public", credentials=KEYS)


def test_local_reads_from_the_embedded_emulator_with_its_demo_key() -> None:
    from cms_magic.emulator import demo_credentials

    demo = demo_credentials()
    fake = FakeOpenApi(
        pages(stored(1)), secrets={demo.access_key_id: demo.access_key_secret.reveal()}
    )
    frame = query_events(endpoint="local", transport=fake.transport)
    assert len(frame) == 1
    assert fake.seen[0].key_id == demo.access_key_id
    assert fake.seen[0].headers["host"].startswith("127.0.0.1:")


# ---- errors ------------------------------------------------------------------------------


def test_a_permission_error_names_the_ram_action(now: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: error("Forbidden.RAM", "denied", 403))
    for read, action in (
        (lambda: query_events(client=reader(fake, now)), ATTRIBUTE_ACTION),
        (lambda: count_events(client=reader(fake, now)), COUNT_ACTION),
        (lambda: event_histogram(client=reader(fake, now)), HISTOGRAM_ACTION),
    ):
        with pytest.raises(OpenApiPermissionError, match=f"cms:{action}"):
            read()


def test_throttling_mid_paging_is_retried_then_the_read_completes(now: FakeClock) -> None:
    events = stored(12)
    paged = pages(events)
    throttled = {"done": False}

    def reply(seen: Seen) -> httpx.Response:
        if seen.params["PageNumber"] == "2" and not throttled["done"]:
            throttled["done"] = True
            return error("Throttling.User", "flow control", 400, retry_after="800")
        return paged(seen)

    fake = FakeOpenApi(reply)
    frame = query_events(client=reader(fake, now), page_size=5)
    assert len(frame) == 12
    assert [s.params["PageNumber"] for s in fake.seen] == ["1", "2", "2", "3"]
    assert now.sleeps == [0.8]


def test_a_5xx_is_bounded(now: FakeClock) -> None:
    fake = FakeOpenApi(lambda seen: error("ServiceUnavailable", "busy", 503))
    with pytest.raises(OpenApiServerError):
        query_events(client=reader(fake, now))
    assert len(fake.seen) == 3


def _caught(read: Callable[[], object]) -> BaseException:
    try:
        read()
    except Exception as exc:  # audited whole
        return exc
    raise AssertionError("no error")


def test_no_read_error_shows_the_secret_or_token(now: FakeClock) -> None:
    token = "READBACK-TOKEN-CANARY-5512"
    sts = Credentials(KEY_ID, SECRET, security_token=token)

    def echo(seen: Seen) -> httpx.Response:
        return error(
            "SignatureDoesNotMatch", f"{seen.headers['authorization']} {token} {SECRET}", 400
        )

    fake = FakeOpenApi(echo)
    exc = _caught(
        lambda: query_events(
            credentials=sts, endpoint="http://127.0.0.1:9", transport=fake.transport
        )
    )
    assert isinstance(exc, CmsError)
    text = renderings(exc)
    assert SECRET not in text
    assert token not in text


def test_import_readback_stays_light() -> None:
    import subprocess

    code = "import cms_magic.readback, cms_magic.openapi.errors, sys; print(' '.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    assert not {"httpx", "pandas", "numpy"} & {m.split(".")[0] for m in loaded}


# ---- the emulator's own handlers (a contract test, until the lead wires the routes) ------


class EmulatorCms:
    """The emulator's pure CMS handlers (``emulator.openapi_cms``) behind a MockTransport,
    with this file's signature check in front: write with PutCustomEvent, read back."""

    def __init__(self, clock: FakeClock) -> None:
        from cms_magic.emulator.openapi_cms import ACTIONS
        from cms_magic.emulator.store import MemoryStore

        self.actions = ACTIONS
        self.clock = clock
        self.store = MemoryStore(clock=clock)
        self.fake = FakeOpenApi(self.reply)

    def reply(self, seen: Seen) -> httpx.Response:
        handler = self.actions[seen.action]
        got = handler(seen.params, store=self.store, now=self.clock())
        return httpx.Response(got.status, content=got.body, headers=got.headers)

    def client(self) -> OpenApiClient:
        return reader(self.fake, self.clock)


def test_the_emulators_handlers_page_filter_and_count_what_was_put(now: FakeClock) -> None:
    emulator = EmulatorCms(now)
    c = emulator.client()
    base_ms = int((NOW - 600) * 1000)
    for batch in range(3):  # 3 x 50 events, the PutCustomEvent maximum per call
        params: dict[str, object] = {}
        for n in range(1, 51):
            i = batch * 50 + n
            params[f"EventInfo.{n}.EventName"] = "deploy" if i % 3 else "中文 事件"
            params[f"EventInfo.{n}.Content"] = f"run {i} ValueError" if i % 5 == 0 else f"run {i}"
            params[f"EventInfo.{n}.GroupId"] = str(i % 2)
            params[f"EventInfo.{n}.Time"] = str(base_ms + i * 1000)
        assert c.call("PutCustomEvent", params)["Code"] == "200"
    every = query_events(client=c, page_size=DEFAULT_PAGE_SIZE)
    assert len(every) == 150
    assert every["id"].is_unique
    assert [s.params["PageNumber"] for s in emulator.fake.seen[3:]] == ["1", "2", "3", "4"]
    named = query_events("中文 事件", client=c, group_id=1, since="15m", clock=now)
    assert len(named) == sum(1 for i in range(1, 151) if i % 3 == 0 and i % 2 == 1)
    assert set(named["name"]) == {"中文 事件"}
    assert set(named["group_id"]) == {1}
    found = query_events(client=c, search="ValueError", limit=7)
    assert len(found) == 7
    assert found["content"].str.contains("ValueError").all()
    window = query_events(
        client=c, since=base_ms_dt(base_ms + 101_000), until=base_ms_dt(base_ms + 110_000)
    )
    assert sorted(int(t.timestamp()) for t in window["time"]) == [
        (base_ms + i * 1000) // 1000 for i in range(101, 111)
    ]
    assert count_events(client=c) == 150
    assert count_events("deploy", client=c) == 100
    by_name = count_events(client=c, by_name=True)
    assert dict(zip(by_name["name"], by_name["count"], strict=True)) == {
        "deploy": 100,
        "中文 事件": 50,
    }
    histogram = event_histogram(client=c, since="15m", until="now", clock=now)
    assert histogram["count"].sum() == 150
    assert histogram["start"].is_monotonic_increasing


def base_ms_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


def test_the_emulators_refusal_is_a_typed_error_naming_the_parameter(now: FakeClock) -> None:
    c = EmulatorCms(now).client()
    with pytest.raises(OpenApiError) as caught:
        query_events(client=c, page_size=5000)
    assert caught.value.code == "InvalidParameter"
    assert "PageSize" in caught.value.message


def _over(handler: Any, store: Any) -> Callable[[Any, float, str], Any]:
    """A CMS handler as ``register_signed`` wants it: ``answer(params, now, key_id)``."""
    return lambda params, now, key_id: handler(params, store=store, now=now)


def test_over_loopback_the_emulators_verifier_accepts_every_call() -> None:
    """A served emulator with the CMS handlers registered behind its own signature check
    (ACS3, time, nonce): put 120 events, read them back paged over HTTP, count, histogram."""
    from cms_magic.emulator import demo_credentials, serve
    from cms_magic.emulator.openapi_cms import ACTIONS
    from cms_magic.emulator.store import MemoryStore
    from cms_magic.openapi.client import call

    store = MemoryStore()
    with serve(qps=0) as server:
        for action, handler in ACTIONS.items():
            server.routes.register_signed(_over(handler, store), action)
        keys = demo_credentials()
        for batch in range(3):
            params = {f"EventInfo.{n}.EventName": "deploy" for n in range(1, 41)}
            params |= {f"EventInfo.{n}.Content": f"b{batch} n{n} 中文 +&=" for n in range(1, 41)}
            assert (
                call("PutCustomEvent", params, endpoint=server.url, credentials=keys)["Code"]
                == "200"
            )
        frame = query_events(endpoint=server.url, credentials=keys, page_size=DEFAULT_PAGE_SIZE)
        assert len(frame) == 120
        assert frame["id"].is_unique
        assert frame["content"].str.endswith("中文 +&=").all()
        assert count_events("deploy", endpoint=server.url, credentials=keys) == 120
        histogram = event_histogram(endpoint=server.url, credentials=keys)
        assert histogram["count"].sum() == 120
        got = call(
            "DescribeCustomEventCount", {}, endpoint=server.url, credentials=keys, method="GET"
        )
        assert got["Code"] == "200"
