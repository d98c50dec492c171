"""Read-back answers as DataFrames (the shapes of api-shapes.md §3), with proper dtypes.

Every frame has the same columns and dtypes whether it has rows or not: times tz-aware
(UTC, or the zone asked for), counts and group ids ``int64`` (``Int64`` when the service
left one out or sent a non-integer), texts ``str``. An answer whose list is not a list of
objects is an :class:`~cms_magic.openapi.errors.OpenApiError` (``MalformedAnswer``); a
missing or null list means no rows. pandas is imported when a frame is built.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Final

from cms_magic.openapi.errors import OpenApiError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "EVENT_COLUMNS",
    "counts_frame",
    "events_frame",
    "histogram_frame",
    "items",
    "malformed",
]

#: The columns every events frame starts with, in this order.
EVENT_COLUMNS: Final = ("id", "time", "name", "group_id", "content")
_EVENT_KEYS: Final = frozenset({"Id", "Time", "Name", "GroupId", "Content"})

Zone = tzinfo | str
Item = dict[str, object]


def malformed(action: str, what: str) -> OpenApiError:
    """The error of a 200 answer whose shape is not the documented one."""
    return OpenApiError("MalformedAnswer", what, None, 200, action=action)


def items(answer: dict[str, object], action: str, outer: str, inner: str) -> list[Item]:
    """``answer[outer][inner]`` as a list of objects (a single object is a list of one);
    missing or null means none."""
    box = answer.get(outer)
    if box is None:
        return []
    found = box.get(inner) if isinstance(box, dict) else box
    if found is None:
        return []
    if isinstance(found, dict):
        found = [found]
    if not isinstance(found, list) or not all(isinstance(i, dict) for i in found):
        raise malformed(action, f"{outer}.{inner} is not a list of objects")
    return found


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _texts(values: list[object]) -> pd.Series:
    import pandas as pd

    if all(type(v) is str for v in values):  # the usual answer: no per-value conversion
        texts: pd.Series = pd.Series(values, dtype="str")
        return texts
    series: pd.Series = pd.Series([_text(v) for v in values], dtype="str")
    return series


def _whole_numbers(values: list[object]) -> np.ndarray[Any, Any] | None:
    """``values`` as int64 when every one is an int or a digit string (the service's
    usual answer: the fast path), else None."""
    import numpy as np

    if not all(type(v) is int or type(v) is str for v in values):
        return None  # floats would be truncated, bools taken as 0/1: the careful path
    try:
        return np.array(values, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        return None


def _times(values: list[object], zone: Zone) -> pd.Series:
    """Milliseconds (numbers or digit strings) as tz-aware times; anything else NaT."""
    import pandas as pd

    fast = _whole_numbers(values)
    if fast is not None:
        stamps_fast: pd.Series = pd.Series(pd.to_datetime(fast, unit="ms", utc=True))
        return stamps_fast if zone == "UTC" else stamps_fast.dt.tz_convert(zone)
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    stamps: pd.Series = pd.to_datetime(numbers, unit="ms", utc=True, errors="coerce")
    return stamps if zone == "UTC" else stamps.dt.tz_convert(zone)


def _integers(values: list[object]) -> pd.Series:
    import pandas as pd

    fast = _whole_numbers(values)
    if fast is not None:
        integers: pd.Series = pd.Series(fast, dtype="int64")
        return integers
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    whole = numbers.notna() & (numbers % 1 == 0)
    if not whole.all():
        out: pd.Series = numbers.where(whole).astype("Int64")
        return out
    return numbers.astype("int64")


def _frame(columns: dict[str, pd.Series]) -> pd.DataFrame:
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame(columns)
    return frame


def events_frame(events: list[Item], zone: Zone) -> pd.DataFrame:
    """``DescribeCustomEventAttribute``'s events: ``id``, ``time``, ``name``, ``group_id``,
    ``content``, then any other field the service sent, snake_cased (object dtype)."""
    import pandas as pd

    columns = {
        "id": _texts([e.get("Id") for e in events]),
        "time": _times([e.get("Time") for e in events], zone),
        "name": _texts([e.get("Name") for e in events]),
        "group_id": _integers([e.get("GroupId", 0) for e in events]),
        "content": _texts([e.get("Content") for e in events]),
    }
    for key in sorted({k for e in events for k in e} - _EVENT_KEYS):
        columns.setdefault(_snake(key), pd.Series([e.get(key) for e in events], dtype=object))
    return _frame(columns)


def counts_frame(rows: list[Item], zone: Zone) -> pd.DataFrame:
    """``DescribeCustomEventCount``'s rows: ``name``, ``count``, ``time``."""
    return _frame(
        {
            "name": _texts([r.get("Name") for r in rows]),
            "count": _integers([r.get("Num") for r in rows]),
            "time": _times([r.get("Time") for r in rows], zone),
        }
    )


def histogram_frame(rows: list[Item], zone: Zone) -> pd.DataFrame:
    """``DescribeCustomEventHistogram``'s buckets: ``start``, ``end``, ``count``."""
    return _frame(
        {
            "start": _times([r.get("StartTime") for r in rows], zone),
            "end": _times([r.get("EndTime") for r in rows], zone),
            "count": _integers([r.get("Count") for r in rows]),
        }
    )
