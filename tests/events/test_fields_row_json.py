"""The whole row as JSON (the default content): readable text, times in the event's zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import orjson
import pandas as pd
import pytest

from cms_magic.events import events_from_frame
from cms_magic.events._values import Rejections
from cms_magic.events.fields import row_json_column
from cms_magic.events.mapping import resolve_tz

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def rows(frame: pd.DataFrame, tz: dt.tzinfo | None = None) -> list[str]:
    rejections = Rejections()
    out = row_json_column(frame, rejections, tz)
    assert rejections.reasons == {}
    return [text for text in out if text is not None]


def test_slashes_and_non_ascii_text_are_written_as_they_are() -> None:
    frame = pd.DataFrame({"message": ["Deploy on /checkout 中文 😀"], "path": ["a/b\\c"]})
    (text,) = rows(frame)
    assert text == '{"message":"Deploy on /checkout 中文 😀","path":"a/b\\\\c"}'
    assert "\\/" not in text
    (event,) = events_from_frame(frame, name="n").payloads
    assert b"\\/" not in event
    assert orjson.loads(orjson.loads(event)["content"])["message"] == "Deploy on /checkout 中文 😀"


def test_tz_aware_times_keep_their_own_zone_like_the_events_time() -> None:
    stamps = pd.DatetimeIndex(["2024-03-01 08:00:00.123", None]).tz_localize("Asia/Shanghai")
    frame = pd.DataFrame({"time": stamps, "msg": ["a", "b"]})
    texts = rows(frame, NEW_YORK)  # the zone for naive values does not touch aware ones
    assert orjson.loads(texts[0])["time"] == "2024-03-01T08:00:00.123+08:00"
    assert orjson.loads(texts[1])["time"] is None
    event = orjson.loads(events_from_frame(frame.iloc[:1], name="n", time_col="time").payloads[0])
    assert event["time"] == "20240301T080000.123+0800"
    assert orjson.loads(event["content"])["time"] == "2024-03-01T08:00:00.123+08:00"


def test_a_utc_column_and_any_unit_are_written_with_their_offset() -> None:
    stamps = pd.Series(pd.to_datetime(["2024-03-01 08:00:00.5"], utc=True)).astype(
        "datetime64[s, UTC]"
    )
    (text,) = rows(pd.DataFrame({"t": stamps}))
    assert orjson.loads(text)["t"] == "2024-03-01T08:00:00.000+00:00"
    west = pd.Series(pd.to_datetime(["1969-12-31 23:59:59.999"])).dt.tz_localize(NEW_YORK)
    (text,) = rows(pd.DataFrame({"t": west}))
    assert orjson.loads(text)["t"] == "1969-12-31T23:59:59.999-05:00"


def test_naive_times_are_read_in_tz() -> None:
    frame = pd.DataFrame(
        {"t": pd.to_datetime(pd.Series(["2024-03-01 08:00:00.5", "2024-07-01 08:00:00.0", None]))}
    )
    texts = rows(frame, NEW_YORK)
    assert [orjson.loads(t)["t"] for t in texts] == [
        "2024-03-01T08:00:00.500-05:00",
        "2024-07-01T08:00:00.000-04:00",  # daylight saving time
        None,
    ]
    assert orjson.loads(rows(frame, SHANGHAI)[0])["t"] == "2024-03-01T08:00:00.500+08:00"


def test_naive_times_default_to_the_zone_of_the_events_time() -> None:
    frame = pd.DataFrame({"t": pd.to_datetime(["2024-03-01 08:00"])})
    offset = dt.datetime(2024, 3, 1, 8, tzinfo=resolve_tz(None)).isoformat()[19:]
    assert orjson.loads(rows(frame)[0])["t"] == f"2024-03-01T08:00:00.000{offset}"


def test_a_naive_time_without_one_offset_in_tz_is_written_as_it_is() -> None:
    frame = pd.DataFrame({"t": pd.to_datetime(["2024-03-10 02:30", "2024-11-03 01:30"])})
    texts = rows(frame, NEW_YORK)  # a gap and a fold in New York
    assert [orjson.loads(t)["t"] for t in texts] == [
        "2024-03-10T02:30:00.000",
        "2024-11-03T01:30:00.000",
    ]


def test_datetime_objects_follow_the_same_rule() -> None:
    values = [
        dt.datetime(2024, 3, 1, 8, 0, 0, 500_000),
        dt.datetime(2024, 3, 1, 8, tzinfo=SHANGHAI),
        pd.Timestamp("2024-03-01 08:00"),
        dt.date(2024, 3, 1),
        dt.datetime(2024, 3, 10, 2, 30),  # not a New York time
        {"nested": dt.datetime(2024, 7, 1, 8)},
        None,
    ]
    frame = pd.DataFrame({"v": pd.Series(values, dtype=object)})
    assert [orjson.loads(t)["v"] for t in rows(frame, NEW_YORK)] == [
        "2024-03-01T08:00:00.500000-05:00",
        "2024-03-01T08:00:00+08:00",
        "2024-03-01T08:00:00-05:00",
        "2024-03-01",
        "2024-03-10T02:30:00",
        {"nested": "2024-07-01T08:00:00-04:00"},
        None,
    ]


def test_pyarrow_timestamps_and_dates() -> None:
    pa = pytest.importorskip("pyarrow")

    frame = pd.DataFrame(
        {
            "aware": pd.Series([dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)]).astype(
                pd.ArrowDtype(pa.timestamp("ms", tz="Asia/Shanghai"))
            ),
            "naive": pd.Series([dt.datetime(2024, 3, 1, 8)]).astype(
                pd.ArrowDtype(pa.timestamp("us"))
            ),
            "day": pd.Series([dt.date(2024, 3, 1)]).astype(pd.ArrowDtype(pa.date32())),
        }
    )
    assert orjson.loads(rows(frame, NEW_YORK)[0]) == {
        "aware": "2024-03-01T08:00:00.000+08:00",
        "naive": "2024-03-01T08:00:00.000-05:00",
        "day": "2024-03-01",
    }
