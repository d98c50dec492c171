"""Small pieces the event rooms share: how a reason shows a value, the per-row rejections,
a column's values as Python objects or integers, what counts as missing or as a group id,
and how a value that is not text becomes JSON."""

from __future__ import annotations

import math
from collections.abc import Hashable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import orjson

from cms_magic.protocol import GROUP_ID_MAX

if TYPE_CHECKING:
    import pandas as pd

_PREVIEW: Final = 60

#: How cms_magic writes a dict, a list or a row as JSON: numpy values as numbers (a
#: float32 by its own shortest text), keys that are not strings as their text.
JSON_OPTIONS: Final = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def show(value: object) -> str:
    """A value as it appears in a row's reason: repr, cut to a readable length."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    try:
        text = repr(value)
    except Exception:  # a hostile object: name its type instead
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."


def field_label(name: str, column: Hashable | None) -> str:
    """How a reason names an event field: ``'groupId' (column 'gid')`` or ``'groupId'``."""
    return f"'{name}' (column {column!r})" if column is not None else f"'{name}'"


def is_group_id(value: object) -> bool:
    """None, or an int (not a bool) that fits the API's non-negative Long."""
    if value is None:
        return True
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= GROUP_ID_MAX


def is_signaling_nan(value: object) -> bool:
    """``Decimal('sNaN')``: not a missing value but an invalid one (any comparison raises)."""
    return isinstance(value, Decimal) and value.is_snan()


class Rejections:
    """First reason per row position wins (fields are checked name, content, groupId, time)."""

    __slots__ = ("reasons",)

    def __init__(self) -> None:
        self.reasons: dict[int, str] = {}

    def add(self, position: int, reason: str) -> None:
        self.reasons.setdefault(position, reason)


def raw_values(series: pd.Series) -> list[Any]:
    """The column as Python objects, missing values as they are."""
    try:
        values: list[Any] = series.to_numpy(dtype=object).tolist()
    except Exception:  # an extension array that cannot give objects at once
        values = [series.iloc[i] for i in range(len(series))]
    return values


def object_values(series: pd.Series) -> list[Any]:
    """The column as Python objects, every missing value (NaN, NaT, NA) as None.

    A cell that pandas cannot test for missing (``Decimal('sNaN')``, an object whose
    comparison raises) is kept as it is, for its field to reject.
    """
    try:
        values: list[Any] = series.to_numpy(dtype=object, na_value=None).tolist()  # type: ignore[call-overload]
    except Exception:
        values = [None if is_missing(v) else v for v in raw_values(series)]
    return values


def integer_values(
    series: pd.Series,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, np.dtype[np.bool_]] | None]:
    """An integer column (numpy, nullable ``Int64``/``UInt64`` or pyarrow) as a numpy array.

    Missing values are 0 in the array; the mask says where they are (None when no value
    is missing). Unsigned columns stay unsigned, so values above 2**63-1 are exact.
    """
    if isinstance(series.dtype, np.dtype):  # plain numpy integers hold no missing value
        return series.to_numpy(), None
    missing = series.isna().to_numpy(dtype=bool)
    kind = np.uint64 if series.dtype.kind == "u" else np.int64
    array = series.to_numpy(dtype=kind, na_value=0)
    return array, (missing if missing.any() else None)


def is_missing(value: Any) -> bool:
    """None, NaN, NaT or NA (one scalar; arrays and other objects are not missing)."""
    if value is None:
        return True
    try:
        import pandas as pd

        missing = pd.isna(value)
    except (TypeError, ValueError, ArithmeticError):  # ArithmeticError: Decimal('sNaN')
        return False
    except Exception:  # an object whose comparison raises: a value, for its field to judge
        return False
    return bool(missing) if isinstance(missing, (bool, np.bool_)) else False


def bytes_text(value: bytes | bytearray | memoryview) -> tuple[str | None, str | None]:
    """Bytes as the text they encode in UTF-8, or (None, why not)."""
    raw = bytes(value)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, (
            f"holds bytes that are not valid UTF-8 ({exc.reason} at byte {exc.start}): "
            f"{show(raw)}; decode them to text first"
        )


def json_default(value: Any) -> Any:
    """orjson's ``default``: what a value JSON has no type for is written as.

    Bytes are their UTF-8 text (other bytes cannot be written: TypeError), a
    ``Decimal`` its exact digits as a string (a signaling NaN cannot be written), a
    pandas ``Timestamp`` ISO 8601 text, a ``Timedelta`` its ISO 8601 duration, a
    missing value (``pd.NA``, ``NaT``) null; anything else its ``str``.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        text, problem = bytes_text(value)
        if text is None:
            raise TypeError(problem)
        return text
    if isinstance(value, Decimal):
        if value.is_snan():
            raise TypeError(f"{show(value)} is a signaling NaN, not a number")
        return None if value.is_nan() else str(value)
    if is_missing(value):
        return None
    if isinstance(value, (datetime, date, timedelta)) and hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def to_json(value: Any) -> bytes:
    """One value (a dict, a list, a number...) as compact JSON; TypeError if it cannot be."""
    return orjson.dumps(value, default=json_default, option=JSON_OPTIONS)
