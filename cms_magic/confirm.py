"""Confirming ambiguous deliveries by reading back what the service holds.

An upload answered with a timeout after sending, or a 5xx, leaves its rows ``unknown``: the
service may or may not have stored them. A row accepted after such an answer is marked
``possible_duplicate``: it may be stored twice. :func:`confirm` looks those rows up with the
read-back API and gives each a verdict:

- found: ``accepted``, confirmed, with the number of copies the service holds;
- not found by a read-back made ``lag`` seconds or more after the row's request was last
  sent (the service's index may take that long to show an event): ``not_sent``, "not
  stored", so ``retry()`` resends exactly those;
- the read-back failed, or ``wait`` (the most seconds :func:`confirm` polls) ran out
  before the row's lag had passed: still ``unknown``, with why. A ``wait`` shorter than the
  lag of a row sent just now gives up on it rather than guess "not stored" (which a
  resend would turn into a duplicate).

How a row is found: by its name, group id, content and time. The time is the event's own
(to the millisecond) when the send set it; else the service stamped it on arrival, and the
row matches a stored event of the same name, group and content received within
``skew`` seconds of the row's request. Identical rows are counted, not matched twice: when
the input holds two identical rows and the service one copy, one row is confirmed and the
other is not stored; copies that rows accepted outright account for (one each, with or
without a time of their own) are not credited to rows being confirmed. When identical rows
include a possible duplicate (accepted, perhaps stored twice) and an unknown one, and there
are more copies than the accepted rows account for, which row they are cannot be told: the
unknown ones stay unconfirmed.

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
    "DEFAULT_LAG",
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
DEFAULT_LAG: Final = 30.0
#: The most seconds :func:`confirm` polls for.
DEFAULT_WAIT: Final = 60.0
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


@dataclass
class _Group:
    """The checked rows of one event (same key), and the rows accepted outright that the
    service's copies of it belong to first."""

    key: tuple[str, int | None, str, int | None]
    rows: list[Wanted]
    duplicates: set[int]  # positions of checked rows already accepted (possible duplicates)
    others: list[Wanted]  # accepted outright, not checked, same event

    def window(self, skew_ms: int) -> tuple[int, int]:
        """Where the copies can be: the event's own time, else within ``skew`` of any of
        the requests (checked or accepted) that carried it."""
        times = [w.time_ms if w.time_ms is not None else w.sent_ms for w in self.rows + self.others]
        return min(times) - skew_ms, max(times) + skew_ms

    def held(self, stored: Iterable[StoredEvent], skew_ms: int) -> int:
        name, group, content, time_ms = self.key
        if time_ms is not None:
            return sum(
                1
                for e in stored
                if (e.name, e.group_id, e.content, e.time_ms) == (name, group, content, time_ms)
            )
        start, end = self.window(skew_ms)
        return sum(
            1
            for e in stored
            if (e.name, e.group_id, e.content) == (name, group, content)
            and start <= e.time_ms <= end
        )

    def allocate(self, held: int) -> tuple[dict[int, int], bool]:
        """Which checked rows the ``held`` copies show stored (position -> copies credited),
        and whether the rest cannot be told (identical rows, one a possible duplicate).

        The rows accepted outright hold one copy each; a possible duplicate at least one;
        the remaining copies are the unknown rows' (which of identical rows is stored
        does not matter: resending the others leaves one copy each). A surplus is
        credited to the first row found (its ``copies`` > 1)."""
        available = held - len(self.others)
        duplicates = [w for w in self.rows if w.position in self.duplicates]
        unknown = [w for w in self.rows if w.position not in self.duplicates]
        found: dict[int, int] = {}
        for row in duplicates:
            if available > 0:
                found[row.position] = 1
                available -= 1
        ambiguous = bool(duplicates) and bool(unknown) and available > 0
        if ambiguous:
            return found, True
        for row in unknown:
            if available > 0:
                found[row.position] = 1
                available -= 1
        if found and available > 0:
            first = next(iter(found))
            found[first] += available
        return found, False


def _groups(
    result: Checked, rows: Sequence[Wanted], checked: np.ndarray[Any, Any], duplicates: set[int]
) -> list[_Group]:
    by_key: dict[tuple[str, int | None, str, int | None], _Group] = {}
    for row in rows:
        group = by_key.get(row.key)
        if group is None:
            group = by_key[row.key] = _Group(row.key, [], duplicates, [])
        group.rows.append(row)
    accepted = result.accepted_positions(exclude=checked)
    if len(accepted):
        for other in wanted_events(result, accepted):
            group = by_key.get(other.key)
            if group is not None:
                group.others.append(other)
    return list(by_key.values())


def confirm(
    result: Checked,
    lookup: Lookup,
    *,
    positions: np.ndarray[Any, Any] | None = None,
    wait: float = DEFAULT_WAIT,
    poll: float = DEFAULT_POLL,
    lag: float = DEFAULT_LAG,
    skew: float = DEFAULT_SKEW,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Confirmation:
    """Look up the rows at ``positions`` (default: ``unknown`` and possible duplicates)
    and decide each (see the module). Polls every ``poll`` seconds until every row is
    found, or every missing row was looked for ``lag`` seconds or more after its request
    was last sent (then it is not stored), or ``wait`` seconds have passed since the call
    began (then the rows still missing inside their lag stay unconfirmed)."""
    for option, number in (("wait", wait), ("poll", poll), ("lag", lag), ("skew", skew)):
        if isinstance(number, bool) or not isinstance(number, int | float) or not number >= 0:
            raise ConfigError("must be a number of seconds >= 0", option=option, value=number)
    if positions is None:
        positions = result.confirm_positions()
    checked = np.asarray(positions, dtype=np.int64)
    rows = wanted_events(result, checked) if len(checked) else []
    skew_ms, lag_ms = int(skew * 1000), int(lag * 1000)
    by_name: defaultdict[str, list[_Group]] = defaultdict(list)
    accepted_all = set(result.accepted_positions(exclude=np.empty(0, dtype=np.int64)).tolist())
    duplicates = {w.position for w in rows if w.position in accepted_all}  # accepted already
    for group in _groups(result, rows, checked, duplicates):
        by_name[group.key[0]].append(group)

    deadline_ms = int(clock() * 1000) + int(wait * 1000)
    found: dict[int, int] = {}  # position -> copies credited
    ambiguous: set[int] = set()
    lookups = 0
    looked_ms = 0  # when the latest complete read-back began
    failure: str | None = None
    pending = dict(by_name)
    while pending:
        now_ms = int(clock() * 1000)
        for name, groups in list(pending.items()):
            windows = [g.window(skew_ms) for g in groups]
            try:
                stored = list(lookup(name, min(w[0] for w in windows), max(w[1] for w in windows)))
            except CmsError as exc:
                failure = f"read-back failed: {exc}"
                continue
            finally:
                lookups += 1
            for group in groups:
                credited, unclear = group.allocate(group.held(stored, skew_ms))
                for row in group.rows:
                    found.pop(row.position, None)
                    ambiguous.discard(row.position)
                found.update(credited)
                if unclear:
                    ambiguous.update(r.position for r in group.rows if r.position not in credited)
            still = [g for g in groups if any(r.position not in found for r in g.rows)]
            if still:
                pending[name] = still
            else:
                del pending[name]
        looked_ms = now_ms
        if failure is not None or not pending:
            break
        missing = [r for groups in pending.values() for g in groups for r in g.rows]
        missing = [r for r in missing if r.position not in found]
        settled_ms = max(r.sent_ms for r in missing) + lag_ms  # absent then: not stored
        if (
            now_ms >= settled_ms
            or now_ms >= deadline_ms
            or all(r.position in ambiguous for r in missing)
        ):
            break
        remaining_ms = min(settled_ms, deadline_ms) - now_ms
        sleep(min(poll, remaining_ms / 1000) if poll > 0 else remaining_ms / 1000)

    verdicts: list[str] = []
    copies = np.full(len(checked), -1, dtype=np.int32)
    why: Counter[str] = Counter()
    by_position = {row.position: row for row in rows}
    for i, position in enumerate(checked.tolist()):
        wanted = by_position.get(position)
        if wanted is None:  # not an event the send could prepare: nothing to look up
            verdicts.append("unconfirmed")
            why["not an event that was sent"] += 1
        elif position in found:
            verdicts.append("confirmed")
            copies[i] = found[position]
        elif failure is not None:
            verdicts.append("unconfirmed")
            why[failure] += 1
        elif position in ambiguous:
            verdicts.append("unconfirmed")
            why[
                "identical rows, one a possible duplicate: which of them the copies are "
                "cannot be told"
            ] += 1
        elif position in duplicates:  # the service accepted it: never "not stored"
            verdicts.append("unconfirmed")
            why["accepted, yet not found by the read-back"] += 1
        elif looked_ms >= wanted.sent_ms + lag_ms:
            verdicts.append("not_stored")
            copies[i] = 0
        else:
            verdicts.append("unconfirmed")
            why[
                f"gave up after wait={wait:g} s: the index may take up to lag={lag:g} s to "
                "show an event; confirm() again later"
            ] += 1
    note = "; ".join(f"{n:,} row(s) unconfirmed: {text}" for text, n in why.items()) or None
    return Confirmation(checked, verdicts, copies, note, lookups)


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
