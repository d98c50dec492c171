"""Times: the service's format, vectorised formatting, and reading what users give as a time.

The service wants ``yyyyMMdd'T'HHmmss.SSSZ``, e.g. ``20171023T144439.948+0800``,
or epoch milliseconds. What a column may hold:

- tz-aware datetimes keep their own UTC offset;
- naive datetimes are read in ``tz`` (default: this machine's local zone, as
  the operating system reports it); a wall time that does not exist or is
  ambiguous in that zone (daylight-saving changes) is rejected;
- a date alone (a ``datetime.date``, a pyarrow ``date32``, or a string
  ``2024-01-31``) is that day's local midnight in ``tz``;
- strings already in the service's format pass through, validated;
- epoch milliseconds (integers, or strings of digits) pass through as a string
  of digits, validated to lie between 2000 and 2100 (the narrow range catches
  epoch seconds and microseconds given by mistake);
- ISO 8601 date-times (``2024-01-31T08:00:00``, ``2024-01-31 08:00:00.5+08:00``,
  ``...Z``); the offset, when there is one, is kept;
- a missing time (None, NaN, NaT, NA) means the event carries no ``time``.

Every time must lie between 1900-01-01 and 2100-01-01 (UTC): a sentinel such as
``9999-12-31`` or ``0001-01-01`` rejects its row. So does a year and month
without a day (``2024-06``: a month is not a moment, and the first of the month
would be a guess) and a word such as ``now`` or ``today`` (it would stamp the
moment of sending, not when the event happened). Rejected rows carry a reason
naming the field, the rule and the value; nothing here raises for one cell.

A column is formatted with integer arithmetic over arrays of epoch
milliseconds and digit tables (no ``strftime`` per row, no nanosecond
conversion, so any datetime unit and any date pandas can hold is read).
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from cms_magic.errors import ConfigError, InputError
from cms_magic.events._stamps import DAY_MS, days_from_civil, format_wall
from cms_magic.events._values import (
    Rejections,
    field_label,
    integer_values,
    is_missing,
    object_values,
    show,
)
from cms_magic.events.mapping import resolve_tz

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TIME_FORMAT_RE", "format_time"]

TIME_FORMAT_RE: Final = re.compile(
    r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})([+-])(\d{2})(\d{2})$"
)
_DIGITS_RE: Final = re.compile(r"^\d{1,16}$")
#: The ISO 8601 forms read: a date, then optionally a time and an offset.
_ISO_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r" ?(Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_YEAR_MONTH_RE: Final = re.compile(r"\d{4}-\d{2}")
_WORDS: Final = frozenset({"now", "today", "yesterday", "tomorrow", "nat", "none", "null"})
# Epoch milliseconds accepted as times: 2000-01-01 .. 2100-01-01 UTC.
_EPOCH_MS_MIN: Final = 946_684_800_000
_EPOCH_MS_MAX: Final = 4_102_444_800_000
# Any time: 1900-01-01 .. 2100-01-01 UTC.
_TIME_MS_MIN: Final = -2_208_988_800_000
_TIME_MS_MAX: Final = _EPOCH_MS_MAX
_EPOCH: Final = datetime(1970, 1, 1)
_MS: Final = timedelta(milliseconds=1)
_UNIT_MS: Final = {"s": -1000, "ms": 1, "us": 1000, "ns": 1_000_000}
# Problems _settle finds, per row.
_OK, _NO_SUCH_LOCAL_TIME, _OUT_OF_RANGE = 0, 1, 2


def format_time(value: datetime, tz: str | tzinfo | None = None) -> str:
    """One datetime in the service format; a naive value is read in ``tz`` (default local)."""
    if not isinstance(value, datetime):
        raise InputError("must be a datetime", option="value", value=value)
    formatted, reason = scalar_time(value, resolve_tz(tz) if value.tzinfo is None else None, None)
    if formatted is None:
        raise ConfigError(reason or "cannot be formatted", option="value", value=value)
    return formatted


def _settle(
    wall_ms: np.ndarray[Any, Any],
    offset_min: np.ndarray[Any, Any],
    naive: np.ndarray[Any, Any] | None,
    skip: np.ndarray[Any, Any] | None,
    tz: tzinfo,
) -> tuple[list[bytes], np.ndarray[Any, Any]]:
    """Stamps for wall-clock milliseconds and their UTC offsets, and a problem code per row.

    Rows in ``naive`` get their offset from ``tz`` (a wall time that does not exist or is
    ambiguous there is :data:`_NO_SUCH_LOCAL_TIME`); a time outside 1900..2100 is
    :data:`_OUT_OF_RANGE`. Rows in ``skip`` (missing, or already rejected) are not judged.
    Where a row has a problem or is skipped its stamp is a harmless placeholder.
    """
    import pandas as pd

    wall = np.array(wall_ms, dtype=np.int64)
    offset = np.array(offset_min, dtype=np.int64)
    problem = np.zeros(len(wall), dtype=np.int8)
    todo = np.ones(len(wall), dtype=bool) if skip is None else ~skip
    if naive is not None:
        naive = naive & todo
        near = (wall >= _TIME_MS_MIN - DAY_MS) & (wall < _TIME_MS_MAX + DAY_MS)
        problem[naive & ~near] = _OUT_OF_RANGE  # not worth asking the zone about
        where = np.flatnonzero(naive & near)
        if len(where):
            local = pd.Series(wall[where].view("M8[ms]")).dt.tz_localize(
                tz, ambiguous="NaT", nonexistent="NaT"
            )
            gap = local.isna().to_numpy()
            utc = local.array.asi8
            offset[where] = np.where(gap, 0, np.floor_divide(wall[where] - utc, 60_000))
            problem[where[gap]] = _NO_SUCH_LOCAL_TIME
    utc_ms = wall - offset * 60_000
    outside = (utc_ms < _TIME_MS_MIN) | (utc_ms >= _TIME_MS_MAX) | (np.abs(offset) >= 6000)
    problem[todo & (problem == _OK) & outside] = _OUT_OF_RANGE
    placeholder = ~todo | (problem != _OK)
    if placeholder.any():
        wall[placeholder] = 0
        offset[placeholder] = 0
    return format_wall(wall, offset), problem


def _to_ms(values: np.ndarray[Any, Any], unit: str) -> np.ndarray[Any, Any]:
    """Integer times in ``unit`` as epoch milliseconds (floored; far values clipped, not wrapped)."""
    factor = _UNIT_MS[unit]
    if factor < 0:  # seconds: multiply, after clipping what would overflow
        result: np.ndarray[Any, Any] = np.clip(values, -(10**15), 10**15) * -factor
        return result
    return values if factor == 1 else np.floor_divide(values, factor)


def _numpy_datetimes(series: pd.Series) -> pd.Series | None:
    """A datetime-like column as numpy-backed ``datetime64[unit]`` (naive) or tz-aware.

    pyarrow timestamps and dates are converted (pandas cannot localize them); None
    when the column is not datetime-like.
    """
    import pandas as pd

    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return series
    if isinstance(dtype, np.dtype):
        return series if dtype.kind == "M" else None
    if isinstance(dtype, pd.ArrowDtype) and dtype.kind == "M":
        arrow_type = dtype.pyarrow_dtype
        zone = getattr(arrow_type, "tz", None)
        unit = getattr(arrow_type, "unit", None)
        if zone is not None and unit is not None:
            return series.astype(pd.DatetimeTZDtype(unit, zone))
        return series.astype(dtype.numpy_dtype)  # type: ignore[attr-defined]
    return None


def time_column(
    series: pd.Series, tz: tzinfo, column: Hashable | None, rejections: Rejections
) -> list[bytes | None]:
    """A column of times in the service format, as ASCII bytes (None where missing)."""
    import pandas as pd

    label = field_label("time", column)
    n = len(series)
    datetimes = _numpy_datetimes(series)
    if datetimes is not None:
        array = datetimes.array
        unit = array.unit
        missing = array.isna()
        if isinstance(datetimes.dtype, pd.DatetimeTZDtype):
            utc = _to_ms(array.asi8, unit)
            wall = _to_ms(datetimes.dt.tz_localize(None).array.asi8, unit)
            stamps, problem = _settle(wall, np.floor_divide(wall - utc, 60_000), None, missing, tz)
        else:
            wall = _to_ms(array.asi8, unit)
            stamps, problem = _settle(wall, np.zeros(n, dtype=np.int64), ~missing, missing, tz)
        for i in np.flatnonzero(problem).tolist():
            rejections.add(i, _problem_reason(label, int(problem[i]), series.iloc[i], tz))
        formatted: list[bytes | None] = list(stamps)
        for i in np.flatnonzero(missing).tolist():
            formatted[i] = None
        return formatted
    if series.dtype.kind in "iu":
        values, absent = integer_values(series)
        out: list[bytes | None] = [b"%d" % v for v in values.tolist()]
        bad = (values < _EPOCH_MS_MIN) | (values >= _EPOCH_MS_MAX)
        if absent is not None:
            bad &= ~absent
            for i in np.flatnonzero(absent).tolist():
                out[i] = None
        for i in np.flatnonzero(bad).tolist():
            rejections.add(i, _epoch_reason(label, int(values[i])))
        return out
    objects = object_values(series)
    out = [None] * n
    strings = [i for i, v in enumerate(objects) if type(v) is str]
    if strings:
        texts = [objects[i].strip() for i in strings]
        for i, (stamp, reason) in zip(strings, _string_times(texts, tz, label), strict=True):
            out[i] = stamp
            if reason is not None:
                rejections.add(i, reason)
    if len(strings) < n:
        taken = set(strings)
        for i in range(n):
            if i in taken:
                continue
            value, reason = scalar_time(objects[i], tz, label)
            if reason is not None:
                rejections.add(i, reason)
            out[i] = None if value is None else value.encode("ascii")
    return out


def _string_times(
    texts: list[str], tz: tzinfo, label: str | None
) -> list[tuple[bytes | None, str | None]]:
    """Time strings, vectorised: the service format, epoch milliseconds, ISO 8601, a date."""
    import pandas as pd

    strings = pd.Series(texts, dtype=object)
    result: list[tuple[bytes | None, str | None]] = [(None, None)] * len(texts)
    service = strings.str.fullmatch(TIME_FORMAT_RE.pattern).to_numpy(dtype=bool)
    digits = ~service & strings.str.fullmatch(_DIGITS_RE.pattern).to_numpy(dtype=bool)
    iso = ~(service | digits) & strings.str.fullmatch(_ISO_RE.pattern).to_numpy(dtype=bool)

    for i in np.flatnonzero(digits).tolist():
        stamp, reason = scalar_time(int(texts[i]), tz, label)
        result[i] = (None if stamp is None else stamp.encode("ascii"), reason)
    for mask, pattern in ((service, TIME_FORMAT_RE), (iso, _ISO_RE)):
        where = np.flatnonzero(mask)
        if len(where):
            parts = strings.iloc[where].str.extract(pattern.pattern, expand=True)
            for k, outcome in enumerate(_parsed_times(parts, pattern is _ISO_RE, tz)):
                text = texts[where[k]]
                if isinstance(outcome, bytes):
                    result[where[k]] = (outcome, None)
                elif outcome == _NOT_REAL:
                    result[where[k]] = (None, _say(label, f"is not a real date-time: {show(text)}"))
                else:
                    result[where[k]] = (None, _problem_reason(label, outcome, text, tz))
    for i in np.flatnonzero(~(service | digits | iso)).tolist():
        result[i] = (None, _unread_reason(label, texts[i]))
    return result


_NOT_REAL: Final = -1


def _parsed_times(parts: pd.DataFrame, iso: bool, tz: tzinfo) -> list[bytes | int]:
    """The regex groups of :data:`TIME_FORMAT_RE` or :data:`_ISO_RE` -> a stamp, or a problem."""

    def number(j: int) -> np.ndarray[Any, Any]:
        return parts.iloc[:, j].fillna("0").to_numpy(dtype=object).astype(np.int64)

    year, month, day, hour, minute, second = (number(j) for j in range(6))
    fraction = parts.iloc[:, 6].fillna("").str.ljust(3, "0").str.slice(0, 3)
    milli = fraction.to_numpy(dtype=object).astype(np.int64)
    if iso:
        zone = parts.iloc[:, 7]
        naive = zone.isna().to_numpy()
        offset = zone.fillna("Z").map(_offset_minutes).to_numpy(dtype=np.int64)
    else:
        naive = np.zeros(len(parts), dtype=bool)
        sign = np.where(parts.iloc[:, 7].to_numpy(dtype=object) == "-", -1, 1)
        offset_h, offset_m = number(8), number(9)
        offset = sign * (offset_h * 60 + offset_m)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    days_in_month = month_days[np.clip(month, 0, 12)] + ((month == 2) & leap)
    real = (
        (month >= 1) & (month <= 12) & (day >= 1) & (day <= days_in_month)
        & (hour <= 23) & (minute <= 59) & (second <= 59) & (offset != _BAD_OFFSET)
    )  # fmt: skip
    wall = (
        days_from_civil(year, month, day) * DAY_MS
        + hour * 3_600_000 + minute * 60_000 + second * 1000 + milli
    )  # fmt: skip
    stamps, problem = _settle(wall, np.where(real, offset, 0), naive, ~real, tz)
    return [
        _NOT_REAL if not ok else (stamp if code == _OK else int(code))
        for stamp, code, ok in zip(stamps, problem.tolist(), real.tolist(), strict=True)
    ]


_BAD_OFFSET: Final = 10**6


def _offset_minutes(text: str) -> int:
    """``Z``, ``+08``, ``+0800`` or ``+08:00`` as minutes east of UTC (:data:`_BAD_OFFSET`
    for hours over 23 or minutes over 59)."""
    if text == "Z":
        return 0
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), (int(digits[2:4]) if len(digits) > 2 else 0)
    if hours > 23 or minutes > 59:
        return _BAD_OFFSET
    total = hours * 60 + minutes
    return -total if text[0] == "-" else total


def _unread_reason(label: str | None, text: str) -> str:
    """Why a string is not a time: a year and month, a word, or not a form we read."""
    if _YEAR_MONTH_RE.fullmatch(text):
        return _say(
            label,
            f"is a year and month without a day: {show(text)}; give a date "
            f"({text}-01) or a date-time",
        )
    if text.lower() in _WORDS:
        return _say(
            label,
            f"must be a date-time, not a word: got {show(text)} (a word such as now or "
            "today would stamp the moment of sending, not when the event happened)",
        )
    return _unparseable(label, text)


def _unparseable(label: str | None, value: object) -> str:
    return _say(
        label,
        "must be yyyyMMdd'T'HHmmss.SSSZ (e.g. 20171023T144439.948+0800), epoch "
        f"milliseconds, an ISO 8601 date-time or a date (2024-01-31), got {show(value)}",
    )


def _tz_name(tz: tzinfo) -> str:
    return getattr(tz, "key", None) or str(tz)


def _problem_reason(label: str | None, problem: int, value: object, tz: tzinfo) -> str:
    shown = show(value) if isinstance(value, str) else str(value)
    if problem == _NO_SUCH_LOCAL_TIME:
        rest = (
            f"{shown} does not exist or is ambiguous in time zone {_tz_name(tz)} "
            "(a daylight-saving change); give tz-aware times"
        )
        return rest if label is None else f"{label}: {rest}"
    return _say(label, f"must lie between 1900 and 2100, got {shown}")


def _epoch_reason(label: str | None, value: int) -> str:
    hint = ""
    if _EPOCH_MS_MIN // 1000 <= value < _EPOCH_MS_MAX // 1000:
        hint = " (this looks like epoch seconds: multiply by 1000)"
    return _say(label, f"as epoch milliseconds must lie between 2000 and 2100, got {value}{hint}")


def scalar_time(
    value: Any, tz: tzinfo | None, label: str | None = "'time'"
) -> tuple[str | None, str | None]:
    """One time value -> (service string, None) or (None, reason). Missing -> (None, None).

    The same rules as a column (see the module's docstring). ``label`` names the field
    at the start of the reason; None leaves it out (for an error whose option already
    names it).
    """
    if value is None or is_missing(value):
        return None, None
    if isinstance(value, (bool, np.bool_)):
        return None, _say(label, f"must be a date-time, got {value!r}")
    if isinstance(value, (int, np.integer)):
        number = int(value)
        if not _EPOCH_MS_MIN <= number < _EPOCH_MS_MAX:
            return None, _epoch_reason(label, number)
        return str(number), None
    if isinstance(value, (float, np.floating)):
        if math.isfinite(value) and value == math.floor(value):
            return scalar_time(int(value), tz, label)
        return None, _say(label, f"must be a date-time or epoch milliseconds, got {show(value)}")
    zone = tz if tz is not None else resolve_tz(None)
    if isinstance(value, str):
        ((stamp, reason),) = _string_times([value.strip()], zone, label)
        return (None if stamp is None else stamp.decode("ascii")), reason
    wall: int
    offset: int | None = None  # None: naive, read in the zone
    if isinstance(value, datetime):
        plain = value.replace(tzinfo=None)
        if hasattr(plain, "to_pydatetime"):  # a pandas Timestamp: exact at any date
            plain = plain.to_pydatetime(warn=False)
        wall = (plain - _EPOCH) // _MS
        if value.tzinfo is not None:
            delta = value.utcoffset()
            offset = 0 if delta is None else delta // timedelta(minutes=1)
    elif isinstance(value, date):
        wall = (value - _EPOCH.date()).days * DAY_MS
    elif isinstance(value, np.datetime64):
        wall = int(value.astype("datetime64[ms]").astype(np.int64))
    else:
        return None, _say(label, f"must be a date-time, got {show(value)}")
    naive = np.array([offset is None])
    stamps, problem = _settle(np.array([wall]), np.array([offset or 0]), naive, None, zone)
    if problem[0] != _OK:
        return None, _problem_reason(label, int(problem[0]), value, zone)
    return stamps[0].decode("ascii"), None


def _say(label: str | None, rest: str) -> str:
    """A reason: ``'time' (column 't') must be ...``, or just ``must be ...`` without a label."""
    return rest if label is None else f"{label} {rest}"
