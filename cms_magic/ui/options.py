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
    "MAPPING_OPTIONS",
    "OPTIONS",
    "SEND_OPTIONS",
    "TARGET_OPTIONS",
    "Option",
    "add_arguments",
    "flag_subject",
    "label_subject",
    "option",
]

Group = Literal["mapping", "target", "send"]


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

#: Every option, in the order the skins show them.
OPTIONS: Final[tuple[Option, ...]] = (*_MAPPING, *_TARGET, *_SEND)
MAPPING_OPTIONS: Final[tuple[Option, ...]] = _MAPPING
TARGET_OPTIONS: Final[tuple[Option, ...]] = _TARGET
SEND_OPTIONS: Final[tuple[Option, ...]] = _SEND

_BY_NAME: Final = {o.name: o for o in OPTIONS}


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
) -> None:
    """Add the named options to an argparse parser (or group), flags and help from the table."""
    for name in names:
        found = _BY_NAME[name]
        parser.add_argument(found.flag, **found.argparse_kwargs())
