"""Reading a column as one event field: text (name, content), a template, the row as JSON,
group ids. Each reader returns one value per row and adds a reason for each row it
cannot use; :mod:`cms_magic.events.times` reads the ``time`` field the same way.

Values that are not text become text faithfully or not at all: a dict, a list or an
array is written as compact JSON; bytes are decoded as UTF-8 (bytes that are not
UTF-8 reject their row); a ``Decimal('sNaN')`` rejects its row; anything else is
its ``str``. The whole row as JSON (the default content) writes floats so that they
read back exactly (orjson's shortest round-trip text; NaN and infinities as null),
text as it is (no escaped slashes), and datetimes as ISO 8601 with the UTC offset of
the zone the event's time is read in (tz-aware values in their own zone, naive ones
in ``tz``), so the content's times read as the event's time does.

The common case (every value already a string, an integer dtype) is checked with
array operations, without Python code per row.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Hashable
from datetime import datetime, timezone, tzinfo
from itertools import repeat
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import orjson

from cms_magic.events._values import (
    JSON_OPTIONS,
    Rejections,
    bytes_text,
    field_label,
    integer_values,
    is_missing,
    is_signaling_nan,
    json_default,
    object_values,
    show,
    to_json,
)
from cms_magic.events.mapping import resolve_tz, template_columns
from cms_magic.protocol import GROUP_ID_MAX

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["group_column", "row_json_column", "template_column", "text_column"]


def _all_strings(values: list[Any]) -> bool:
    """True when every value is a ``str`` (checked in C, not row by row in Python)."""
    import pandas as pd

    if not len(values):
        return True
    try:
        return bool(pd.api.types.infer_dtype(values, skipna=False) == "string")
    except Exception:  # a value pandas cannot inspect: the row-by-row path judges it
        return False


def text_column(
    series: pd.Series, field: str, column: Hashable | None, rejections: Rejections
) -> list[str | None]:
    """A column as event text: missing and empty values are rejected, non-strings made text."""
    values: list[Any] = object_values(series)
    label = field_label(field, column)
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
        if value is None or is_missing(value):
            rejections.add(i, f"{label} is required, got {'None' if value is None else 'NaN'}")
            values[i] = None
            continue
        text, problem = as_text(value)
        if problem is not None:
            rejections.add(i, f"{label} {problem}")
        elif not text:
            rejections.add(i, f"{label} must be a non-empty string, got {show(value)}")
        values[i] = text
    return values


def as_text(value: Any) -> tuple[str | None, str | None]:
    """A value that is not a ``str`` as event text, or (None, why not)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes_text(value)
    if isinstance(value, (dict, list, tuple, np.ndarray)):
        try:
            return to_json(value).decode("utf-8"), None
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            why = exc.__cause__ or exc  # orjson wraps what json_default raised
            return None, f"cannot be written as JSON ({why}): {show(value)}"
    if is_signaling_nan(value):
        return None, f"must be text or a number, got {show(value)} (a signaling NaN)"
    return str(value), None


def template_column(df: pd.DataFrame, template: str, rejections: Rejections) -> list[str | None]:
    """The ``content`` of each row from a ``str.format`` template over its columns.

    Named fields (``{host}``) are filled with ``format_map``; fields of digits (``{0}``,
    for a frame whose labels are integers) as positional arguments.
    """
    pairs = template_columns(template, list(df.columns))
    columns = [df[label].to_numpy(dtype=object).tolist() for _, label in pairs]
    names = [name for name, _ in pairs]
    numbered = [int(name) for name in names if name.isdigit()]
    size = max(numbered) + 1 if numbered else 0

    def by_name(row: tuple[Any, ...]) -> str:
        return template.format_map(dict(zip(names, row, strict=True)))

    def by_position(row: tuple[Any, ...]) -> str:
        args: list[Any] = [None] * size
        kwargs: dict[str, Any] = {}
        for name, value in zip(names, row, strict=True):
            if name.isdigit():
                args[int(name)] = value
            else:
                kwargs[name] = value
        return template.format(*args, **kwargs)

    fill = by_position if numbered else by_name
    out: list[str | None] = []
    for i, row in enumerate(zip(*columns, strict=True) if columns else repeat((), len(df))):
        try:
            text = fill(row)
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


def row_json_column(
    df: pd.DataFrame, rejections: Rejections, tz: tzinfo | None = None
) -> list[str | None]:
    """Each row as compact JSON (the default content), a column of JSON values at a time.

    Keys are the column labels as text (the mapping has checked that they are unique).
    Floats are written by orjson, so they read back exactly; missing values as null;
    text as it is (no escaped slashes, no ``\\u`` escapes of non-ASCII text).
    Datetimes are ISO 8601 with milliseconds and the UTC offset of the zone the
    event's time is read in: a tz-aware value in its own zone, as it is
    (``2024-03-01T08:00:00.123+08:00``), a naive one in ``tz`` (default: this
    machine's local zone, as for the event's time). A naive value that does not exist
    or is ambiguous in ``tz`` (a daylight-saving change) is written without an offset,
    as it is, since no single offset is right.
    """
    n = len(df)
    zone = tz if tz is not None else resolve_tz(None)
    keys = [orjson.dumps(str(c)).replace(b"%", b"%%") for c in df.columns]
    columns = [
        _json_values(df.iloc[:, j], str(c), rejections, zone) for j, c in enumerate(df.columns)
    ]
    template = b"{" + b",".join(key + b":%b" for key in keys) + b"}"
    rows = zip(*columns, strict=True) if columns else repeat((), n)
    return list(map(bytes.decode, map(template.__mod__, rows)))  # UTF-8, in C


def _json_values(series: pd.Series, key: str, rejections: Rejections, tz: tzinfo) -> list[bytes]:
    """One column's values as JSON texts (``null`` where a value cannot be written; its row
    is rejected)."""
    dtype = series.dtype
    dumps = orjson.dumps
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
        if (dtype.kind == "f" and dtype.itemsize == 8) or dtype.kind in "iub":
            return list(map(dumps, series.to_numpy().tolist()))
        # float16/32: numpy scalars, written by their own shortest text
        return [dumps(v, option=orjson.OPT_SERIALIZE_NUMPY) for v in series.to_numpy()]
    datetimes = _datetimes(series)
    if datetimes is not None:
        return _json_times(datetimes, tz)
    values = object_values(series)
    if _all_strings(values):
        return list(map(dumps, values))  # text: no default, no options, no Python per row
    write = functools.partial(
        dumps, default=_row_default(tz), option=JSON_OPTIONS | orjson.OPT_PASSTHROUGH_DATETIME
    )
    try:
        return list(map(write, values))
    except TypeError:
        pass  # some value cannot be written: find it, row by row
    out: list[bytes] = []
    for i, value in enumerate(values):
        try:
            out.append(write(value))
        except TypeError as exc:
            why = exc.__cause__ or exc  # orjson wraps what json_default raised
            rejections.add(i, f"'content' (the row as JSON) cannot write column {key!r}: {why}")
            out.append(b"null")
    return out


def _datetimes(series: pd.Series) -> pd.Series | None:
    """A column of datetimes as numpy-backed ``datetime64[unit]`` (naive) or tz-aware; None
    for other columns (pyarrow dates stay dates: they are written as ``2024-03-01``)."""
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        return series
    if isinstance(dtype, pd.ArrowDtype):
        arrow_type = dtype.pyarrow_dtype
        unit, zone = getattr(arrow_type, "unit", None), getattr(arrow_type, "tz", None)
        if dtype.kind != "M" or unit is None:
            return None
        if zone is not None:
            return series.astype(pd.DatetimeTZDtype(unit, zone))
        naive: pd.Series = series.astype(np.dtype(f"M8[{unit}]"))
        return naive
    return None


def _row_default(tz: tzinfo) -> Callable[[Any], Any]:
    """:func:`json_default` for the row as JSON: a naive ``datetime`` is written in ``tz``."""

    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return _local_iso(value, tz)
        return json_default(value)

    return default


def _local_iso(value: datetime, tz: tzinfo) -> str:
    """A datetime as ISO 8601 with its offset; a naive one read in ``tz`` (as it is where no
    single offset is right)."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value.isoformat()
    plain = value.replace(tzinfo=None)
    try:
        first = plain.replace(tzinfo=tz, fold=0)
        second = plain.replace(tzinfo=tz, fold=1)
        offset = first.utcoffset()
        round_trip = first.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None)
    except (OverflowError, ValueError, OSError):
        return plain.isoformat()
    if offset is None or offset != second.utcoffset() or round_trip != plain:
        return plain.isoformat()  # ambiguous or missing in tz
    return first.isoformat()


def _json_times(datetimes: pd.Series, tz: tzinfo) -> list[bytes]:
    """Datetimes as JSON strings ``"2024-03-01T08:00:00.123+08:00"`` (see :func:`row_json_column`)."""
    import pandas as pd

    array = datetimes.array
    unit: str = array.unit
    missing = np.asarray(array.isna(), dtype=bool)
    aware = isinstance(datetimes.dtype, pd.DatetimeTZDtype)
    wall = (datetimes.dt.tz_localize(None) if aware else datetimes).array.asi8
    known = ~missing
    try:
        if aware:
            utc = array.asi8
        else:
            local = pd.Series(wall.view(f"M8[{unit}]")).dt.tz_localize(
                tz, ambiguous="NaT", nonexistent="NaT"
            )
            known &= ~local.isna().to_numpy(dtype=bool)
            utc = local.array.asi8
        per_second = np.timedelta64(1, "s") // np.timedelta64(1, unit)  # type: ignore[call-overload]
        offsets = np.where(known, (wall - utc) // per_second, 0)
    except (OverflowError, ValueError):  # a time the zone's rules cannot place
        known[:] = False
        offsets = np.zeros(len(wall), dtype=np.int64)
    stamps = wall.view(f"M8[{unit}]").astype("M8[ms]")
    texts = np.datetime_as_string(stamps, unit="ms").astype(np.bytes_).tolist()
    zones, which = np.unique(np.where(known, offsets, _NO_OFFSET), return_inverse=True)
    closes = [_close(int(seconds)) for seconds in zones.tolist()]
    out = [b'"' + t + closes[k] for t, k in zip(texts, which.tolist(), strict=True)]
    for i in np.flatnonzero(missing).tolist():
        out[i] = b"null"
    return out


#: The offset key of a value written without an offset (no real offset is this large).
_NO_OFFSET: Final = 1 << 40


def _close(seconds: int) -> bytes:
    """The end of a JSON time string: its UTC offset (``+08:00``) and the quote."""
    if seconds == _NO_OFFSET:
        return b'"'
    sign = b"-" if seconds < 0 else b"+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = b"%s%02d:%02d" % (sign, hours, minutes)
    return text + (b":%02d" % secs if secs else b"") + b'"'


def group_column(
    series: pd.Series, column: Hashable | None, rejections: Rejections
) -> list[int | None]:
    """A column of group ids: integers >= 0; missing means no ``groupId``; else rejected."""
    label = field_label("groupId", column)
    kind = series.dtype.kind
    if kind in "iu":
        array, missing = integer_values(series)
        values: list[Any] = array.tolist()
        if kind == "u":
            bad = array > GROUP_ID_MAX  # above the API's Long
            rule = "must be a non-negative 64-bit integer"
        else:
            bad = array < 0
            rule = "must be a non-negative integer"
        if missing is not None:
            bad &= ~missing
            for i in np.flatnonzero(missing).tolist():
                values[i] = None  # a missing group id: the event goes without one
        for i in np.flatnonzero(bad).tolist():
            rejections.add(i, f"{label} {rule}, got {values[i]}")
        return values
    values = object_values(series)
    out: list[int | None] = []
    for i, value in enumerate(values):
        group, reason = _scalar_group(value, label)
        if reason is not None:
            rejections.add(i, reason)
        out.append(group)
    return out


def _scalar_group(value: Any, label: str) -> tuple[int | None, str | None]:
    if value is None or is_missing(value):
        return None, None
    if isinstance(value, (bool, np.bool_)):
        return None, f"{label} must be an integer, got {value!r}"
    number: Any = value
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"\d{1,19}", text):
            return None, f"{label} must be an integer, got {show(value)}"
        number = int(text)
    elif isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or value != math.floor(value):
            return None, f"{label} must be an integer, got {show(float(value))}"
        number = int(value)
    elif isinstance(value, (int, np.integer)):
        number = int(value)
    else:
        return None, f"{label} must be an integer, got {show(value)}"
    if not 0 <= number <= GROUP_ID_MAX:
        return None, f"{label} must be a non-negative 64-bit integer, got {number}"
    return number, None
