"""The panel's widgets: built, laid out, read and redrawn; no state of a send, no callbacks.

:class:`Controls` is the view half of the panel (:class:`~cms_magic.ui.panel.panel.Panel`
is the other half: state and callbacks). It builds the sections top-down, as they
appear: *Target* (region, internal, custom URL, the credentials entry), *Data*
(the frame picker and the mapping), *Actions* (dry run, send, cancel, progress),
*Results*, and the *Regions* tab (:class:`~cms_magic.ui.panel.regions.RegionsTab`).

Labels, tooltips and placeholders come from the one options table
(:mod:`cms_magic.ui.options`), so the panel names an option as its errors do.
Key widgets carry stable CSS classes (``cms-send``, ``cms-summary``...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

import ipywidgets as w

from cms_magic.errors import MappingError
from cms_magic.ui.options import option
from cms_magic.ui.panel import html
from cms_magic.ui.panel.credentials import CredentialsEntry
from cms_magic.ui.panel.events import EventsTab
from cms_magic.ui.panel.regions import RegionsTab, TargetChoice, chosen_target, region_choices

if TYPE_CHECKING:
    import pandas as pd

    from cms_magic.progress import Progress
    from cms_magic.results import SendResult

__all__ = ["Controls"]

_WIDE: Final = {"description_width": "110px"}
_NO_TIME: Final = ("(none: the service stamps the time)", "")

# Columns chosen by default when a frame has them (case-insensitive), first found wins.
_NAME_COLUMNS: Final = ("name", "event", "event_name")
_CONTENT_COLUMNS: Final = (
    "content",
    "message",
    "msg",
    "text",
    "description",
    "summary",
    "body",
    "details",
)
_GROUP_COLUMNS: Final = ("group_id", "groupid", "group")
_TIME_COLUMNS: Final = ("time", "timestamp", "ts", "datetime", "date")


def _label(name: str) -> str:
    return option(name).label


def _help(name: str) -> str:
    return option(name).help


def _toggle(options: list[str], css: str) -> Any:
    buttons = w.ToggleButtons(options=options, style={"button_width": "90px"})
    buttons.add_class(css)
    return buttons


def _column(css: str, name: str) -> Any:
    dropdown = w.Dropdown(options=[], tooltip=_help(name), layout=w.Layout(width="220px"))
    dropdown.add_class(css)
    return dropdown


def _text(css: str, name: str, placeholder: str, width: str = "220px") -> Any:
    field = w.Text(
        placeholder=placeholder,
        tooltip=_help(name),
        continuous_update=False,
        layout=w.Layout(width=width),
    )
    field.add_class(css)
    return field


def _button(description: str, css: str, **kw: Any) -> Any:
    button = w.Button(description=description, **kw)
    button.add_class(css)
    return button


class Controls:
    """Every widget of the panel, and how each reads or shows what it is about.

    ``widget`` is the whole ``VBox``. Building wires nothing: the panel connects the
    callbacks (through its one error wrapper).
    """

    def __init__(
        self, *, region: str, internal: bool, custom: str, probe_targets: Sequence[tuple[str, str]]
    ) -> None:
        self.quiet = False  # see quietly()
        #: The mode toggles the user has set ("name", "content", "group"): fitting the
        #: columns of another frame leaves them as they are.
        self.chosen_modes: set[str] = set()
        self._build_target(region, internal, custom)
        self._build_data()
        self._build_actions()
        self._build_results()
        self.regions_tab = RegionsTab(probe_targets)
        self.probe_button = self.regions_tab.probe_button
        self.probe_status = self.regions_tab.probe_status
        self.probe_table = self.regions_tab.probe_table
        self.region_list = self.regions_tab.region_list
        self.regions_table = self.regions_tab.regions_table
        self.events_tab = EventsTab()
        self.read_button = self.events_tab.read_button
        self._build_layout()

    # ================================================================= building

    def _build_target(self, region: str, internal: bool, custom: str) -> None:
        self.region = w.Dropdown(
            options=region_choices(),
            value=region,
            description=_label("region"),
            tooltip=_help("region"),
            style=_WIDE,
            layout=w.Layout(width="400px"),
        )
        self.region.add_class("cms-region")
        self.internal = w.ToggleButtons(
            options=[("public", False), ("internal", True)],
            value=internal,
            tooltips=["the public endpoint", "the region's internal endpoint (from its VPC)"],
            style={"button_width": "70px"},
        )
        self.internal.add_class("cms-internal")
        self.custom_endpoint = w.Text(
            value=custom,
            description=_label("endpoint"),
            placeholder="https://host[:port], a region id or local (overrides the region)",
            tooltip=_help("endpoint"),
            continuous_update=False,
            style=_WIDE,
            layout=w.Layout(width="520px"),
        )
        self.custom_endpoint.add_class("cms-custom-endpoint")
        self.url_label = w.HTML()
        self.url_label.add_class("cms-url")
        self.entry = CredentialsEntry()
        self.credentials_label = self.entry.label
        self.credentials_entry = self.entry.box
        self.key_id = self.entry.key_id
        self.secret = self.entry.secret
        self.entry_note = self.entry.note

    def _build_data(self) -> None:
        self.frame_picker = w.Dropdown(
            description="DataFrame", style=_WIDE, layout=w.Layout(width="400px")
        )
        self.frame_picker.add_class("cms-frame")
        self.refresh_button = _button(
            "Refresh", "cms-refresh", icon="refresh", tooltip="look for DataFrames"
        )
        self.refresh_button.layout.width = "100px"
        self.name_mode = _toggle(["constant", "column"], "cms-name-mode")
        self.name_value = _text("cms-name", "name", "event name")
        self.name_value.value = "custom_event"
        self.name_column = _column("cms-name-col", "name_col")
        self.content_mode = _toggle(["whole row", "column", "template"], "cms-content-mode")
        self.content_column = _column("cms-content-col", "content_col")
        self.content_template = _text(
            "cms-content-template", "content_template", "[{severity}] {host}: {message}", "360px"
        )
        self.group_mode = _toggle(["none", "constant", "column"], "cms-group-mode")
        self.group_value = _text("cms-group-id", "group_id", "group id (an integer)")
        self.group_column = _column("cms-group-col", "group_id_col")
        self.time_column = w.Dropdown(
            options=[_NO_TIME],
            description=_label("time_col"),
            tooltip=_help("time_col"),
            style=_WIDE,
        )
        self.time_column.add_class("cms-time-col")
        self.tz = w.Text(
            description=_label("tz"),
            placeholder="for naive times; default: this machine's",
            tooltip=_help("tz"),
            continuous_update=False,
            style=_WIDE,
        )
        self.tz.add_class("cms-tz")
        self.counts = w.HTML()
        self.counts.add_class("cms-counts")
        self.preview = w.HTML()
        self.preview.add_class("cms-preview")

    def _build_actions(self) -> None:
        self.dry_run_button = _button(
            "Dry run", "cms-dry-run", icon="eye", tooltip="everything but the POST"
        )
        self.send_button = _button("Send", "cms-send", icon="paper-plane", button_style="primary")
        self.cancel_button = _button(
            "Cancel", "cms-cancel", icon="stop", button_style="warning", disabled=True
        )
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="240px"))
        self.progress.add_class("cms-progress")
        self.status = w.HTML(html.muted("ready"))
        self.status.add_class("cms-status")

    def _build_results(self) -> None:
        self.summary = w.HTML(html.muted("no send yet"))
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
        self.retry_button = _button("Retry failed", "cms-retry", icon="redo", disabled=True)
        self.retry_note = w.HTML()
        self.retry_note.add_class("cms-retry-note")
        self.confirm_button = _button("Confirm", "cms-confirm", icon="search")
        self.confirm_note = w.HTML()
        self.confirm_note.add_class("cms-confirm-note")
        self.confirm_row = w.HBox(
            [self.confirm_button, self.confirm_note], layout=w.Layout(align_items="center")
        )
        self.confirm_row.layout.display = "none"

    def _build_layout(self) -> None:
        def heading(text: str) -> Any:
            return w.HTML(f"<b>{html.esc(text)}</b>")

        def row(label: str, *widgets: Any) -> Any:
            return w.HBox([w.Label(label, layout=w.Layout(width="110px")), *widgets])

        self.error = w.HTML()
        self.error.add_class("cms-error")
        self.dismiss_button = _button("Dismiss", "cms-dismiss", icon="times")
        self.error_box = w.HBox([self.error, self.dismiss_button])
        self.error_box.layout.display = "none"
        actions = [self.dry_run_button, self.send_button, self.cancel_button]
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
                row(_label("name"), self.name_mode, self.name_value, self.name_column),
                row("Content", self.content_mode, self.content_column, self.content_template),
                row(_label("group_id"), self.group_mode, self.group_value, self.group_column),
                w.HBox([self.time_column, self.tz]),
                self.counts,
                self.preview,
                w.HBox(
                    [*actions, self.progress, self.status], layout=w.Layout(align_items="center")
                ),
                heading("Results"),
                self.summary,
                self.results_tabs,
                self.confirm_row,
                w.HBox([self.retry_button, self.retry_note], layout=w.Layout(align_items="center")),
            ]
        )
        self.tabs = w.Tab(
            children=[send_page, self.regions_tab.page, self.events_tab.page],
            titles=["Send", "Regions", "Events"],
        )
        self.tabs.add_class("cms-tabs")
        title = w.HTML(
            html.STYLE + "<b>cms_magic</b> · report DataFrame rows as CloudMonitor custom events"
        )
        self.widget = w.VBox([title, self.tabs, self.error_box])
        self.widget.add_class("cms-panel")
        self.show_modes()

    # ================================================================= reading the controls

    def target_choice(self) -> TargetChoice:
        """The target the controls name (see :func:`.regions.chosen_target`)."""
        return chosen_target(
            self.region.value, self.custom_endpoint.value, internal=bool(self.internal.value)
        )

    def mapping(self) -> dict[str, Any]:
        """The mapping options the controls describe, as :func:`cms_magic.send` takes them.

        Raises :class:`~cms_magic.errors.MappingError` naming the option left unfilled.
        """
        options: dict[str, Any] = {}
        if self.name_mode.value == "constant":
            name = self.name_value.value.strip()
            if not name:
                raise MappingError("type an event name, or take it from a column", option="name")
            options["name"] = name
        else:
            options["name_col"] = _chosen(self.name_column, "name_col")
        if self.content_mode.value == "column":
            options["content_col"] = _chosen(self.content_column, "content_col")
        elif self.content_mode.value == "template":
            template = self.content_template.value
            if not template.strip():
                raise MappingError(
                    "type a template such as '{host}: {message}'", option="content_template"
                )
            options["content_template"] = template
        if self.group_mode.value == "constant":
            raw = self.group_value.value.strip()
            try:
                options["group_id"] = int(raw)
            except ValueError:
                raise MappingError("must be a whole number", option="group_id", value=raw) from None
        elif self.group_mode.value == "column":
            options["group_id_col"] = _chosen(self.group_column, "group_id_col")
        if self.time_column.index:  # 0 is "(none: the service stamps the time)"
            options["time_col"] = self.time_column.value
        if self.tz.value.strip():
            options["tz"] = self.tz.value.strip()
        return options

    @contextlib.contextmanager
    def quietly(self) -> Iterator[None]:
        """While active, ``quiet`` is True: changes made to the data controls by the panel
        itself (not the user) redraw nothing."""
        before, self.quiet = self.quiet, True
        try:
            yield
        finally:
            self.quiet = before

    def mapping_widgets(self) -> tuple[Any, ...]:
        """The controls :meth:`mapping` reads (a change to any redraws the preview)."""
        return (
            *(self.name_mode, self.name_value, self.name_column),
            *(self.content_mode, self.content_column, self.content_template),
            *(self.group_mode, self.group_value, self.group_column),
            *(self.time_column, self.tz),
        )

    def fit_columns(self, frame: pd.DataFrame | None) -> None:
        """Offer ``frame``'s columns (quietly); keep each choice the frame still has, else
        a default (a column with a usual name; a datetime column for the time)."""
        with self.quietly():
            self._fit_columns(frame)

    def _fit_columns(self, frame: pd.DataFrame | None) -> None:
        # The dropdowns hold the real labels (an int for read_csv(header=None)), shown as text.
        labels: list[Hashable] = list(frame.columns) if frame is not None else []
        options = [(str(c), c) for c in labels]
        lowered: dict[str, Hashable] = {}
        for label in labels:
            lowered.setdefault(str(label).lower(), label)

        def pick(names: Sequence[str]) -> Hashable | None:
            return next((lowered[n] for n in names if n in lowered), None)

        def present(value: object) -> bool:
            return any(_same_label(value, label) for label in labels)

        def keep(dropdown: Any, default: Hashable | None) -> None:
            current = dropdown.value
            dropdown.options = options
            dropdown.value = current if present(current) else default

        first = labels[0] if labels else None
        name_col, group_col = pick(_NAME_COLUMNS), pick(_GROUP_COLUMNS)
        content_col = pick(_CONTENT_COLUMNS)
        keep(self.name_column, name_col if name_col is not None else first)
        keep(self.content_column, content_col if content_col is not None else first)
        keep(self.group_column, group_col if group_col is not None else first)
        current_time = self.time_column.value
        self.time_column.options = [_NO_TIME, *options]
        time_default = pick(_TIME_COLUMNS)
        if time_default is None and frame is not None:
            kinds = zip(labels, frame.dtypes, strict=True)  # by position: labels may repeat
            time_default = next((c for c, dtype in kinds if dtype.kind == "M"), None)
        chosen_time = current_time if current_time != "" and present(current_time) else None
        self.time_column.value = (
            chosen_time
            if chosen_time is not None
            else (time_default if time_default is not None else "")
        )
        self._fit_mode("name", self.name_mode, "constant", found=name_col is not None)
        self._fit_mode("group", self.group_mode, "none", found=group_col is not None)
        self._fit_mode("content", self.content_mode, "whole row", found=content_col is not None)

    def _fit_mode(self, name: str, toggle: Any, plain: str, *, found: bool) -> None:
        """A mode toggle the user has not set (see :attr:`chosen_modes`) follows the frame:
        ``column`` when it has a usual column for it, else ``plain``."""
        if name in self.chosen_modes:
            return
        if found and toggle.value == plain:
            toggle.value = "column"
        elif not found and toggle.value == "column":
            toggle.value = plain

    def show_modes(self) -> None:
        """Show the value field each mode needs (a constant, a column or a template)."""
        for widget, visible in (
            (self.name_value, self.name_mode.value == "constant"),
            (self.name_column, self.name_mode.value == "column"),
            (self.content_column, self.content_mode.value == "column"),
            (self.content_template, self.content_mode.value == "template"),
            (self.group_value, self.group_mode.value == "constant"),
            (self.group_column, self.group_mode.value == "column"),
        ):
            widget.layout.display = "" if visible else "none"

    # ================================================================= sending and results

    def show_running(self, running: bool, *, total: int = 0) -> None:
        """Buttons and bar for a send that starts (``total`` rows) or has ended."""
        self.send_button.disabled = running
        self.dry_run_button.disabled = running
        self.cancel_button.disabled = not running
        if running:
            self.retry_button.disabled = True
            self.progress.bar_style = "info"
            self.progress.max = max(total, 1)
            self.progress.value = 0
        else:
            self.cancel_button.description = "Cancel"

    def show_retry(self, rows: int, note: str) -> None:
        """Retry failed for ``rows`` rows (0: not offered), and ``note`` beside it (and as
        its tooltip): what it reuses, or why it is not offered."""
        self.retry_button.disabled = not rows
        self.retry_button.description = f"Retry failed ({rows:,})" if rows else "Retry failed"
        self.retry_button.tooltip = note
        self.retry_note.value = html.muted(note) if note else ""

    def show_confirm(self, rows: int, note: str, *, keep: bool = False) -> None:
        """Confirm for ``rows`` rows (0: not offered; the row hides unless ``keep``, which
        leaves a read-back's outcome in view), and ``note`` beside it."""
        self.confirm_button.disabled = not rows
        self.confirm_button.description = f"Confirm ({rows:,})" if rows else "Confirm"
        self.confirm_button.tooltip = (
            "read back the rows that may or may not have arrived, and say for each whether "
            "the service holds it"
        )
        self.confirm_note.value = note
        self.confirm_row.layout.display = "" if rows or keep else "none"

    def show_progress(self, progress: Progress, verb: str) -> None:
        """A running send's bar and status line (traits only: called from its thread)."""
        self.progress.max = max(progress.total, 1)
        self.progress.value = progress.done
        self.status.value = html.esc(f"{verb}: {progress.line()}")

    def show_result(self, result: SendResult, *, where: str) -> None:
        """The outcome next to Send, the summary, the bar, and the Requests / Events /
        Failed rows tabs."""
        self.status.value = html.status_line(result)
        self.summary.value = html.summary(result, where)
        self.progress.bar_style = html.result_style(result)
        self.progress.max = max(len(result), 1)
        self.progress.value = len(result) - result.counts()["not_sent"]
        self.requests_table.value = html.requests_view(result)
        self.events_table.value = html.table(result.events, "events")
        failed = html.failed_rows(result)
        self.failed_table.value = html.table(failed, "failed rows")
        self.results_tabs.titles = [
            f"Requests ({len(result.request_records):,})",
            f"Events ({len(result):,})",
            f"Failed rows ({len(failed):,})",
        ]
        self.results_tabs.selected_index = 2 if len(failed) else 0
        self.results_tabs.layout.display = ""


def _chosen(dropdown: Any, name: str) -> Hashable:
    """The column a dropdown names (its real label), or a MappingError naming its option."""
    if dropdown.value is None or dropdown.index is None:
        raise MappingError("choose a column", option=name)
    label: Hashable = dropdown.value
    return label


def _same_label(value: object, label: Hashable) -> bool:
    """``value`` is ``label`` (equal and of the same type: ``1`` is not ``'1'``)."""
    if value is label:
        return True
    try:
        return type(value) is type(label) and bool(value == label)
    except (TypeError, ValueError):
        return False
