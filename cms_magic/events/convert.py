"""Rows -> encoded events: the chunk converter behind every send.

:func:`events_from_frame` and :func:`iter_conversions` turn a frame's rows into
compact JSON events, a column at a time (no ``iterrows``), following an
:class:`~cms_magic.events.mapping.EventMapping`; :func:`events_from_records`
does the same for API-shaped records (read by :mod:`cms_magic.events.records`).
A row that cannot become an event is not an exception: it is *rejected* with a
reason that names the field, the rule and the value, so every input row is
accounted for. A mapping that cannot work for any row (a column that does not
exist) raises :class:`~cms_magic.errors.MappingError` at once, with fields.

Each field is read through :func:`_read`, a net under the column readers: a cell
that makes a reader raise (an object whose ``str`` raises, a dtype pandas cannot
convert) has the chunk read again one row at a time, and only that row is
rejected, with the error. So converting a chunk never raises for a cell, and a
send never stops for one; only a problem of the whole frame (a mapped column that
does not exist, or whose label names several columns) raises, before anything is
sent.

A chunk where every row is valid is encoded by one ``bytes`` template filled by
C code (:func:`_encode_fast`); a chunk with a rejected row goes row by row
(:func:`_encode_rows`). Both write the same bytes.

Where the pieces live: the mapping in :mod:`~cms_magic.events.mapping`, the column
readers in :mod:`~cms_magic.events.fields` and :mod:`~cms_magic.events.times`,
:class:`Event` in :mod:`~cms_magic.events.records`.
``EventMapping``, ``Event`` and ``format_time`` are re-exported here for callers
that import them from this module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from itertools import repeat
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import orjson

from cms_magic.errors import ConfigError, InputError, MappingError
from cms_magic.events._values import Rejections, field_label, show
from cms_magic.events.fields import group_column, row_json_column, template_column, text_column
from cms_magic.events.mapping import EventMapping, resolve_tz
from cms_magic.events.records import Event, records_frame
from cms_magic.events.times import format_time, time_column

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Conversion",
    "Event",
    "EventMapping",
    "convert_chunk",
    "events_from_frame",
    "events_from_records",
    "format_time",
    "iter_conversions",
]


log = logging.getLogger("cms_magic")
_T = TypeVar("_T")

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


# --------------------------------------------------------------------------- public entry points


def events_from_frame(
    df: pd.DataFrame,
    *,
    name: str | None = None,
    name_col: Hashable | None = None,
    content_col: Hashable | None = None,
    content_template: str | None = None,
    group_id: int | None = None,
    group_id_col: Hashable | None = None,
    time_col: Hashable | None = None,
    tz: str | tzinfo | None = None,
) -> Conversion:
    """Turn every row of ``df`` into an encoded event, or a rejection with a reason.

    Each field comes from a constant or a column: ``name``/``name_col``,
    ``content_col``/``content_template`` (a ``str.format`` template over the
    row, e.g. ``"{host}: {message}"``; default: a ``content`` column if there
    is one, else the whole row as compact JSON), ``group_id``/``group_id_col``,
    ``time_col`` with ``tz`` for naive times. Columns are named by their label.
    """
    _check_frame(df)
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
    _check_frame(df)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ConfigError(
            "must be a whole number of rows >= 1", option="chunk_rows", value=chunk_rows
        )
    resolved = mapping.resolved(list(df.columns))
    return _chunks(df, resolved, chunk_rows)


def _chunks(df: pd.DataFrame, resolved: EventMapping, chunk_rows: int) -> Iterator[Conversion]:
    for start in range(0, len(df), chunk_rows):
        yield convert_chunk(df.iloc[start : start + chunk_rows], resolved, offset=start)


def events_from_records(records: Iterable[Any]) -> Conversion:
    """Events from API-shaped dicts (``name``, ``content``, ``groupId``, ``time``) or Events.

    Unknown keys and bad values reject that record with a reason; only data that is
    not a list of records at all raises (:class:`~cms_magic.errors.InputError`).
    """
    frame, pre_rejected = records_frame(records)
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


def _check_frame(df: object) -> None:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InputError(
            f"must be a pandas DataFrame, got {type(df).__name__}", option="df", value=df
        )


# --------------------------------------------------------------------------- the chunk converter


def convert_chunk(
    df: pd.DataFrame, mapping: EventMapping, *, offset: int, label_columns: bool = True
) -> Conversion:
    """Convert one chunk of rows; ``mapping`` must already be :meth:`EventMapping.resolved`.

    ``label_columns`` adds the source column to reasons (off for API-shaped records).
    """
    n = len(df)
    rejections = Rejections()

    def col_label(column: Hashable | None) -> Hashable | None:
        return column if label_columns else None

    names: Sequence[str | None]
    if mapping.name_col is not None:
        name_col = mapping.name_col
        names = _read(
            lambda part, rej: text_column(part[name_col], "name", col_label(name_col), rej),
            df,
            rejections,
            field_label("name", col_label(name_col)),
            name_col,
        )
    else:
        assert mapping.name is not None
        names = _Constant(mapping.name, n)

    contents: Sequence[str | None]
    if mapping.content_col is not None:
        content_col = mapping.content_col
        contents = _read(
            lambda part, rej: text_column(
                part[content_col], "content", col_label(content_col), rej
            ),
            df,
            rejections,
            field_label("content", col_label(content_col)),
            content_col,
        )
    elif mapping.content_template is not None:
        template = mapping.content_template
        contents = _read(
            lambda part, rej: template_column(part, template, rej),
            df,
            rejections,
            "'content' (the template)",
            None,
        )
    else:
        row_tz = resolve_tz(mapping.tz)  # naive times in the row are read as the event's
        contents = _read(
            lambda part, rej: row_json_column(part, rej, row_tz),
            df,
            rejections,
            "'content' (the row as JSON)",
            None,
        )

    groups: Sequence[int | None]
    if mapping.group_id_col is not None:
        group_col = mapping.group_id_col
        groups = _read(
            lambda part, rej: group_column(part[group_col], col_label(group_col), rej),
            df,
            rejections,
            field_label("groupId", col_label(group_col)),
            group_col,
        )
    else:
        groups = _Constant(mapping.group_id, n)

    times: Sequence[bytes | None]
    if mapping.time_col is not None:
        time_col, zone = mapping.time_col, resolve_tz(mapping.tz)
        times = _read(
            lambda part, rej: time_column(part[time_col], zone, col_label(time_col), rej),
            df,
            rejections,
            field_label("time", col_label(time_col)),
            time_col,
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


def _read(
    reader: Callable[[pd.DataFrame, Rejections], list[_T]],
    df: pd.DataFrame,
    rejections: Rejections,
    label: str,
    column: Hashable | None,
) -> list[_T | None]:
    """One field of every row, by ``reader``; a cell that makes it raise rejects only its row.

    The column readers reject the values they know to be wrong; this is the net under
    them, for a value nobody foresaw (an object whose ``str`` or comparison raises, a
    dtype pandas cannot convert): the chunk is read again one row at a time, and a row
    whose reading still raises is rejected with the error, so a send never stops for a
    cell.
    """
    try:
        return list(reader(df, rejections))
    except MappingError:
        raise
    except Exception:
        log.debug("reading %s row by row after an error", label, exc_info=True)
    out: list[_T | None] = []
    for i in range(len(df)):
        row = df.iloc[i : i + 1]
        local = Rejections()
        try:
            (value,) = reader(row, local)
        except Exception as exc:
            rejections.add(i, f"{label} cannot be read from {_cell(row, column)}: {_error(exc)}")
            out.append(None)
            continue
        if 0 in local.reasons:
            rejections.add(i, local.reasons[0])
        out.append(value)
    return out


def _cell(row: pd.DataFrame, column: Hashable | None) -> str:
    if column is None:
        return "this row"
    try:
        return show(row[column].iloc[0])
    except Exception:
        return "this cell"


def _error(exc: Exception) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
