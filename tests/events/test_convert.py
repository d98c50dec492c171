"""Rows to events: each field from a constant or a column, bad rows rejected with reasons."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from cms_magic.errors import ConfigError, InputError
from cms_magic.events import Conversion
from cms_magic.events.convert import EventMapping, events_from_frame, iter_conversions


def decoded(conversion: Conversion) -> list[dict[str, Any]]:
    return [orjson.loads(p) for p in conversion.payloads]


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


def test_lone_surrogates_are_rejected_not_raised() -> None:
    # object dtype: a pyarrow-backed string column (pandas' default with pyarrow) cannot
    # hold a lone surrogate at all
    df = pd.DataFrame({"name": ["a", "b"], "content": ["ok", "bad \ud800 text"]}, dtype=object)
    conv = events_from_frame(df, content_col="content")
    assert conv.positions.tolist() == [0]
    assert "'content' is not valid Unicode" in conv.rejected[1]
    whole_row = events_from_frame(df)
    assert whole_row.positions.tolist() == [0]
    assert 1 in whole_row.rejected


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


def test_data_that_is_not_a_frame_is_an_input_error() -> None:
    for data in ([{"name": "a"}], None, "df"):
        with pytest.raises(InputError) as caught:
            events_from_frame(data)  # type: ignore[arg-type]
        assert (caught.value.option, caught.value.value) == ("df", data)
        assert caught.value.rule.startswith("must be a pandas DataFrame, got ")
        with pytest.raises(InputError):
            iter_conversions(data, EventMapping(name="n"))  # type: ignore[arg-type]


@pytest.mark.parametrize("chunk_rows", [0, -5, 2.5, True])
def test_chunk_rows_must_be_a_positive_whole_number(chunk_rows: object) -> None:
    df = pd.DataFrame({"name": ["a"], "content": ["b"]})
    with pytest.raises(ConfigError) as caught:
        iter_conversions(df, EventMapping(), chunk_rows=chunk_rows)  # type: ignore[arg-type]
    assert (caught.value.option, caught.value.value) == ("chunk_rows", chunk_rows)


def test_chunks_line_up_with_the_whole_frame() -> None:
    df = pd.DataFrame({"name": ["a", "", "c", "d", None], "content": list("vwxyz")})
    chunks = list(iter_conversions(df, EventMapping(), chunk_rows=2))
    assert [c.total for c in chunks] == [2, 2, 1]
    assert [p for c in chunks for p in c.positions.tolist()] == [0, 2, 3]
    assert {p: r for c in chunks for p, r in c.rejected.items()} == {
        1: "'name' (column 'name') must be a non-empty string, got ''",
        4: "'name' (column 'name') is required, got None",
    }
    whole = events_from_frame(df)
    assert [p for c in chunks for p in c.payloads] == whole.payloads


def test_a_mapping_error_is_raised_when_iter_conversions_is_called() -> None:
    # Before any chunk is converted, not at the first next().
    with pytest.raises(ConfigError):
        iter_conversions(pd.DataFrame({"x": [1]}), EventMapping())
