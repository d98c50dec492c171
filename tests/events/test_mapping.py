"""The mapping from a frame's columns to event fields, and the fields its errors carry."""

from __future__ import annotations

import dataclasses
import io
import pickle
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

import cms_magic.events
from cms_magic.errors import NO_VALUE, ConfigError, MappingError
from cms_magic.events import MAPPING_OPTIONS, Conversion, EventMapping, events_from_frame

FIVE = pd.DataFrame(
    {
        "name": ["disk full"],
        "time": ["20171023T144439.948+0800"],
        "group_id": [7],
        "content": ["sda1 at 99%"],
        "tz": ["UTC"],
    }
)


def decoded(conversion: Conversion) -> list[dict[str, Any]]:
    return [orjson.loads(p) for p in conversion.payloads]


def test_mapping_options_are_the_dataclass_fields_in_order() -> None:
    assert MAPPING_OPTIONS == (
        "name",
        "name_col",
        "content_col",
        "content_template",
        "group_id",
        "group_id_col",
        "time_col",
        "tz",
    )
    assert tuple(f.name for f in dataclasses.fields(EventMapping)) == MAPPING_OPTIONS
    assert "MAPPING_OPTIONS" in cms_magic.events.__all__


def test_a_missing_column_names_option_value_and_the_columns_as_they_are() -> None:
    with pytest.raises(MappingError) as caught:
        events_from_frame(FIVE, time_col="when")
    error = caught.value
    assert (error.option, error.value, error.column) == ("time_col", "when", "when")
    assert error.rule == "no such column; columns: name, time, group_id, content, tz"
    assert error.hint is None
    assert (
        str(error) == "time_col='when': no such column; columns: name, time, group_id, content, tz"
    )
    assert isinstance(error, ConfigError)
    assert isinstance(error, ValueError)


def test_a_skin_words_the_option_its_own_way() -> None:
    with pytest.raises(MappingError) as caught:
        events_from_frame(FIVE, time_col="when")
    flag = caught.value.describe(lambda option, value: f"--{option.replace('_', '-')} {value!r}")
    assert flag == "--time-col 'when': no such column; columns: name, time, group_id, content, tz"


def test_fields_survive_pickling() -> None:
    with pytest.raises(MappingError) as caught:
        events_from_frame(FIVE, content_col="contnet")
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 (our own bytes)
    assert (copy.option, copy.value, copy.column, copy.hint) == (
        "content_col",
        "contnet",
        "contnet",
        "did you mean 'content'?",
    )
    assert str(copy) == str(caught.value)


@pytest.mark.parametrize("option", ["name_col", "content_col", "group_id_col", "time_col"])
def test_a_near_miss_column_gets_did_you_mean(option: str) -> None:
    df = pd.DataFrame({"event": ["n"], "message": ["m"], "Stamp": ["x"]})
    wanted = {"name_col": "evnt", "content_col": "mesage", "group_id_col": "Message"}
    wanted["time_col"] = "stamp"
    constant = {} if option == "name_col" else {"name": "n"}
    with pytest.raises(MappingError) as caught:
        events_from_frame(df, **constant, **{option: wanted[option]})  # type: ignore[arg-type]
    expected = {
        "name_col": "event",
        "content_col": "message",
        "group_id_col": "message",
        "time_col": "Stamp",
    }[option]
    error = caught.value
    assert (error.option, error.value) == (option, wanted[option])
    assert error.hint == f"did you mean {expected!r}?"
    assert str(error) == (
        f"{option}={wanted[option]!r}: no such column; columns: event, message, Stamp; "
        f"did you mean {expected!r}?"
    )


def test_a_template_field_that_is_not_a_column() -> None:
    df = pd.DataFrame({"name": ["n"], "host": ["h"], "message": ["m"]})
    template = "{host}: {mesage}"
    with pytest.raises(MappingError) as caught:
        events_from_frame(df, content_template=template)
    error = caught.value
    assert (error.option, error.value, error.column) == ("content_template", template, "mesage")
    assert error.rule == "refers to 'mesage', which is not a column; columns: name, host, message"
    assert error.hint == "did you mean 'message'?"
    with pytest.raises(MappingError) as two:
        events_from_frame(df, content_template="{hots} {mesage}")
    assert two.value.rule.startswith("refers to 'hots', 'mesage', which are not columns;")
    assert (
        two.value.hint == "for 'hots', did you mean 'host'?; for 'mesage', did you mean 'message'?"
    )


@pytest.mark.parametrize(
    ("template", "rule"),
    [
        ("{oops", "is not a valid format string (expected '}' before end of string)"),
        ("{} and {}", "each field must name a column, e.g. '{host}'; got '{}'"),
        (5, "must be a string: a str.format template over the row, e.g. '{host}: {message}'"),
    ],
)
def test_a_malformed_template_is_refused_before_any_frame(template: object, rule: str) -> None:
    with pytest.raises(MappingError) as caught:
        EventMapping(content_template=template)  # type: ignore[arg-type]
    assert (caught.value.option, caught.value.value, caught.value.rule) == (
        "content_template",
        template,
        rule,
    )


def test_an_unknown_time_zone() -> None:
    with pytest.raises(MappingError) as caught:
        events_from_frame(FIVE, tz="Mars/Olympus")
    error = caught.value
    assert (error.option, error.value) == ("tz", "Mars/Olympus")
    assert error.rule == "unknown time zone; use an IANA name such as 'Asia/Shanghai' or 'UTC'"
    assert error.hint is None
    with pytest.raises(MappingError) as near:
        EventMapping(tz="Asia/Shangai")
    assert near.value.hint == "did you mean 'Asia/Shanghai'?"
    for bad in ("", 8):
        with pytest.raises(MappingError) as caught:
            EventMapping(tz=bad)  # type: ignore[arg-type]
        assert (caught.value.option, caught.value.value) == ("tz", bad)


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("7", "must be an integer from 0 to 9223372036854775807"),
        (True, "must be an integer from 0 to 9223372036854775807"),
        (1.5, "must be an integer from 0 to 9223372036854775807"),
        (-1, "must be between 0 and 9223372036854775807 (a non-negative 64-bit integer)"),
        (2**63, "must be between 0 and 9223372036854775807 (a non-negative 64-bit integer)"),
    ],
)
def test_a_constant_group_id_must_be_a_64_bit_integer(value: object, rule: str) -> None:
    with pytest.raises(MappingError) as caught:
        events_from_frame(FIVE, group_id=value)  # type: ignore[arg-type]
    assert (caught.value.option, caught.value.value, caught.value.rule) == ("group_id", value, rule)


def test_a_numpy_integer_group_id_is_an_int() -> None:
    mapping = EventMapping(group_id=np.int64(9))
    assert mapping.group_id == 9
    assert type(mapping.group_id) is int


def test_two_sources_for_one_field() -> None:
    with pytest.raises(MappingError) as caught:
        events_from_frame(FIVE, name="a", name_col="name")
    error = caught.value
    assert (error.option, error.value) == ("name_col", "name")
    # The rule names the other way in plain words, not as a keyword, so a skin can show it
    # as it is ("--name-col 'name': cannot be given with a constant name ('a'); ...").
    assert str(error) == (
        "name_col='name': cannot be given with a constant name ('a'); give one of the two"
    )
    with pytest.raises(MappingError) as caught:
        EventMapping(content_col="content", content_template="{x}")
    assert (caught.value.option, caught.value.value) == ("content_template", "{x}")
    assert (
        caught.value.rule
        == "cannot be given with a content column ('content'); give one of the two"
    )
    with pytest.raises(MappingError) as caught:
        EventMapping(group_id=1, group_id_col="gid")
    assert (caught.value.option, caught.value.value) == ("group_id_col", "gid")
    assert caught.value.rule == "cannot be given with a constant group id (1); give one of the two"


def test_a_name_is_required() -> None:
    with pytest.raises(MappingError) as caught:
        events_from_frame(pd.DataFrame({"x": [1]}))
    error = caught.value
    assert (error.option, error.value, error.column) == ("name", NO_VALUE, "name")
    assert str(error) == (
        "name: required, and no column is called 'name' to take it from; columns: x; "
        "give one name for every row, or the column that holds the names"
    )
    with pytest.raises(MappingError) as near:
        events_from_frame(pd.DataFrame({"Name": ["a"], "x": [1]}))
    assert near.value.hint == "did you mean 'Name'?"
    for bad in ("", "  ", 5):
        with pytest.raises(MappingError) as caught:
            EventMapping(name=bad)  # type: ignore[arg-type]
        assert (caught.value.option, caught.value.value, caught.value.rule) == (
            "name",
            bad,
            "must be a non-empty string",
        )


def test_a_column_option_must_be_a_label() -> None:
    with pytest.raises(MappingError) as caught:
        EventMapping(time_col=["t"])  # type: ignore[arg-type]
    assert (caught.value.option, caught.value.value) == ("time_col", ["t"])


def test_duplicate_labels_are_refused_not_guessed() -> None:
    df = pd.DataFrame([["n", "a", "b"]], columns=["name", "msg", "msg"])
    with pytest.raises(MappingError) as caught:
        events_from_frame(df, content_col="msg")
    assert (caught.value.option, caught.value.column) == ("content_col", "msg")
    assert caught.value.rule == "names 2 columns (the frame's column labels are not unique)"
    with pytest.raises(MappingError, match="names 2 columns"):
        events_from_frame(df, content_template="{msg}")


def test_integer_labels_work_as_the_label_itself_or_as_its_digits() -> None:
    # read_csv(header=None) numbers the columns 0, 1, 2...
    df = pd.read_csv(
        io.StringIO("disk,sda1 full,1508741079948\ncpu,95%,1508741080000\n"), header=None
    )
    assert df.columns.equals(pd.RangeIndex(3))
    conv = events_from_frame(df, name_col=0, content_col=1, time_col=2)
    assert decoded(conv) == [
        {"content": "sda1 full", "name": "disk", "time": "1508741079948"},
        {"content": "95%", "name": "cpu", "time": "1508741080000"},
    ]
    typed = events_from_frame(
        df, name_col="0", content_col="1", time_col="2"
    )  # as a magic types it
    assert typed.payloads == conv.payloads
    assert EventMapping(name_col="0").resolved(list(df.columns)).name_col == 0
    templated = events_from_frame(df, name_col=0, content_template="{0}: {1!s:>10}")
    assert [e["content"] for e in decoded(templated)] == ["disk:  sda1 full", "cpu:        95%"]
    with pytest.raises(MappingError) as caught:
        events_from_frame(df, name_col=0, content_col=5)
    assert (caught.value.option, caught.value.value, caught.value.column) == ("content_col", 5, 5)
    assert str(caught.value) == "content_col=5: no such column; columns: 0, 1, 2"
    with pytest.raises(MappingError) as caught:
        events_from_frame(df, name_col=0, content_template="{0} {7}")
    assert caught.value.rule == "refers to '7', which is not a column; columns: 0, 1, 2"


def test_missing_column_errors_keep_their_wording() -> None:
    df = pd.DataFrame({"name": ["a"], "msg": ["m"]})
    with pytest.raises(
        MappingError, match="content_col='mesage': no such column; columns: name, msg"
    ):
        events_from_frame(df, content_col="mesage")
    with pytest.raises(MappingError, match="refers to 'hots'"):
        events_from_frame(df, content_template="{hots}")


def test_content_defaults_to_a_content_column_then_to_the_whole_row() -> None:
    df = pd.DataFrame({"name": ["n"], "content": ["the text"], "x": [1]})
    assert decoded(events_from_frame(df))[0]["content"] == "the text"
    without = pd.DataFrame({"name": ["n"], "x": [1]})
    assert orjson.loads(decoded(events_from_frame(without))[0]["content"]) == {"name": "n", "x": 1}


def test_resolved_returns_itself_when_nothing_changes() -> None:
    mapping = EventMapping(name_col="name", content_col="content")
    assert mapping.resolved(list(FIVE.columns)) is mapping
