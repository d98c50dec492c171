"""Confirming ambiguous deliveries by reading back what the service holds.

An upload answered with a timeout after sending, or a 5xx, leaves its rows ``unknown``: the
service may or may not have stored them. A row accepted after such an answer is marked
``possible_duplicate``: it may be stored twice. :func:`confirm` looks those rows up with the
read-back API and gives each a verdict:

- found: ``accepted``, confirmed, with the number of copies the service holds;
- not found by a read-back made ``wait`` seconds or more after the row's request was last
  sent (the service's index may lag): ``not_sent``, "not stored", so ``retry()`` resends
  exactly those;
- the read-back failed, or the wait ran out first: still ``unknown``, with why.

How a row is found: by its name, group id, content and time. The time is the event's own
(to the millisecond) when the send set it; else the service stamped it on arrival, and the
row matches a stored event of the same name, group and content received within
``skew`` seconds of the row's request. Identical rows are counted, not matched twice: when
the input holds two identical rows and the service one copy, one row is confirmed and the
other is not stored; copies that rows accepted outright account for are not credited to
rows being confirmed.

The read-back itself is a ``lookup(name, start_ms, end_ms)`` function returning the stored
events (:func:`cms_magic.readback.query_events` in :meth:`SendResult.confirm
<cms_magic.results.SendResult.confirm>`); polling runs on an injectable clock and sleep.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final, Protocol

import numpy as np
import orjson

from cms_magic.errors import CmsError, ConfigError

__all__ = [
    "DEFAULT_POLL",
    "DEFAULT_SKEW",
    "DEFAULT_WAIT",
    "Checked",
    "Confirmation",
    "Lookup",
    "StoredEvent",
    "Wanted",
    "confirm",
    "readback_lookup",
    "wanted_events",
]

#: Seconds after a request was sent by which its events must be visible to count as absent.
DEFAULT_WAIT: Final = 30.0
#: Seconds between read-backs while rows are still missing.
DEFAULT_POLL: Final = 2.0
#: Seconds of clock difference allowed between this machine and the service's stamp.
DEFAULT_SKEW: Final = 300.0


class Checked(Protocol):
    """What confirming needs of a result (a :class:`~cms_magic.results.SendResult`)."""

    @property
    def request(self) -> Any: ...  # a ResendSpec: the input and the mapping

    @property
    def request_records(self) -> Sequence[Any]: ...  # with .batch and .sent_at

    def batch_numbers(self) -> np.ndarray[Any, Any]: ...

    def confirm_positions(self) -> np.ndarray[Any, Any]: ...

    def accepted_positions(self, exclude: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]: ...


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the service holds it (what a read-back returns)."""

    name: str
    group_id: int | None
    time_ms: int
    content: str


#: ``lookup(name, start_ms, end_ms)``: the stored events of ``name`` in the window.
Lookup = Callable[[str, int, int], Iterable[StoredEvent]]


@dataclass(frozen=True, slots=True)
class Wanted:
    """A row to confirm: where it is, what was sent, and when its request last went out."""

    position: int
    name: str
    group_id: int | None
    content: str
    time_ms: int | None  # the event's own time; None: stamped by the service on arrival
    sent_ms: int  # when its request was last sent (epoch ms)

    @property
    def key(self) -> tuple[str, int | None, str, int | None]:
        return (self.name, self.group_id, self.content, self.time_ms)


@dataclass(frozen=True)
class Confirmation:
    """What :func:`confirm` found: per checked row, its verdict and the copies held."""

    positions: np.ndarray[Any, Any]
    #: "confirmed", "not_stored" or "unconfirmed", per checked row.
    verdicts: list[str]
    #: Copies of the row's event the service holds (-1: not known).
    copies: np.ndarray[Any, Any]
    #: Why rows stayed unconfirmed, or a note on the read-back (None when all were decided).
    note: str | None
    lookups: int


def _time_ms(text: str) -> int:
    """``20260329T013000.000+0100`` (the wire's format) as epoch milliseconds."""
    moment = datetime.strptime(text, "%Y%m%dT%H%M%S.%f%z")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def wanted_events(result: Checked, positions: np.ndarray[Any, Any]) -> list[Wanted]:
    """The rows at ``positions`` as their events were sent (the input prepared again with
    the send's mapping), with when their request was last sent."""
    from cms_magic.sending.inputs import prepare

    spec = result.request
    if spec is None:
        raise ConfigError(
            "this result cannot be confirmed: it was not made by cms_magic.send",
            option="confirm",
        )
    sent_at = {record.batch: record.sent_at for record in result.request_records}
    batches = result.batch_numbers()
    fallback = max(sent_at.values(), default=time.time())
    prepared = prepare(spec.subset(positions), spec.mapping)
    wanted: list[Wanted] = []
    for chunk in prepared.chunks:
        for local, payload in zip(chunk.positions.tolist(), chunk.payloads, strict=True):
            event = orjson.loads(payload)
            position = int(positions[local])
            stamp = event.get("time")
            group = event.get("groupId")
            wanted.append(
                Wanted(
                    position=position,
                    name=str(event["name"]),
                    group_id=0 if group is None else int(group),  # the service's "none"
                    content=str(event["content"]),
                    time_ms=None if stamp is None else _time_ms(str(stamp)),
                    sent_ms=int(sent_at.get(int(batches[position]), fallback) * 1000),
                )
            )
    return wanted


def _window(rows: Sequence[Wanted], skew_ms: int) -> tuple[int, int]:
    times = [w.time_ms if w.time_ms is not None else w.sent_ms for w in rows]
    return min(times) - skew_ms, max(times) + skew_ms


def _held(
    rows: Sequence[Wanted], stored: Iterable[StoredEvent], skew_ms: int
) -> dict[tuple[str, int | None, str, int | None], int]:
    """Copies held per row key: exact time for rows with one, within the skew of the
    request for rows the service stamped."""
    exact: Counter[tuple[str, int | None, str, int]] = Counter()
    loose: defaultdict[tuple[str, int | None, str], list[int]] = defaultdict(list)
    for event in stored:
        exact[(event.name, event.group_id, event.content, event.time_ms)] += 1
        loose[(event.name, event.group_id, event.content)].append(event.time_ms)
    held: dict[tuple[str, int | None, str, int | None], int] = {}
    for row in rows:
        if row.time_ms is not None:
            held[row.key] = exact[(row.name, row.group_id, row.content, row.time_ms)]
        else:
            times = loose.get((row.name, row.group_id, row.content), [])
            held[row.key] = sum(1 for t in times if abs(t - row.sent_ms) <= skew_ms)
    return held


def confirm(
    result: Checked,
    lookup: Lookup,
    *,
    positions: np.ndarray[Any, Any] | None = None,
    wait: float = DEFAULT_WAIT,
    poll: float = DEFAULT_POLL,
    skew: float = DEFAULT_SKEW,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Confirmation:
    """Look up the rows at ``positions`` (default: ``unknown`` and possible duplicates)
    and decide each (see the module). Polls every ``poll`` seconds until every row is
    found or ``wait`` seconds have passed since the latest request of the missing rows."""
    for option, number in (("wait", wait), ("poll", poll), ("skew", skew)):
        if isinstance(number, bool) or not isinstance(number, int | float) or not number >= 0:
            raise ConfigError("must be a number of seconds >= 0", option=option, value=number)
    if positions is None:
        positions = result.confirm_positions()
    checked = np.asarray(positions, dtype=np.int64)
    rows = wanted_events(result, checked) if len(checked) else []
    skew_ms = int(skew * 1000)
    # Copies that rows accepted outright (not being checked) account for.
    others = _accepted_keys(result, rows, checked)
    by_name: defaultdict[str, list[Wanted]] = defaultdict(list)
    for row in rows:
        by_name[row.name].append(row)

    found: dict[int, int] = {}  # position -> copies held
    missing = {row.position: row for row in rows}
    lookups = 0
    failure: str | None = None
    while True:
        now_ms = int(clock() * 1000)
        for name, group in by_name.items():
            pending = [row for row in group if row.position in missing]
            if not pending:
                continue
            start, end = _window(pending, skew_ms)
            try:
                stored = list(lookup(name, start, end))
            except CmsError as exc:
                failure = f"read-back failed: {exc}"
                continue
            finally:
                lookups += 1
            held = _held(pending, stored, skew_ms)
            for key, members in _group_by_key(group).items():
                held_copies = held.get(key)
                if held_copies is None:
                    continue
                available = held_copies - others.get(key, 0)
                for row in members:
                    if row.position not in missing:
                        available -= 1  # found earlier: it holds one of the copies
                for row in members:
                    if row.position in missing and available > 0:
                        available -= 1
                        found[row.position] = held_copies
                        del missing[row.position]
        if not missing or failure is not None:
            break
        latest = max(row.sent_ms for row in missing.values())
        if now_ms >= latest + int(wait * 1000):
            break  # looked at least ``wait`` after the last send: absent means not stored
        remaining = (latest + wait * 1000 - now_ms) / 1000
        sleep(min(poll, remaining) if poll > 0 else remaining)

    verdicts: list[str] = []
    copies = np.full(len(checked), -1, dtype=np.int32)
    for i, position in enumerate(checked.tolist()):
        if position in found:
            verdicts.append("confirmed")
            copies[i] = found[position]
        elif failure is not None:
            verdicts.append("unconfirmed")
        else:
            verdicts.append("not_stored")
            copies[i] = 0
    note = None
    if failure is not None and missing:
        note = f"{len(missing):,} row(s) unconfirmed: {failure}"
    return Confirmation(checked, verdicts, copies, note, lookups)


def _group_by_key(
    rows: Sequence[Wanted],
) -> dict[tuple[str, int | None, str, int | None], list[Wanted]]:
    grouped: dict[tuple[str, int | None, str, int | None], list[Wanted]] = {}
    for row in rows:
        grouped.setdefault(row.key, []).append(row)
    return grouped


def _accepted_keys(
    result: Checked, rows: Sequence[Wanted], checked: np.ndarray[Any, Any]
) -> Counter[tuple[str, int | None, str, int | None]]:
    """How many rows accepted outright (not checked) share a key with a checked row that
    carries its own time: the service's copies of that event are theirs first. (Rows the
    service stamps cannot be told apart from accepted look-alikes sent at other times, so
    they are matched within the skew of their own request only.)"""
    keys = {row.key for row in rows if row.time_ms is not None}
    if not keys:
        return Counter()
    accepted = result.accepted_positions(exclude=checked)
    if not len(accepted):
        return Counter()
    counts: Counter[tuple[str, int | None, str, int | None]] = Counter()
    for row in wanted_events(result, accepted):
        if row.key in keys:
            counts[row.key] += 1
    return counts


def readback_lookup(endpoint: str, credentials: Any, *, page_size: int = 1000) -> Lookup:
    """A :data:`Lookup` over the read-back API (``DescribeCustomEventAttribute``) at
    ``endpoint`` (an OpenAPI base URL) with ``credentials``."""

    def lookup(name: str, start_ms: int, end_ms: int) -> list[StoredEvent]:
        import pandas as pd

        from cms_magic.readback import query_events

        frame = query_events(
            name,
            since=datetime.fromtimestamp(start_ms / 1000, tz=timezone.utc),
            until=datetime.fromtimestamp(end_ms / 1000, tz=timezone.utc),
            endpoint=endpoint,
            credentials=credentials,
            page_size=page_size,
        )
        if frame.empty:
            return []
        epoch = pd.Timestamp(0, tz="UTC")
        millis = ((frame["time"] - epoch) // pd.Timedelta(milliseconds=1)).astype("int64")
        groups = frame["group_id"].fillna(0).astype("int64")
        return [
            StoredEvent(str(n), int(g), int(t), str(c))
            for n, g, t, c in zip(frame["name"], groups, millis, frame["content"], strict=True)
        ]

    return lookup
