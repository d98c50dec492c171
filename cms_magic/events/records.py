"""Events given one by one: the :class:`Event` type, and reading API-shaped records.

An event has a ``name`` and a ``content`` (both required, non-empty strings),
an optional integer ``groupId`` (the application group) and an optional
``time`` (see :mod:`cms_magic.events.times`).

A list of records (``Event`` objects, or dicts with the API's keys ``name``,
``content``, ``groupId``, ``time``) is read into a frame of those four columns
by :func:`records_frame`; :func:`cms_magic.events.convert.events_from_records`
converts it with the same chunk converter as any frame. A record that is not an
object, has an unknown key or a non-string name is rejected with a reason;
nothing raises for one bad record.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from cms_magic.errors import ConfigError, InputError
from cms_magic.events._values import is_group_id, show
from cms_magic.events.times import scalar_time
from cms_magic.protocol import EVENT_FIELDS, GROUP_ID_MAX

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Event", "records_frame"]


@dataclass(frozen=True, slots=True)
class Event:
    """One custom event, validated on construction.

    ``time`` may be a string in the service format, epoch milliseconds, or a
    ``datetime`` (naive ones are read in the machine's local zone). ``source``
    is the input row it came from, if any; it is not sent. A value that cannot
    work raises :class:`~cms_magic.errors.ConfigError` naming the keyword
    (``option="group_id"``) and the value.
    """

    name: str
    content: str
    group_id: int | None = None
    time: str | int | datetime | None = None
    source: Hashable | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("name", "content"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError("must be a non-empty string", option=name, value=value)
        if not is_group_id(self.group_id):
            raise ConfigError(
                f"must be an integer from 0 to {GROUP_ID_MAX}",
                option="group_id",
                value=self.group_id,
            )
        if self.time is not None:
            formatted, reason = scalar_time(self.time, None, None)
            if reason is not None:
                raise ConfigError(reason, option="time", value=self.time)
            object.__setattr__(self, "time", formatted)

    def to_dict(self) -> dict[str, Any]:
        """The event as the API's JSON object (``groupId`` and ``time`` only when set)."""
        out: dict[str, Any] = {"content": self.content}
        if self.group_id is not None:
            out["groupId"] = self.group_id
        out["name"] = self.name
        if self.time is not None:
            out["time"] = self.time
        return out

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON, exactly as it goes into a request body."""
        return orjson.dumps(self.to_dict())


#: The columns of the frame :func:`records_frame` builds (the API's keys).
RECORD_COLUMNS = ("name", "content", "groupId", "time")
_KNOWN = {*EVENT_FIELDS, "group_id"}


def records_frame(records: Iterable[Any]) -> tuple[pd.DataFrame, dict[int, str]]:
    """Records as a frame of :data:`RECORD_COLUMNS`, and the reasons of records refused by shape.

    Raises :class:`~cms_magic.errors.InputError` when ``records`` is not a list of
    records at all (a string, a single dict, a number).
    """
    import pandas as pd

    _check_records(records)
    rows: list[dict[str, Any]] = []
    rejected: dict[int, str] = {}
    for position, record in enumerate(records):
        if isinstance(record, Event):
            rows.append(
                {
                    "name": record.name,
                    "content": record.content,
                    "groupId": record.group_id,
                    "time": record.time,
                }
            )
            continue
        if not isinstance(record, Mapping):
            rejected[position] = (
                f"an event must be an object with 'name' and 'content', got {show(record)}"
            )
            rows.append({})
            continue
        unknown = sorted(str(k) for k in record if k not in _KNOWN)
        if unknown:
            rejected[position] = (
                f"unknown field(s) {', '.join(map(repr, unknown))}; "
                "an event has 'name', 'content', 'groupId', 'time'"
            )
        for key in ("name", "content"):
            value = record.get(key)
            if value is not None and not isinstance(value, str):
                rejected.setdefault(position, f"'{key}' must be a string, got {show(value)}")
        group = record.get("groupId", record.get("group_id"))
        rows.append(
            {
                "name": record.get("name"),
                "content": record.get("content"),
                "groupId": group,
                "time": record.get("time"),
            }
        )
    frame = pd.DataFrame(rows, columns=list(RECORD_COLUMNS), dtype=object)
    return frame, rejected


def _check_records(records: object) -> None:
    """Raise an InputError unless ``records`` is an iterable of records (not text, not one dict)."""
    if isinstance(records, Mapping):
        raise InputError(
            "must be a list of events, got one dict",
            option="records",
            value=records,
            hint="wrap a single event in a list: [event]",
        )
    if isinstance(records, (str, bytes, bytearray)) or not isinstance(records, Iterable):
        raise InputError(
            "must be a list of events (cms_magic.Event, or dicts with 'name' and 'content'), "
            f"got {type(records).__name__}",
            option="records",
            value=records,
        )
