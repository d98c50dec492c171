"""The widget panel: choose a target and a DataFrame, map its columns, send, read the results.

``cms_magic.panel(df=None)`` (or ``%cms panel``) returns a :class:`Panel`; display
it (the last expression of a cell) to get an ipywidgets ``VBox`` with two tabs:

**Send**

- *Target*: a region dropdown (the local emulator, the public endpoint, the 17
  regions), public/internal for a region, a custom endpoint URL, the URL the
  events go to, and where the credentials come from (masked key id). When no
  credentials resolve, fields for an AccessKey id and secret appear; what is
  typed there is read into memory and the fields are cleared at once, so a secret
  never stays in the widget state a notebook saves.
- *Data*: the DataFrames of the user namespace (Refresh to look again), the
  mapping (name: constant or column; content: whole row, column or template;
  group id: none, constant or column; time column and time zone for naive
  times), and a live preview: the first events as JSON, and how many rows,
  batches and rows rejected by validation (with the reasons).
- *Actions*: Dry run, Send, Cancel, a progress bar and a status line. A send runs
  in the background (the kernel stays free); Send is disabled while it runs.
- *Results*: the summary line; tabs of requests, events and failed rows; "Retry
  failed" resends the rows that were not accepted (``unknown`` rows excluded).

**Regions**: every region with its id, name and endpoints, and a Probe button
that measures DNS and TCP connect time to each endpoint (:mod:`cms_magic.probe`;
nothing is contacted before the click). Choosing a row makes it the target.

The panel calls the same core as the magic (:func:`cms_magic.send`) and keeps the
latest :class:`~cms_magic.results.SendResult` in ``panel.result``. Every callback
goes through one wrapper that shows exceptions inside the panel; worker threads
change widgets only through their traits. Key widgets carry stable CSS classes
(``cms-send``, ``cms-summary``...) for tests and custom styling.
"""

from __future__ import annotations

import contextlib
import functools
import html
import json
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import ipywidgets as w
import numpy as np
from traitlets import Unicode

from cms_magic import emulator
from cms_magic.batching import plan_batches
from cms_magic.credentials import Credentials, mask, resolve_credentials
from cms_magic.errors import CmsError, ConfigError, CredentialsError, MappingError
from cms_magic.events import events_from_frame
from cms_magic.probe import PUBLIC_LABEL, ProbeResult, default_targets, probe
from cms_magic.regions import endpoint, get_region, public_endpoint, region_ids, regions
from cms_magic.results import SendResult
from cms_magic.sending.client import Progress, SendJob, send

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LOCAL", "PUBLIC", "Panel", "panel"]

#: Region dropdown value of the embedded local emulator.
LOCAL: Final = "local"
#: Region dropdown value of the public endpoint.
PUBLIC: Final = PUBLIC_LABEL

_ARGUMENT: Final = "(argument)"  # frame picker key of panel(df)'s df: never an identifier
_PREVIEW_EVENTS: Final = 3
_PREVIEW_ROW_LIMIT: Final = 50_000
_SHOWN_REASONS: Final = 5
_TABLE_ROWS: Final = 100
_PROGRESS_INTERVAL: Final = 0.1  # seconds between progress redraws
_BAR_CHARS: Final = 24

_WIDE = {"description_width": "110px"}
_STYLE = """<style>
.cms-panel .cms-region-list select { font-family: monospace; font-size: 12px; }
.cms-panel pre.cms-json { max-height: 220px; overflow: auto; margin: 2px 0;
  background: var(--jp-layout-color2, #f5f5f5); padding: 4px 8px; font-size: 12px;
  white-space: pre-wrap; word-break: break-all; }
.cms-panel .cms-table { max-height: 260px; overflow: auto; }
.cms-panel .cms-table table { border-collapse: collapse; font-size: 12px; }
.cms-panel .cms-table th, .cms-panel .cms-table td { padding: 1px 8px; text-align: left;
  white-space: nowrap; }
.cms-panel .cms-table tr:nth-child(even) { background: var(--jp-layout-color2, #f5f5f5); }
.cms-panel .cms-muted { color: var(--jp-ui-font-color2, #666); }
.cms-panel .cms-bad { color: #c62828; }
.cms-panel .cms-good { color: #2e7d32; }
</style>"""


class _SecretField(w.Password):  # type: ignore[misc]  # ipywidgets is untyped
    """A Password field whose value the kernel never echoes back to the frontends."""

    value = Unicode(help="The typed secret; the panel clears it at once").tag(
        sync=True, echo_update=False
    )


def panel(df: pd.DataFrame | None = None, **options: Any) -> Panel:
    """Open the panel, on ``df`` if given (else on the DataFrames of the user namespace).

    Options are :class:`Panel`'s keyword arguments.
    """
    return Panel(df, **options)


def _esc(value: object) -> str:
    return html.escape(str(value))


def _table(frame: pd.DataFrame, what: str, *, index: bool = True, limit: int = _TABLE_ROWS) -> str:
    """A frame as an HTML table (first ``limit`` rows), escaped, in a scrolling box."""
    if frame.empty:
        return f'<div class="cms-muted">no {_esc(what)}</div>'
    note = ""
    if len(frame) > limit:
        note = (
            f'<div class="cms-muted">first {limit:,} of {len(frame):,} {_esc(what)}; '
            "all of them are in <code>panel.result</code></div>"
        )
    table = frame.head(limit).to_html(border=0, na_rep="", escape=True, index=index)
    return f'{note}<div class="cms-table">{table}</div>'


def _readable_requests(result: SendResult) -> pd.DataFrame:
    """The requests table for reading: latency rounded, send time to the millisecond."""
    frame = result.requests
    if frame.empty:
        return frame
    frame["latency_ms"] = frame["latency_ms"].round(1)
    frame["sent_at"] = frame["sent_at"].dt.strftime("%H:%M:%S.%f").str[:-3]
    renamed: pd.DataFrame = frame.rename(columns={"sent_at": "sent_at_utc"})
    return renamed


class Panel:
    """The widget panel; display it to use it. ``panel.widget`` is the ``VBox``.

    ``df``: the DataFrame to start on (the namespace's DataFrames are listed too).
    ``namespace``: where to look for DataFrames (default: the IPython user namespace,
    when there is one). ``credentials_resolver``: how credentials are found for a
    real endpoint (default :func:`~cms_magic.resolve_credentials`). ``prober``: what
    the Probe button runs (default: :func:`cms_magic.probe.probe` over
    ``probe_targets``, each step bounded by ``probe_timeout`` seconds).
    ``region``: the initial target, :data:`LOCAL` (default), :data:`PUBLIC` or a
    region id.

    Attributes: ``result`` (the latest :class:`~cms_magic.results.SendResult`),
    ``job`` (the current or latest :class:`~cms_magic.sending.client.SendJob`),
    ``probe_results``, ``last_error``; methods :meth:`send`, :meth:`dry_run`,
    :meth:`cancel`, :meth:`retry_failed`, :meth:`probe`, :meth:`refresh`,
    :meth:`wait`.
    """

    def __init__(
        self,
        df: pd.DataFrame | None = None,
        *,
        namespace: Mapping[str, Any] | None = None,
        credentials_resolver: Callable[[], Credentials] | None = None,
        prober: Callable[[], list[ProbeResult]] | None = None,
        probe_targets: Sequence[tuple[str, str]] | None = None,
        probe_timeout: float = 2.0,
        region: str = LOCAL,
    ) -> None:
        import pandas as pd

        if df is not None and not isinstance(df, pd.DataFrame):
            raise ConfigError(f"panel(df) takes a pandas DataFrame, got {type(df).__name__}")
        self._df = df
        self._namespace = namespace
        self._resolve: Callable[[], Credentials] = credentials_resolver or resolve_credentials
        targets = list(probe_targets) if probe_targets is not None else None
        self._prober: Callable[[], list[ProbeResult]] = prober or functools.partial(
            probe, targets, timeout=probe_timeout
        )
        self._probe_targets = targets if targets is not None else default_targets()

        #: The latest result (of a send, a dry run or a retry), or None.
        self.result: SendResult | None = None
        #: The current or latest background send, or None.
        self.job: SendJob | None = None
        #: The latest probe's results, sorted (reachable first, fastest first).
        self.probe_results: list[ProbeResult] = []
        #: The latest exception a callback raised (also shown in the panel).
        self.last_error: BaseException | None = None

        self._credentials: Credentials | None = None
        self._entered_id: str | None = None
        self._entered_credentials: Credentials | None = None
        self._frames: dict[str, pd.DataFrame] = {}
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        self._progress_lock = threading.Lock()
        self._last_progress = 0.0
        self._choosing = False  # True while the panel itself rewrites the region list
        self._quiet = False  # True while the panel itself rewrites the data controls
        self._verb = "sending"
        self._busy = False  # a send, dry run or retry runs or its results are being drawn

        self._build_target(region)
        self._build_data()
        self._build_actions()
        self._build_results()
        self._build_regions()
        self._build_layout()

        self._callback(self._refresh_target)()
        self._callback(self.refresh)()

    # ================================================================= building

    def _callback(self, fn: Callable[..., object]) -> Callable[..., None]:
        """THE wrapper for every callback and worker: an exception is shown in the panel."""

        @functools.wraps(fn)
        def guarded(*args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:
                self._show_error(exc)

        return guarded

    def _on(self, widget: Any, handler: Callable[..., object], names: str = "value") -> None:
        widget.observe(self._callback(handler), names=names)

    def _button(self, description: str, css: str, handler: Callable[[], object], **kw: Any) -> Any:
        button = w.Button(description=description, **kw)
        button.add_class(css)
        button.on_click(self._callback(lambda _button: handler()))
        return button

    def _build_target(self, region: str) -> None:
        options: list[tuple[str, str]] = [
            ("local emulator (127.0.0.1, demo key)", LOCAL),
            ("public endpoint", PUBLIC),
        ] + [(f"{r.id} · {r.name}", r.id) for r in regions()]
        values = [v for _, v in options]
        if region not in values:
            get_region(region)  # raises UnknownRegionError listing the ids
            region = next(v for v in values if v.lower() == region.strip().lower())
        self.region = w.Dropdown(
            options=options,
            value=region,
            description="Region",
            style=_WIDE,
            layout=w.Layout(width="400px"),
        )
        self.region.add_class("cms-region")
        self.internal = w.ToggleButtons(
            options=[("public", False), ("internal", True)],
            value=False,
            tooltips=["the public endpoint", "the region's internal endpoint (from its VPC)"],
            style={"button_width": "70px"},
        )
        self.internal.add_class("cms-internal")
        self.custom_endpoint = w.Text(
            description="Custom URL",
            placeholder="https://host[:port] (overrides the region)",
            continuous_update=False,
            style=_WIDE,
            layout=w.Layout(width="520px"),
        )
        self.custom_endpoint.add_class("cms-custom-endpoint")
        self.url_label = w.HTML()
        self.url_label.add_class("cms-url")
        self.credentials_label = w.HTML()
        self.credentials_label.add_class("cms-credentials")
        self.key_id = w.Text(
            description="AccessKey id",
            placeholder="LTAI...",
            continuous_update=False,
            style=_WIDE,
        )
        self.key_id.add_class("cms-key-id")
        self.secret = _SecretField(
            description="Secret",
            placeholder="AccessKey secret (kept in memory only)",
            continuous_update=False,
            style=_WIDE,
        )
        self.secret.add_class("cms-secret")
        self.entry_note = w.HTML()
        self.credentials_entry = w.VBox([self.key_id, self.secret, self.entry_note])
        self.credentials_entry.add_class("cms-credentials-entry")
        self.credentials_entry.layout.display = "none"
        for widget in (self.region, self.internal, self.custom_endpoint):
            self._on(widget, lambda _change: self._refresh_target())
        self._on(self.key_id, self._on_key_id)
        self._on(self.secret, self._on_secret)

    def _build_data(self) -> None:
        self.frame_picker = w.Dropdown(
            description="DataFrame", style=_WIDE, layout=w.Layout(width="400px")
        )
        self.frame_picker.add_class("cms-frame")
        self.refresh_button = self._button(
            "Refresh", "cms-refresh", self.refresh, icon="refresh", tooltip="look for DataFrames"
        )
        self.refresh_button.layout.width = "100px"

        def toggle(options: list[str], css: str) -> Any:
            buttons = w.ToggleButtons(options=options, style={"button_width": "90px"})
            buttons.add_class(css)
            return buttons

        def column(css: str) -> Any:
            dropdown = w.Dropdown(options=[], layout=w.Layout(width="220px"))
            dropdown.add_class(css)
            return dropdown

        def text(css: str, placeholder: str, width: str = "220px") -> Any:
            field = w.Text(
                placeholder=placeholder, continuous_update=False, layout=w.Layout(width=width)
            )
            field.add_class(css)
            return field

        self.name_mode = toggle(["constant", "column"], "cms-name-mode")
        self.name_value = text("cms-name", "event name")
        self.name_value.value = "custom_event"
        self.name_column = column("cms-name-col")
        self.content_mode = toggle(["whole row", "column", "template"], "cms-content-mode")
        self.content_column = column("cms-content-col")
        self.content_template = text(
            "cms-content-template", "[{severity}] {host}: {message}", "360px"
        )
        self.group_mode = toggle(["none", "constant", "column"], "cms-group-mode")
        self.group_value = text("cms-group-id", "group id (an integer)")
        self.group_column = column("cms-group-col")
        self.time_column = w.Dropdown(
            options=[("(none: the service stamps the time)", "")],
            description="Time column",
            style=_WIDE,
        )
        self.time_column.add_class("cms-time-col")
        self.tz = w.Text(
            description="Time zone",
            placeholder="for naive times; default: this machine's",
            continuous_update=False,
            style=_WIDE,
        )
        self.tz.add_class("cms-tz")
        self.counts = w.HTML()
        self.counts.add_class("cms-counts")
        self.preview = w.HTML()
        self.preview.add_class("cms-preview")

        self._on(self.frame_picker, self._on_frame)
        for mode in (self.name_mode, self.content_mode, self.group_mode):
            self._on(mode, lambda _change: self._show_modes())
        for widget in (
            self.name_mode,
            self.name_value,
            self.name_column,
            self.content_mode,
            self.content_column,
            self.content_template,
            self.group_mode,
            self.group_value,
            self.group_column,
            self.time_column,
            self.tz,
        ):
            self._on(widget, lambda _change: self._refresh_preview())

    def _build_actions(self) -> None:
        self.dry_run_button = self._button(
            "Dry run", "cms-dry-run", self.dry_run, icon="eye", tooltip="everything but the POST"
        )
        self.send_button = self._button(
            "Send", "cms-send", self.send, icon="paper-plane", button_style="primary"
        )
        self.cancel_button = self._button(
            "Cancel", "cms-cancel", self.cancel, icon="stop", button_style="warning", disabled=True
        )
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="240px"))
        self.progress.add_class("cms-progress")
        self.status = w.HTML('<span class="cms-muted">ready</span>')
        self.status.add_class("cms-status")

    def _build_results(self) -> None:
        self.summary = w.HTML('<span class="cms-muted">no send yet</span>')
        self.summary.add_class("cms-summary")
        self.requests_table = w.HTML()
        self.requests_table.add_class("cms-requests")
        self.events_table = w.HTML()
        self.events_table.add_class("cms-events")
        self.failed_table = w.HTML()
        self.failed_table.add_class("cms-failed")
        self.results_tabs = w.Tab(
            children=[self.requests_table, self.events_table, self.failed_table],
            titles=["Requests", "Events", "Failed rows"],
        )
        self.results_tabs.add_class("cms-results")
        self.results_tabs.layout.display = "none"
        self.retry_button = self._button(
            "Retry failed", "cms-retry", self.retry_failed, icon="redo", disabled=True
        )

    def _build_regions(self) -> None:
        self.regions_table = w.HTML(self._catalog_html())
        self.regions_table.add_class("cms-regions")
        self.probe_button = self._button(
            "Probe",
            "cms-probe",
            self.probe,
            icon="signal",
            tooltip="measure DNS and TCP connect time to every endpoint (sends nothing)",
        )
        self.probe_status = w.HTML(
            '<span class="cms-muted">Probe resolves each endpoint and opens a TCP connection '
            "to it (nothing is sent); until you click, nothing is contacted.</span>"
        )
        self.probe_status.add_class("cms-probe-status")
        self.probe_table = w.HTML()
        self.probe_table.add_class("cms-probe-results")
        self.region_list = w.Select(
            options=self._region_list_options(), value=None, rows=8, layout=w.Layout(width="100%")
        )
        self.region_list.add_class("cms-region-list")
        self._on(self.region_list, self._on_region_chosen)

    def _build_layout(self) -> None:
        def heading(text: str) -> Any:
            return w.HTML(f"<b>{_esc(text)}</b>")

        self.error = w.HTML()
        self.error.add_class("cms-error")
        self.dismiss_button = self._button("Dismiss", "cms-dismiss", self.clear_error, icon="times")
        self.error_box = w.HBox([self.error, self.dismiss_button])
        self.error_box.layout.display = "none"

        def row(label: str, *widgets: Any) -> Any:
            return w.HBox([w.Label(label, layout=w.Layout(width="110px")), *widgets])

        name_row = row("Name", self.name_mode, self.name_value, self.name_column)
        content_row = row("Content", self.content_mode, self.content_column, self.content_template)
        group_row = row("Group id", self.group_mode, self.group_value, self.group_column)
        send_page = w.VBox(
            [
                heading("Target"),
                w.HBox([self.region, self.internal]),
                self.custom_endpoint,
                self.url_label,
                self.credentials_label,
                self.credentials_entry,
                heading("Data"),
                w.HBox([self.frame_picker, self.refresh_button]),
                name_row,
                content_row,
                group_row,
                w.HBox([self.time_column, self.tz]),
                self.counts,
                self.preview,
                w.HBox(
                    [
                        self.dry_run_button,
                        self.send_button,
                        self.cancel_button,
                        self.progress,
                        self.status,
                    ],
                    layout=w.Layout(align_items="center"),
                ),
                heading("Results"),
                self.summary,
                self.results_tabs,
                self.retry_button,
            ]
        )
        regions_page = w.VBox(
            [
                w.HBox(
                    [self.probe_button, self.probe_status], layout=w.Layout(align_items="center")
                ),
                w.HTML('<span class="cms-muted">Choose an endpoint to make it the target:</span>'),
                self.region_list,
                self.probe_table,
                self.regions_table,
            ]
        )
        self.tabs = w.Tab(children=[send_page, regions_page], titles=["Send", "Regions"])
        self.tabs.add_class("cms-tabs")
        title = w.HTML(
            _STYLE + "<b>cms_magic</b> · report DataFrame rows as CloudMonitor custom events"
        )
        self.widget = w.VBox([title, self.tabs, self.error_box])
        self.widget.add_class("cms-panel")
        self._show_modes()

    # ================================================================= display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        frame = self.frame_picker.label or "no DataFrame"
        last = f"; last: {self.result.summary()}" if self.result is not None else ""
        return f"<cms_magic panel: target {self.url_label_text()}, {frame}{last}>"

    def url_label_text(self) -> str:
        """The target URL, or why there is none (for reprs and tests)."""
        try:
            return self._target_url()
        except CmsError as exc:
            return f"(no target: {exc})"

    # ================================================================= errors

    def _show_error(self, exc: BaseException) -> None:
        self.last_error = exc
        if isinstance(exc, CmsError):  # a user error: the message says it all
            detail = ""
        else:
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
            detail = (
                "<details><summary>traceback</summary>"
                f"<pre style='font-size:11px'>{_esc(''.join(lines))}</pre></details>"
            )
        self.error.value = (
            '<div class="cms-bad" style="white-space:pre-wrap">'
            f"<b>{_esc(type(exc).__name__)}</b>: {_esc(exc)}</div>{detail}"
        )
        self.error_box.layout.display = ""

    def clear_error(self) -> None:
        """Hide the error area."""
        self.last_error = None
        self.error.value = ""
        self.error_box.layout.display = "none"

    # ================================================================= target

    def _target_url(self) -> str:
        custom = self.custom_endpoint.value.strip()
        if custom:
            return endpoint(custom)
        if self.region.value == LOCAL:
            return emulator.embedded().url
        if self.region.value == PUBLIC:
            return public_endpoint()
        return endpoint(self.region.value, internal=bool(self.internal.value))

    def _is_local(self) -> bool:
        custom = self.custom_endpoint.value.strip()
        if custom:
            running = emulator.embedded_running()
            return running is not None and endpoint(custom) == running.url
        return bool(self.region.value == LOCAL)

    def _refresh_target(self) -> None:
        custom = bool(self.custom_endpoint.value.strip())
        self.internal.disabled = custom or self.region.value in (LOCAL, PUBLIC)
        try:
            url = self._target_url()
        except CmsError as exc:
            self.url_label.value = f'URL: <span class="cms-bad">{_esc(exc)}</span>'
            return
        if self._is_local():
            where = "the local emulator: nothing leaves this machine"
        elif custom:
            where = "a custom endpoint"
        else:
            where = "Alibaba Cloud: events leave this machine"
        self.url_label.value = (
            f"URL: <code>{_esc(url)}</code> <span class='cms-muted'>({where})</span>"
        )
        self._refresh_credentials()

    def _refresh_credentials(self) -> None:
        if self._is_local():
            self._credentials = emulator.embedded().credentials
            self.credentials_entry.layout.display = "none"
            self._show_credentials(self._credentials, "the emulator accepts only its demo key")
            return
        try:
            self._credentials = self._resolve()
        except CredentialsError as exc:
            if self._entered_credentials is not None:
                self._credentials = self._entered_credentials
                self.credentials_entry.layout.display = "none"
                self._show_credentials(self._credentials, "kept in memory, never saved")
                return
            self._credentials = None
            first, _, rest = str(exc).partition("\n")
            more = f"<details><summary>where I looked</summary><pre>{_esc(rest)}</pre></details>"
            self.credentials_label.value = (
                f'Credentials: <span class="cms-bad">{_esc(first)}</span>'
                f"{more if rest else ''} Enter a key below (kept in memory only)."
            )
            self.credentials_entry.layout.display = ""
            return
        self.credentials_entry.layout.display = "none"
        self._show_credentials(self._credentials)

    def _show_credentials(self, credentials: Credentials, note: str = "") -> None:
        token = ", STS token" if credentials.security_token else ""
        extra = f" <span class='cms-muted'>({_esc(note)})</span>" if note else ""
        self.credentials_label.value = (
            f"Credentials: <code>{_esc(credentials.masked_id)}</code>{token} "
            f"from {_esc(credentials.source)}{extra}"
        )

    def _on_key_id(self, change: Mapping[str, Any]) -> None:
        value = str(change["new"] or "").strip()
        if not value:
            return
        self.key_id.value = ""  # read into memory, cleared from the widget at once
        self._entered_id = value
        self._complete_entry(None)

    def _on_secret(self, change: Mapping[str, Any]) -> None:
        value = str(change["new"] or "")
        if not value:
            return
        self.secret.value = ""  # read into memory, cleared from the widget at once
        self._complete_entry(value)

    def _complete_entry(self, secret: str | None) -> None:
        if secret is None:
            self.entry_note.value = (
                f"AccessKey id <code>{_esc(mask(self._entered_id or ''))}</code> kept; "
                "now the secret."
            )
            return
        if self._entered_id is None:
            self.entry_note.value = (
                '<span class="cms-bad">type the AccessKey id first, then the secret again</span>'
            )
            return
        credentials = Credentials(self._entered_id, secret, source="the panel (typed in)")
        self._entered_credentials = credentials
        self.entry_note.value = ""
        self._refresh_credentials()

    def forget_credentials(self) -> None:
        """Drop credentials typed into the panel."""
        self._entered_id = None
        self._entered_credentials = None
        self._refresh_target()

    # ================================================================= data

    def _user_namespace(self) -> Mapping[str, Any]:
        if self._namespace is not None:
            return self._namespace
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython is a dependency
            return {}
        shell = get_ipython()
        return shell.user_ns if shell is not None else {}

    def _discover(self) -> dict[str, pd.DataFrame]:
        import pandas as pd

        found: dict[str, pd.DataFrame] = {}
        argument_named = False
        for name, value in self._user_namespace().items():
            if name.startswith("_") or not isinstance(value, pd.DataFrame):
                continue
            found[name] = value
            argument_named = argument_named or value is self._df
        if self._df is not None and not argument_named:
            found = {_ARGUMENT: self._df, **found}
        return found

    def refresh(self) -> None:
        """Look for DataFrames again (in the user namespace, and the one passed in)."""
        previous = self.frame_picker.value
        self._frames = self._discover()
        options = [
            (
                f"{'the DataFrame passed in' if key == _ARGUMENT else key} "
                f"({len(frame):,} rows × {frame.shape[1]} columns)",
                key,
            )
            for key, frame in self._frames.items()
        ]
        if previous in self._frames:
            chosen = previous
        elif self._df is not None:
            chosen = next(k for k, f in self._frames.items() if f is self._df)
        else:
            chosen = next(iter(self._frames), None)
        with self._quiet_preview():
            self.frame_picker.options = options
            self.frame_picker.value = chosen
        self._on_frame()

    def _frame(self) -> pd.DataFrame | None:
        import pandas as pd

        key = self.frame_picker.value
        if key is None:
            return None
        if key == _ARGUMENT:
            return self._df
        current = self._user_namespace().get(key)  # the name may have been rebound
        if isinstance(current, pd.DataFrame):
            return current
        return self._frames.get(key)

    def _on_frame(self, _change: Mapping[str, Any] | None = None) -> None:
        if self._quiet:
            return
        frame = self._frame()
        columns = [str(c) for c in frame.columns] if frame is not None else []
        lowered = {c.lower(): c for c in columns}

        def pick(*names: str) -> str | None:
            return next((lowered[n] for n in names if n in lowered), None)

        def keep(dropdown: Any, default: str | None) -> None:
            current = dropdown.value
            dropdown.options = columns
            dropdown.value = current if current in columns else (default or None)

        with self._quiet_preview():
            name_col = pick("name", "event", "event_name")
            keep(self.name_column, name_col or (columns[0] if columns else None))
            content_col = pick("content", "message", "msg", "text")
            keep(self.content_column, content_col or (columns[0] if columns else None))
            group_col = pick("group_id", "groupid", "group")
            keep(self.group_column, group_col or (columns[0] if columns else None))
            time_options = [("(none: the service stamps the time)", "")] + [(c, c) for c in columns]
            current_time = self.time_column.value
            self.time_column.options = time_options
            time_default = pick("time", "timestamp", "ts", "datetime", "date") or ""
            if not time_default and frame is not None:
                time_default = next(
                    (str(c) for c in frame.columns if frame[c].dtype.kind == "M"), ""
                )
            self.time_column.value = current_time if current_time in columns else time_default
            if name_col is not None and self.name_mode.value == "constant" and columns:
                self.name_mode.value = "column"
            if group_col is not None and self.group_mode.value == "none":
                self.group_mode.value = "column"
        self._show_modes()
        self._refresh_preview()

    @contextlib.contextmanager
    def _quiet_preview(self) -> Iterator[None]:
        """While active, changes the panel makes to the data controls redraw nothing."""
        before, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = before

    def _show_modes(self) -> None:
        def show(widget: Any, visible: bool) -> None:
            widget.layout.display = "" if visible else "none"

        show(self.name_value, self.name_mode.value == "constant")
        show(self.name_column, self.name_mode.value == "column")
        show(self.content_column, self.content_mode.value == "column")
        show(self.content_template, self.content_mode.value == "template")
        show(self.group_value, self.group_mode.value == "constant")
        show(self.group_column, self.group_mode.value == "column")

    def mapping(self) -> dict[str, Any]:
        """The mapping options the controls describe, as :func:`cms_magic.send` takes them."""
        options: dict[str, Any] = {}
        if self.name_mode.value == "constant":
            name = self.name_value.value.strip()
            if not name:
                raise MappingError("name: type an event name, or take it from a column")
            options["name"] = name
        else:
            if not self.name_column.value:
                raise MappingError("name: choose the column that holds the event names")
            options["name_col"] = self.name_column.value
        if self.content_mode.value == "column":
            if not self.content_column.value:
                raise MappingError("content: choose the column that holds the content")
            options["content_col"] = self.content_column.value
        elif self.content_mode.value == "template":
            template = self.content_template.value
            if not template.strip():
                raise MappingError("content: type a template such as '{host}: {message}'")
            options["content_template"] = template
        if self.group_mode.value == "constant":
            raw = self.group_value.value.strip()
            try:
                options["group_id"] = int(raw)
            except ValueError:
                raise MappingError(f"group id must be a whole number, got {raw!r}") from None
        elif self.group_mode.value == "column":
            if not self.group_column.value:
                raise MappingError("group id: choose the column that holds the group ids")
            options["group_id_col"] = self.group_column.value
        if self.time_column.value:
            options["time_col"] = self.time_column.value
        if self.tz.value.strip():
            options["tz"] = self.tz.value.strip()
        return options

    def _refresh_preview(self) -> None:
        if self._quiet:
            return
        frame = self._frame()
        if frame is None:
            self.counts.value = (
                '<span class="cms-muted">no DataFrame: pass one to <code>panel(df)</code>, or '
                "create one and press Refresh</span>"
            )
            self.preview.value = ""
            return
        try:
            options = self.mapping()
            sample = frame if len(frame) <= _PREVIEW_ROW_LIMIT else frame.iloc[:_PREVIEW_ROW_LIMIT]
            conversion = events_from_frame(sample, **options)
            plan = plan_batches(conversion.payloads, positions=conversion.positions)
        except MappingError as exc:
            self.counts.value = f'<span class="cms-bad">mapping: {_esc(exc)}</span>'
            self.preview.value = ""
            return
        rejected = {**conversion.rejected, **plan.rejected}
        events = len(conversion) - len(plan.rejected)
        scope = (
            ""
            if len(sample) == len(frame)
            else f" <span class='cms-muted'>(counted on the first {len(sample):,} of "
            f"{len(frame):,} rows)</span>"
        )
        bad = ' class="cms-bad"' if rejected else ""
        self.counts.value = (
            f"<b>{len(sample):,}</b> rows → <b>{events:,}</b> events in "
            f"<b>{len(plan.batches):,}</b> requests; <span{bad}><b>{len(rejected):,}</b> "
            f"rejected by validation</span>{scope}{self._reasons_html(rejected, sample)}"
        )
        shown = [p.decode("utf-8") for p in conversion.payloads[:_PREVIEW_EVENTS]]
        self.preview.value = (
            f'<span class="cms-muted">first {len(shown)} events, as sent:</span>'
            f'<pre class="cms-json">{_esc(chr(10).join(shown))}</pre>'
        )

    @staticmethod
    def _reasons_html(rejected: Mapping[int, str], frame: pd.DataFrame) -> str:
        if not rejected:
            return ""
        items = sorted(rejected.items())[:_SHOWN_REASONS]
        lines = "".join(
            f"<li>row {_esc(frame.index[position])}: {_esc(reason)}</li>"
            for position, reason in items
        )
        more = len(rejected) - len(items)
        tail = f"<li class='cms-muted'>and {more:,} more</li>" if more else ""
        return f'<ul class="cms-reasons" style="margin:2px 0">{lines}{tail}</ul>'

    # ================================================================= sending

    def send(self) -> SendJob:
        """Send the chosen DataFrame to the target in the background; returns the job."""
        return self._start(dry_run=False)

    def dry_run(self) -> SendJob:
        """Everything but the POST: the result says what would be sent, and the first
        request (Authorization masked) shows in the Requests tab."""
        return self._start(dry_run=True)

    def _running(self) -> bool:
        """True from the start of a send until its results are shown."""
        return self._busy

    def _start(self, *, dry_run: bool) -> SendJob:
        if self._running():
            raise ConfigError("a send is already running: wait for it, or Cancel it")
        self.clear_error()
        frame = self._frame()
        if frame is None:
            raise ConfigError("no DataFrame: pass one to panel(df), or create one and Refresh")
        options = self.mapping()
        url = self._target_url()
        self._refresh_credentials()
        if self._credentials is None:
            raise CredentialsError(
                "no credentials for this endpoint: type an AccessKey id and secret above, or "
                "set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET and "
                "choose the target again"
            )
        credentials = self._credentials

        def start(progress: Callable[[Progress], None]) -> SendJob:
            job: SendJob = send(
                frame,
                endpoint=url,
                credentials=credentials,
                dry_run=dry_run,
                background=True,
                progress=progress,
                **options,
            )
            return job

        return self._launch(start, total=len(frame), verb="dry run" if dry_run else "sending")

    def _launch(
        self, start: Callable[[Callable[[Progress], None]], SendJob], *, total: int, verb: str
    ) -> SendJob:
        """Start a background send (``start`` is given the progress callback) and watch it."""
        self._set_running(True, total=total)
        self.status.value = f"{_esc(verb)}: starting…"
        try:
            job = start(self._callback(self._on_progress))
        except BaseException:
            self._set_running(False)
            self.status.value = '<span class="cms-bad">not started</span>'
            raise
        self.job = job
        self._verb = verb
        self._in_background(self._finish, job)
        return job

    def _on_progress(self, progress: Progress) -> None:
        """Called by the sender's threads (through :meth:`_callback`): traits only."""
        with self._progress_lock:
            now = time.monotonic()
            if not progress.finished and now - self._last_progress < _PROGRESS_INTERVAL:
                return
            self._last_progress = now
        self.progress.max = max(progress.total, 1)
        self.progress.value = progress.done
        self.status.value = f"{_esc(self._verb)}: {_esc(progress.line())}"

    def _finish(self, job: SendJob) -> None:
        try:
            self._show_result(job.result())
        except BaseException:
            self.progress.bar_style = "danger"
            self.status.value = '<span class="cms-bad">the send failed (see below)</span>'
            raise
        finally:
            self._set_running(False)

    def _set_running(self, running: bool, total: int = 0) -> None:
        self._busy = running
        self.send_button.disabled = running
        self.dry_run_button.disabled = running
        self.cancel_button.disabled = not running
        if running:
            self.retry_button.disabled = True
            self.progress.bar_style = "info"
            self.progress.max = max(total, 1)
            self.progress.value = 0
            with self._progress_lock:
                self._last_progress = 0.0
        else:
            self.retry_button.disabled = not self._retryable()
            self.cancel_button.description = "Cancel"

    def cancel(self) -> None:
        """Stop the running send at the next batch boundary (the rest stays ``not_sent``)."""
        if self.job is None or self.job.done():
            return
        self.job.cancel()
        self.cancel_button.disabled = True
        self.cancel_button.description = "Cancelling…"

    def _retryable(self) -> int:
        if self.result is None:
            return 0
        return int(self.result.failed_mask(include_unknown=False).sum())

    def retry_failed(self) -> SendJob:
        """Resend, in the background, the rows of the latest result that were not accepted
        (``unknown`` rows excluded: they may have arrived), with the same target and mapping."""
        if self._running():
            raise ConfigError("a send is already running: wait for it, or Cancel it")
        previous = self.result
        if previous is None or not self._retryable():
            raise ConfigError("nothing to retry: every row of the latest send was accepted")
        self.clear_error()

        def start(progress: Callable[[Progress], None]) -> SendJob:
            # Not-sent and rejected rows, not unknown ones; merged into the previous result.
            job: SendJob = previous.retry(include_rejected=True, background=True, progress=progress)
            return job

        return self._launch(start, total=self._retryable(), verb="retrying")

    # ================================================================= results

    def _show_result(self, result: SendResult) -> None:
        self.result = result
        counts = result.counts()
        if result.error or result.cancelled:
            style, icon = "danger", "✖"
        elif result.ok or counts["dry_run"] == len(result):
            style, icon = "success", "✔"
        else:
            style, icon = "warning", "⚠"
        colour = {"success": "cms-good", "warning": "cms-bad", "danger": "cms-bad"}[style]
        chips = " · ".join(f"{n:,} {status.replace('_', ' ')}" for status, n in counts.items() if n)
        self.summary.value = (
            f'<span class="{colour}"><b>{icon} {_esc(result.summary())}</b></span> '
            f"<span class='cms-muted'>({_esc(chips or 'no rows')}; {_esc(result.endpoint)})</span>"
        )
        self.progress.bar_style = style
        self.progress.max = max(len(result), 1)
        self.progress.value = len(result) - counts["not_sent"]
        self.status.value = _esc(f"done in {result.elapsed:.1f} s")
        if result.preview is not None:
            preview = json.dumps(result.preview, indent=2, ensure_ascii=False)
            self.requests_table.value = (
                '<span class="cms-muted">dry run: no request was sent; the first would be '
                "(Authorization masked):</span>"
                f'<pre class="cms-json">{_esc(preview)}</pre>'
            )
        else:
            self.requests_table.value = _table(_readable_requests(result), "requests", index=False)
        self.events_table.value = _table(result.events, "events")
        failed_mask = result.failed_mask()
        self.failed_table.value = _table(self._failed_frame(result, failed_mask), "failed rows")
        failed = int(failed_mask.sum())
        self.results_tabs.titles = [
            f"Requests ({len(result.request_records):,})",
            f"Events ({len(result):,})",
            f"Failed rows ({failed:,})",
        ]
        self.results_tabs.selected_index = 2 if failed else 0
        self.results_tabs.layout.display = ""
        retryable = int(result.failed_mask(include_unknown=False).sum())
        self.retry_button.description = (
            f"Retry failed ({retryable:,})" if retryable else "Retry failed"
        )

    @staticmethod
    def _failed_frame(result: SendResult, mask_: np.ndarray[Any, Any]) -> pd.DataFrame:
        """The failed source rows, with their status and reason first."""
        import pandas as pd

        events: pd.DataFrame = result.events.iloc[np.flatnonzero(mask_)]
        source = result.failed()
        if not isinstance(source, pd.DataFrame) or len(source) != len(events):
            return events
        table: pd.DataFrame = source.copy()
        table.insert(0, "cms_reason", events["reason"].to_numpy())
        table.insert(0, "cms_status", events["status"].astype(str).to_numpy())
        return table

    # ================================================================= regions

    @staticmethod
    def _catalog_html() -> str:
        rows = "".join(
            f"<tr><td><code>{_esc(r.id)}</code></td><td>{_esc(r.name)}</td>"
            f"<td><code>{_esc(r.internal_endpoint)}</code></td></tr>"
            for r in regions()
        )
        return (
            f"<b>Regions</b> · public endpoint, the same for every region: "
            f"<code>{_esc(public_endpoint())}</code>"
            '<div class="cms-table" style="max-height:none"><table><thead><tr><th>id</th>'
            "<th>name</th><th>internal endpoint (reachable from inside the region)</th></tr>"
            f"</thead><tbody>{rows}</tbody></table></div>"
        )

    def _describe(self, label: str) -> str:
        if label == PUBLIC:
            return "public endpoint"
        if label.lower() in {i.lower() for i in region_ids()}:
            return f"{get_region(label).name}, internal"
        return label

    def _region_list_options(self) -> list[tuple[str, str]]:
        width = max((len(label) for label, _ in self._probe_targets), default=8)
        if not self.probe_results:
            return [
                (f"{label:<{width}}  {self._describe(label)}", label)
                for label, _ in self._probe_targets
            ]
        slowest = max((r.latency_ms or 0.0 for r in self.probe_results), default=0.0) or 1.0
        options = []
        for r in self.probe_results:
            if r.reachable and r.latency_ms is not None:
                bar = "█" * max(1, round(_BAR_CHARS * r.latency_ms / slowest))
                shown = f"{r.latency_ms:8.1f} ms  {bar}"
            else:
                shown = f"{'unreachable':>11}  {r.reason}"
            options.append((f"{r.label:<{width}}  {shown}", r.label))
        return options

    def probe(self) -> None:
        """Measure every endpoint in the background (the Probe button); see the Regions tab."""
        self.probe_button.disabled = True
        self.probe_status.value = "probing…"
        self._in_background(self._run_probe)

    def _run_probe(self) -> None:
        try:
            results = self._prober()
            self.probe_results = results
            self._choosing = True
            try:
                self.region_list.options = self._region_list_options()
                self.region_list.value = None
            finally:
                self._choosing = False
            self.probe_table.value = self._probe_html(results)
            reachable = sum(r.reachable for r in results)
            self.probe_status.value = (
                f"{reachable} of {len(results)} endpoints reachable from here"
                " <span class='cms-muted'>(internal endpoints answer only from inside "
                "Alibaba Cloud)</span>"
            )
        except BaseException:
            self.probe_status.value = '<span class="cms-bad">the probe failed (see below)</span>'
            raise
        finally:
            self.probe_button.disabled = False

    @staticmethod
    def _probe_html(results: Sequence[ProbeResult]) -> str:
        slowest = max((r.latency_ms or 0.0 for r in results), default=0.0) or 1.0
        rows = []
        for r in results:
            if r.reachable and r.latency_ms is not None:
                width = max(1.0, 100 * r.latency_ms / slowest)
                bar = (
                    f'<div style="background:#1565c0;height:10px;width:{width:.0f}%;'
                    'min-width:2px"></div>'
                )
                status = f'<span class="cms-good">reachable</span> ({_esc(r.address)})'
                latency = f"{r.latency_ms:.1f} ms"
            else:
                bar = ""
                status = f'<span class="cms-bad">unreachable</span>: {_esc(r.reason)}'
                latency = ""
            rows.append(
                f"<tr><td><code>{_esc(r.label)}</code></td>"
                f"<td style='text-align:right'>{latency}</td>"
                f"<td style='width:160px;min-width:160px'>{bar}</td>"
                f"<td>{status}</td><td><code>{_esc(r.url)}</code></td></tr>"
            )
        return (
            '<div class="cms-table" style="max-height:none"><table><thead><tr><th>target</th>'
            "<th>latency</th><th></th><th>status</th><th>url</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )

    def _on_region_chosen(self, change: Mapping[str, Any]) -> None:
        label = change["new"]
        if self._choosing or not label:
            return
        self.choose_target(label)

    def choose_target(self, label: str) -> None:
        """Make a probe target the send target: ``"public"`` or a region id (its internal
        endpoint). Other labels (custom probe targets) are ignored."""
        if label == PUBLIC:
            self.custom_endpoint.value = ""
            self.region.value = PUBLIC
            return
        ids = {i.lower(): i for i in region_ids()}
        region_id = ids.get(label.lower())
        if region_id is None:
            return
        self.custom_endpoint.value = ""
        self.internal.value = True
        self.region.value = region_id
        self.tabs.selected_index = 0

    # ================================================================= background work

    def _in_background(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(
            target=self._callback(target), args=args, name="cms_magic panel", daemon=True
        )
        with self._threads_lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the panel's background work (send, retry, probe) has finished and
        its results are shown; True if it has (False: ``timeout`` passed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not any(t.is_alive() for t in threads)
