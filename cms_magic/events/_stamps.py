"""The service's time format as integer arithmetic: epoch milliseconds <-> calendar fields.

:func:`format_wall` writes ``yyyyMMdd'T'HHmmss.SSS+HHMM`` for arrays of wall-clock
milliseconds and UTC offsets by gathers from digit tables (no ``strftime`` per row);
:func:`days_from_civil` is its inverse for dates. Pure numpy; no pandas, no time zones.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

__all__ = ["DAY_MS", "days_from_civil", "format_wall", "format_wall_text"]

DAY_MS: Final = 86_400_000


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


def format_wall(wall_ms: np.ndarray[Any, Any], offset_min: np.ndarray[Any, Any]) -> list[bytes]:
    """Format wall-clock epoch milliseconds plus UTC offsets, with integer arithmetic only.

    Returns ASCII bytes (what the encoder splices into the event JSON). Every value
    must lie in years 1000..9999 and every offset within +-99:59 (callers check).
    """
    n = len(wall_ms)
    if n == 0:
        return []
    wall_ms = wall_ms.astype(np.int64)
    days, ms_of_day = np.divmod(wall_ms, DAY_MS)
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


def format_wall_text(wall_ms: np.ndarray[Any, Any], offset_min: np.ndarray[Any, Any]) -> list[str]:
    """:func:`format_wall` as text."""
    return [stamp.decode("ascii") for stamp in format_wall(wall_ms, offset_min)]


def days_from_civil(
    year: np.ndarray[Any, Any], month: np.ndarray[Any, Any], day: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Days since 1970-01-01 of each (year, month, day) (Howard Hinnant's days_from_civil)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    result: np.ndarray[Any, Any] = era * 146_097 + doe - 719_468
    return result
