"""CloudMonitor's custom-event OpenAPI actions (version 2019-01-01) as pure handlers, no I/O.

Each handler takes the action's parameters as decoded from an RPC query or an ACS3
body (``{"Name": "deploy", "PageSize": "50", ...}``), the store and the time, and
answers in the shapes of ``api-shapes.md``::

    handler(params, *, store, now, record=None) -> EmulatorResponse

- ``DescribeCustomEventAttribute``: the events, newest first (event time, then id),
  ``PageNumber`` (from 1, default 1) and ``PageSize`` (1 to :data:`MAX_PAGE_SIZE`, default
  :data:`DEFAULT_PAGE_SIZE`); no total: a page shorter than ``PageSize`` is the last.
- ``DescribeCustomEventCount``: how many per event name, with the latest event time.
- ``DescribeCustomEventHistogram``: counts per time bucket (:func:`bucket_width_ms`)
  over ``[StartTime, EndTime]``, default the hour up to ``now``.
- ``PutCustomEvent``: 1 to :data:`MAX_PUT_EVENTS` events as ``EventInfo.N.*``
  (``N`` = 1, 2, ...), written to the store the upload path writes, in its events' shape.

Every filter is optional and combines with the others: ``Name`` (exact), ``EventId``,
``GroupId`` (``0`` also matches events sent without one), ``StartTime``/``EndTime``
(epoch ms, inclusive, on the event's time: its ``time`` if it had one, else when it
was stored) and ``SearchKeywords`` (:func:`parse_search`). An empty value is the same
as none (the SDKs send unset strings as ``key=``); parameters these actions do not
read (``Action``, ``Version``, signature fields...) are ignored. ``Level`` is checked
and has no effect: custom events carry no level. Events stored less than the
store's ``delay`` ago are not seen yet (the service's index lag).

Errors are HTTP 400 ``{"Code", "Message", "RequestId"}``: ``MissingParameter`` or
``InvalidParameter``, the message naming the parameter, its rule and the value.

Each call logs one record in the store's request log (so the caller logs only the
requests it refuses before a handler sees them): the
caller's ``record`` fields (e.g. ``key_id``, ``bytes``) plus ``action``, ``status``,
``code``, ``msg``, ``events`` (how many the answer or the request held), ``time``,
``request_id`` (the caller's, else a new one) and ``fault``. An accepted
``PutCustomEvent`` stores its events with that record, in one transaction.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, Final, Protocol

from cms_magic.emulator.service import EmulatorResponse, json_response
from cms_magic.emulator.store import EventQuery, EventStore
from cms_magic.emulator.validation import show, valid_time
from cms_magic.errors import ConfigError
from cms_magic.protocol import GROUP_ID_MAX

__all__ = [
    "ACTIONS",
    "DEFAULT_HISTOGRAM_SPAN_MS",
    "DEFAULT_PAGE_SIZE",
    "HISTOGRAM_BUCKETS",
    "MAX_PAGE_SIZE",
    "MAX_PUT_EVENTS",
    "CmsHandler",
    "bucket_width_ms",
    "describe_custom_event_attribute",
    "describe_custom_event_count",
    "describe_custom_event_histogram",
    "parse_search",
    "put_custom_event",
]

#: At most this many ``EventInfo.N`` entries per ``PutCustomEvent`` (the model's range).
MAX_PUT_EVENTS: Final = 50
#: ``PageSize`` when none is given (the service documents none; the emulator's choice).
DEFAULT_PAGE_SIZE: Final = 10
#: The largest ``PageSize`` accepted (the service documents none; the emulator's choice).
MAX_PAGE_SIZE: Final = 1000
#: A histogram has at most about this many buckets (see :func:`bucket_width_ms`).
HISTOGRAM_BUCKETS: Final = 60
#: The histogram's default range when ``StartTime`` is not given: this long before ``EndTime``.
DEFAULT_HISTOGRAM_SPAN_MS: Final = 3_600_000
_LEVELS: Final = ("CRITICAL", "WARN", "INFO")
_MAX_KEYWORDS: Final = 100
_MS_MAX: Final = 2**63 - 1
_SECOND: Final = 1000
_WIDTHS_S: Final = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
_OPERATOR: Final = re.compile(r"(?:^|\s+)(and|or)(?=\s|$)", re.IGNORECASE)
_EVENT_KEY: Final = re.compile(r"^EventInfo\.([1-9][0-9]{0,5})\.(EventName|Content|GroupId|Time)$")
_FIELDS: Final = ("EventName", "Content", "GroupId", "Time")


class CmsHandler(Protocol):
    """What each handler in :data:`ACTIONS` is."""

    def __call__(
        self,
        params: Mapping[str, str],
        *,
        store: EventStore,
        now: float,
        record: Mapping[str, Any] | None = None,
    ) -> EmulatorResponse: ...


class _Refused(Exception):
    """A parameter the action cannot take: HTTP 400 with ``code`` and ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_search(text: str) -> tuple[tuple[str, ...], ...]:
    """``SearchKeywords`` as alternatives of keywords that must all be in the content.

    ``"a and b"`` -> ``(("a", "b"),)``; ``"a or b"`` -> ``(("a",), ("b",))``; ``and``
    binds tighter than ``or``; the operators are whole words in any case; a keyword is
    a substring of the content (case-sensitive, inner spaces kept). Blank text is no
    condition (``()``). A keyword missing next to an operator raises ConfigError.
    """
    if not text.strip():
        return ()
    parts = _OPERATOR.split(text.strip())
    keywords, operators = parts[0::2], [op.lower() for op in parts[1::2]]
    if any(not keyword.strip() for keyword in keywords):
        raise ConfigError(
            "needs a keyword on each side of every 'and' and 'or' (e.g. 'ValueError and cell')",
            option="search",
            value=text,
        )
    if len(keywords) > _MAX_KEYWORDS:
        raise ConfigError(
            f"must hold at most {_MAX_KEYWORDS} keywords, got {len(keywords)}",
            option="search",
            value=text,
        )
    groups: list[tuple[str, ...]] = []
    current = [keywords[0].strip()]
    for operator, keyword in zip(operators, keywords[1:], strict=True):
        if operator == "or":
            groups.append(tuple(current))
            current = []
        current.append(keyword.strip())
    groups.append(tuple(current))
    return tuple(groups)


def bucket_width_ms(since_ms: int, until_ms: int) -> int:
    """The histogram's bucket width for ``[since_ms, until_ms]``: the first of 1 s, 5 s,
    10 s, 30 s, 1 min, 5, 10, 30 min, 1, 3, 6, 12 h, 1 day that makes at most
    :data:`HISTOGRAM_BUCKETS` widths, else whole days. Buckets are aligned to multiples
    of the width since the epoch (UTC), so a day's bucket starts at 00:00 UTC."""
    span = max(1, until_ms - since_ms + 1)
    for seconds in _WIDTHS_S:
        width = seconds * _SECOND
        if -(-span // width) <= HISTOGRAM_BUCKETS:
            return width
    day = 86400 * _SECOND
    return -(-span // (HISTOGRAM_BUCKETS * day)) * day


# --------------------------------------------------------------------------- the actions


def describe_custom_event_attribute(
    params: Mapping[str, str],
    *,
    store: EventStore,
    now: float,
    record: Mapping[str, Any] | None = None,
) -> EmulatorResponse:
    """``DescribeCustomEventAttribute``: one page of the matching events."""

    def answer() -> tuple[dict[str, Any], int]:
        query = _query(params, now)
        page = _int(params, "PageNumber", 1, _MS_MAX, 1)
        size = _int(params, "PageSize", 1, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)
        offset = (page - 1) * size
        rows = store.query(query, offset=offset, limit=size, now=now) if offset < _MS_MAX else []
        events = [
            {
                "Id": e.id,
                "Name": e.name,
                "GroupId": str(e.group_id),
                "Time": str(e.time_ms),
                "Content": e.content,
            }
            for e in rows
        ]
        return {"Success": "true", "CustomEvents": {"CustomEvent": events}}, len(events)

    return _run("DescribeCustomEventAttribute", answer, store, now, record)


def describe_custom_event_count(
    params: Mapping[str, str],
    *,
    store: EventStore,
    now: float,
    record: Mapping[str, Any] | None = None,
) -> EmulatorResponse:
    """``DescribeCustomEventCount``: per name, how many and the latest event time."""

    def answer() -> tuple[dict[str, Any], int]:
        counts = store.count_by_name(_query(params, now), now=now)
        rows = [{"Name": name, "Num": num, "Time": latest} for name, num, latest in counts]
        total = sum(num for _, num, _ in counts)
        return {"Success": True, "CustomEventCounts": {"CustomEventCount": rows}}, total

    return _run("DescribeCustomEventCount", answer, store, now, record)


def describe_custom_event_histogram(
    params: Mapping[str, str],
    *,
    store: EventStore,
    now: float,
    record: Mapping[str, Any] | None = None,
) -> EmulatorResponse:
    """``DescribeCustomEventHistogram``: counts per bucket over the range, empty ones too."""

    def answer() -> tuple[dict[str, Any], int]:
        level = _text(params, "Level")
        if level is not None and level not in _LEVELS:
            raise _invalid("Level", level, f"must be one of {', '.join(_LEVELS)}")
        query = _query(params, now)
        until = _ms_now(now) if query.until_ms is None else query.until_ms
        since = until - DEFAULT_HISTOGRAM_SPAN_MS + 1 if query.since_ms is None else query.since_ms
        if since > until:
            raise _invalid("StartTime", str(since), f"must not be after EndTime ({until})")
        query = dataclasses.replace(query, since_ms=since, until_ms=until)
        buckets = store.histogram(query, width_ms=bucket_width_ms(since, until), now=now)
        rows = [{"StartTime": s, "EndTime": e, "Count": c} for s, e, c in buckets]
        total = sum(c for _, _, c in buckets)
        return {"Success": "true", "EventHistograms": {"EventHistogram": rows}}, total

    return _run("DescribeCustomEventHistogram", answer, store, now, record)


def put_custom_event(
    params: Mapping[str, str],
    *,
    store: EventStore,
    now: float,
    record: Mapping[str, Any] | None = None,
) -> EmulatorResponse:
    """``PutCustomEvent``: store 1 to 50 events, all or none."""
    events: list[dict[str, Any]] = []

    def answer() -> tuple[dict[str, Any], int]:
        events.extend(_put_events(params))
        return {}, len(events)

    return _run("PutCustomEvent", answer, store, now, record, events)


#: The handlers by action name, for the OpenAPI front's table.
ACTIONS: Final[Mapping[str, CmsHandler]] = {
    "DescribeCustomEventAttribute": describe_custom_event_attribute,
    "DescribeCustomEventCount": describe_custom_event_count,
    "DescribeCustomEventHistogram": describe_custom_event_histogram,
    "PutCustomEvent": put_custom_event,
}


# --------------------------------------------------------------------------- parameters


def _put_events(params: Mapping[str, str]) -> list[dict[str, Any]]:
    entries: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        if not key.startswith("EventInfo."):
            continue
        match = _EVENT_KEY.match(key)
        if match is None:
            raise _invalid(
                key,
                value,
                "PutCustomEvent takes EventInfo.N.<field> with N = 1, 2, "
                f"... and a field of {', '.join(_FIELDS)}",
                name_value=False,
            )
        n = int(match.group(1))
        if n > MAX_PUT_EVENTS:
            raise _invalid(
                key,
                value,
                f"PutCustomEvent takes at most {MAX_PUT_EVENTS} events per call (N = 1 to "
                f"{MAX_PUT_EVENTS}): send the others in another call",
                name_value=False,
            )
        entries.setdefault(n, {})[match.group(2)] = value
    if not entries:
        raise _missing("EventInfo.1.EventName", "give at least one event")
    events = []
    for n in range(1, max(entries) + 1):
        entry = entries.get(n, {})
        event: dict[str, Any] = {}
        for field, key in (("EventName", "name"), ("Content", "content")):
            value = entry.get(field, "")
            if not value:
                raise _missing(f"EventInfo.{n}.{field}", "every event needs a name and a content")
            event[key] = value
        group = entry.get("GroupId", "")
        if group:
            event["groupId"] = _group_id(f"EventInfo.{n}.GroupId", group)
        when = entry.get("Time", "")
        if when:
            if not valid_time(when):
                raise _invalid(
                    f"EventInfo.{n}.Time",
                    when,
                    "must be yyyyMMddTHHmmss.SSSZ (e.g. 20171013T170923.456+0800) or epoch "
                    "milliseconds",
                )
            event["time"] = when
        events.append(event)
    return events


def _query(params: Mapping[str, str], now: float) -> EventQuery:
    since = _ms(params, "StartTime")
    until = _ms(params, "EndTime")
    if since is not None and until is not None and since > until:
        raise _invalid("StartTime", str(since), f"must not be after EndTime ({until})")
    group = _text(params, "GroupId")
    search = _text(params, "SearchKeywords")
    try:
        keywords = parse_search(search or "")
    except ConfigError as exc:
        raise _invalid("SearchKeywords", search or "", exc.rule) from None
    return EventQuery(
        name=_text(params, "Name"),
        event_id=_text(params, "EventId"),
        group_id=None if group is None else _group_id("GroupId", group),
        since_ms=since,
        until_ms=until,
        keywords=keywords,
    )


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return value if value else None


def _digits(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 19


def _ms(params: Mapping[str, str], name: str) -> int | None:
    value = _text(params, name)
    if value is None:
        return None
    if not _digits(value) or int(value) > _MS_MAX:
        raise _invalid(name, value, "must be epoch milliseconds (digits, e.g. 1552224365971)")
    return int(value)


def _int(params: Mapping[str, str], name: str, low: int, high: int, default: int) -> int:
    value = _text(params, name)
    if value is None:
        return default
    if not _digits(value) or not low <= int(value) <= high:
        raise _invalid(name, value, f"must be a whole number from {low} to {high}")
    return int(value)


def _group_id(name: str, value: str) -> int:
    if not _digits(value) or int(value) > GROUP_ID_MAX:
        raise _invalid(name, value, "must be an application group id: a whole number >= 0")
    return int(value)


def _missing(name: str, why: str) -> _Refused:
    return _Refused("MissingParameter", f"the input parameter {name!r} is missing: {why}")


def _invalid(name: str, value: str, rule: str, *, name_value: bool = True) -> _Refused:
    if not name_value:
        return _Refused("InvalidParameter", f"the parameter {name!r} is not valid: {rule}")
    return _Refused(
        "InvalidParameter", f"the parameter {name}={show(value)} is not valid: {name} {rule}"
    )


def _ms_now(now: float) -> int:
    return int(now * 1000 // 1)


# --------------------------------------------------------------------------- answering


def _run(
    action: str,
    answer: Callable[[], tuple[dict[str, Any], int]],
    store: EventStore,
    now: float,
    record: Mapping[str, Any] | None,
    events: list[dict[str, Any]] | None = None,
) -> EmulatorResponse:
    """Answer with ``answer()`` or its refusal; log the record, storing ``events`` with it."""
    given = dict(record or {})
    request_id = str(given.get("request_id") or str(uuid.uuid4()).upper())
    try:
        payload, count = answer()
    except _Refused as refusal:
        status, code, message, count, body = 400, refusal.code, refusal.message, 0, {}
        stored: list[dict[str, Any]] = []
    else:
        status, code, message, body, stored = 200, "200", "success", payload, events or []
    time = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")
    given.update(
        action=action,
        status=status,
        code=code,
        msg=message,
        events=count,
        time=time,
        request_id=request_id,
    )
    given.setdefault("fault", None)
    store.add(stored, request=given, stored_at=now)
    return json_response(
        status, {"Code": code, "Message": message, "RequestId": request_id, **body}, now
    )
