"""Reading a column as one event field: text (name, content), a template, the row as JSON,
group ids. Each reader returns one value per row and adds a reason for each row it
cannot use; :mod:`cms_magic.events.times` reads the ``time`` field the same way.

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

from cms_magic.events._values import Rejections, field_label, is_missing, object_values, show
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
    return bool(pd.api.types.infer_dtype(values, skipna=False) == "string")


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
        else:
            values[i] = str(value)
    return values


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
            record[key] = None if is_missing(value) else value
        try:
            out.append(orjson.dumps(record, default=str, option=orjson.OPT_NON_STR_KEYS).decode())
        except (orjson.JSONEncodeError, TypeError) as exc:
            rejections.add(i, f"'content' (the row as JSON) cannot be encoded: {exc}")
            out.append(None)
    return out


def group_column(
    series: pd.Series, column: Hashable | None, rejections: Rejections
) -> list[int | None]:
    """A column of group ids: integers >= 0; missing means no ``groupId``; else rejected."""
    label = field_label("groupId", column)
    kind = series.dtype.kind
    if kind in "iu":
        array = series.to_numpy()
        values: list[Any] = array.tolist()
        for i in np.flatnonzero(array < 0).tolist():
            rejections.add(i, f"{label} must be a non-negative integer, got {values[i]}")
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
