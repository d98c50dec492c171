"""Times: the service format, vectorised formatting, strings and epoch milliseconds."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pandas as pd
import pytest

from cms_magic.errors import ConfigError, InputError, MappingError
from cms_magic.events import Conversion
from cms_magic.events.convert import events_from_frame
from cms_magic.events.times import TIME_FORMAT_RE, format_time


def decoded(conversion: Conversion) -> list[dict[str, Any]]:
    return [orjson.loads(p) for p in conversion.payloads]


def test_aware_times_keep_their_offset() -> None:
    times = pd.Series(
        pd.to_datetime(
            ["2017-10-23T14:44:39.948+08:00", "2017-10-23T06:44:39.948Z"],
            format="ISO8601",
            utc=True,
        )
    ).dt.tz_convert("Asia/Shanghai")
    times.iloc[1:] = (
        times.iloc[1:].dt.tz_convert("UTC").dt.tz_localize(None).dt.tz_localize("Asia/Shanghai")
    )
    df = pd.DataFrame({"name": ["a", "b"], "t": times})
    assert [
        e["time"] for e in decoded(events_from_frame(df, content_template="x", time_col="t"))
    ] == [
        "20171023T144439.948+0800",
        "20171023T064439.948+0800",
    ]


def test_aware_utc_and_negative_offsets() -> None:
    df = pd.DataFrame(
        {
            "name": ["a", "b"],
            "t": pd.to_datetime(["1999-12-31T23:59:59.999", "2024-02-29T12:00:00.5"]).tz_localize(
                "America/New_York"
            ),
        }
    )
    assert [
        e["time"] for e in decoded(events_from_frame(df, content_template="x", time_col="t"))
    ] == [
        "19991231T235959.999-0500",
        "20240229T120000.500-0500",
    ]


def test_naive_times_are_read_in_tz() -> None:
    df = pd.DataFrame({"name": ["a"], "t": pd.to_datetime(["2024-07-01 08:00:00.123"])})
    conv = events_from_frame(df, content_template="x", time_col="t", tz="Asia/Kolkata")
    assert decoded(conv)[0]["time"] == "20240701T080000.123+0530"


def test_nonexistent_local_time_is_rejected() -> None:
    df = pd.DataFrame({"name": ["a"], "t": pd.to_datetime(["2024-03-10 02:30:00"])})
    conv = events_from_frame(df, content_template="x", time_col="t", tz="America/New_York")
    assert "does not exist or is ambiguous in time zone America/New_York" in conv.rejected[0]


def test_vectorised_times_match_strftime_over_a_range() -> None:
    stamps = pd.date_range("1970-01-01", "2099-12-31", periods=5000, tz="Australia/Lord_Howe")
    df = pd.DataFrame({"name": "n", "t": stamps})
    got = [e["time"] for e in decoded(events_from_frame(df, content_template="x", time_col="t"))]
    expected = [
        s.strftime("%Y%m%dT%H%M%S.") + f"{s.microsecond // 1000:03d}" + s.strftime("%z")
        for s in stamps
    ]
    assert got == expected


def test_string_and_epoch_times() -> None:
    df = pd.DataFrame(
        {
            "name": list("abcdefg"),
            "t": [
                "20171023T144439.948+0800",
                "1508741079948",
                "2024-01-02T03:04:05.678+09:00",
                "20171399T144439.948+0800",
                "not a time",
                None,
                1508741079,
            ],
        }
    )
    conv = events_from_frame(df, content_template="x", time_col="t")
    times = {p: e.get("time") for p, e in zip(conv.positions.tolist(), decoded(conv), strict=True)}
    assert times == {
        0: "20171023T144439.948+0800",
        1: "1508741079948",
        2: "20240102T030405.678+0900",
        5: None,
    }
    assert "not a real date-time" in conv.rejected[3]
    assert "must be yyyyMMdd'T'HHmmss.SSSZ" in conv.rejected[4]
    assert "looks like epoch seconds" in conv.rejected[6]


def test_integer_epoch_column() -> None:
    df = pd.DataFrame({"name": ["a", "b"], "t": [1508741079948, 5]})
    conv = events_from_frame(df, content_template="x", time_col="t")
    assert decoded(conv)[0]["time"] == "1508741079948"
    assert "between 2000 and 2100" in conv.rejected[1]


def test_format_time_scalar() -> None:
    when = dt.datetime(2017, 10, 23, 14, 44, 39, 948_000, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert format_time(when) == "20171023T144439.948+0800"
    assert format_time(dt.datetime(2017, 10, 23, 6, 44, 39, 948_000), tz="UTC") == (
        "20171023T064439.948+0000"
    )


def test_iso_strings_with_mixed_offsets_keep_each_offset() -> None:
    df = pd.DataFrame(
        {
            "name": "n",
            "t": [
                "2024-03-01T00:00:00.000",
                "2024-03-02T01:01:01.001Z",
                "2024-03-03T02:02:02.002-05:00",
                "2024-03-04 03:03:03+0100",
                "2024-03-10T02:30:00",  # does not exist in New York (DST starts)
                "2024-13-01T00:00:00+08:00",
            ],
        }
    )
    conv = events_from_frame(df, content_template="x", time_col="t", tz="America/New_York")
    assert [e["time"] for e in decoded(conv)] == [
        "20240301T000000.000-0500",
        "20240302T010101.001+0000",
        "20240303T020202.002-0500",
        "20240304T030303.000+0100",
    ]
    assert "does not exist or is ambiguous" in conv.rejected[4]
    assert conv.rejected[5] == (
        "'time' (column 't') is not a real date-time: '2024-13-01T00:00:00+08:00'"
    )


def test_format_time_errors_carry_fields() -> None:
    with pytest.raises(InputError) as caught:
        format_time("2024-01-01")  # type: ignore[arg-type]
    assert (caught.value.option, caught.value.value, caught.value.rule) == (
        "value",
        "2024-01-01",
        "must be a datetime",
    )
    gap = dt.datetime(2024, 3, 10, 2, 30)  # does not exist in New York (DST starts)
    with pytest.raises(ConfigError) as gap_error:
        format_time(gap, tz="America/New_York")
    assert (gap_error.value.option, gap_error.value.value) == ("value", gap)
    assert gap_error.value.rule.startswith(
        "2024-03-10 02:30:00 does not exist or is ambiguous in time zone America/New_York"
    )
    with pytest.raises(MappingError) as zone_error:
        format_time(gap, tz="Mars/Olympus")
    assert (zone_error.value.option, zone_error.value.value) == ("tz", "Mars/Olympus")


def test_the_service_format_pattern() -> None:
    assert TIME_FORMAT_RE.match("20171023T144439.948+0800")
    assert not TIME_FORMAT_RE.match("2017-10-23T14:44:39.948+08:00")
