"""The panel's Events tab (issue 15): read back what the service holds, as a chart and a table.

The filters are those of :func:`cms_magic.readback.query_events`: the event name, the
group id, the time range (*Since* / *Until*: ``15m``, ``1h``, ``7d`` before now, an ISO
time such as ``2026-12-01T09:00+08:00``, a day ``2026-12-01``; a time without an offset
is this machine's wall time) and the service's search keywords (``a and b`` /
``a or b``). *Read* checks them at once (an error names the field), then reads in the
background, from the Send tab's target and with its credentials (the region's OpenAPI
endpoint, :func:`cms_magic.readback.openapi_url`; the emulator's own URL for
``local``): the histogram (:func:`~cms_magic.readback.event_histogram`, drawn by
:func:`cms_magic.ui.chart.histogram_svg`), the first :data:`FIRST_ROWS` events
(:func:`~cms_magic.readback.query_events` with ``limit``) and how many in all
(:func:`~cms_magic.readback.count_events`), all over the same window, fixed when
*Read* was pressed. ``panel.events_read`` holds the latest :class:`EventsRead`.

The view (:class:`EventsTab`) holds no credentials: what it shows is escaped HTML and
masked key ids. Labels and tooltips come from the options table's read filters
(:data:`cms_magic.ui.options.READ_OPTIONS`), so errors are the core's worded with them
(``Since '1y': must be ...``); a missing RAM permission names the action
(``cms:DescribeCustomEventHistogram``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

import ipywidgets as w

from cms_magic.errors import CmsError, ConfigError
from cms_magic.identity import key_label
from cms_magic.ui.options import option
from cms_magic.ui.panel import html

if TYPE_CHECKING:
    import pandas as pd

    from cms_magic.targets import Target
    from cms_magic.ui.panel.plans import Sending

__all__ = [
    "FIRST_ROWS",
    "EventsFilters",
    "EventsRead",
    "EventsTab",
    "check_filters",
    "events_table",
    "read_back",
]

#: How many events the tab reads and shows (the rest are counted, not read).
FIRST_ROWS: Final = 20
_WIDE: Final = {"description_width": "110px"}
_CHART_WIDTH: Final = 640
_CHART_HEIGHT: Final = 200


@dataclass(frozen=True, slots=True)
class EventsFilters:
    """The filters of one read, checked: the window is absolute (UTC) once built."""

    name: str | None = None
    group_id: int | None = None
    search: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def keywords(self) -> dict[str, Any]:
        """As :func:`cms_magic.readback.query_events` takes them."""
        return {
            "name": self.name,
            "group_id": self.group_id,
            "search": self.search,
            "since": self.since,
            "until": self.until,
        }

    def window(self) -> str:
        """``2026-12-01 09:00:00 – 10:00:00 UTC`` (an open end says so)."""
        start = _shown(self.since) if self.since is not None else "the beginning"
        end = _shown(self.until) if self.until is not None else "now"
        return f"{start} to {end} UTC"


def _shown(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _moment(millis: int | None) -> datetime | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, tz=timezone.utc)


def check_filters(
    name: str,
    group_id: str,
    since: str,
    until: str,
    search: str,
    *,
    clock: Callable[[], float] = time.time,
) -> EventsFilters:
    """The fields' texts as filters (an empty field: no filter), or the first error,
    naming the field. Relative times are fixed against ``clock`` now."""
    from cms_magic.readback_times import time_window

    group: int | None = None
    text = group_id.strip()
    if text:
        if not text.isdigit() or int(text) > 2**63 - 1:
            raise ConfigError("must be an integer >= 0", option="group_id", value=group_id)
        group = int(text)
    start, end = time_window(since.strip() or None, until.strip() or None, clock=clock)
    return EventsFilters(
        name=name.strip() or None,
        group_id=group,
        search=search.strip() or None,
        since=_moment(start),
        until=_moment(end),
    )


@dataclass(frozen=True)
class EventsRead:
    """What one *Read* found: the histogram (``start``, ``end``, ``count``), the first
    events (at most :data:`FIRST_ROWS`), how many match in all, the filters, and where
    it read (the target's label and the OpenAPI URL)."""

    histogram: pd.DataFrame
    events: pd.DataFrame
    total: int
    filters: EventsFilters
    where: str
    url: str


def read_back(
    source: Sending, filters: EventsFilters, *, limit: int = FIRST_ROWS, **options: Any
) -> EventsRead:
    """Read the histogram, the first ``limit`` events and the count at ``source``'s target
    with its credentials (blocking: the panel calls it in a worker thread). ``options``
    go to each read (``timeout``, ``transport``...)."""
    from cms_magic.readback import count_events, event_histogram, openapi_url, query_events

    url = openapi_url(source.target)
    common = {"endpoint": url, "credentials": source.credentials, **filters.keywords(), **options}
    histogram = event_histogram(**common)
    events = query_events(limit=limit, page_size=limit, **common)
    total = count_events(**common)
    return EventsRead(histogram, events, total, filters, source.target.label, url)


def _chart(frame: pd.DataFrame, title: str) -> str:
    from cms_magic.ui.chart import histogram_svg

    return histogram_svg(frame, width=_CHART_WIDTH, height=_CHART_HEIGHT, title=title)


def _text(css: str, name: str, placeholder: str, value: str = "") -> Any:
    field = w.Text(
        value=value,
        description=option(name).label,
        placeholder=placeholder,
        tooltip=option(name).help,
        continuous_update=False,
        style=_WIDE,
        layout=w.Layout(width="400px"),
    )
    field.add_class(css)
    return field


class EventsTab:
    """The Events tab's widgets (``page`` is its ``VBox``) and what they show.

    Building wires nothing: the panel connects *Read* (through its error wrapper)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.name = _text("cms-read-name", "name", "any event name")
        self.group_id = _text("cms-read-group", "group_id", "any group (an integer)")
        self.since = _text("cms-read-since", "since", "15m, 1h, 7d before now, or a time", "1h")
        self.until = _text("cms-read-until", "until", "now (or 15m, 1h, a time)")
        self.search = _text("cms-read-search", "search", "keywords: a and b, a or b")
        self.read_button = w.Button(
            description="Read", icon="download", button_style="primary", tooltip="read back"
        )
        self.read_button.add_class("cms-read")
        self.status = w.HTML(html.muted("nothing read yet"))
        self.status.add_class("cms-read-status")
        self.source = w.HTML()
        self.source.add_class("cms-read-source")
        self.chart = w.HTML()
        self.chart.add_class("cms-read-chart")
        self.table = w.HTML()
        self.table.add_class("cms-read-table")
        self.page = w.VBox(
            [
                self.source,
                self.name,
                self.group_id,
                w.HBox([self.since, self.until]),
                self.search,
                w.HBox([self.read_button, self.status], layout=w.Layout(align_items="center")),
                self.chart,
                self.table,
            ]
        )
        self.reading = False

    def filters(self) -> EventsFilters:
        """The fields as checked filters (see :func:`check_filters`)."""
        return check_filters(
            self.name.value,
            self.group_id.value,
            self.since.value,
            self.until.value,
            self.search.value,
            clock=self._clock,
        )

    def show_source(
        self, source: Sending | None, *, target: Target | None = None, why: str = ""
    ) -> None:
        """Where *Read* reads: the Send tab's target and key (masked), or why it cannot
        (``target`` names no region; no credentials; ``why``)."""
        from cms_magic.readback import openapi_url

        where = source.target if source is not None else target
        url = ""
        if where is not None:
            try:
                url = openapi_url(where)
            except CmsError as exc:
                self.source.value = "Reads from: " + html.bad(html.message(exc))
                return
        if source is None:
            self.source.value = "Reads from: " + html.bad(
                why or "choose a target with credentials in the Send tab"
            )
            return
        self.source.value = (
            f"Reads from: <b>{html.esc(source.target.label)}</b> <code>{html.esc(url)}</code> "
            f"with {html.esc(key_label(source.credentials))} "
            + html.muted("(the Send tab's target and credentials)")
        )

    def start(self, filters: EventsFilters) -> None:
        self.reading = True
        self.read_button.disabled = True
        self.status.value = html.esc(f"reading {filters.window()}…")

    def show(self, read: EventsRead) -> None:
        """The outcome line, the chart and the first events."""
        shown = len(read.events)
        what = f"{read.total:,} event{'s' if read.total != 1 else ''}"
        first = f"; the first {shown:,} below" if shown and shown < read.total else ""
        self.status.value = (
            f'<span class="cms-outcome cms-good">✔ {html.esc(what)} from '
            f"{html.esc(read.filters.window())}{html.esc(first)}</span> "
            + html.muted(f"({read.where})")
        )
        title = f"events per bucket, {read.filters.window()}"
        self.chart.value = f'<div class="cms-chart">{_chart(read.histogram, title)}</div>'
        self.table.value = events_table(read.events, read.total)

    def show_error(self, exc: BaseException) -> None:
        """A read that failed, next to *Read*: one line, the whole message folded."""
        line = html.message(exc)
        if not isinstance(exc, CmsError):  # a bug: say what broke
            line = f"{type(exc).__name__}: {line}"
        first = line.splitlines()[0]
        more = html.details(line) if line.strip() != first else ""
        self.status.value = (
            f'<span class="cms-outcome cms-bad">✖ not read: {html.esc(first)}</span>{more}'
        )

    def done(self) -> None:
        self.reading = False
        self.read_button.disabled = False


def events_table(frame: pd.DataFrame, total: int) -> str:
    """The first events as an escaped HTML table, and how many there are in all."""
    if frame.empty:
        return html.muted("no events match")
    note = (
        f"first {len(frame):,} of {total:,} events; cms_magic.query_events(...) reads them all"
        if total > len(frame)
        else f"all {len(frame):,} events"
    )
    markup = frame.to_html(border=0, na_rep="", escape=True, index=False)
    return f'<div class="cms-muted">{html.esc(note)}</div><div class="cms-table">{markup}</div>'
