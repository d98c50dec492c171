"""Rows and values -> validated, encoded events.

The rooms: :mod:`~cms_magic.events.mapping` (how columns become fields, and its
checks), :mod:`~cms_magic.events.times` (the service's time format),
:mod:`~cms_magic.events.records` (the :class:`Event` type, API-shaped records) and
:mod:`~cms_magic.events.convert` (rows -> encoded events).
"""

from cms_magic.events.convert import (
    Conversion,
    events_from_frame,
    events_from_records,
    iter_conversions,
)
from cms_magic.events.mapping import MAPPING_OPTIONS, EventMapping
from cms_magic.events.records import Event
from cms_magic.events.times import format_time

__all__ = [
    "MAPPING_OPTIONS",
    "Conversion",
    "Event",
    "EventMapping",
    "events_from_frame",
    "events_from_records",
    "format_time",
    "iter_conversions",
]
