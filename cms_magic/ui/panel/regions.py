"""Where the panel sends: the region dropdown's choices, what the target controls mean,
and the Regions tab (the catalog, and a Probe that measures every endpoint).

What a choice *means* is never decided here: the dropdown's value and the
custom URL field both go through :func:`cms_magic.targets.parse_target`, the
one place that knows ``local`` (any case), ``public``, a region id and a URL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, NamedTuple

import ipywidgets as w

from cms_magic.errors import CmsError
from cms_magic.probe import ProbeResult
from cms_magic.regions import get_region, regions
from cms_magic.targets import LOCAL, PUBLIC, Target, parse_target
from cms_magic.ui.panel import html

__all__ = [
    "RegionsTab",
    "TargetChoice",
    "chosen_target",
    "initial_choice",
    "probe_choice",
    "region_choices",
]

_BAR_CHARS: Final = 24


def region_choices() -> list[tuple[str, str]]:
    """The region dropdown: (label, value) for the local emulator, the public endpoint and
    each region; every value is a word :func:`~cms_magic.targets.parse_target` takes."""
    return [
        ("local emulator (127.0.0.1, demo key)", LOCAL),
        ("public endpoint", PUBLIC),
        *((f"{r.id} · {r.name}", r.id) for r in regions()),
    ]


class TargetChoice(NamedTuple):
    """The target the controls name, and whether the Internal toggle applies to it."""

    target: Target
    internal_applies: bool


def chosen_target(region: str, custom: str, *, internal: bool) -> TargetChoice:
    """What the target controls mean: the custom URL field when filled (a URL, or any word
    the dropdown offers: ``local``, ``public``, a region id), else the region dropdown.

    The Internal toggle applies to a target named by its region id; errors name the
    ``endpoint`` option (the custom URL) or ``region`` (the dropdown).
    """
    value, option = (custom, "endpoint") if custom.strip() else (region, "region")
    plain = parse_target(value, option=option)
    applies = plain.kind == "region" and not plain.internal
    if applies and internal:
        return TargetChoice(parse_target(value, internal=True, option=option), applies)
    return TargetChoice(plain, applies)


def initial_choice(region: str) -> tuple[str, bool, str]:
    """``Panel(region=...)`` as (dropdown value, internal, custom URL): a word goes to the
    dropdown, a URL that is not a catalog endpoint to the custom URL field."""
    target = parse_target(region, option="region")
    if target.kind == "region" and target.region is not None:
        return target.region, target.internal, ""
    if target.kind in (LOCAL, PUBLIC):
        return target.kind, False, ""
    return LOCAL, False, str(target.url)


class RegionsTab:
    """The Regions tab: a Probe button, one list of the probe targets (sorted by latency
    after a probe), the toggle saying whether a region's row chooses its public
    (default) or internal endpoint, the target line, and the probe's details and the
    catalog, both folded; choosing a row makes it the target (the tab stays).

    ``page`` is the tab's ``VBox``. Nothing is contacted before :meth:`run_probe`.
    """

    def __init__(self, probe_targets: Sequence[tuple[str, str]]) -> None:
        self.probe_targets = list(probe_targets)
        #: The latest probe's results, sorted (reachable first, fastest first).
        self.results: list[ProbeResult] = []
        self.choosing = False  # True while the tab itself rewrites the list
        self.regions_table = w.HTML(html.catalog())
        self.regions_table.add_class("cms-regions")
        self.probe_button = w.Button(
            description="Probe",
            icon="signal",
            tooltip="measure DNS and TCP connect time to every endpoint (sends nothing)",
        )
        self.probe_button.add_class("cms-probe")
        self.probe_status = w.HTML(
            html.muted(
                "Probe resolves each endpoint and opens a TCP connection to it (nothing is "
                "sent); until you click, nothing is contacted."
            )
        )
        self.probe_status.add_class("cms-probe-status")
        self.probe_table = w.HTML()
        self.probe_table.add_class("cms-probe-results")
        self.region_list = w.Select(
            options=self._list_options(), value=None, rows=8, layout=w.Layout(width="100%")
        )
        self.region_list.add_class("cms-region-list")
        self.use_internal = w.ToggleButtons(
            options=[("public endpoint", False), ("internal endpoint", True)],
            value=False,
            tooltips=[
                "the region's public endpoint (reachable from anywhere)",
                "the region's internal endpoint (reachable only from inside that region)",
            ],
            style={"button_width": "120px"},
        )
        self.use_internal.add_class("cms-regions-internal")
        #: The send target now (the same line as the Send tab's).
        self.target_line = w.HTML()
        self.target_line.add_class("cms-regions-target")
        self.page = w.VBox(
            [
                w.HBox(
                    [self.probe_button, self.probe_status], layout=w.Layout(align_items="center")
                ),
                w.HBox(
                    [
                        w.HTML(html.muted("Choose a row to make it the target; a region uses its")),
                        self.use_internal,
                    ],
                    layout=w.Layout(align_items="center"),
                ),
                self.region_list,
                self.target_line,
                self.probe_table,
                self.regions_table,
            ]
        )

    def _describe(self, label: str) -> str:
        try:
            target = parse_target(label)
        except CmsError:
            return label
        if target.kind == "public":
            return "public endpoint"
        if target.kind == "region" and target.region is not None:
            return get_region(target.region).name
        return label

    def _list_options(self) -> list[tuple[str, str]]:
        width = max((len(label) for label, _ in self.probe_targets), default=8)
        if not self.results:
            return [
                (f"{label:<{width}}  {self._describe(label)}", label)
                for label, _ in self.probe_targets
            ]
        slowest = max((r.latency_ms or 0.0 for r in self.results), default=0.0) or 1.0
        options = []
        for r in self.results:
            if r.reachable and r.latency_ms is not None:
                bar = "█" * max(1, round(_BAR_CHARS * r.latency_ms / slowest))
                shown = f"{r.latency_ms:8.1f} ms  {bar}"
            else:
                shown = f"{'unreachable':>11}  {r.reason}"
            options.append((f"{r.label:<{width}}  {shown}", r.label))
        return options

    def start_probe(self) -> None:
        self.probe_button.disabled = True
        self.probe_status.value = "probing…"

    def run_probe(self, prober: Callable[[], list[ProbeResult]]) -> None:
        """Run ``prober`` (blocking; the panel runs this in a thread) and show its results;
        an exception is re-raised after the status says the probe failed."""
        try:
            self.results = prober()
            self.choosing = True
            try:
                self.region_list.options = self._list_options()
                self.region_list.value = None
            finally:
                self.choosing = False
            self.probe_table.value = html.probe_table(self.results)
            reachable = sum(r.reachable for r in self.results)
            note = html.muted(
                "(a region's row probes its internal endpoint, which answers only from inside "
                "that region)"
            )
            self.probe_status.value = (
                f"{reachable} of {len(self.results)} endpoints reachable from here {note}"
            )
        except BaseException:
            self.probe_status.value = html.bad("the probe failed (see below)")
            raise
        finally:
            self.probe_button.disabled = False


def probe_choice(label: str) -> str | None:
    """A Regions row as the region dropdown's value: ``public``, or a region id (whether
    its internal endpoint is used is the caller's choice); None for a label that is
    neither (a custom probe target)."""
    try:
        target = parse_target(label)
    except CmsError:
        return None
    if target.kind == "public":
        return PUBLIC
    if target.kind == "region" and target.region is not None:
        return target.region
    return None
