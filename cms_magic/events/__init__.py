"""Rows and values -> validated, encoded events (see :mod:`cms_magic.events.convert`)."""

from cms_magic.events.convert import (
    Conversion,
    Event,
    EventMapping,
    events_from_frame,
    events_from_records,
    format_time,
    iter_conversions,
)

__all__ = [
    "Conversion",
    "Event",
    "EventMapping",
    "events_from_frame",
    "events_from_records",
    "format_time",
    "iter_conversions",
]
