"""Events one by one: the Event type and API-shaped records (dicts or Events)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cms_magic.errors import ConfigError, InputError, show_value
from cms_magic.events import Conversion
from cms_magic.events.convert import events_from_records
from cms_magic.events.records import Event


def decoded(conversion: Conversion) -> list[dict[str, Any]]:
    return [orjson.loads(p) for p in conversion.payloads]


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
    ("kwargs", "option", "rule"),
    [
        ({"name": "", "content": "c"}, "name", "must be a non-empty string"),
        ({"name": "n", "content": None}, "content", "must be a non-empty string"),
        (
            {"name": "n", "content": "c", "group_id": "7"},
            "group_id",
            "must be an integer from 0 to 9223372036854775807",
        ),
        (
            {"name": "n", "content": "c", "group_id": True},
            "group_id",
            "must be an integer from 0 to 9223372036854775807",
        ),
        (
            {"name": "n", "content": "c", "group_id": 2**63},
            "group_id",
            "must be an integer from 0 to 9223372036854775807",
        ),
        (
            {"name": "n", "content": "c", "time": "yesterday"},
            "time",
            "must be a date-time, not a word: got 'yesterday' (a word such as now or today "
            "would stamp the moment of sending, not when the event happened)",
        ),
        (
            {"name": "n", "content": "c", "time": "not a time"},
            "time",
            "must be yyyyMMdd'T'HHmmss.SSSZ (e.g. 20171023T144439.948+0800), epoch "
            "milliseconds, an ISO 8601 date-time or a date (2024-01-31), got 'not a time'",
        ),
        (
            {"name": "n", "content": "c", "time": 5},
            "time",
            "as epoch milliseconds must lie between 2000 and 2100, got 5",
        ),
    ],
)
def test_event_validation_names_option_rule_value(
    kwargs: dict[str, object], option: str, rule: str
) -> None:
    # The error names the keyword (option) and the value; the rule does not repeat them.
    with pytest.raises(ConfigError) as caught:
        Event(**kwargs)  # type: ignore[arg-type]
    error = caught.value
    assert (error.option, error.value, error.rule) == (option, kwargs[option], rule)
    assert str(error) == f"{option}={show_value(kwargs[option])}: {rule}"
    assert isinstance(error, ValueError)


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


def test_records_need_string_name_and_content() -> None:
    conv = events_from_records([{"name": "a", "content": 5}, {"name": 1.5, "content": "b"}])
    assert conv.rejected == {
        0: "'content' must be a string, got 5",
        1: "'name' must be a string, got 1.5",
    }


def test_data_that_is_not_a_list_of_records_is_an_input_error() -> None:
    for data in ("name,content", b"x", 5, None):
        with pytest.raises(InputError) as caught:
            events_from_records(data)  # type: ignore[arg-type]
        assert (caught.value.option, caught.value.value) == ("records", data)
        assert caught.value.rule.startswith("must be a list of events")
        assert isinstance(caught.value, TypeError)
    with pytest.raises(InputError) as one:
        events_from_records({"name": "a", "content": "b"})
    assert one.value.hint == "wrap a single event in a list: [event]"


def test_records_from_a_generator_and_group_id_spelt_pythonically() -> None:
    conv = events_from_records({"name": "a", "content": str(i), "group_id": i} for i in range(2))
    assert decoded(conv) == [
        {"content": "0", "groupId": 0, "name": "a"},
        {"content": "1", "groupId": 1, "name": "a"},
    ]
    assert [e.source for e in conv.events()] == [0, 1]
