"""Rows to events: each field from a constant or a column, bad rows rejected with reasons."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pandas as pd
import pytest

from cms_magic.errors import MappingError
from cms_magic.events.convert import Event, events_from_frame, events_from_records, format_time


def decoded(conversion: object) -> list[dict[str, object]]:
    return [orjson.loads(p) for p in conversion.payloads]  # type: ignore[attr-defined]


def test_event_json_matches_the_document_example() -> None:
    event = Event("Event_0", "123,abc", 100, "20171023T144439.948+0800")
    assert (
        event.to_json()
        == (
            b'[{"content":"123,abc","groupId":100,"name":"Event_0",'
            b'"time":"20171023T144439.948+0800"}]'
        )[1:-1]
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "content": "c"}, "'name' must be a non-empty string, got ''"),
        ({"name": "n", "content": None}, "'content' must be a non-empty string, got None"),
        (
            {"name": "n", "content": "c", "group_id": "7"},
            "'groupId' must be a non-negative integer",
        ),
        ({"name": "n", "content": "c", "group_id": True}, "'groupId'"),
        ({"name": "n", "content": "c", "time": "yesterday"}, "'time' must be yyyyMMdd"),
    ],
)
def test_event_validation_names_field_rule_value(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Event(**kwargs)  # type: ignore[arg-type]


def test_constant_and_column_fields() -> None:
    df = pd.DataFrame({"host": ["a", "b"], "msg": ["m1", "m2"], "gid": [7, 8]})
    conv = events_from_frame(df, name="disk", content_col="msg", group_id_col="gid")
    assert decoded(conv) == [
        {"content": "m1", "groupId": 7, "name": "disk"},
        {"content": "m2", "groupId": 8, "name": "disk"},
    ]
    conv = events_from_frame(df, name_col="host", content_col="msg", group_id=3)
    assert [e["name"] for e in decoded(conv)] == ["a", "b"]
    assert {e["groupId"] for e in decoded(conv)} == {3}


def test_default_content_is_the_whole_row_as_compact_json() -> None:
    df = pd.DataFrame({"name": ["n"], "x": [1.5], "s": ["中文😀"], "missing": [np.nan]})
    (event,) = decoded(events_from_frame(df))
    assert orjson.loads(event["content"]) == {"name": "n", "x": 1.5, "s": "中文😀", "missing": None}
    assert " " not in event["content"]


def test_content_template_over_the_row() -> None:
    df = pd.DataFrame({"name": ["n", "m"], "host": ["h1", "h2"], "pct": [95, 12]})
    conv = events_from_frame(df, content_template="{host} at {pct:>3}%")
    assert [e["content"] for e in decoded(conv)] == ["h1 at  95%", "h2 at  12%"]


def test_index_labels_and_positions_are_kept() -> None:
    df = pd.DataFrame({"name": ["a", None, "c"], "content": ["1", "2", "3"]}, index=[10, 20, 30])
    conv = events_from_frame(df, content_col="content")
    assert conv.positions.tolist() == [0, 2]
    assert [e.source for e in conv.events()] == [10, 30]
    assert list(conv.rejected) == [1]


def test_bad_rows_are_rejected_with_field_rule_and_value() -> None:
    df = pd.DataFrame(
        {
            "name": ["ok", None, "", "n", "n", "n", "n"],
            "content": ["c", "c", "c", np.nan, "", "c", "c"],
            "gid": [1, 1, 1, 1, 1, "abc", 2.5],
        }
    )
    conv = events_from_frame(df, content_col="content", group_id_col="gid")
    assert conv.positions.tolist() == [0]
    assert conv.rejected == {
        1: "'name' (column 'name') is required, got None",
        2: "'name' (column 'name') must be a non-empty string, got ''",
        3: "'content' (column 'content') is required, got None",
        4: "'content' (column 'content') must be a non-empty string, got ''",
        5: "'groupId' (column 'gid') must be an integer, got 'abc'",
        6: "'groupId' (column 'gid') must be an integer, got 2.5",
    }


def test_group_ids_stored_as_floats_or_digit_strings_are_integers() -> None:
    df = pd.DataFrame({"name": ["a", "b", "c", "d"], "gid": [1.0, np.nan, 3.0, -1.0]})
    conv = events_from_frame(df, content_template="x", group_id_col="gid")
    events = decoded(conv)
    assert [e.get("groupId") for e in events] == [1, None, 3]
    assert "non-negative" in conv.rejected[3]
    strings = pd.DataFrame({"name": ["a"], "gid": [" 42 "]})
    assert (
        decoded(events_from_frame(strings, content_template="x", group_id_col="gid"))[0]["groupId"]
        == 42
    )


def test_missing_column_lists_the_available_ones() -> None:
    df = pd.DataFrame({"name": ["a"], "msg": ["m"]})
    with pytest.raises(
        MappingError, match="content_col='mesage': no such column; columns: name, msg"
    ):
        events_from_frame(df, content_col="mesage")
    with pytest.raises(MappingError, match="refers to 'hots'"):
        events_from_frame(df, content_template="{hots}")
    with pytest.raises(MappingError, match="events need a name"):
        events_from_frame(pd.DataFrame({"x": [1]}))
    with pytest.raises(MappingError, match="not both"):
        events_from_frame(df, name="a", name_col="name")


# ----------------------------------------------------------------- times


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


# ----------------------------------------------------------------- records


def test_records_from_the_api_shape() -> None:
    conv = events_from_records(
        [
            {"name": "a", "content": "b", "groupId": 100, "time": "20171023T144439.948+0800"},
            {"name": "x"},
            {"name": "a", "content": "c", "extra": 1},
            Event("e", "f"),
            "nope",
        ]
    )
    assert decoded(conv) == [
        {"content": "b", "groupId": 100, "name": "a", "time": "20171023T144439.948+0800"},
        {"content": "f", "name": "e"},
    ]
    assert conv.positions.tolist() == [0, 3]
    assert conv.rejected[1] == "'content' is required, got None"
    assert "unknown field(s) 'extra'" in conv.rejected[2]
    assert "must be an object" in conv.rejected[4]


def test_lone_surrogates_are_rejected_not_raised() -> None:
    df = pd.DataFrame({"name": ["a", "b"], "content": ["ok", "bad \ud800 text"]})
    conv = events_from_frame(df, content_col="content")
    assert conv.positions.tolist() == [0]
    assert "'content' is not valid Unicode" in conv.rejected[1]
    whole_row = events_from_frame(df)
    assert whole_row.positions.tolist() == [0]
    assert 1 in whole_row.rejected


def test_content_defaults_to_a_content_column_then_to_the_whole_row() -> None:
    df = pd.DataFrame({"name": ["n"], "content": ["the text"], "x": [1]})
    assert decoded(events_from_frame(df))[0]["content"] == "the text"
    without = pd.DataFrame({"name": ["n"], "x": [1]})
    assert orjson.loads(decoded(events_from_frame(without))[0]["content"]) == {"name": "n", "x": 1}


def test_records_need_string_name_and_content() -> None:
    conv = events_from_records([{"name": "a", "content": 5}, {"name": 1.5, "content": "b"}])
    assert conv.rejected == {
        0: "'content' must be a string, got 5",
        1: "'name' must be a string, got 1.5",
    }


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
    assert "must be yyyyMMdd'T'HHmmss.SSSZ" in conv.rejected[5]


def test_contents_that_look_like_event_boundaries_round_trip() -> None:
    tricky = [
        '},{"content":"fake"}',
        'a"},{"content":"b',
        "\\},{\\",
        '{"content":',
        "}]",
        "[{",
    ]
    df = pd.DataFrame({"name": "n", "content": tricky, "gid": 7})
    conv = events_from_frame(df, group_id_col="gid")
    assert [e["content"] for e in decoded(conv)] == tricky
    assert all(p.startswith(b'{"content":') and p.endswith(b"}") for p in conv.payloads)


@pytest.mark.parametrize("name_from", ["constant", "column"])
@pytest.mark.parametrize("group_from", ["constant", "column", "none"])
@pytest.mark.parametrize("time_from", ["datetime", "text", "epoch", "none"])
def test_whole_chunk_and_row_by_row_encoders_write_the_same_bytes(
    name_from: str, group_from: str, time_from: str
) -> None:
    # A valid chunk is encoded with one %-template; a chunk with a rejected row goes row by
    # row through dicts. Both must write byte-identical events, including '%' in constants.
    contents = ["100% done", "%d %s %b %%", 'quote " and \\ back', "中文 🚀", "\x00\x1f"]
    n = len(contents)
    df = pd.DataFrame({"content": contents})
    options: dict[str, object] = {}
    if name_from == "constant":
        options["name"] = "cpu 100%b"
    else:
        df["event"] = [f"name-{i}-%d" for i in range(n)]
        options["name_col"] = "event"
    if group_from == "constant":
        options["group_id"] = 42
    elif group_from == "column":
        df["gid"] = np.arange(n, dtype=np.int64) * 1_000_003
        options["group_id_col"] = "gid"
    times = pd.date_range("2024-03-01 08:00:00.123", periods=n, freq="37min", tz="Asia/Kolkata")
    if time_from == "datetime":
        df["when"] = times
    elif time_from == "text":
        df["when"] = [t.isoformat() for t in times]
    elif time_from == "epoch":
        df["when"] = times.as_unit("ms").asi8
    if time_from != "none":
        options["time_col"] = "when"

    whole = events_from_frame(df, **options)  # type: ignore[arg-type]
    spoiled = pd.concat([df, df.iloc[:1].assign(content="")], ignore_index=True)
    by_row = events_from_frame(spoiled, **options)  # type: ignore[arg-type]
    assert whole.rejected == {}
    assert list(by_row.rejected) == [n]
    assert whole.payloads == by_row.payloads
    events = decoded(whole)
    assert [e["content"] for e in events] == contents
    assert all(list(e) == sorted(e) for e in events)  # content, groupId, name, time
    if name_from == "constant":
        assert {e["name"] for e in events} == {"cpu 100%b"}
