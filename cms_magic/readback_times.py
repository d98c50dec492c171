"""The time window of a read-back: ``since`` / ``until`` as milliseconds since the epoch.

What a caller may give, for either bound:

===============================  =====================================================
a tz-aware ``datetime``          that instant (preferred)
a naive ``datetime``             a wall time in ``tz`` (default: this machine's local
                                 zone, as the events' naive times are read when sending)
a ``date``                       that day's midnight in ``tz``
``"15m"``, ``"1h"``, ``"7d"``    that long before now (the injectable ``clock``); units
                                 ``s``, ``m``, ``h``, ``d``, ``w``; ``"now"`` is now
an ISO 8601 text                 ``"2026-12-01T09:00+08:00"`` (aware), or without an
                                 offset (then read in ``tz``), or a day ``"2026-12-01"``
``None``                         no bound (the parameter is not sent)
===============================  =====================================================

Anything else is a :class:`~cms_magic.errors.ConfigError` naming the parameter, the rule
and the value (``since='1y': must be ...``), as is ``since`` after ``until``.
Pure: the clock is an argument.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cms_magic.errors import ConfigError

__all__ = ["TimeLike", "parse_bound", "time_window", "zone"]

TimeLike = datetime | date | str | None
"""What ``since`` and ``until`` accept (see the module)."""

_RELATIVE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*(?:ago)?\s*$")
_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: The service counts milliseconds since 1970; no bound before it or after year 9999.
_MAX_MS: Final = 253_402_300_799_999

RULE: Final = (
    "must be a datetime, an ISO 8601 time, or a time before now such as '15m', '1h', "
    "'7d' (units s, m, h, d, w)"
)


def zone(tz: str | tzinfo | None, option: str = "tz") -> tzinfo | None:
    """``tz`` as a tzinfo: a tzinfo as is, ``"UTC"``, an IANA name, or ``None`` / ``"local"``
    for this machine's zone (returned as ``None``: Python's local conversion)."""
    if tz is None or isinstance(tz, tzinfo):
        return tz
    if not isinstance(tz, str):
        raise ConfigError("must be a time zone name or a tzinfo", option=option, value=tz)
    text = tz.strip()
    if text.lower() == "local":
        return None
    if text.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "is not a known time zone (an IANA name such as 'Asia/Shanghai', 'UTC' or 'local')",
            option=option,
            value=tz,
        ) from None


def _aware(moment: datetime, tz: tzinfo | None) -> datetime:
    if moment.tzinfo is not None and moment.utcoffset() is not None:
        return moment
    if tz is None:
        return moment.astimezone()  # a naive wall time read in this machine's zone
    return moment.replace(tzinfo=tz)


def _ms(moment: datetime, option: str, value: object) -> int:
    millis = round(moment.timestamp() * 1000)
    if not 0 <= millis <= _MAX_MS:
        raise ConfigError("must be between 1970 and 9999", option=option, value=value)
    return int(millis)


def parse_bound(
    value: TimeLike,
    *,
    option: str,
    clock: Callable[[], float],
    tz: tzinfo | None = None,
) -> int | None:
    """One bound as milliseconds since the epoch (``None`` for no bound); see the module.

    ``option`` names the parameter in errors; ``tz`` is the zone of naive times and days
    (``None``: this machine's local zone).
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return _ms(_aware(value, tz), option, value)
    if isinstance(value, date):
        return _ms(_aware(datetime(value.year, value.month, value.day), tz), option, value)
    if not isinstance(value, str):
        raise ConfigError(RULE, option=option, value=value)
    text = value.strip().lower()
    if text == "now":
        return _ms(datetime.fromtimestamp(clock(), timezone.utc), option, value)
    relative = _RELATIVE.match(text)
    if relative:
        seconds = float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
        try:
            moment = datetime.fromtimestamp(clock(), timezone.utc) - timedelta(seconds=seconds)
        except OverflowError:
            raise ConfigError("reaches before 1970", option=option, value=value) from None
        return _ms(moment, option, value)
    try:
        text = value.strip()
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text)
    except ValueError:
        raise ConfigError(RULE, option=option, value=value) from None
    return _ms(_aware(parsed, tz), option, value)


def time_window(
    since: TimeLike,
    until: TimeLike,
    *,
    clock: Callable[[], float],
    tz: tzinfo | None = None,
) -> tuple[int | None, int | None]:
    """``(StartTime, EndTime)`` in milliseconds; ``since`` after ``until`` is an error."""
    start = parse_bound(since, option="since", clock=clock, tz=tz)
    end = parse_bound(until, option="until", clock=clock, tz=tz)
    if start is not None and end is not None and start > end:
        raise ConfigError(
            f"is after until={until!r}: the window would be empty", option="since", value=since
        )
    return start, end
