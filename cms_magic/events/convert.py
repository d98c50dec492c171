"""Events: the event type, validation, and vectorised conversion from DataFrame rows.

An event has a ``name`` and a ``content`` (both required, non-empty strings),
an optional integer ``groupId`` (the application group) and an optional
``time`` in the service's format ``yyyyMMdd'T'HHmmss.SSSZ``, e.g.
``20171023T144439.948+0800``.

:func:`events_from_frame` turns rows into encoded events, a column at a time
(no ``iterrows``). A row that cannot become an event is not an exception: it is
*rejected* with a reason that names the field, the rule and the value, so every
input row is accounted for. A mapping that cannot work for any row (a column
that does not exist) raises :class:`~cms_magic.errors.MappingError` at once.

Times:

- tz-aware datetimes keep their own UTC offset;
- naive datetimes are read in ``tz`` (default: this machine's local zone, as
  the operating system reports it); a wall time that does not exist or is
  ambiguous in that zone (daylight-saving changes) is rejected;
- strings already in the service's format pass through, validated;
- epoch milliseconds (integers, or strings of digits) pass through as a string
  of digits, validated to lie between 2000 and 2100;
- other strings are parsed as ISO 8601;
- a missing time (None, NaN, NaT) means the event carries no ``time``.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from cms_magic.errors import MappingError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Conversion",
    "Event",
    "EventMapping",
    "events_from_frame",
    "events_from_records",
    "format_time",
    "iter_conversions",
]

TIME_FORMAT_RE = re.compile(
    r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})([+-])(\d{2})(\d{2})$"
)
_DIGITS_RE = re.compile(r"^\d{1,16}$")
# Epoch milliseconds accepted as times: 2000-01-01 .. 2100-01-01 UTC.
_EPOCH_MS_MIN = 946_684_800_000
_EPOCH_MS_MAX = 4_102_444_800_000
_INT64_MAX = 2**63 - 1
_PREVIEW = 60


def _show(value: object) -> str:
    """A value as it appears in a reason: repr, cut to a readable length."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    text = repr(value)
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."


def _valid_group_id(value: object) -> bool:
    """None, or an int (not a bool) that fits the API's non-negative Long."""
    if value is None:
        return True
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _INT64_MAX


def _field(name: str, column: str | None) -> str:
    return f"'{name}' (column {column!r})" if column is not None else f"'{name}'"


# --------------------------------------------------------------------------- the event type


@dataclass(frozen=True, slots=True)
class Event:
    """One custom event, validated on construction.

    ``time`` may be a string in the service format, epoch milliseconds, or a
    ``datetime`` (naive ones are read in the machine's local zone). ``source``
    is the input row it came from, if any; it is not sent.
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
                raise ValueError(f"{name!r} must be a non-empty string, got {_show(value)}")
        if not _valid_group_id(self.group_id):
            raise ValueError(
                f"'groupId' must be a non-negative integer, got {_show(self.group_id)}"
            )
        if self.time is not None:
            formatted, reason = _scalar_time(self.time, None)
            if reason is not None:
                raise ValueError(reason)
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


# --------------------------------------------------------------------------- conversion result


@dataclass
class Conversion:
    """Rows turned into encoded events.

    ``positions[i]`` is the input row position of ``payloads[i]`` (compact JSON
    bytes). ``rejected`` maps the positions of rows that could not become
    events to the reason. Positions are 0-based over the whole input, so
    chunks of one frame line up with its index.
    """

    total: int
    positions: np.ndarray[Any, np.dtype[np.int64]]
    payloads: list[bytes]
    rejected: dict[int, str]
    index: pd.Index | None = None

    def __len__(self) -> int:
        return len(self.payloads)

    def events(self) -> list[Event]:
        """The accepted events as :class:`Event` objects (``source`` = the row's index label)."""
        labels: Sequence[Hashable] = (
            list(self.index) if self.index is not None else range(self.total)
        )
        out = []
        for position, payload in zip(self.positions.tolist(), self.payloads, strict=True):
            raw = orjson.loads(payload)
            out.append(
                Event(
                    raw["name"],
                    raw["content"],
                    raw.get("groupId"),
                    raw.get("time"),
                    source=labels[position],
                )
            )
        return out


# --------------------------------------------------------------------------- the mapping


@dataclass(frozen=True)
class EventMapping:
    """How a frame's columns become event fields; each field is a constant or a column.

    ``name`` defaults to a column called ``name``, ``content`` to a column
    called ``content``, when the frame has one; without a ``content`` column or
    template, the content is the whole row as compact JSON.
    """

    name: str | None = None
    name_col: str | None = None
    content_col: str | None = None
    content_template: str | None = None
    group_id: int | None = None
    group_id_col: str | None = None
    time_col: str | None = None
    tz: str | tzinfo | None = None

    def __post_init__(self) -> None:
        pairs = (
            ("name", "name_col", self.name, self.name_col),
            ("content_col", "content_template", self.content_col, self.content_template),
            ("group_id", "group_id_col", self.group_id, self.group_id_col),
        )
        for first, second, a, b in pairs:
            if a is not None and b is not None:
                raise MappingError(f"give {first} or {second}, not both")
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise MappingError(f"name must be a non-empty string, got {_show(self.name)}")
        if not _valid_group_id(self.group_id):
            raise MappingError(
                f"group_id must be a non-negative integer, got {_show(self.group_id)}"
            )
        if self.content_template is not None:
            template_fields(self.content_template)  # raises on a malformed template
        if self.tz is not None:
            resolve_tz(self.tz)

    def resolved(self, columns: Sequence[Hashable]) -> EventMapping:
        """Check the mapping against a frame's columns; fill the ``name`` column default."""
        available = [str(c) for c in columns]
        name_col = self.name_col
        if self.name is None and name_col is None:
            if "name" not in available:
                raise MappingError(
                    "events need a name: give name='...' (one name for every row) or "
                    f"name_col='<column>'; columns: {', '.join(available) or '(none)'}"
                )
            name_col = "name"
        wanted = {
            "name_col": name_col,
            "content_col": self.content_col,
            "group_id_col": self.group_id_col,
            "time_col": self.time_col,
        }
        for option, column in wanted.items():
            if column is not None and column not in available:
                raise MappingError(
                    f"{option}={column!r}: no such column; columns: {', '.join(available)}"
                )
        if self.content_template is not None:
            missing = [f for f in template_fields(self.content_template) if f not in available]
            if missing:
                raise MappingError(
                    f"content_template refers to {', '.join(map(repr, missing))}: no such "
                    f"column; columns: {', '.join(available)}"
                )
        content_col = self.content_col
        if content_col is None and self.content_template is None and "content" in available:
            content_col = "content"
        if name_col == self.name_col and content_col == self.content_col:
            return self
        return EventMapping(
            name=self.name,
            name_col=name_col,
            content_col=content_col,
            content_template=self.content_template,
            group_id=self.group_id,
            group_id_col=self.group_id_col,
            time_col=self.time_col,
            tz=self.tz,
        )


def template_fields(template: str) -> list[str]:
    """The column names a ``str.format`` template refers to (``{col}``, ``{col!r:>8}``)."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise MappingError(f"content_template is not a valid format string: {exc}") from None
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        head = re.split(r"[.\[]", field_name, maxsplit=1)[0]
        if head == "" or head.isdigit():
            raise MappingError(
                f"content_template fields must name columns, e.g. '{{host}}'; got '{{{field_name}}}'"
            )
        if head not in names:
            names.append(head)
    return names


def resolve_tz(tz: str | tzinfo | None) -> tzinfo:
    """A ``tzinfo`` for a zone name, or the machine's local zone for None."""
    from dateutil import tz as dateutil_tz

    if tz is None:
        return dateutil_tz.tzlocal()
    if isinstance(tz, tzinfo):
        return tz
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(tz)
    except (KeyError, ValueError, ModuleNotFoundError):
        found = dateutil_tz.gettz(tz)
        if found is None:
            raise MappingError(
                f"tz={tz!r}: unknown time zone; use an IANA name such as 'Asia/Shanghai' or 'UTC'"
            ) from None
        return found


# --------------------------------------------------------------------------- public entry points


def events_from_frame(
    df: pd.DataFrame,
    *,
    name: str | None = None,
    name_col: str | None = None,
    content_col: str | None = None,
    content_template: str | None = None,
    group_id: int | None = None,
    group_id_col: str | None = None,
    time_col: str | None = None,
    tz: str | tzinfo | None = None,
) -> Conversion:
    """Turn every row of ``df`` into an encoded event, or a rejection with a reason.

    Each field comes from a constant or a column: ``name``/``name_col``,
    ``content_col``/``content_template`` (a ``str.format`` template over the
    row, e.g. ``"{host}: {message}"``; default: a ``content`` column if there
    is one, else the whole row as compact JSON), ``group_id``/``group_id_col``,
    ``time_col`` with ``tz`` for naive times.
    """
    mapping = EventMapping(
        name=name,
        name_col=name_col,
        content_col=content_col,
        content_template=content_template,
        group_id=group_id,
        group_id_col=group_id_col,
        time_col=time_col,
        tz=tz,
    )
    conversion = convert_chunk(df, mapping.resolved(list(df.columns)), offset=0)
    conversion.index = df.index
    return conversion


def iter_conversions(
    df: pd.DataFrame, mapping: EventMapping, *, chunk_rows: int = 10_000
) -> Iterator[Conversion]:
    """Convert ``df`` a chunk of rows at a time, so memory stays flat for large frames."""
    resolved = mapping.resolved(list(df.columns))
    for start in range(0, len(df), chunk_rows):
        yield convert_chunk(df.iloc[start : start + chunk_rows], resolved, offset=start)


def events_from_records(records: Iterable[Any]) -> Conversion:
    """Events from API-shaped dicts (``name``, ``content``, ``groupId``, ``time``) or Events.

    Unknown keys and bad values reject that record with a reason; nothing raises.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    pre_rejected: dict[int, str] = {}
    known = {"name", "content", "groupId", "group_id", "time"}
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
            pre_rejected[position] = (
                f"an event must be an object with 'name' and 'content', got {_show(record)}"
            )
            rows.append({})
            continue
        unknown = sorted(str(k) for k in record if k not in known)
        if unknown:
            pre_rejected[position] = (
                f"unknown field(s) {', '.join(map(repr, unknown))}; "
                "an event has 'name', 'content', 'groupId', 'time'"
            )
        for key in ("name", "content"):
            value = record.get(key)
            if value is not None and not isinstance(value, str):
                pre_rejected.setdefault(position, f"'{key}' must be a string, got {_show(value)}")
        group = record.get("groupId", record.get("group_id"))
        rows.append(
            {
                "name": record.get("name"),
                "content": record.get("content"),
                "groupId": group,
                "time": record.get("time"),
            }
        )
    frame = pd.DataFrame(rows, columns=["name", "content", "groupId", "time"], dtype=object)
    mapping = EventMapping(
        name_col="name", content_col="content", group_id_col="groupId", time_col="time"
    )
    conversion = convert_chunk(frame, mapping, offset=0, label_columns=False)
    if pre_rejected:
        keep = [i for i, p in enumerate(conversion.positions.tolist()) if p not in pre_rejected]
        conversion.positions = conversion.positions[keep]
        conversion.payloads = [conversion.payloads[i] for i in keep]
        conversion.rejected.update(pre_rejected)  # the record's shape is the first problem
    return conversion


# --------------------------------------------------------------------------- the chunk converter


class _Rejections:
    """First reason per row position wins (fields are checked name, content, groupId, time)."""

    __slots__ = ("reasons",)

    def __init__(self) -> None:
        self.reasons: dict[int, str] = {}

    def add(self, position: int, reason: str) -> None:
        self.reasons.setdefault(position, reason)


def convert_chunk(
    df: pd.DataFrame, mapping: EventMapping, *, offset: int, label_columns: bool = True
) -> Conversion:
    """Convert one chunk of rows; ``mapping`` must already be :meth:`EventMapping.resolved`.

    ``label_columns`` adds the source column to reasons (off for API-shaped records).
    """
    n = len(df)
    rejections = _Rejections()

    def col_label(column: str | None) -> str | None:
        return column if label_columns else None

    names: Sequence[str | None]
    if mapping.name_col is not None:
        names = _text_column(df[mapping.name_col], "name", col_label(mapping.name_col), rejections)
    else:
        assert mapping.name is not None
        names = _Constant(mapping.name, n)

    if mapping.content_col is not None:
        contents = _text_column(
            df[mapping.content_col], "content", col_label(mapping.content_col), rejections
        )
    elif mapping.content_template is not None:
        contents = _template_column(df, mapping.content_template, rejections)
    else:
        contents = _row_json_column(df, rejections)

    groups: Sequence[int | None]
    if mapping.group_id_col is not None:
        groups = _group_column(
            df[mapping.group_id_col], col_label(mapping.group_id_col), rejections
        )
    else:
        groups = _Constant(mapping.group_id, n)

    times: Sequence[bytes | None]
    if mapping.time_col is not None:
        times = _time_column(
            df[mapping.time_col], resolve_tz(mapping.tz), col_label(mapping.time_col), rejections
        )
    else:
        times = _Constant(None, n)

    rejected = rejections.reasons
    encoded = _encode_fast(names, contents, groups, times) if not rejected else None
    if encoded is not None:
        positions = np.arange(n, dtype=np.int64)
        payloads = encoded
    else:
        kept, payloads = _encode_rows(names, contents, groups, times, rejected)
        positions = np.asarray(kept, dtype=np.int64)
    return Conversion(
        total=n,
        positions=positions + offset,
        payloads=payloads,
        rejected={p + offset: reason for p, reason in rejected.items()},
    )


def _encode_fast(
    names: Sequence[str | None],
    contents: Sequence[str | None],
    groups: Sequence[int | None],
    times: Sequence[bytes | None],
) -> list[bytes] | None:
    """Encode a chunk where every row is valid, with no Python code per row; None if it cannot.

    The chunk gets one ``bytes`` template: constant fields are written into it once, the
    others are ``%`` placeholders filled from the columns by C code (``map`` over ``zip``).
    Strings are escaped by ``orjson.dumps``; times are the ASCII digits this module
    validated or formatted, so they need no escaping. Fields come in the order
    :func:`_encode_rows` writes them, so both paths give the same bytes.
    """
    with_group = not (isinstance(groups, _Constant) and groups.value is None)
    with_time = not (isinstance(times, _Constant) and times.value is None)
    if (with_group and None in groups) or (with_time and None in times):
        return None  # some rows lack an optional field: the row-by-row path handles them
    dumps = orjson.dumps

    def constant(value: bytes) -> bytes:
        return value.replace(b"%", b"%%")

    # Each column is a lazy iterable: an orjson result keeps a ~4 KB buffer behind it, so
    # holding a chunk of them costs ~40 MB; consumed one row at a time, they cost nothing.
    parts = [b'{"content":%b']
    columns: list[Iterable[Any]] = [map(dumps, contents)]
    blanks: list[object] = [b'""']
    if with_group:
        if isinstance(groups, _Constant):
            parts.append(b',"groupId":%d' % groups.value)
        else:
            parts.append(b',"groupId":%d')
            columns.append(groups)
            blanks.append(0)
    if isinstance(names, _Constant):
        parts.append(b',"name":' + constant(dumps(names.value)))
    else:
        parts.append(b',"name":%b')
        columns.append(map(dumps, names))
        blanks.append(b'""')
    if with_time:
        if isinstance(times, _Constant):
            parts.append(b',"time":"' + constant(times.value) + b'"')
        else:
            parts.append(b',"time":"%b"')
            columns.append(times)
            blanks.append(b"")
    parts.append(b"}")
    template = b"".join(parts)
    # orjson.JSONEncodeError is TypeError, so a template that did not match its columns
    # would pass below for an encoding error: one fill with blanks here fails loudly.
    template % tuple(blanks)
    try:
        return list(map(template.__mod__, zip(*columns, strict=True)))
    except orjson.JSONEncodeError:
        return None  # e.g. a lone surrogate: the row-by-row path rejects just that row


def _encode_rows(
    names: Sequence[str | None],
    contents: Sequence[str | None],
    groups: Sequence[int | None],
    times: Sequence[bytes | None],
    rejected: dict[int, str],
) -> tuple[list[int], list[bytes]]:
    """Encode row by row, skipping rejected rows and rejecting rows that cannot be encoded."""
    positions: list[int] = []
    payloads: list[bytes] = []
    dumps = orjson.dumps
    for i, (event_name, content, group, when) in enumerate(
        zip(names, contents, groups, times, strict=True)
    ):
        if i in rejected:
            continue
        event: dict[str, Any] = {"content": content}
        if group is not None:
            event["groupId"] = group
        event["name"] = event_name
        if when is not None:
            event["time"] = when.decode("utf-8")
        try:
            # orjson's result keeps a ~4 KB buffer behind each short bytes object; a copy
            # to an exact-size object lets that buffer be reused at once.
            payloads.append(bytes(memoryview(dumps(event))))
        except orjson.JSONEncodeError:
            rejected[i] = _unencodable_reason(event)
            continue
        positions.append(i)
    return positions, payloads


class _Constant(Sequence[Any]):
    """A read-only sequence of one value repeated ``n`` times (no list of n items built)."""

    __slots__ = ("n", "value")

    def __init__(self, value: Any, n: int) -> None:
        self.value = value
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        return self.value

    def __iter__(self) -> Iterator[Any]:
        return repeat(self.value, self.n)

    def __contains__(self, value: object) -> bool:
        return self.n > 0 and self.value == value


def _unencodable_reason(event: Mapping[str, Any]) -> str:
    for key in ("name", "content"):
        value = event.get(key)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return (
                    f"'{key}' is not valid Unicode: {exc.reason} at character {exc.start} "
                    f"({value[exc.start]!r}); such text cannot be sent as UTF-8 JSON"
                )
    return "the event cannot be encoded as JSON"


def _object_values(series: pd.Series) -> list[Any]:
    """The column as Python objects, every missing value (NaN, NaT, NA) as None."""
    values: list[Any] = series.to_numpy(dtype=object, na_value=None).tolist()  # type: ignore[call-overload]
    return values


def _all_strings(values: list[Any]) -> bool:
    """True when every value is a ``str`` (checked in C, not row by row in Python)."""
    import pandas as pd

    if not len(values):
        return True
    return bool(pd.api.types.infer_dtype(values, skipna=False) == "string")


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        import pandas as pd

        missing = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return bool(missing) if isinstance(missing, (bool, np.bool_)) else False


def _text_column(
    series: pd.Series, field: str, column: str | None, rejections: _Rejections
) -> list[str | None]:
    """A column as event text: missing and empty values are rejected, non-strings made text."""
    values: list[Any] = _object_values(series)
    label = _field(field, column)
    if _all_strings(values):
        # The common case, without a Python-level branch per row. Non-ASCII strings
        # get a private copy: encoding one caches its UTF-8 form on the object for as
        # long as it lives, and the copy keeps that cache off the caller's frame, so
        # memory stays flat however many rows the frame has.
        values = [v if v.isascii() else "".join((v, "")) for v in values]
        for i in np.flatnonzero(np.asarray(values, dtype=object) == "").tolist():
            rejections.add(i, f"{label} must be a non-empty string, got ''")
        return values
    for i, value in enumerate(values):
        if type(value) is str:
            if not value:
                rejections.add(i, f"{label} must be a non-empty string, got ''")
            elif not value.isascii():
                values[i] = "".join((value, ""))  # see above
            continue
        if value is None or _is_missing(value):
            rejections.add(i, f"{label} is required, got {'None' if value is None else 'NaN'}")
            values[i] = None
        else:
            values[i] = str(value)
    return values


def _template_column(df: pd.DataFrame, template: str, rejections: _Rejections) -> list[str | None]:
    fields = template_fields(template)
    columns = [df[f].to_numpy(dtype=object).tolist() for f in fields]
    out: list[str | None] = []
    for i, row in enumerate(zip(*columns, strict=True) if columns else repeat((), len(df))):
        try:
            text = template.format_map(dict(zip(fields, row, strict=True)))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            rejections.add(
                i, f"'content' template {template!r} failed: {type(exc).__name__}: {exc}"
            )
            out.append(None)
            continue
        if not text:
            rejections.add(i, f"'content' template {template!r} gave an empty string")
        out.append(text)
    return out


def _row_json_column(df: pd.DataFrame, rejections: _Rejections) -> list[str | None]:
    """Each row as compact JSON (the default content), via pandas' C encoder when it can."""
    if df.columns.is_unique and len(df):
        try:
            text = df.to_json(
                orient="records",
                lines=True,
                force_ascii=False,
                date_format="iso",
                date_unit="ms",
                double_precision=15,
                default_handler=str,
            )
        except (UnicodeError, ValueError, TypeError, OverflowError):
            pass
        else:
            lines: list[str | None] = list(text.rstrip("\n").split("\n"))
            if len(lines) == len(df):
                return lines
    # Slow path, row by row: duplicate column names, lone surrogates, exotic objects.
    keys = [str(c) for c in df.columns]
    columns = [df.iloc[:, j].to_numpy(dtype=object).tolist() for j in range(df.shape[1])]
    out: list[str | None] = []
    for i, row in enumerate(zip(*columns, strict=True) if columns else repeat((), len(df))):
        record = {}
        for key, value in zip(keys, row, strict=True):
            record[key] = None if _is_missing(value) else value
        try:
            out.append(orjson.dumps(record, default=str, option=orjson.OPT_NON_STR_KEYS).decode())
        except (orjson.JSONEncodeError, TypeError) as exc:
            rejections.add(i, f"'content' (the row as JSON) cannot be encoded: {exc}")
            out.append(None)
    return out


def _group_column(
    series: pd.Series, column: str | None, rejections: _Rejections
) -> list[int | None]:
    """A column of group ids: integers >= 0; missing means no ``groupId``; else rejected."""
    label = _field("groupId", column)
    kind = series.dtype.kind
    if kind in "iu":
        array = series.to_numpy()
        values: list[Any] = array.tolist()
        for i in np.flatnonzero(array < 0).tolist():
            rejections.add(i, f"{label} must be a non-negative integer, got {values[i]}")
        return values
    values = _object_values(series)
    out: list[int | None] = []
    for i, value in enumerate(values):
        group, reason = _scalar_group(value, label)
        if reason is not None:
            rejections.add(i, reason)
        out.append(group)
    return out


def _scalar_group(value: Any, label: str) -> tuple[int | None, str | None]:
    if value is None or _is_missing(value):
        return None, None
    if isinstance(value, (bool, np.bool_)):
        return None, f"{label} must be an integer, got {value!r}"
    number: Any = value
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"\d{1,19}", text):
            return None, f"{label} must be an integer, got {_show(value)}"
        number = int(text)
    elif isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or value != math.floor(value):
            return None, f"{label} must be an integer, got {_show(float(value))}"
        number = int(value)
    elif isinstance(value, (int, np.integer)):
        number = int(value)
    else:
        return None, f"{label} must be an integer, got {_show(value)}"
    if not 0 <= number <= _INT64_MAX:
        return None, f"{label} must be a non-negative 64-bit integer, got {number}"
    return number, None


# --------------------------------------------------------------------------- times


def format_time(value: datetime, tz: str | tzinfo | None = None) -> str:
    """One datetime in the service format; a naive value is read in ``tz`` (default local)."""
    formatted, reason = _scalar_time(value, resolve_tz(tz) if value.tzinfo is None else None)
    if formatted is None:
        raise ValueError(reason)
    return formatted


def _digit_table(width: int) -> np.ndarray[Any, Any]:
    """Entry ``v`` is the ASCII digits of ``v``, zero-padded to ``width`` (dtype ``S<width>``).

    Built with array arithmetic (0.4 ms at import for all three tables; 3.3 ms by
    formatting each number in Python).
    """
    values = np.arange(10**width)
    digits = np.stack(
        [(values // 10 ** (width - 1 - k)) % 10 + ord("0") for k in range(width)], axis=1
    ).astype(np.uint8)
    return digits.view(f"S{width}").ravel()


_DIGITS = {width: _digit_table(width) for width in (2, 3, 4)}

# One formatted time, ``yyyyMMdd'T'HHmmss.SSS+HHMM``, as a record of fixed-width fields
# laid over its 24 bytes: each field is filled by one gather from a 1-D digit table
# (a gather into a 2-D table is ~10x slower).
_STAMP = np.dtype(
    {
        "names": ["Y", "M", "D", "T", "h", "m", "s", "dot", "ms", "sign", "oh", "om"],
        "formats": ["S4", "S2", "S2", "S1", "S2", "S2", "S2", "S1", "S3", "S1", "S2", "S2"],
        "offsets": [0, 4, 6, 8, 9, 11, 13, 15, 16, 19, 20, 22],
        "itemsize": 24,
    }
)


def _format_wall(wall_ms: np.ndarray[Any, Any], offset_min: np.ndarray[Any, Any]) -> list[bytes]:
    """Format wall-clock epoch milliseconds plus UTC offsets, with integer arithmetic only.

    Returns ASCII bytes (what the encoder splices into the event JSON).
    """
    n = len(wall_ms)
    if n == 0:
        return []
    wall_ms = wall_ms.astype(np.int64)
    days, ms_of_day = np.divmod(wall_ms, 86_400_000)
    # Howard Hinnant's civil_from_days, vectorised.
    z = days + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    hour, rest = np.divmod(ms_of_day, 3_600_000)
    minute, rest = np.divmod(rest, 60_000)
    second, milli = np.divmod(rest, 1000)
    offset = offset_min.astype(np.int64)
    off_h, off_m = np.divmod(np.abs(offset), 60)

    two, three, four = _DIGITS[2], _DIGITS[3], _DIGITS[4]
    out = np.empty(n, dtype=_STAMP)
    out["Y"] = four[year]
    out["M"] = two[month]
    out["D"] = two[day]
    out["T"] = b"T"
    out["h"] = two[hour]
    out["m"] = two[minute]
    out["s"] = two[second]
    out["dot"] = b"."
    out["ms"] = three[milli]
    out["sign"] = np.where(offset < 0, b"-", b"+")
    out["oh"] = two[off_h]
    out["om"] = two[off_m]
    stamps: list[bytes] = out.view("S24").tolist()
    return stamps


def _format_wall_text(wall_ms: np.ndarray[Any, Any], offset_min: np.ndarray[Any, Any]) -> list[str]:
    """:func:`_format_wall` as text."""
    return [stamp.decode("ascii") for stamp in _format_wall(wall_ms, offset_min)]


def _time_column(
    series: pd.Series, tz: tzinfo, column: str | None, rejections: _Rejections
) -> list[bytes | None]:
    """A column of times in the service format, as ASCII bytes (None where missing)."""
    import pandas as pd

    label = _field("time", column)
    n = len(series)
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or dtype.kind == "M":
        aware = series
        if not isinstance(dtype, pd.DatetimeTZDtype):
            aware = series.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
            bad = aware.isna().to_numpy() & series.notna().to_numpy()
            for i in np.flatnonzero(bad).tolist():
                rejections.add(
                    i,
                    f"{label}: {series.iloc[i]} does not exist or is ambiguous in time zone "
                    f"{_tz_name(tz)} (a daylight-saving change); give tz-aware times",
                )
        missing = aware.isna().to_numpy()
        utc_ns = aware.dt.as_unit("ns").array.asi8
        wall_ns = aware.dt.tz_localize(None).dt.as_unit("ns").array.asi8
        utc_ms = np.floor_divide(utc_ns, 1_000_000)
        wall_ms = np.floor_divide(wall_ns, 1_000_000)
        offsets = np.floor_divide(wall_ms - utc_ms, 60_000)
        if missing.any():  # NaT: format a harmless 0 in its place, then say None
            wall_ms[missing] = 0
            offsets[missing] = 0
        formatted: list[bytes | None] = list(_format_wall(wall_ms, offsets))
        for i in np.flatnonzero(missing).tolist():
            formatted[i] = None
        return formatted
    if dtype.kind in "iu":
        array = series.to_numpy().astype(np.int64)
        out: list[bytes | None] = [b"%d" % v for v in array.tolist()]
        bad = (array < _EPOCH_MS_MIN) | (array >= _EPOCH_MS_MAX)
        for i in np.flatnonzero(bad).tolist():
            rejections.add(i, _epoch_reason(label, int(array[i])))
        return out
    values = _object_values(series)
    out = [None] * n
    strings = [i for i, v in enumerate(values) if type(v) is str]
    if strings:
        texts = [values[i].strip() for i in strings]
        for i, (value, reason) in zip(strings, _string_times(texts, tz, label), strict=True):
            out[i] = None if value is None else value.encode("utf-8")
            if reason is not None:
                rejections.add(i, reason)
    if len(strings) < n:
        taken = set(strings)
        for i in range(n):
            if i in taken:
                continue
            value, reason = _scalar_time(values[i], tz, label)
            if reason is not None:
                rejections.add(i, reason)
            out[i] = None if value is None else value.encode("utf-8")
    return out


_OFFSET_RE = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def _string_times(texts: list[str], tz: tzinfo, label: str) -> list[tuple[str | None, str | None]]:
    """Time strings, vectorised: the service format, epoch milliseconds, or ISO 8601."""
    import pandas as pd

    strings = pd.Series(texts, dtype=object)
    result: list[tuple[str | None, str | None]] = [(None, None)] * len(texts)
    service = strings.str.fullmatch(TIME_FORMAT_RE.pattern).to_numpy(dtype=bool)
    digits = strings.str.fullmatch(_DIGITS_RE.pattern).to_numpy(dtype=bool)
    iso = ~(service | digits)

    where = np.flatnonzero(service)
    if len(where):
        real = pd.to_datetime(
            strings.iloc[where], format="%Y%m%dT%H%M%S.%f%z", utc=True, errors="coerce"
        ).notna()
        for i, ok in zip(where.tolist(), real.tolist(), strict=True):
            result[i] = (
                (texts[i], None)
                if ok
                else (None, f"{label} is not a real date-time: {_show(texts[i])}")
            )
    for i in np.flatnonzero(digits).tolist():
        result[i] = _scalar_time(int(texts[i]), tz, label)

    where = np.flatnonzero(iso)
    if len(where):
        candidates = strings.iloc[where]
        offsets = candidates.str.extract(f"({_OFFSET_RE})", expand=False)
        aware = offsets.notna().to_numpy()
        formatted: dict[int, str | None] = {}
        if aware.any():
            chosen = candidates[aware]
            utc = pd.to_datetime(chosen, format="ISO8601", utc=True, errors="coerce")
            minutes = offsets[aware].map(_offset_minutes).to_numpy(dtype=np.int64)
            utc_ms = np.floor_divide(utc.dt.as_unit("ns").array.asi8, 1_000_000)
            unread = utc.isna().to_numpy()
            utc_ms[unread] = 0  # NaT: format a harmless 0 in its place, then say None
            wall = _format_wall_text(utc_ms + minutes * 60_000, minutes)
            for k, (position, missing) in enumerate(
                zip(where[aware].tolist(), unread.tolist(), strict=True)
            ):
                formatted[position] = None if missing else wall[k]
        if (~aware).any():
            naive = pd.to_datetime(candidates[~aware], format="ISO8601", errors="coerce")
            local = _Rejections()
            values = _time_column(naive.reset_index(drop=True), tz, None, local)
            for k, position in enumerate(where[~aware].tolist()):
                if k in local.reasons:
                    reason = local.reasons[k].replace("'time'", label, 1)
                    result[position] = (None, reason)
                else:
                    stamp = values[k]
                    formatted[position] = None if stamp is None else stamp.decode("ascii")
        for position, value in formatted.items():
            if value is None:
                result[position] = (None, _unparseable(label, texts[position]))
            else:
                result[position] = (value, None)
    return result


def _offset_minutes(text: str) -> int:
    """``Z``, ``+08``, ``+0800`` or ``+08:00`` as minutes east of UTC."""
    if text == "Z":
        return 0
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
    return -minutes if text[0] == "-" else minutes


def _unparseable(label: str, value: object) -> str:
    return (
        f"{label} must be yyyyMMdd'T'HHmmss.SSSZ (e.g. 20171023T144439.948+0800), "
        f"epoch milliseconds or ISO 8601, got {_show(value)}"
    )


def _format_stamp(stamp: Any) -> str:
    """One tz-aware ``pd.Timestamp`` in the service format (as the vectorised path does)."""
    utc_ms = stamp.as_unit("ns").value // 1_000_000
    wall_ms = stamp.tz_localize(None).as_unit("ns").value // 1_000_000
    return _format_wall_text(np.array([wall_ms]), np.array([(wall_ms - utc_ms) // 60_000]))[0]


def _tz_name(tz: tzinfo) -> str:
    return getattr(tz, "key", None) or str(tz)


def _epoch_reason(label: str, value: int) -> str:
    hint = ""
    if _EPOCH_MS_MIN // 1000 <= value < _EPOCH_MS_MAX // 1000:
        hint = " (this looks like epoch seconds: multiply by 1000)"
    return f"{label} as epoch milliseconds must lie between 2000 and 2100, got {value}{hint}"


def _scalar_time(
    value: Any, tz: tzinfo | None, label: str = "'time'"
) -> tuple[str | None, str | None]:
    """One time value -> (service string, None) or (None, reason). Missing -> (None, None)."""
    import pandas as pd

    if value is None or _is_missing(value):
        return None, None
    if isinstance(value, (bool, np.bool_)):
        return None, f"{label} must be a date-time, got {value!r}"
    if isinstance(value, (int, np.integer)):
        number = int(value)
        if not _EPOCH_MS_MIN <= number < _EPOCH_MS_MAX:
            return None, _epoch_reason(label, number)
        return str(number), None
    if isinstance(value, (float, np.floating)):
        if math.isfinite(value) and value == math.floor(value):
            return _scalar_time(int(value), tz, label)
        return None, f"{label} must be a date-time or epoch milliseconds, got {_show(value)}"
    if isinstance(value, str):
        text = value.strip()
        match = TIME_FORMAT_RE.match(text)
        if match:
            try:
                datetime.strptime(text, "%Y%m%dT%H%M%S.%f%z")
            except ValueError:
                return None, f"{label} is not a real date-time: {_show(value)}"
            return text, None
        if _DIGITS_RE.match(text):
            return _scalar_time(int(text), tz, label)
        try:
            parsed = pd.Timestamp(text)
        except (ValueError, TypeError, OverflowError):
            parsed = None
        if parsed is None or parsed is pd.NaT:
            return None, _unparseable(label, value)
        value = parsed
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, datetime):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is None:
            zone = tz if tz is not None else resolve_tz(None)
            try:
                stamp = stamp.tz_localize(zone, ambiguous="raise", nonexistent="raise")
            except (ValueError, OverflowError) as exc:
                return None, (
                    f"{label}: {value} does not exist or is ambiguous in time zone "
                    f"{_tz_name(zone)} ({type(exc).__name__}); give tz-aware times"
                )
        return _format_stamp(stamp), None
    return None, f"{label} must be a date-time, got {_show(value)}"
