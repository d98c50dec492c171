"""Reading a column as one event field: text (name, content), a template, the row as JSON,
group ids. Each reader returns one value per row and adds a reason for each row it
cannot use; :mod:`cms_magic.events.times` reads the ``time`` field the same way.

Values that are not text become text faithfully or not at all: a dict, a list or an
array is written as compact JSON; bytes are decoded as UTF-8 (bytes that are not
UTF-8 reject their row); a ``Decimal('sNaN')`` rejects its row; anything else is
its ``str``. The whole row as JSON (the default content) writes floats so that they
read back exactly (orjson's shortest round-trip text; NaN and infinities as null).

The common case (every value already a string, an integer dtype) is checked with
array operations, without Python code per row.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from cms_magic.events._values import (
    Rejections,
    bytes_text,
    field_label,
    integer_values,
    is_missing,
    is_signaling_nan,
    object_values,
    show,
    to_json,
)
from cms_magic.events.mapping import template_columns
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


def row_json_column(df: pd.DataFrame, rejections: Rejections) -> list[str | None]:
    """Each row as compact JSON (the default content), a column of JSON values at a time.

    Keys are the column labels as text (the mapping has checked that they are unique).
    Floats are written by orjson, so they read back exactly; times as ISO 8601 with
    milliseconds (tz-aware ones in UTC with ``Z``); missing values as null.
    """
    n = len(df)
    keys = [orjson.dumps(str(c)).replace(b"%", b"%%") for c in df.columns]
    columns = [_json_values(df.iloc[:, j], str(c), rejections) for j, c in enumerate(df.columns)]
    template = b"{" + b",".join(key + b":%b" for key in keys) + b"}"
    rows = zip(*columns, strict=True) if columns else repeat((), n)
    return [row.decode("utf-8") for row in map(template.__mod__, rows)]


def _json_values(series: pd.Series, key: str, rejections: Rejections) -> list[bytes]:
    """One column's values as JSON texts (``null`` where a value cannot be written; its row
    is rejected)."""
    import pandas as pd

    dtype = series.dtype
    dumps = orjson.dumps
    if isinstance(dtype, np.dtype):
        if (dtype.kind == "f" and dtype.itemsize == 8) or dtype.kind in "iub":
            return list(map(dumps, series.to_numpy().tolist()))
        if dtype.kind == "f":  # float16/32: numpy scalars, written by their own shortest text
            return [dumps(v, option=orjson.OPT_SERIALIZE_NUMPY) for v in series.to_numpy()]
        if dtype.kind == "M":
            return _json_times(series.array.asi8, series.array.unit, b'"')
    if isinstance(dtype, pd.DatetimeTZDtype):
        return _json_times(series.array.asi8, dtype.unit, b'Z"')
    values = object_values(series)
    try:
        return list(map(to_json, values))
    except TypeError:
        pass  # some value cannot be written: find it, row by row
    out: list[bytes] = []
    for i, value in enumerate(values):
        try:
            out.append(to_json(value))
        except TypeError as exc:
            why = exc.__cause__ or exc  # orjson wraps what json_default raised
            rejections.add(i, f"'content' (the row as JSON) cannot write column {key!r}: {why}")
            out.append(b"null")
    return out


def _json_times(values: np.ndarray[Any, Any], unit: str, close: bytes) -> list[bytes]:
    """Datetimes as JSON strings ``"2024-03-01T08:00:00.123"`` (``close`` ends them)."""
    missing = values == np.iinfo(np.int64).min
    stamps = values.astype(f"M8[{unit}]").astype("M8[ms]")
    texts = np.char.encode(np.datetime_as_string(stamps, unit="ms"), "ascii").tolist()
    out = [b'"' + t + close for t in texts]
    for i in np.flatnonzero(missing).tolist():
        out[i] = b"null"
    return out


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
