"""CloudMonitor's custom-event OpenAPI actions as pure handlers
(:mod:`cms_magic.emulator.openapi_cms`): the answers' shapes (api-shapes.md), every
filter, paging at its edges, times across DST changes, CJK content, the index lag,
PutCustomEvent's limits, refusals naming the parameter, and one store for both APIs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cms_magic.emulator.openapi_cms import (
    ACTIONS,
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    MAX_PUT_EVENTS,
    bucket_width_ms,
    describe_custom_event_attribute,
    describe_custom_event_count,
    describe_custom_event_histogram,
    parse_search,
    put_custom_event,
)
from cms_magic.emulator.service import EmulatorResponse
from cms_magic.emulator.store import MemoryStore
from cms_magic.errors import ConfigError
from tests.conftest import FakeClock
from tests.emulator._client import GOOD_BODY, make_emulator, post

NOW = 1_774_750_000.0  # 2026-03-29T02:06:40Z, after Europe's spring DST change
NOW_MS = int(NOW * 1000)
UUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock)


def put(store: MemoryStore, *events: dict[str, str], now: float = NOW) -> EmulatorResponse:
    params: dict[str, str] = {}
    for n, event in enumerate(events, start=1):
        params.update({f"EventInfo.{n}.{k}": v for k, v in event.items()})
    return put_custom_event(params, store=store, now=now)


def e(name: str, content: str, time: str | None = None, group: str | None = None) -> dict[str, str]:
    event = {"EventName": name, "Content": content}
    if time is not None:
        event["Time"] = time
    if group is not None:
        event["GroupId"] = group
    return event


def attribute(store: MemoryStore, *, now: float = NOW, **params: str) -> dict[str, Any]:
    answer = describe_custom_event_attribute(params, store=store, now=now)
    assert answer.status == 200, answer.json()
    body: dict[str, Any] = answer.json()
    return body


def contents(body: dict[str, Any]) -> list[str]:
    return [row["Content"] for row in body["CustomEvents"]["CustomEvent"]]


def refused(answer: EmulatorResponse, code: str, parameter: str) -> str:
    assert answer.status == 400
    body = answer.json()
    assert set(body) == {"Code", "Message", "RequestId"}
    assert body["Code"] == code
    assert parameter in body["Message"]
    assert UUID.match(body["RequestId"])
    message: str = body["Message"]
    return message


# --------------------------------------------------------------------------- shapes


def test_put_then_attribute_in_the_services_shapes(store: MemoryStore) -> None:
    answer = put(store, e("deploy", "v1.2 上线", "20260329T030000.000+0200", "42"))
    body = answer.json()
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    assert (body["Code"], body["Message"]) == ("200", "success")
    assert set(body) == {"Code", "Message", "RequestId"}
    assert UUID.match(body["RequestId"])
    got = attribute(store)
    assert set(got) == {"Code", "Message", "RequestId", "Success", "CustomEvents"}
    assert (got["Code"], got["Success"]) == ("200", "true")  # Success is a string here
    assert got["CustomEvents"]["CustomEvent"] == [
        {
            "Id": "1",
            "Name": "deploy",
            "GroupId": "42",
            "Time": "1774746000000",
            "Content": "v1.2 上线",
        }
    ]


def test_count_and_histogram_shapes(store: MemoryStore) -> None:
    put(store, e("a", "x", str(NOW_MS - 1000)), e("a", "y", str(NOW_MS - 500)), e("b", "z"))
    count = describe_custom_event_count({}, store=store, now=NOW).json()
    assert count["Success"] is True  # a boolean here
    assert count["CustomEventCounts"]["CustomEventCount"] == [
        {"Name": "a", "Num": 2, "Time": NOW_MS - 500},
        {"Name": "b", "Num": 1, "Time": NOW_MS},
    ]
    histogram = describe_custom_event_histogram({}, store=store, now=NOW).json()
    assert histogram["Success"] == "true"
    rows = histogram["EventHistograms"]["EventHistogram"]
    # default: the hour up to now, in 1-minute buckets aligned to the minute (UTC)
    assert rows[0]["StartTime"] == NOW_MS - 3_600_000 + 1
    assert rows[-1]["EndTime"] == NOW_MS + 1
    assert all(r["EndTime"] - r["StartTime"] <= 60_000 for r in rows)
    assert all(r["StartTime"] % 60_000 == 0 for r in rows[1:])
    assert sum(r["Count"] for r in rows) == 3
    assert rows[-1]["Count"] == 3  # all three in the last minute
    assert {type(v) for r in rows for v in r.values()} == {int}


def test_the_actions_table() -> None:
    assert sorted(ACTIONS) == [
        "DescribeCustomEventAttribute",
        "DescribeCustomEventCount",
        "DescribeCustomEventHistogram",
        "PutCustomEvent",
    ]


# --------------------------------------------------------------------------- filters


@pytest.fixture
def filled(store: MemoryStore) -> MemoryStore:
    put(
        store,
        e("deploy", "v1 ok", str(NOW_MS - 5000), "1"),
        e("deploy", "v2 ValueError in cell", str(NOW_MS - 4000), "2"),
        e("alarm", "disk full", str(NOW_MS - 3000)),
        e("alarm", "ValueError and disk", str(NOW_MS - 2000), "0"),
        e("部署", "磁盘已满 警告", str(NOW_MS - 1000), "2"),
    )
    return store


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {},
            ["磁盘已满 警告", "ValueError and disk", "disk full", "v2 ValueError in cell", "v1 ok"],
        ),
        ({"Name": "deploy"}, ["v2 ValueError in cell", "v1 ok"]),
        ({"Name": "部署"}, ["磁盘已满 警告"]),
        (
            {"Name": ""},
            ["磁盘已满 警告", "ValueError and disk", "disk full", "v2 ValueError in cell", "v1 ok"],
        ),
        ({"GroupId": "2"}, ["磁盘已满 警告", "v2 ValueError in cell"]),
        ({"GroupId": "0"}, ["ValueError and disk", "disk full"]),
        ({"EventId": "3"}, ["disk full"]),
        (
            {"StartTime": str(NOW_MS - 4000), "EndTime": str(NOW_MS - 2000)},
            ["ValueError and disk", "disk full", "v2 ValueError in cell"],
        ),
        ({"StartTime": str(NOW_MS - 1000)}, ["磁盘已满 警告"]),
        ({"EndTime": str(NOW_MS - 5000)}, ["v1 ok"]),
        ({"SearchKeywords": "disk"}, ["ValueError and disk", "disk full"]),
        ({"SearchKeywords": "ValueError and disk"}, ["ValueError and disk"]),
        ({"SearchKeywords": "ok or full"}, ["disk full", "v1 ok"]),
        ({"SearchKeywords": "ok OR cell and v2"}, ["v2 ValueError in cell", "v1 ok"]),
        ({"SearchKeywords": "已满"}, ["磁盘已满 警告"]),
        ({"SearchKeywords": "disk full"}, ["disk full"]),  # spaces inside a keyword kept
        ({"Name": "alarm", "SearchKeywords": "disk", "EndTime": str(NOW_MS - 3000)}, ["disk full"]),
        (
            {"Action": "DescribeCustomEventAttribute", "Version": "2019-01-01"},
            ["磁盘已满 警告", "ValueError and disk", "disk full", "v2 ValueError in cell", "v1 ok"],
        ),
    ],
)
def test_every_filter(filled: MemoryStore, params: dict[str, str], expected: list[str]) -> None:
    answer = describe_custom_event_attribute(params, store=filled, now=NOW)
    assert contents(answer.json()) == expected
    counts = describe_custom_event_count(params, store=filled, now=NOW).json()
    assert sum(c["Num"] for c in counts["CustomEventCounts"]["CustomEventCount"]) == len(expected)
    hist = describe_custom_event_histogram(params, store=filled, now=NOW).json()
    assert sum(b["Count"] for b in hist["EventHistograms"]["EventHistogram"]) == len(expected)


def test_histogram_level_is_checked_and_changes_nothing(filled: MemoryStore) -> None:
    for level in ("CRITICAL", "WARN", "INFO", ""):
        body = describe_custom_event_histogram({"Level": level}, store=filled, now=NOW).json()
        assert sum(b["Count"] for b in body["EventHistograms"]["EventHistogram"]) == 5
    answer = describe_custom_event_histogram({"Level": "DEBUG"}, store=filled, now=NOW)
    refused(answer, "InvalidParameter", "Level")


# --------------------------------------------------------------------------- paging


@pytest.mark.parametrize("n", [0, 1, 7, 8])
def test_paging_at_its_edges(store: MemoryStore, n: int) -> None:
    """0, 1, a page and a page and one: pages of 7 read each event once, the last short."""
    for i in range(n):
        put(store, e("p", f"{i}", str(NOW_MS - 100 + i)))
    pages = []
    number = 1
    while True:
        page = contents(attribute(store, PageNumber=str(number), PageSize="7"))
        pages.append(page)
        if len(page) < 7:
            break
        number += 1
    assert [c for page in pages for c in page] == [str(i) for i in reversed(range(n))]
    assert [len(p) for p in pages] == {0: [0], 1: [1], 7: [7, 0], 8: [7, 1]}[n]
    assert contents(attribute(store, PageNumber="99")) == []
    assert contents(attribute(store, PageNumber=str(2**63 - 1))) == []


def test_default_page_size(store: MemoryStore) -> None:
    put(store, *(e("p", f"{i}", str(NOW_MS - i)) for i in range(DEFAULT_PAGE_SIZE + 1)))
    assert len(contents(attribute(store))) == DEFAULT_PAGE_SIZE
    assert len(contents(attribute(store, PageSize=str(MAX_PAGE_SIZE)))) == DEFAULT_PAGE_SIZE + 1


# --------------------------------------------------------------------------- times


def test_times_across_dst_changes_read_back_as_epoch_ms(store: MemoryStore) -> None:
    """Local times with their offsets in, epoch ms out; StartTime/EndTime are inclusive."""
    put(
        store,
        e("dst", "spring before", "20260329T015959.999+0100"),
        e("dst", "spring after", "20260329T030000.000+0200"),
        e("dst", "fall before", "20261025T025959.999+0200"),
        e("dst", "fall after", "20261025T020000.000+0100"),  # the same wall hour, again
    )
    rows = attribute(store)["CustomEvents"]["CustomEvent"]
    assert {r["Content"]: r["Time"] for r in rows} == {
        "spring before": "1774745999999",
        "spring after": "1774746000000",
        "fall before": "1792889999999",
        "fall after": "1792890000000",
    }
    assert contents(attribute(store, StartTime="1774746000000", EndTime="1792889999999")) == [
        "fall before",
        "spring after",
    ]
    hist = describe_custom_event_histogram(
        {"StartTime": "1774742400000", "EndTime": "1774749599999"}, store=store, now=NOW
    ).json()["EventHistograms"]["EventHistogram"]
    counted = [(b["StartTime"], b["Count"]) for b in hist if b["Count"]]
    assert counted == [(1774745700000, 1), (1774746000000, 1)]  # 5-minute buckets, UTC


@pytest.mark.parametrize(
    ("span_ms", "width_ms"),
    [
        (1, 1000),
        (60_000, 1000),
        (60_001, 5000),
        (3_600_000, 60_000),
        (86_400_000, 1_800_000),
        (7 * 86_400_000, 3 * 3_600_000),
        (365 * 86_400_000, 7 * 86_400_000),
    ],
)
def test_bucket_widths(span_ms: int, width_ms: int) -> None:
    assert bucket_width_ms(NOW_MS, NOW_MS + span_ms - 1) == width_ms


# --------------------------------------------------------------------------- the lag


def test_put_events_show_up_after_the_stores_delay(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock, delay=3)
    put(store, e("lag", "soon", str(NOW_MS)))
    assert contents(attribute(store)) == []
    assert describe_custom_event_count({}, store=store, now=NOW + 2.999).json()[
        "CustomEventCounts"
    ] == {"CustomEventCount": []}
    assert contents(attribute(store, now=NOW + 3)) == ["soon"]


# --------------------------------------------------------------------------- PutCustomEvent


def test_put_stores_the_upload_paths_shape_in_the_same_store(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    emulator = make_emulator(store=store)  # its own clock: the requests' signing time
    assert post(emulator, GOOD_BODY).status == 200
    put(store, e("via_openapi", "b", "20171013T170923.456+0800", "7"), e("plain", "c"))
    assert emulator.events() == [
        {"name": "Event_0", "content": "123,abc", "groupId": 100},
        {"name": "via_openapi", "content": "b", "groupId": 7, "time": "20171013T170923.456+0800"},
        {"name": "plain", "content": "c"},
    ]
    names = {r["Name"] for r in attribute(store)["CustomEvents"]["CustomEvent"]}
    assert names == {"Event_0", "via_openapi", "plain"}


def test_put_takes_at_most_50_events(store: MemoryStore) -> None:
    fifty = [e("n", f"{i}") for i in range(MAX_PUT_EVENTS)]
    assert put(store, *fifty).status == 200
    assert store.count() == 50
    message = refused(
        put(store, *fifty, e("n", "one too many")), "InvalidParameter", "EventInfo.51"
    )
    assert "at most 50" in message
    assert store.count() == 50  # none of the 51 stored


@pytest.mark.parametrize(
    ("params", "code", "parameter"),
    [
        ({}, "MissingParameter", "EventInfo.1.EventName"),
        ({"EventInfo.1.EventName": "a"}, "MissingParameter", "EventInfo.1.Content"),
        (
            {"EventInfo.1.EventName": "a", "EventInfo.1.Content": ""},
            "MissingParameter",
            "EventInfo.1.Content",
        ),
        ({"EventInfo.1.Content": "a"}, "MissingParameter", "EventInfo.1.EventName"),
        (
            {"EventInfo.2.EventName": "a", "EventInfo.2.Content": "b"},
            "MissingParameter",
            "EventInfo.1.EventName",
        ),
        (
            {"EventInfo.1.EventName": "a", "EventInfo.1.Content": "b", "EventInfo.1.GroupId": "-1"},
            "InvalidParameter",
            "EventInfo.1.GroupId",
        ),
        (
            {
                "EventInfo.1.EventName": "a",
                "EventInfo.1.Content": "b",
                "EventInfo.1.GroupId": "9223372036854775808",
            },
            "InvalidParameter",
            "EventInfo.1.GroupId",
        ),
        (
            {
                "EventInfo.1.EventName": "a",
                "EventInfo.1.Content": "b",
                "EventInfo.1.Time": "2026-03-29",
            },
            "InvalidParameter",
            "EventInfo.1.Time",
        ),
        (
            {"EventInfo.1.EventName": "a", "EventInfo.1.Content": "b", "EventInfo.1.Level": "x"},
            "InvalidParameter",
            "EventInfo.1.Level",
        ),
        ({"EventInfo.0.EventName": "a"}, "InvalidParameter", "EventInfo.0.EventName"),
        ({"EventInfo.01.EventName": "a"}, "InvalidParameter", "EventInfo.01.EventName"),
        (
            {"EventInfo.51.EventName": "a", "EventInfo.51.Content": "b"},
            "InvalidParameter",
            "EventInfo.51.EventName",
        ),
    ],
)
def test_put_refusals_name_the_parameter(
    store: MemoryStore, params: dict[str, str], code: str, parameter: str
) -> None:
    refused(put_custom_event(params, store=store, now=NOW), code, parameter)
    assert store.count() == 0


def test_put_accepts_epoch_ms_and_group_zero(store: MemoryStore) -> None:
    assert put(store, e("a", "b", "1552199984000", "0")).status == 200
    assert store.events() == [{"name": "a", "content": "b", "groupId": 0, "time": "1552199984000"}]


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"PageSize": "0"}, "PageSize"),
        ({"PageSize": str(MAX_PAGE_SIZE + 1)}, "PageSize"),
        ({"PageSize": "ten"}, "PageSize"),
        ({"PageNumber": "0"}, "PageNumber"),
        ({"PageNumber": "-1"}, "PageNumber"),
        ({"StartTime": "yesterday"}, "StartTime"),
        ({"EndTime": "1.5"}, "EndTime"),
        ({"EndTime": "99999999999999999999"}, "EndTime"),
        ({"StartTime": "2000", "EndTime": "1000"}, "StartTime"),
        ({"GroupId": "x"}, "GroupId"),
        ({"SearchKeywords": "a and"}, "SearchKeywords"),
        ({"SearchKeywords": "or b"}, "SearchKeywords"),
    ],
)
def test_describe_refusals_name_the_parameter(
    store: MemoryStore, params: dict[str, str], parameter: str
) -> None:
    message = refused(
        describe_custom_event_attribute(params, store=store, now=NOW), "InvalidParameter", parameter
    )
    assert f"{parameter}=" in message
    if "Page" not in parameter:
        for handler in (describe_custom_event_count, describe_custom_event_histogram):
            refused(handler(params, store=store, now=NOW), "InvalidParameter", parameter)


def test_histogram_refuses_a_start_after_the_default_end(store: MemoryStore) -> None:
    answer = describe_custom_event_histogram({"StartTime": str(NOW_MS + 1)}, store=store, now=NOW)
    refused(answer, "InvalidParameter", "StartTime")


@pytest.mark.parametrize(
    ("text", "groups"),
    [
        ("", ()),
        ("   ", ()),
        ("a", (("a",),)),
        ("a and b", (("a", "b"),)),
        ("a or b", (("a",), ("b",))),
        ("a AND b Or c", (("a", "b"), ("c",))),
        ("android organ", (("android organ",),)),  # operators are whole words
        ("  disk  full  ", (("disk  full",),)),
        ("错误 and 磁盘", (("错误", "磁盘"),)),
    ],
)
def test_parse_search(text: str, groups: tuple[tuple[str, ...], ...]) -> None:
    assert parse_search(text) == groups


@pytest.mark.parametrize(
    "text", ["and", "a and", "or b", "a and or b", " ".join(["k"] * 101).replace(" ", " or ")]
)
def test_parse_search_refuses(text: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_search(text)
    assert excinfo.value.option == "search"


# --------------------------------------------------------------------------- the log


def test_each_call_logs_one_record_with_the_callers_fields(store: MemoryStore) -> None:
    answer = put_custom_event(
        {"EventInfo.1.EventName": "a", "EventInfo.1.Content": "b"},
        store=store,
        now=NOW,
        record={"key_id": "LTAI****", "bytes": 0, "request_id": "FIXED-ID"},
    )
    assert answer.json()["RequestId"] == "FIXED-ID"
    describe_custom_event_attribute({"PageSize": "0"}, store=store, now=NOW)
    describe_custom_event_count({}, store=store, now=NOW)
    first, second, third = store.requests()
    assert first == {
        "key_id": "LTAI****",
        "bytes": 0,
        "request_id": "FIXED-ID",
        "action": "PutCustomEvent",
        "status": 200,
        "code": "200",
        "msg": "success",
        "events": 1,
        "time": "2026-03-29T02:06:40.000+00:00",
        "fault": None,
    }
    assert (second["action"], second["status"], second["code"]) == (
        "DescribeCustomEventAttribute",
        400,
        "InvalidParameter",
    )
    assert (third["action"], third["events"]) == ("DescribeCustomEventCount", 1)


def test_answers_are_json_with_cjk_intact(store: MemoryStore) -> None:
    put(store, e("名前", "内容 ☃ 🚀"))
    raw = describe_custom_event_attribute({}, store=store, now=NOW).body
    row = json.loads(raw)["CustomEvents"]["CustomEvent"][0]
    assert (row["Name"], row["Content"]) == ("名前", "内容 ☃ 🚀")
