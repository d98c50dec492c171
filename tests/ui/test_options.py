"""The one options table: every skin's flags, labels and defaults come from it."""

from __future__ import annotations

import argparse
import inspect

import pytest

from cms_magic import settings
from cms_magic.errors import ConfigError as ConfigErrorType
from cms_magic.errors import MappingError, TargetError
from cms_magic.ui.options import (
    MAPPING_OPTIONS,
    OPTIONS,
    add_arguments,
    flag_subject,
    label_subject,
    option,
)


def test_names_flags_and_labels_are_unique() -> None:
    for attribute in ("name", "flag", "label"):
        values = [getattr(o, attribute) for o in OPTIONS]
        assert len(values) == len(set(values)), attribute


def test_the_mapping_options_are_the_cores_mapping_keywords() -> None:
    import cms_magic

    keywords = [p for p in inspect.signature(cms_magic.events_from_frame).parameters if p != "df"]
    assert {o.name for o in MAPPING_OPTIONS} <= set(keywords)
    send_keywords = set(inspect.signature(cms_magic.send).parameters)
    assert {o.name for o in MAPPING_OPTIONS} <= send_keywords


def test_defaults_are_the_settings_defaults() -> None:
    assert option("qps").default == settings.DEFAULT_QPS
    assert option("concurrency").default == settings.DEFAULT_CONCURRENCY
    assert option("timeout").default == settings.DEFAULT_TIMEOUT
    assert option("max_retries").default == settings.DEFAULT_MAX_ATTEMPTS - 1


def test_an_error_is_worded_in_each_skins_terms() -> None:
    error = MappingError(
        "no such column; columns: name, time, group_id, content, tz",
        option="time_col",
        value="when",
    )
    assert (
        str(error) == "time_col='when': no such column; columns: name, time, group_id, content, tz"
    )
    assert error.describe(flag_subject) == (
        "--time-col 'when': no such column; columns: name, time, group_id, content, tz"
    )
    assert error.describe(label_subject).startswith("Time column 'when': no such column")


def test_a_subject_that_is_not_an_option_is_said_as_it_is() -> None:
    error = TargetError("is not a URL", option="CMS_MAGIC_ENDPOINT", value="x y")
    assert error.describe(flag_subject) == "CMS_MAGIC_ENDPOINT 'x y': is not a URL"


def test_argparse_is_built_from_the_table() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, [o.name for o in OPTIONS])
    args = parser.parse_args(["--time-col", "when", "--qps", "5", "--internal"])
    assert args.time_col == "when"
    assert args.qps == 5.0
    assert args.internal is True
    assert args.concurrency is None  # not given: the skin's settings decide
    with pytest.raises(SystemExit):
        parser.parse_args(["--qps", "fast"])
    assert "(default: 20)" in parser.format_help()


def test_a_switch_is_named_by_its_flag_alone() -> None:
    error = TargetError("applies to a region id, not to 'local'", option="internal", value=True)
    assert error.describe(flag_subject) == "--internal: applies to a region id, not to 'local'"
    assert error.describe(label_subject) == "Internal: applies to a region id, not to 'local'"


def test_the_read_options_are_the_cores_read_keywords() -> None:
    from cms_magic import readback
    from cms_magic.ui.options import READ_COMMANDS, READ_OPTIONS

    functions = {
        "events": readback.query_events,
        "count": readback.count_events,
        "histogram": readback.event_histogram,
    }
    for command, names in READ_COMMANDS.items():
        assert set(names) <= set(inspect.signature(functions[command]).parameters), command
    assert {o.name for o in READ_OPTIONS} == {n for names in READ_COMMANDS.values() for n in names}


def test_a_read_filter_is_worded_in_flags() -> None:
    from cms_magic.readback_times import time_window

    with pytest.raises(ConfigErrorType) as caught:
        time_window("1y", None, clock=lambda: 0.0)
    assert caught.value.describe(flag_subject).startswith("--since '1y': must be ")


def test_the_read_parser_words_name_and_group_id_for_reads() -> None:
    from cms_magic.ui.options import READ_COMMANDS, read_keywords

    parser = argparse.ArgumentParser()
    add_arguments(parser, READ_COMMANDS["count"], read=True)
    assert "Only events of this name." in parser.format_help()
    args = parser.parse_args(["--name", "deploy", "--group-id", "7", "--since", "1h"])
    assert read_keywords("count", args) == {
        "name": "deploy",
        "group_id": 7,
        "since": "1h",
        "by_name": False,
    }
