"""Issue 12, data correctness: one odd cell changes only its own row, never the send.

A date alone is that local midnight; a year and month, or a word like ``now``, is
rejected with a reason; nullable and pyarrow dtypes with NA, sentinel dates and
signaling NaNs make only their row rejected (or, for a missing optional field, the
event goes without it); bytes, dicts and floats are converted faithfully.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from cms_magic.emulator import Emulator, demo_credentials
from cms_magic.errors import MappingError
from cms_magic.events import Conversion, EventMapping, events_from_frame, iter_conversions
from cms_magic.events.mapping import resolve_tz
from cms_magic.events.records import Event
from cms_magic.sending.client import Client

try:
    import pyarrow as pa
except ImportError:  # pragma: no cover - depends on the environment
    pa = None

needs_pyarrow = pytest.mark.skipif(
    pa is None, reason="pyarrow is not installed: the pyarrow-backed dtypes cannot be built"
)


def decoded(conversion: Conversion) -> list[dict[str, Any]]:
    return [orjson.loads(p) for p in conversion.payloads]


def times_of(conversion: Conversion) -> dict[int, str | None]:
    return {
        p: e.get("time")
        for p, e in zip(conversion.positions.tolist(), decoded(conversion), strict=False)
    }


def one_column(column: str, values: Any, **mapping: Any) -> Conversion:
    frame = pd.DataFrame({"c": [f"row {i}" for i in range(len(values))], column: values})
    return events_from_frame(frame, name="n", content_col="c", **mapping)


# --------------------------------------------------------------------------- 3. date-only strings


def test_a_date_alone_is_local_midnight_in_tz() -> None:
    conv = one_column(
        "t",
        ["2024-01-01", "2024-07-15", "2024-01-01T10:00:00+08:00", "2024-01-01 10:00"],
        time_col="t",
        tz="Asia/Shanghai",
    )
    assert conv.rejected == {}
    assert times_of(conv) == {
        0: "20240101T000000.000+0800",
        1: "20240715T000000.000+0800",
        2: "20240101T100000.000+0800",
        3: "20240101T100000.000+0800",
    }


def test_a_date_alone_follows_the_zone_offset_of_that_day() -> None:
    conv = one_column("t", ["2024-01-01", "2024-07-01"], time_col="t", tz="America/New_York")
    assert list(times_of(conv).values()) == [
        "20240101T000000.000-0500",
        "20240701T000000.000-0400",
    ]


def test_a_date_alone_in_a_frame_of_other_times_and_as_a_scalar() -> None:
    conv = one_column(
        "t", ["2024-01-01", 1508741079948, dt.date(2024, 1, 2)], time_col="t", tz="Asia/Shanghai"
    )
    assert times_of(conv) == {
        0: "20240101T000000.000+0800",
        1: "1508741079948",
        2: "20240102T000000.000+0800",
    }
    utc = dt.timezone.utc
    assert Event("n", "c", time="2024-01-01T00:00:00Z").time == "20240101T000000.000+0000"
    assert Event("n", "c", time=dt.datetime(2024, 1, 1, tzinfo=utc)).time == (
        "20240101T000000.000+0000"
    )


def test_a_year_and_month_is_rejected_not_read_as_an_offset() -> None:
    conv = one_column("t", ["2024-06", "2024-06-01"], time_col="t", tz="Asia/Shanghai")
    assert times_of(conv) == {1: "20240601T000000.000+0800"}
    reason = conv.rejected[0]
    assert reason.startswith("'time' (column 't') ")
    assert "year and month without a day" in reason
    assert "'2024-06'" in reason


@pytest.mark.parametrize("word", ["now", "today", "NOW", " Today ", "yesterday", "tomorrow"])
def test_words_are_rejected_never_the_current_time(word: str) -> None:
    conv = one_column("t", [word, "2024-01-01"], time_col="t", tz="UTC")
    assert times_of(conv) == {1: "20240101T000000.000+0000"}
    reason = conv.rejected[0]
    assert reason.startswith("'time' (column 't') ")
    assert repr(word.strip()) in reason
    assert "not a word" in reason


def test_words_are_rejected_by_event_too() -> None:
    with pytest.raises(ValueError, match="now"):
        Event("n", "c", time="now")


# --------------------------------------------------------------------------- 4. one cell, one row


@pytest.mark.parametrize("dtype", ["Int64", "UInt64", "Int32"])
def test_a_nullable_group_id_with_na_sends_that_event_without_group(dtype: str) -> None:
    conv = one_column("g", pd.array([7, None, 9], dtype=dtype), group_id_col="g")
    assert conv.rejected == {}
    assert [e.get("groupId") for e in decoded(conv)] == [7, None, 9]


@needs_pyarrow
@pytest.mark.parametrize("dtype", ["int64[pyarrow]", "uint64[pyarrow]", "int32[pyarrow]"])
def test_a_pyarrow_group_id_with_na_sends_that_event_without_group(dtype: str) -> None:
    conv = one_column("g", pd.array([7, None, 9], dtype=dtype), group_id_col="g")
    assert conv.rejected == {}
    assert [e.get("groupId") for e in decoded(conv)] == [7, None, 9]


def test_fifty_thousand_rows_with_one_na_group_id_are_all_sent() -> None:
    groups = pd.array(np.arange(50_000), dtype="Int64")
    groups[5] = pd.NA
    frame = pd.DataFrame({"name": "n", "content": "c", "gid": groups})
    emulator = Emulator(qps=0)
    client = Client(
        "http://127.0.0.1:9",
        credentials=demo_credentials(),
        qps=0,
        transport=httpx.MockTransport(emulator.handle_request),
        source_ip="10.0.0.1",
    )
    result = client.send(frame, group_id_col="gid")
    status = result.events["status"].astype(str)
    assert (status == "accepted").sum() == 50_000
    stored = emulator.events()
    assert len(stored) == 50_000
    assert sum("groupId" not in e for e in stored) == 1


@pytest.mark.parametrize(
    "sentinel", [dt.datetime(9999, 12, 31), dt.datetime(1, 1, 1), dt.datetime(2262, 4, 12)]
)
def test_a_sentinel_date_rejects_only_its_row(sentinel: dt.datetime) -> None:
    as_objects = pd.Series([dt.datetime(2024, 1, 1), sentinel], dtype=object)
    as_seconds = pd.Series(np.array([dt.datetime(2024, 1, 1), sentinel], dtype="datetime64[s]"))
    as_strings = ["2024-01-01T00:00:00", sentinel.isoformat()]
    for values in (as_objects, as_seconds, as_seconds.dt.tz_localize("UTC"), as_strings):
        conv = one_column("t", values, time_col="t", tz="UTC")
        assert times_of(conv) == {0: "20240101T000000.000+0000"}, values
        reason = conv.rejected[1]
        assert reason.startswith("'time' (column 't') must lie between 1900 and 2100"), reason
        assert str(sentinel.year) in reason


def test_a_sentinel_in_the_service_format_is_rejected() -> None:
    conv = one_column("t", ["99991231T000000.000+0000"], time_col="t")
    assert "must lie between 1900 and 2100" in conv.rejected[0]


@needs_pyarrow
def test_pyarrow_timestamps_naive_aware_and_dates() -> None:
    assert pa is not None
    naive = pd.array(
        [dt.datetime(2024, 1, 1, 8), None, dt.datetime(9999, 12, 31)],
        dtype=pd.ArrowDtype(pa.timestamp("us")),
    )
    conv = one_column("t", naive, time_col="t", tz="Asia/Shanghai")
    assert times_of(conv) == {0: "20240101T080000.000+0800", 1: None}
    assert "must lie between 1900 and 2100" in conv.rejected[2]
    aware = pd.array(
        [dt.datetime(2024, 1, 1, 8), None], dtype=pd.ArrowDtype(pa.timestamp("ms", tz="UTC"))
    )
    assert times_of(one_column("t", aware, time_col="t")) == {
        0: "20240101T080000.000+0000",
        1: None,
    }
    dates = pd.array([dt.date(2024, 1, 1)], dtype=pd.ArrowDtype(pa.date32()))
    conv = one_column("t", dates, time_col="t", tz="Asia/Shanghai")
    assert times_of(conv) == {0: "20240101T000000.000+0800"}


@pytest.mark.parametrize("field", ["content", "group", "time", "name"])
def test_a_signaling_nan_rejects_only_its_row(field: str) -> None:
    snan = decimal.Decimal("sNaN")
    frame = pd.DataFrame(
        {"name": ["a", "b"], "content": ["x", "y"], "g": [1, 2], "t": [1508741079948] * 2}
    )
    frame = frame.astype(object)
    frame.loc[1, {"content": "content", "group": "g", "time": "t", "name": "name"}[field]] = snan
    conv = events_from_frame(frame, group_id_col="g", time_col="t")
    assert conv.positions.tolist() == [0]
    reason = conv.rejected[1]
    assert "sNaN" in reason, reason
    assert reason.startswith("'"), reason


def test_a_signaling_nan_in_the_whole_row_json_rejects_only_its_row() -> None:
    frame = pd.DataFrame(
        {"name": ["a", "b"], "d": [decimal.Decimal("1.5"), decimal.Decimal("sNaN")]}
    )
    conv = events_from_frame(frame)
    assert [orjson.loads(e["content"]) for e in decoded(conv)] == [{"name": "a", "d": "1.5"}]
    assert "'d'" in conv.rejected[1]
    assert "sNaN" in conv.rejected[1]


def test_an_unreadable_cell_never_raises_from_the_chunk_converter() -> None:
    class Hostile:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no comparisons")

        __hash__ = object.__hash__

        def __str__(self) -> str:
            raise RuntimeError("no text")

        def __repr__(self) -> str:
            return "Hostile()"

    frame = pd.DataFrame({"name": ["a", "b"], "content": pd.Series(["x", Hostile()], dtype=object)})
    conv = events_from_frame(frame)
    assert conv.positions.tolist() == [0]
    assert "Hostile()" in conv.rejected[1]


def test_duplicate_default_content_columns_are_a_mapping_error() -> None:
    frame = pd.DataFrame([["n", "a", "b"]], columns=["name", "content", "content"])
    with pytest.raises(MappingError) as caught:
        events_from_frame(frame)
    assert (caught.value.option, caught.value.column) == ("content_col", "content")
    assert "2 columns" in caught.value.rule


def test_duplicate_labels_in_the_whole_row_json_are_a_mapping_error() -> None:
    frame = pd.DataFrame([["n", 1, 2]], columns=["name", "x", "x"])
    with pytest.raises(MappingError) as caught:
        iter_conversions(frame, EventMapping())
    assert caught.value.option == "content_col"
    assert "'x'" in caught.value.rule
    assert "unique" in caught.value.rule


def test_duplicate_mapped_columns_and_missing_labels_raise_before_any_row() -> None:
    frame = pd.DataFrame([["n", "c", 1, 2]], columns=["name", "content", "g", "g"])
    with pytest.raises(MappingError, match="names 2 columns"):
        iter_conversions(frame, EventMapping(group_id_col="g"))
    with pytest.raises(MappingError, match="no such column"):
        iter_conversions(frame, EventMapping(time_col="when"))
    numbered = pd.DataFrame({0: ["n"], 1: ["c"]})
    (event,) = decoded(events_from_frame(numbered, name_col="0", content_col="1"))
    assert event == {"content": "c", "name": "n"}


# --------------------------------------------------------------------------- 5. silent conversions


def test_dicts_and_lists_in_a_content_column_are_json() -> None:
    frame = pd.DataFrame({"c": [{"a": 1, "b": [1, 2.5]}, [0.1, None, "中"]]})
    conv = events_from_frame(frame, name="n", content_col="c")
    assert [e["content"] for e in decoded(conv)] == [
        '{"a":1,"b":[1,2.5]}',
        '[0.1,null,"中"]',
    ]


def test_bytes_in_a_content_column_are_utf8_text_or_rejected() -> None:
    frame = pd.DataFrame({"c": [b"caf\xc3\xa9", b"\xff\xfe", bytearray(b"ok")]})
    conv = events_from_frame(frame, name="n", content_col="c")
    assert [e["content"] for e in decoded(conv)] == ["café", "ok"]
    assert conv.positions.tolist() == [0, 2]
    reason = conv.rejected[1]
    assert reason.startswith("'content' (column 'c') ")
    assert "UTF-8" in reason
    assert "\\xff" in reason


@needs_pyarrow
def test_pyarrow_binary_content_is_decoded() -> None:
    assert pa is not None
    values = pd.array([b"hi", b"\xff"], dtype=pd.ArrowDtype(pa.binary()))
    conv = events_from_frame(pd.DataFrame({"c": values}), name="n", content_col="c")
    assert [e["content"] for e in decoded(conv)] == ["hi"]
    assert "UTF-8" in conv.rejected[1]


@pytest.mark.parametrize("dtype", ["Int64", "UInt64"])
def test_an_na_epoch_means_no_time_not_a_huge_negative_number(dtype: str) -> None:
    conv = one_column("t", pd.array([1508741079948, None], dtype=dtype), time_col="t")
    assert conv.rejected == {}
    assert times_of(conv) == {0: "1508741079948", 1: None}


@needs_pyarrow
def test_a_pyarrow_na_epoch_means_no_time() -> None:
    conv = one_column("t", pd.array([1508741079948, None], dtype="int64[pyarrow]"), time_col="t")
    assert conv.rejected == {}
    assert times_of(conv) == {0: "1508741079948", 1: None}


@pytest.mark.parametrize("dtype", ["uint64", "UInt64"])
def test_a_uint64_group_id_above_the_long_range_is_rejected(dtype: str) -> None:
    big = 2**63 + 5
    values = pd.array(np.array([1, big], dtype=np.uint64), dtype=dtype)
    conv = one_column("g", values, group_id_col="g")
    assert [e["groupId"] for e in decoded(conv)] == [1]
    assert conv.rejected[1] == (
        f"'groupId' (column 'g') must be a non-negative 64-bit integer, got {big}"
    )


def test_a_uint64_epoch_above_the_long_range_is_rejected() -> None:
    conv = one_column("t", np.array([1508741079948, 2**64 - 1], dtype=np.uint64), time_col="t")
    assert times_of(conv) == {0: "1508741079948"}
    assert str(2**64 - 1) in conv.rejected[1]


def test_the_whole_row_json_writes_floats_that_round_trip() -> None:
    values = [0.1 + 0.2, 1 / 3, 1e-300, 123456789.12345679, np.nan]
    frame = pd.DataFrame({"name": "n", "x": values, "f32": np.array(values, dtype=np.float32)})
    contents = [orjson.loads(e["content"]) for e in decoded(events_from_frame(frame))]
    assert [c["x"] for c in contents[:4]] == values[:4]
    assert contents[4]["x"] is None
    assert contents[0]["f32"] == float(str(np.float32(values[0])))  # float32's shortest text


def test_the_whole_row_json_keeps_times_ints_and_text_as_before() -> None:
    frame = pd.DataFrame(
        {
            "name": ["n", "m"],
            "i": [1, 2],
            "b": [True, False],
            "s": ["中文😀", None],
            "t": pd.to_datetime(["2024-03-01 08:00:00.123", None]),
            "tz": pd.to_datetime(["2024-03-01 08:00:00.123", None]).tz_localize("Asia/Shanghai"),
            "d": [{"k": [1, 2]}, decimal.Decimal("2.50")],
            "raw": [b"ok", b"\xc3\xa9"],
        }
    )
    contents = [orjson.loads(e["content"]) for e in decoded(events_from_frame(frame))]
    # times in the event's zone: a naive one in tz (default local), an aware one in its own
    local = dt.datetime(2024, 3, 1, 8, tzinfo=resolve_tz(None)).isoformat()[19:]
    assert contents == [
        {
            "name": "n",
            "i": 1,
            "b": True,
            "s": "中文😀",
            "t": f"2024-03-01T08:00:00.123{local}",
            "tz": "2024-03-01T08:00:00.123+08:00",
            "d": {"k": [1, 2]},
            "raw": "ok",
        },
        {
            "name": "m",
            "i": 2,
            "b": False,
            "s": None,
            "t": None,
            "tz": None,
            "d": "2.50",
            "raw": "é",
        },
    ]


def test_bytes_that_are_not_utf8_reject_their_row_in_the_whole_row_json() -> None:
    frame = pd.DataFrame({"name": ["a", "b"], "raw": [b"ok", b"\xff"]})
    conv = events_from_frame(frame)
    assert conv.positions.tolist() == [0]
    assert "'raw'" in conv.rejected[1]
    assert "UTF-8" in conv.rejected[1]
