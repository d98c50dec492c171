"""The live preview of the Data section: what the mapping makes of the chosen frame.

Computed on the frame's head when it is large, so typing in a control stays
quick: the first events as they will be sent, and how many rows, events,
requests and rows rejected by validation (with the first reasons).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from cms_magic.batching import plan_batches
from cms_magic.events import events_from_frame
from cms_magic.ui.panel import html

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PREVIEW_ROW_LIMIT", "Preview", "preview"]

#: Rows the preview converts at most (the counts say when they are a head).
PREVIEW_ROW_LIMIT: Final = 50_000
_PREVIEW_EVENTS: Final = 3


@dataclass(frozen=True, slots=True)
class Preview:
    """The HTML of the counts line and of the first events."""

    counts: str
    events: str


def preview(frame: pd.DataFrame, options: Mapping[str, Any]) -> Preview:
    """Convert (the head of) ``frame`` with the mapping ``options`` and pack it into requests.

    Raises what the conversion raises (a :class:`~cms_magic.errors.MappingError` naming the
    option) for a mapping that cannot work.
    """
    sample = frame if len(frame) <= PREVIEW_ROW_LIMIT else frame.iloc[:PREVIEW_ROW_LIMIT]
    conversion = events_from_frame(sample, **options)
    plan = plan_batches(conversion.payloads, positions=conversion.positions)
    counts = html.counts(
        len(sample),
        len(frame),
        events=len(conversion) - len(plan.rejected),
        requests=len(plan.batches),
        rejected={**conversion.rejected, **plan.rejected},
        index=sample.index,
    )
    return Preview(counts, html.events_preview(conversion.payloads[:_PREVIEW_EVENTS]))
