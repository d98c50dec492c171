"""ONE table of the options every skin offers: name, help, type, default, flag, label.

The magic's argument parser, the command line's argparse and the panel's
control labels are all built from :data:`OPTIONS`, so an option is named,
explained and defaulted once. The same table words the core's errors in each
skin's terms: an error carries its ``option`` as the Python keyword
(``"time_col"``), and :func:`flag_subject` says it as ``--time-col 'when'``,
:func:`label_subject` as ``Time column 'when'``. Nobody rewrites a message.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from cms_magic.errors import NO_VALUE, show_value
from cms_magic.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_QPS,
    DEFAULT_TIMEOUT,
    ENV_ENDPOINT,
    ENV_REGION,
)

__all__ = [
    "JOURNAL_OPTIONS",
    "MAPPING_OPTIONS",
    "OPTIONS",
    "READ_COMMANDS",
    "READ_OPTIONS",
    "READ_TARGET_OPTIONS",
    "SEND_OPTIONS",
    "TARGET_OPTIONS",
    "Option",
    "add_arguments",
    "flag_subject",
    "label_subject",
    "option",
    "read_keywords",
]

Group = Literal["mapping", "target", "send", "read", "journal"]


@dataclass(frozen=True, slots=True)
class Option:
    """One option as every skin offers it.

    ``name`` is the Python keyword (and the ``%config CmsMagic`` trait where it is
    configurable); ``flag`` the magic's and the CLI's spelling; ``label`` the
    panel's control. ``kind`` is the value's type (``bool`` is a switch).
    """

    name: str
    help: str
    kind: type
    group: Group
    label: str
    default: Any = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def help_with_default(self) -> str:
        if self.default is None or self.kind is bool:
            return self.help
        return (
            f"{self.help} (default: {self.default:g})"
            if isinstance(self.default, float)
            else f"{self.help} (default: {self.default})"
        )

    def argparse_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``ArgumentParser.add_argument(option.flag, **...)``."""
        if self.kind is bool:
            return {"action": "store_true", "help": self.help, "dest": self.name}
        kwargs: dict[str, Any] = {
            "help": self.help_with_default,
            "dest": self.name,
            "metavar": self.metavar,
            "default": None,  # None = not given here: the skin's settings decide
        }
        if self.kind in (int, float):
            kwargs["type"] = self.kind
        if self.choices:
            kwargs["choices"] = self.choices
        return kwargs


_MAPPING: Final = (
    Option("name", "One event name for every row.", str, "mapping", "Name", metavar="TEXT"),
    Option(
        "name_col",
        "Column holding the event name.",
        str,
        "mapping",
        "Name column",
        metavar="COL",
    ),
    Option(
        "content_col",
        "Column holding the content (default: the whole row as JSON).",
        str,
        "mapping",
        "Content column",
        metavar="COL",
    ),
    Option(
        "content_template",
        "Content as a str.format template over the row, e.g. '{host}: {message}'.",
        str,
        "mapping",
        "Content template",
        metavar="TEMPLATE",
    ),
    Option(
        "group_id",
        "One application group id for every row (an integer).",
        int,
        "mapping",
        "Group id",
        metavar="N",
    ),
    Option(
        "group_id_col",
        "Column holding the application group id.",
        str,
        "mapping",
        "Group id column",
        metavar="COL",
    ),
    Option(
        "time_col",
        "Column holding the event time (default: the service stamps the time).",
        str,
        "mapping",
        "Time column",
        metavar="COL",
    ),
    Option(
        "tz",
        "Time zone of naive times, e.g. Asia/Shanghai (default: this machine's).",
        str,
        "mapping",
        "Time zone",
        metavar="ZONE",
    ),
)

_TARGET: Final = (
    Option(
        "region",
        f"Region id, e.g. cn-hangzhou (also read from {ENV_REGION}).",
        str,
        "target",
        "Region",
        metavar="ID",
    ),
    Option(
        "endpoint",
        "Endpoint: a URL, a region id, 'public', or 'local' for the local emulator "
        f"(also read from {ENV_ENDPOINT}).",
        str,
        "target",
        "Custom URL",
        metavar="URL",
    ),
    Option("internal", "Use the region's internal endpoint.", bool, "target", "Internal"),
    Option(
        "profile",
        "Credentials profile (~/.aliyun/config.json or the credentials file).",
        str,
        "target",
        "Profile",
        metavar="NAME",
    ),
)

_SEND: Final = (
    Option(
        "qps",
        "Requests per second, shared by every send with the same key (0 = no limit).",
        float,
        "send",
        "Requests/s",
        default=DEFAULT_QPS,
        metavar="N",
    ),
    Option(
        "quota",
        "Who shares the requests/s: 'host' (every process of this user here, the default), "
        "'process', 'off', or redis://host:port/db (every machine using that Redis).",
        str,
        "send",
        "Quota shared by",
        metavar="SCOPE",
    ),
    Option(
        "concurrency",
        "Requests in flight at most.",
        int,
        "send",
        "Concurrency",
        default=DEFAULT_CONCURRENCY,
        metavar="N",
    ),
    Option(
        "timeout",
        "Seconds one request attempt may take.",
        float,
        "send",
        "Timeout (s)",
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
    ),
    Option(
        "max_retries",
        "Attempts after the first for a request that failed in a way worth retrying.",
        int,
        "send",
        "Retries",
        default=DEFAULT_MAX_ATTEMPTS - 1,
        metavar="N",
    ),
    Option(
        "retry_ambiguous",
        "Also retry requests whose answer was lost after sending (may duplicate events).",
        bool,
        "send",
        "Retry ambiguous",
    ),
)

_READ: Final = (
    Option("name", "Only events of this name.", str, "read", "Name", metavar="TEXT"),
    Option(
        "group_id",
        "Only events of this application group id (an integer).",
        int,
        "read",
        "Group id",
        metavar="N",
    ),
    Option(
        "since",
        "Start of the window: an ISO 8601 time, or a time before now such as 15m, 1h, 7d "
        "(units s, m, h, d, w).",
        str,
        "read",
        "Since",
        metavar="WHEN",
    ),
    Option(
        "until",
        "End of the window, as --since (default: now).",
        str,
        "read",
        "Until",
        metavar="WHEN",
    ),
    Option(
        "search",
        "The service's keyword search in the content: 'a and b', 'a or b'.",
        str,
        "read",
        "Search",
        metavar="WORDS",
    ),
    Option("limit", "Read at most N events.", int, "read", "Limit", metavar="N"),
    Option(
        "level",
        "Only events of this severity: CRITICAL, WARN or INFO (any case).",
        str,
        "read",
        "Level",
        metavar="LEVEL",
    ),
    Option("by_name", "One count per event name.", bool, "read", "Per name"),
    Option(
        "tz",
        "Time zone of the times read back and of a --since/--until without an offset, "
        "e.g. Asia/Shanghai (default: times in UTC, offsets read in this machine's zone).",
        str,
        "read",
        "Time zone",
        metavar="ZONE",
    ),
)

_JOURNAL: Final = (
    Option(
        "journal",
        "Record the send in this file (SQLite) so that, after a crash or a kill, the same "
        "send run again resumes: accepted rows skipped, never-sent rows sent, rows in "
        "flight reported unknown.",
        str,
        "journal",
        "Journal file",
        metavar="FILE",
    ),
    Option(
        "confirm",
        "With a journal: look up the rows in flight at a crash by read-back before "
        "resending, so only those the service does not hold are sent again.",
        bool,
        "journal",
        "Confirm in-flight rows",
    ),
)

#: Every option, in the order the skins show them (a read filter that is also a mapping
#: option, ``name`` and ``group_id``, has one flag and label: it is listed once).
OPTIONS: Final[tuple[Option, ...]] = (
    *_MAPPING,
    *_TARGET,
    *_SEND,
    *_JOURNAL,
    *(o for o in _READ if o.name not in {m.name for m in _MAPPING}),
)
MAPPING_OPTIONS: Final[tuple[Option, ...]] = _MAPPING
TARGET_OPTIONS: Final[tuple[Option, ...]] = _TARGET
SEND_OPTIONS: Final[tuple[Option, ...]] = _SEND
#: A send's journal (issue 16): options of the send call, not of the client.
JOURNAL_OPTIONS: Final[tuple[Option, ...]] = _JOURNAL
#: The read-back filters (issue 15): the keywords of :func:`cms_magic.query_events`,
#: :func:`~cms_magic.count_events` and :func:`~cms_magic.event_histogram`, worded for reads.
READ_OPTIONS: Final[tuple[Option, ...]] = _READ
#: The target options of a read: the CloudMonitor OpenAPI is regional and has no internal
#: endpoint, so ``--internal`` does not apply.
READ_TARGET_OPTIONS: Final[tuple[Option, ...]] = tuple(o for o in _TARGET if o.name != "internal")
#: Which read options each read command takes, in order.
READ_COMMANDS: Final[dict[str, tuple[str, ...]]] = {
    "events": ("name", "group_id", "since", "until", "search", "limit", "tz"),
    "count": ("name", "group_id", "since", "until", "search", "by_name", "tz"),
    "histogram": ("name", "group_id", "since", "until", "search", "level", "tz"),
}

_BY_NAME: Final = {o.name: o for o in OPTIONS}
_READ_BY_NAME: Final = {o.name: o for o in _READ}


def option(name: str) -> Option:
    """The option called ``name`` (its Python keyword)."""
    return _BY_NAME[name]


def _with_value(found: Option | None, words: str, value: object) -> str:
    if value is NO_VALUE or (found is not None and found.kind is bool):
        return words  # a switch is named by its flag alone: "--internal", not "--internal True"
    return f"{words} {show_value(value)}"


def flag_subject(name: str, value: object) -> str:
    """An error's subject in the magic's and the CLI's words: ``--time-col 'when'``.

    A name that is not an option (an environment variable, a setting's source)
    is said as it is.
    """
    found = _BY_NAME.get(name)
    return _with_value(found, found.flag if found else name, value)


def label_subject(name: str, value: object) -> str:
    """An error's subject in the panel's words: ``Time column 'when'``."""
    found = _BY_NAME.get(name)
    return _with_value(found, found.label if found else name, value)


def add_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    names: Iterable[str],
    *,
    read: bool = False,
) -> None:
    """Add the named options to an argparse parser (or group), flags and help from the table
    (``read=True``: the read filters' wording of ``name`` and ``group_id``)."""
    for name in names:
        found = _READ_BY_NAME[name] if read else _BY_NAME[name]
        parser.add_argument(found.flag, **found.argparse_kwargs())


def read_keywords(command: str, values: object) -> dict[str, Any]:
    """The core's keywords for the read ``command`` (``events``, ``count``, ``histogram``)
    from parsed arguments (an argparse namespace): the filters given, and ``by_name`` as a
    bool for ``count``. The core checks every value."""
    chosen: dict[str, Any] = {}
    for name in READ_COMMANDS[command]:
        value = getattr(values, name, None)
        if name == "by_name":
            chosen[name] = bool(value)
        elif value is not None:
            chosen[name] = value
    return chosen
