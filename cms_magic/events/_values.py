"""Small pieces the event rooms share: how a reason shows a value, the per-row rejections,
a column's values as Python objects, and what counts as missing or as a group id."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from cms_magic.protocol import GROUP_ID_MAX

if TYPE_CHECKING:
    import pandas as pd

_PREVIEW: Final = 60


def show(value: object) -> str:
    """A value as it appears in a row's reason: repr, cut to a readable length."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    text = repr(value)
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."


def field_label(name: str, column: Hashable | None) -> str:
    """How a reason names an event field: ``'groupId' (column 'gid')`` or ``'groupId'``."""
    return f"'{name}' (column {column!r})" if column is not None else f"'{name}'"


def is_group_id(value: object) -> bool:
    """None, or an int (not a bool) that fits the API's non-negative Long."""
    if value is None:
        return True
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= GROUP_ID_MAX


class Rejections:
    """First reason per row position wins (fields are checked name, content, groupId, time)."""

    __slots__ = ("reasons",)

    def __init__(self) -> None:
        self.reasons: dict[int, str] = {}

    def add(self, position: int, reason: str) -> None:
        self.reasons.setdefault(position, reason)


def object_values(series: pd.Series) -> list[Any]:
    """The column as Python objects, every missing value (NaN, NaT, NA) as None."""
    values: list[Any] = series.to_numpy(dtype=object, na_value=None).tolist()  # type: ignore[call-overload]
    return values


def is_missing(value: Any) -> bool:
    """None, NaN, NaT or NA (one scalar; arrays and other objects are not missing)."""
    if value is None:
        return True
    try:
        import pandas as pd

        missing = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return bool(missing) if isinstance(missing, (bool, np.bool_)) else False
