"""Read back what CloudMonitor holds (issue 15): events, counts and histograms as DataFrames.

- :func:`query_events` (``DescribeCustomEventAttribute``, paged): one row per event, columns
  ``id`` (str), ``time`` (tz-aware: UTC, or ``tz``), ``name`` (str), ``group_id`` (int64),
  ``content`` (str), then any other field the service sends, snake_cased.
- :func:`count_events` (``DescribeCustomEventCount``): the number of events; with
  ``by_name=True`` the service's own rows (``name``, ``count``, ``time``), since it counts
  per event name.
- :func:`event_histogram` (``DescribeCustomEventHistogram``): one row per bucket,
  ``start`` and ``end`` (tz-aware) and ``count`` (int64); ``level`` filters by severity.

Filters, the same for the three: ``name``, ``group_id``, ``event_id``, ``search`` (the
service's keywords, ``a and b`` / ``a or b``), ``since`` / ``until``
(:mod:`cms_magic.readback_times`: datetimes, ISO texts, or ``"15m"``, ``"1h"``, ``"7d"``
before now). Naive datetimes are wall times in ``tz`` when given, else in this machine's
local zone (as naive event times are read when sending); returned times are in ``tz``,
else UTC.

Target: ``endpoint="local"`` (the embedded emulator, which serves the OpenAPI on its port),
an endpoint URL (used as is), or ``region=`` (the region's OpenAPI endpoint
``https://metrics.<region>.aliyuncs.com``, not the upload endpoint); nothing given means
what :func:`~cms_magic.targets.resolve_target` finds. Credentials as for sending
(``credentials=``, ``profile=``), or a refreshing source with ``async current()``.

Paging: ``page_size`` events per call (50 by default, the reference's example; the service
states no maximum and returns no total), until a page comes back short, or ``limit``
events are read. ``progress`` is called with a :class:`ReadProgress` after each page and
once finished. The functions run on the library's event loop (so they work in a notebook
whose loop is running); Ctrl-C cancels the read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, overload

from cms_magic.errors import ConfigError, TargetError
from cms_magic.progress import duration, plural
from cms_magic.readback_frames import counts_frame, events_frame, histogram_frame, items, malformed
from cms_magic.readback_times import TimeLike, time_window, zone

if TYPE_CHECKING:
    from collections.abc import Coroutine

    import httpx
    import pandas as pd

    from cms_magic.credentials.static import Credentials
    from cms_magic.openapi.client import Answer, CurrentCredentials, OpenApiClient
    from cms_magic.sending.retry import RetryPolicy
    from cms_magic.targets import Target

__all__ = [
    "ATTRIBUTE_ACTION",
    "COUNT_ACTION",
    "DEFAULT_PAGE_SIZE",
    "HISTOGRAM_ACTION",
    "LEVELS",
    "ReadProgress",
    "ReadProgressCallback",
    "count_events",
    "event_histogram",
    "openapi_url",
    "query_events",
]

ATTRIBUTE_ACTION: Final = "DescribeCustomEventAttribute"
COUNT_ACTION: Final = "DescribeCustomEventCount"
HISTOGRAM_ACTION: Final = "DescribeCustomEventHistogram"
#: Events per page asked for by default (the API reference's example; no maximum is stated).
DEFAULT_PAGE_SIZE: Final = 50
#: The severities ``DescribeCustomEventHistogram`` filters by.
LEVELS: Final = ("CRITICAL", "WARN", "INFO")
#: ``https://metrics.<region>.aliyuncs.com``: the CloudMonitor OpenAPI host of a region.
OPENAPI_HOST: Final = "metrics.{region}.aliyuncs.com"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReadProgress:
    """A snapshot of a running read, given to ``progress`` after each page (and once more
    with ``finished=True``). ``limit`` is the caller's (None: read all); the service gives
    no total, so there is no ETA without one."""

    action: str
    events: int
    pages: int
    elapsed: float
    limit: int | None = None
    finished: bool = False

    @property
    def rate(self) -> float:
        """Events read per second so far."""
        return self.events / self.elapsed if self.elapsed > 0 else 0.0

    def line(self) -> str:
        """``1,200 events read, 24 pages, 800 events/s`` (finished: ``..., done in 2s``)."""
        read = f"{self.events:,}/{plural(self.limit, 'event')}" if self.limit else None
        parts = [f"{read or plural(self.events, 'event')} read", plural(self.pages, "page")]
        if self.finished:
            parts.append(f"done in {duration(self.elapsed)}")
        else:
            parts.append(f"{self.rate:,.0f} events/s")
        return ", ".join(parts)

    def __str__(self) -> str:
        return self.line()


#: The hook: called with each snapshot, from the library loop's thread.
ReadProgressCallback = Callable[[ReadProgress], None]


# ---- target and client -------------------------------------------------------------------


def openapi_url(target: Target) -> str:
    """The OpenAPI base URL of an upload :class:`~cms_magic.targets.Target`: the emulator's
    own URL for ``local``, an explicit URL as is, ``metrics.<region>.aliyuncs.com`` for a
    region (its public or internal upload endpoint alike). ``public`` names no region."""
    if target.kind == "local":
        return target.resolve_url()
    if target.kind == "url":
        return target.resolve_url()
    if target.kind == "region" and target.region:
        return "https://" + OPENAPI_HOST.format(region=target.region)
    raise TargetError(
        "the CloudMonitor OpenAPI is regional: name a region (e.g. region='cn-hangzhou'), "
        "an endpoint URL, or 'local'",
        option="endpoint",
        value=target.url,
    )


def _client(
    endpoint: str | None,
    region: str | None,
    credentials: Credentials | CurrentCredentials | None,
    profile: str | None,
    timeout: float | None,
    retry: RetryPolicy | None,
    transport: httpx.AsyncBaseTransport | None,
) -> OpenApiClient:
    from cms_magic.openapi.client import DEFAULT_TIMEOUT, CurrentCredentials, OpenApiClient
    from cms_magic.targets import resolve_target

    target = resolve_target(endpoint, region=region, credentials_given=credentials is not None)
    url = openapi_url(target)
    keys: Credentials | CurrentCredentials
    if isinstance(credentials, CurrentCredentials):
        if profile is not None:
            raise ConfigError(
                "give credentials or a profile, not both", option="profile", value=profile
            )
        keys = credentials
    else:
        keys = target.credentials(profile=profile, explicit=credentials)
    return OpenApiClient(
        url,
        keys,
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        retry=retry,
        transport=transport,
    )


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a read on the library loop and wait; Ctrl-C cancels it."""
    from cms_magic.sending._loop import wait_for

    return wait_for(coro)


# ---- filters -----------------------------------------------------------------------------


def _text(value: object, option: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("must be a non-empty string", option=option, value=value)
    return value


def _group_id(value: object) -> str | None:
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or not 0 <= number <= 2**63 - 1:
        raise ConfigError("must be an integer >= 0", option="group_id", value=value)
    return str(number)


def _count(value: object, option: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError("must be an integer >= 1", option=option, value=value)
    return value


def _filters(
    name: str | None,
    group_id: int | str | None,
    event_id: str | None,
    search: str | None,
    since: TimeLike,
    until: TimeLike,
    tz: tzinfo | None,
    clock: Callable[[], float] | None,
) -> dict[str, object]:
    start, end = time_window(since, until, clock=clock or time.time, tz=tz)
    return {
        "Name": _text(name, "name"),
        "EventId": _text(event_id, "event_id"),
        "GroupId": _group_id(group_id),
        "SearchKeywords": _text(search, "search"),
        "StartTime": start,
        "EndTime": end,
    }


def _output_zone(tz: str | tzinfo | None) -> tuple[tzinfo | None, tzinfo | str]:
    """(the zone naive bounds are read in, the zone of returned times): UTC by default;
    ``"local"`` is this machine's zone with its DST rules, as sending reads naive times."""
    if tz is None:
        return None, "UTC"
    parsed = zone(tz)
    if parsed is not None:
        return parsed, parsed
    from cms_magic.events.mapping import resolve_tz

    return None, resolve_tz(None)


# ---- the reads ---------------------------------------------------------------------------


async def _read_events(
    client: OpenApiClient,
    filters: dict[str, object],
    limit: int | None,
    page_size: int,
    progress: ReadProgressCallback | None,
) -> list[dict[str, object]]:
    size = min(page_size, limit) if limit else page_size
    events: list[dict[str, object]] = []
    started = time.monotonic()
    previous: list[object] | None = None
    page = 0
    async with client:
        while True:
            page += 1
            params = {**filters, "PageNumber": page, "PageSize": size}
            answer = await client.acall(ATTRIBUTE_ACTION, params)
            found = items(answer, ATTRIBUTE_ACTION, "CustomEvents", "CustomEvent")
            ids = [e.get("Id") for e in found]
            if found and ids == previous:
                raise malformed(
                    ATTRIBUTE_ACTION,
                    f"page {page} repeats page {page - 1} (the service ignored PageNumber?)",
                )
            previous = ids
            events += found
            done = len(found) < size or (limit is not None and len(events) >= limit)
            if progress is not None and not done:
                seen = min(len(events), limit) if limit else len(events)
                progress(ReadProgress(ATTRIBUTE_ACTION, seen, page, _since(started), limit))
            if done:
                break
    if limit is not None:
        del events[limit:]
    if progress is not None:
        elapsed = _since(started)
        progress(ReadProgress(ATTRIBUTE_ACTION, len(events), page, elapsed, limit, True))
    return events


def _since(started: float) -> float:
    return time.monotonic() - started


@dataclass(frozen=True, slots=True)
class _Read:
    """A checked read: the action's filters, the zone of the returned times, the client."""

    filters: dict[str, object]
    zone: tzinfo | str
    client: OpenApiClient


def _prepare(
    name: str | None,
    group_id: int | str | None,
    event_id: str | None,
    since: TimeLike,
    until: TimeLike,
    search: str | None,
    tz: str | tzinfo | None,
    target: tuple[str | None, str | None],
    credentials: Credentials | CurrentCredentials | None,
    profile: str | None,
    timeout: float | None,
    retry: RetryPolicy | None,
    transport: httpx.AsyncBaseTransport | None,
    clock: Callable[[], float] | None,
    client: OpenApiClient | None,
) -> _Read:
    """Everything checked before any contact (arguments first, then the target)."""
    read_tz, out_tz = _output_zone(tz)
    filters = _filters(name, group_id, event_id, search, since, until, read_tz, clock)
    endpoint, region = target
    caller = client or _client(endpoint, region, credentials, profile, timeout, retry, transport)
    return _Read(filters, out_tz, caller)


async def _single(action: str, read: _Read) -> Answer:
    async with read.client:
        return await read.client.acall(action, read.filters)


async def _query(
    read: _Read, limit: int | None, page_size: int, progress: ReadProgressCallback | None
) -> pd.DataFrame:
    events = await _read_events(read.client, read.filters, limit, page_size, progress)
    return events_frame(events, read.zone)


def query_events(
    name: str | None = None,
    *,
    group_id: int | str | None = None,
    event_id: str | None = None,
    since: TimeLike = None,
    until: TimeLike = None,
    search: str | None = None,
    limit: int | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    tz: str | tzinfo | None = None,
    region: str | None = None,
    endpoint: str | None = None,
    credentials: Credentials | CurrentCredentials | None = None,
    profile: str | None = None,
    progress: ReadProgressCallback | None = None,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] | None = None,
    client: OpenApiClient | None = None,
) -> pd.DataFrame:
    """The events matching the filters, one row each, in the service's order: columns
    ``id``, ``time`` (tz-aware, UTC or ``tz``), ``name``, ``group_id`` (int64), ``content``.

    ``since`` / ``until``: datetimes, ISO texts or ``"15m"``, ``"1h"``, ``"7d"`` before now
    (``clock``); ``limit`` reads at most that many; ``page_size`` events per call. Target
    ``endpoint`` (``"local"`` or a URL) or ``region``; ``credentials`` / ``profile`` as for
    sending. ``client`` (an :class:`~cms_magic.openapi.client.OpenApiClient`) replaces the
    target, credentials, ``timeout``, ``retry`` and ``transport``.
    """
    checked_limit = _count(limit, "limit")
    size = _count(page_size, "page_size") or DEFAULT_PAGE_SIZE
    read = _prepare(
        name, group_id, event_id, since, until, search, tz, (endpoint, region),
        credentials, profile, timeout, retry, transport, clock, client,
    )  # fmt: skip
    return _run(_query(read, checked_limit, size, progress))


@overload
def count_events(
    name: str | None = ...,
    *,
    by_name: Literal[False] = ...,
    group_id: int | str | None = ...,
    event_id: str | None = ...,
    since: TimeLike = ...,
    until: TimeLike = ...,
    search: str | None = ...,
    tz: str | tzinfo | None = ...,
    region: str | None = ...,
    endpoint: str | None = ...,
    credentials: Credentials | CurrentCredentials | None = ...,
    profile: str | None = ...,
    timeout: float | None = ...,
    retry: RetryPolicy | None = ...,
    transport: httpx.AsyncBaseTransport | None = ...,
    clock: Callable[[], float] | None = ...,
    client: OpenApiClient | None = ...,
) -> int: ...
@overload
def count_events(
    name: str | None = ...,
    *,
    by_name: Literal[True],
    group_id: int | str | None = ...,
    event_id: str | None = ...,
    since: TimeLike = ...,
    until: TimeLike = ...,
    search: str | None = ...,
    tz: str | tzinfo | None = ...,
    region: str | None = ...,
    endpoint: str | None = ...,
    credentials: Credentials | CurrentCredentials | None = ...,
    profile: str | None = ...,
    timeout: float | None = ...,
    retry: RetryPolicy | None = ...,
    transport: httpx.AsyncBaseTransport | None = ...,
    clock: Callable[[], float] | None = ...,
    client: OpenApiClient | None = ...,
) -> pd.DataFrame: ...
def count_events(
    name: str | None = None,
    *,
    by_name: bool = False,
    group_id: int | str | None = None,
    event_id: str | None = None,
    since: TimeLike = None,
    until: TimeLike = None,
    search: str | None = None,
    tz: str | tzinfo | None = None,
    region: str | None = None,
    endpoint: str | None = None,
    credentials: Credentials | CurrentCredentials | None = None,
    profile: str | None = None,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] | None = None,
    client: OpenApiClient | None = None,
) -> int | pd.DataFrame:
    """How many events match the filters (those of :func:`query_events`, without paging).

    The service counts per event name: ``by_name=True`` returns its rows as a DataFrame
    (``name``, ``count`` int64, ``time`` tz-aware), else their sum as an ``int``.
    """
    read = _prepare(
        name, group_id, event_id, since, until, search, tz, (endpoint, region),
        credentials, profile, timeout, retry, transport, clock, client,
    )  # fmt: skip
    answer = _run(_single(COUNT_ACTION, read))
    rows = items(answer, COUNT_ACTION, "CustomEventCounts", "CustomEventCount")
    frame = counts_frame(rows, read.zone)
    if by_name:
        return frame
    if frame["count"].isna().any():
        raise malformed(COUNT_ACTION, "a CustomEventCount has no integer Num")
    return int(frame["count"].sum())


def _level(value: object) -> str | None:
    if value is None:
        return None
    text = value.strip().upper() if isinstance(value, str) else None
    if text not in LEVELS:
        raise ConfigError(f"must be one of {', '.join(LEVELS)}", option="level", value=value)
    return text


def event_histogram(
    name: str | None = None,
    *,
    level: str | None = None,
    group_id: int | str | None = None,
    event_id: str | None = None,
    since: TimeLike = None,
    until: TimeLike = None,
    search: str | None = None,
    tz: str | tzinfo | None = None,
    region: str | None = None,
    endpoint: str | None = None,
    credentials: Credentials | CurrentCredentials | None = None,
    profile: str | None = None,
    timeout: float | None = None,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] | None = None,
    client: OpenApiClient | None = None,
) -> pd.DataFrame:
    """Events per time bucket, one row each: ``start``, ``end`` (tz-aware, UTC or ``tz``) and
    ``count`` (int64). Filters as :func:`count_events`, plus ``level`` (``CRITICAL``,
    ``WARN`` or ``INFO``, any case)."""
    checked_level = _level(level)
    read = _prepare(
        name, group_id, event_id, since, until, search, tz, (endpoint, region),
        credentials, profile, timeout, retry, transport, clock, client,
    )  # fmt: skip
    read.filters["Level"] = checked_level
    answer = _run(_single(HISTOGRAM_ACTION, read))
    rows = items(answer, HISTOGRAM_ACTION, "EventHistograms", "EventHistogram")
    return histogram_frame(rows, read.zone)
