"""What a send accepts as input, made ready to stream (a DataFrame, or events/dicts).

:func:`prepare` checks the input and the mapping options once, before anything
is sent, and returns the chunks of encoded events the run will batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cms_magic.errors import ConfigError, InputError, close_matches
from cms_magic.events.convert import Conversion, EventMapping, events_from_records, iter_conversions
from cms_magic.settings import DEFAULT_CHUNK_ROWS

__all__ = ["MAPPING_OPTIONS", "Prepared", "check_mapping", "prepare"]

#: The mapping options a send takes (as :func:`cms_magic.events_from_frame`).
MAPPING_OPTIONS: tuple[str, ...] = tuple(EventMapping.__dataclass_fields__)


@dataclass
class Prepared:
    """The input, ready to stream: chunks of encoded events and how to index the result."""

    total: int
    index: Any
    chunks: Iterator[Conversion]
    source: Any


def check_mapping(options: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping options, or a :class:`ConfigError` naming the first unknown one."""
    unknown = sorted(set(options) - set(MAPPING_OPTIONS))
    if unknown:
        near = close_matches(unknown[0], MAPPING_OPTIONS, cutoff=0.6)
        raise ConfigError(
            f"unknown option; mapping options are {', '.join(sorted(MAPPING_OPTIONS))}",
            option=unknown[0],
            hint=f"did you mean {near[0]!r}?" if near else None,
        )
    return dict(options)


def prepare(
    data: Any, mapping: Mapping[str, Any], *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Prepared:
    """Accept a DataFrame (rows -> events) or a list of :class:`Event` / API-shaped dicts."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        event_mapping = EventMapping(**mapping).resolved(list(data.columns))
        chunks = iter_conversions(data, event_mapping, chunk_rows=chunk_rows)
        return Prepared(len(data), data.index, chunks, data)
    if isinstance(data, Mapping):
        data = [data]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        used = sorted(k for k, v in mapping.items() if v is not None)
        if used:
            raise ConfigError(
                "applies to DataFrames only; events given as a list already have their fields",
                option=used[0],
                value=mapping[used[0]],
            )
        items = list(data)
        return Prepared(len(items), None, iter([events_from_records(items)]), items)
    raise InputError(
        "must be a pandas DataFrame, or a list of cms_magic.Event or of dicts with "
        f"'name' and 'content'; got {type(data).__name__}",
        option="data",
    )
