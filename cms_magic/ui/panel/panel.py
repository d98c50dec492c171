"""The widget panel: choose a target and a DataFrame, map its columns, send, read the results.

``cms_magic.panel(df=None)`` (or ``%cms panel``) returns a :class:`Panel`; display
it to get a ``VBox`` with two tabs. **Send**: the target (a region dropdown, public
or internal, a custom URL that also takes ``local``, ``public`` or a region id, and
where the credentials come from; fields for a key when none resolve, cleared as
soon as read), the data (a DataFrame of the namespace, the mapping, a live
preview), Dry run / Send / Cancel with a progress bar and the outcome next to
them (one line, details folded), and the results (the summary line, requests,
events, failed rows, Retry failed). **Regions**: one list of the endpoints to
choose from (a region's public endpoint unless its toggle says internal), a
Probe of every endpoint (nothing is contacted before the click), the catalog
folded. **Events** (:mod:`.events`): read back what the service holds (name, group,
time range, search) from the Send tab's target with its credentials: a histogram and
the first events. *Confirm*, under a result with ``unknown`` rows (or possible
duplicates), reads them back in the background (:meth:`SendResult.confirm`); then
*Retry failed* resends only the rows known not stored. The panel never switches tabs
by itself (``Panel(tab="regions")`` opens on the Regions tab).

The panel is a skin: what a target means is :func:`cms_magic.targets.parse_target`'s
answer, a send is :func:`cms_magic.send`, a retry a :class:`cms_magic.Client`'s
``resend`` (for the target and credentials shown now), the summary
:meth:`SendResult.summary`; errors are the core's, worded with the controls'
labels (:func:`cms_magic.ui.options.label_subject`). The rooms:
:mod:`.controls` (the widgets), :mod:`.html` (what they show), :mod:`.regions`
(target choices, the Regions tab), :mod:`.credentials` (typing a key),
:mod:`.frames` (which DataFrames), :mod:`.preview`, :mod:`.background` (threads),
:mod:`.plans` (what Retry failed and Confirm would do), :mod:`.events` and
:mod:`.reading` (the Events tab, Confirm), and this one: the panel's state and callbacks. Every callback goes through one
wrapper that shows exceptions inside the panel (a send action's next to Send, any
other in the error area); worker threads change widgets only through their traits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

from cms_magic.errors import CmsError, ConfigError, InputError
from cms_magic.identity import AnyCredentials, key_label
from cms_magic.probe import ProbeResult, default_targets, probe
from cms_magic.progress import Progress, Throttle
from cms_magic.results import SendJob, SendResult
from cms_magic.sending.client import Client, send
from cms_magic.targets import LOCAL, PUBLIC, Target
from cms_magic.ui.panel import html
from cms_magic.ui.panel.background import Workers
from cms_magic.ui.panel.events import EventsRead
from cms_magic.ui.panel.frames import FramePicker
from cms_magic.ui.panel.plans import RetryPlan, Sending, retry_plan
from cms_magic.ui.panel.preview import LivePreview
from cms_magic.ui.panel.reading import ReadBackActions
from cms_magic.ui.panel.regions import initial_choice, probe_choice

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LOCAL", "PUBLIC", "TABS", "Panel", "panel"]

Tab = Literal["send", "regions", "events"]
#: The panel's tabs, in order (``Panel(tab=...)``).
TABS: Final[tuple[Tab, ...]] = ("send", "regions", "events")


def panel(df: pd.DataFrame | None = None, **options: Any) -> Panel:
    """Open the panel, on ``df`` if given (else on the DataFrames of the user namespace).

    Options are :class:`Panel`'s keyword arguments.
    """
    return Panel(df, **options)


class Panel(ReadBackActions):
    """The widget panel; display it to use it. ``panel.widget`` is the ``VBox``.

    ``df``: the DataFrame to start on (the namespace's DataFrames are listed too).
    ``namespace``: where to look for DataFrames (default: the IPython user namespace,
    when there is one). ``credentials_resolver``: how credentials are found for a
    real endpoint (default: the target's, :meth:`cms_magic.targets.Target.credentials`).
    ``prober``: what the Probe button runs (default: :func:`cms_magic.probe.probe` over
    ``probe_targets``, each step bounded by ``probe_timeout`` seconds).
    ``region``: the initial target, :data:`LOCAL` (default), :data:`PUBLIC`, a region id,
    or an endpoint URL (it goes to the custom URL field). ``tab``: the tab shown first,
    ``"send"`` (default) or ``"regions"``; the panel never switches tabs by itself.
    ``send_options``: :class:`cms_magic.Client` options for every send and retry
    (``timeout``, ``retry``, ``qps``...). ``confirm_options``: :meth:`SendResult.confirm`'s
    (``wait``, ``poll``); ``read_options``: the Events tab's reads' (``timeout``...).

    *Retry failed* resends the rows not sent (never ``unknown`` rows, which may have
    arrived, nor ``rejected`` ones, which would be rejected again) with the mapping of
    that send, to the target and with the credentials the panel shows *now*; it is
    not offered when the service refused the credentials and nothing changed since.

    *Confirm* (shown under a result with ``unknown`` rows or possible duplicates) reads
    them back in the background, from where they were sent; the result becomes the
    confirmed one, so *Retry failed* then offers exactly the rows known not stored.

    Attributes: ``result`` (the latest :class:`~cms_magic.results.SendResult`),
    ``job`` (the current or latest :class:`~cms_magic.results.SendJob`),
    ``events_read`` (the Events tab's latest :class:`~.events.EventsRead`),
    ``probe_results``, ``last_error``, and the widgets (:class:`.controls.Controls`);
    methods :meth:`send`, :meth:`dry_run`, :meth:`cancel`, :meth:`retry_failed`,
    :meth:`confirm`, :meth:`read_events`, :meth:`probe`, :meth:`refresh`, :meth:`wait`.
    """

    def __init__(
        self,
        df: pd.DataFrame | None = None,
        *,
        namespace: Mapping[str, Any] | None = None,
        credentials_resolver: Callable[[], AnyCredentials] | None = None,
        prober: Callable[[], list[ProbeResult]] | None = None,
        probe_targets: Sequence[tuple[str, str]] | None = None,
        probe_timeout: float = 2.0,
        region: str = LOCAL,
        tab: Tab = "send",
        send_options: Mapping[str, Any] | None = None,
        confirm_options: Mapping[str, Any] | None = None,
        read_options: Mapping[str, Any] | None = None,
    ) -> None:
        import pandas as pd

        if df is not None and not isinstance(df, pd.DataFrame):
            raise InputError(f"must be a pandas DataFrame, got {type(df).__name__}", option="df")
        if tab not in TABS:
            raise ConfigError(
                f"must be one of {', '.join(map(repr, TABS))}", option="tab", value=tab
            )
        self._send_options = dict(send_options or {})
        self._confirm_options = dict(confirm_options or {})
        self._read_options = dict(read_options or {})
        self._frames = FramePicker(df, namespace)
        self._resolve = credentials_resolver
        targets = list(probe_targets) if probe_targets is not None else None
        self._prober: Callable[[], list[ProbeResult]] = prober or functools.partial(
            probe, targets, timeout=probe_timeout
        )
        #: The latest result (of a send, a dry run or a retry), or None.
        self.result: SendResult | None = None
        #: The current or latest background send, or None.
        self.job: SendJob | None = None
        #: The latest exception a callback raised (also shown in the panel).
        self.last_error: BaseException | None = None
        #: The Events tab's latest read, or None.
        self.events_read: EventsRead | None = None

        self._workers = Workers(self._callback)
        # The first events at once; the whole frame's counts off the kernel's thread.
        self._live = LivePreview(self._show_counts, self._show_events, start=self._workers.start)
        self._throttle = Throttle()
        self._verb = "sending"
        self._where = ""  # the label of the target of the running (or latest) send
        self._busy = False  # a send, dry run or retry runs or its results are being drawn
        self._sent: Sending | None = None  # where the latest result's rows went
        self._now: Sending | None = None  # the target and credentials shown now
        self._pending: Sending | None = None  # where the running send goes
        self._confirmed = ""  # what the latest read-back of the result found (HTML)

        value, internal, custom = initial_choice(region)
        super().__init__(
            region=value,
            internal=internal,
            custom=custom,
            probe_targets=targets if targets is not None else default_targets(),
        )
        self.tabs.selected_index = TABS.index(tab)
        self._wire()
        self._callback(self._refresh_target)()
        self._callback(self.refresh)()

    def _wire(self) -> None:
        for widget in (self.region, self.internal, self.custom_endpoint):
            self._on(widget, lambda _change: self._refresh_target())
        self._on(self.key_id, self.entry.take_key_id)
        self._on(self.secret, self._on_secret)
        self._on(self.frame_picker, self._on_frame)
        for name, mode in (
            ("name", self.name_mode),
            ("content", self.content_mode),
            ("group", self.group_mode),
        ):
            self._on(mode, lambda _change, name=name: self._on_mode(name))
        for widget in self.mapping_widgets():
            self._on(widget, lambda _change: self._refresh_preview())
        self._on(self.region_list, self._on_region_chosen)
        self._on(self.regions_tab.use_internal, self._on_region_chosen)
        for button, handler, in_status in (
            (self.refresh_button, self.refresh, False),
            (self.dry_run_button, self.dry_run, True),
            (self.send_button, self.send, True),
            (self.cancel_button, self.cancel, True),
            (self.retry_button, self.retry_failed, True),
            (self.confirm_button, self.confirm, True),
            (self.read_button, self.read_events, False),
            (self.probe_button, self.probe, False),
            (self.dismiss_button, self.clear_error, False),
        ):
            button.on_click(
                self._callback(lambda _button, handler=handler: handler(), in_status=in_status)
            )

    def _callback(
        self, fn: Callable[..., object], *, in_status: bool = False
    ) -> Callable[..., None]:
        """THE wrapper for every callback and worker: an exception is shown in the panel,
        next to Send for the send actions (``in_status``), else in the error area."""

        @functools.wraps(fn)
        def guarded(*args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:
                self._show_error(exc, in_status=in_status)

        return guarded

    def _on_mode(self, name: str) -> None:
        if not self.quiet:
            self.chosen_modes.add(name)
        self.show_modes()

    def _on(self, widget: Any, handler: Callable[..., object], names: str = "value") -> None:
        widget.observe(self._callback(handler), names=names)

    # ================================================================= display and errors

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        frame = self.frame_picker.label or "no DataFrame"
        last = f"; last: {self.result.summary('panel.result')}" if self.result is not None else ""
        return f"<cms_magic panel: target {self.url_label_text()}, {frame}{last}>"

    def url_label_text(self) -> str:
        """The target URL, or why there is none (for reprs and tests)."""
        try:
            return self._target().resolve_url()
        except CmsError as exc:
            return f"(no target: {html.message(exc)})"

    def _show_error(
        self, exc: BaseException, *, in_status: bool = False, what: str = "not started"
    ) -> None:
        self.last_error = exc
        if in_status:  # the outcome of a send action is next to Send, nowhere else
            self.status.value = html.failure(exc, what)
            return
        self.error.value = html.error(exc)
        self.error_box.layout.display = ""

    def clear_error(self) -> None:
        """Hide the error area."""
        self.last_error = None
        self.error.value = ""
        self.error_box.layout.display = "none"

    @property
    def probe_results(self) -> list[ProbeResult]:
        """The latest probe's results, sorted (reachable first, fastest first)."""
        return self.regions_tab.results

    # ================================================================= target and credentials

    def _target(self) -> Target:
        return self.target_choice().target

    def _refresh_target(self) -> None:
        self._now = None
        try:
            choice = self.target_choice()
            url = choice.target.resolve_url()
        except CmsError as exc:  # shown where it was typed, not in the error area
            self.internal.disabled = True
            self.url_label.value = self.regions_tab.target_line.value = html.target_error(exc)
            self.events_tab.show_source(None, why=f"the Send tab's target: {html.message(exc)}")
            self._refresh_retry()
            return
        self.internal.disabled = not choice.internal_applies
        self.url_label.value = self.regions_tab.target_line.value = html.target_line(
            choice.target, url
        )
        credentials = self.entry.resolve(choice.target, self._resolve)
        if credentials is not None:
            self._now = Sending(choice.target, url, credentials)
        self.events_tab.show_source(self._now, target=choice.target)
        self._refresh_retry()

    def _on_secret(self, change: Mapping[str, Any]) -> None:
        if self.entry.take_secret(change):
            self._refresh_target()

    def forget_credentials(self) -> None:
        """Drop credentials typed into the panel."""
        self.entry.forget()
        self._refresh_target()

    # ================================================================= data

    def refresh(self) -> None:
        """Look for DataFrames again (in the user namespace, and the one passed in)."""
        previous = self.frame_picker.value
        options = self._frames.discover()
        with self.quietly():
            self.frame_picker.options = options
            self.frame_picker.value = self._frames.default(previous)
        self._on_frame()

    def _frame(self) -> pd.DataFrame | None:
        return self._frames.get(self.frame_picker.value)

    def _on_frame(self, _change: Mapping[str, Any] | None = None) -> None:
        if self.quiet:
            return
        self.fit_columns(self._frame())
        self.show_modes()
        self._refresh_preview()

    def _refresh_preview(self) -> None:
        if self.quiet:
            return
        frame = self._frame()
        if frame is None:
            self._live.stop()
            self.counts.value = html.muted(
                "no DataFrame: pass one to panel(df), or create one and press Refresh"
            )
            self.preview.value = ""
            return
        try:
            self._live.update(frame, self.mapping())
        except CmsError as exc:  # shown where the mapping is, not in the error area
            self._live.stop()  # an older count must not overwrite the error
            self.counts.value = html.bad(html.message(exc))
            self.preview.value = ""

    def _show_counts(self, text: str) -> None:
        self.counts.value = text

    def _show_events(self, text: str) -> None:
        self.preview.value = text

    # ================================================================= sending

    def send(self) -> SendJob:
        """Send the chosen DataFrame to the target in the background; returns the job."""
        return self._start(dry_run=False)

    def dry_run(self) -> SendJob:
        """Everything but the POST: the result says what would be sent, and the first
        request (Authorization masked) shows in the Requests tab."""
        return self._start(dry_run=True)

    def _start(self, *, dry_run: bool) -> SendJob:
        if self._busy:
            raise ConfigError("a send is already running: wait for it, or Cancel it")
        self.clear_error()
        frame = self._frame()
        if frame is None:
            raise ConfigError("no DataFrame: pass one to panel(df), or create one and Refresh")
        options = self.mapping()
        target = self._target()
        url = target.resolve_url()
        credentials = self.entry.required(target, self._resolve)

        def start(progress: Callable[[Progress], None]) -> SendJob:
            job: SendJob = send(
                frame,
                endpoint=url,
                credentials=credentials,
                dry_run=dry_run,
                background=True,
                progress=progress,
                **self._send_options,
                **options,
            )
            return job

        verb = "dry run" if dry_run else "sending"
        sending = Sending(target, url, credentials)
        return self._launch(start, total=len(frame), verb=verb, sending=sending)

    def retry_failed(self) -> SendJob:
        """Resend, in the background, the rows of the latest result that were not sent, to
        the target and with the credentials the panel shows now (the mapping is that
        send's); merged into that result. Refused when it is bound to fail the same way."""
        if self._busy:
            raise ConfigError("a send is already running: wait for it, or Cancel it")
        previous = self.result
        plan = self._retry_plan()
        if previous is None or isinstance(plan, str):
            reason = plan if isinstance(plan, str) else ""
            raise ConfigError(
                reason or "nothing to retry: no row of the latest send is left unsent"
            )
        positions, to = plan
        self.clear_error()
        client = Client(to.target, credentials=to.credentials, **self._send_options)

        def start(progress: Callable[[Progress], None]) -> SendJob:
            job = client.resend(previous, positions, background=True, progress=progress)
            if not isinstance(job, SendJob):  # pragma: no cover - background=True gives a job
                raise TypeError(f"resend gave {type(job).__name__}, not a SendJob")
            return job

        return self._launch(start, total=len(positions), verb="retrying", sending=to)

    def _retry_plan(self) -> RetryPlan | str:
        """The retry the panel offers now, or why none is (empty: nothing to say)."""
        return retry_plan(self.result, busy=self._busy, now=self._now, sent=self._sent)

    def _refresh_retry(self) -> None:
        """Offer Retry failed when it can work, and say what it would reuse (and Confirm)."""
        self._refresh_confirm()
        plan = self._retry_plan()
        if isinstance(plan, str):
            self.show_retry(0, plan)
            return
        rows, to = len(plan.positions), plan.to
        self.show_retry(
            rows,
            f"resends the {rows:,} row{'s' if rows != 1 else ''} not sent to "
            f"{to.target.label} with {key_label(to.credentials)} (as shown above), "
            "with the mapping of that send",
        )

    def _launch(
        self,
        start: Callable[[Callable[[Progress], None]], SendJob],
        *,
        total: int,
        verb: str,
        sending: Sending,
    ) -> SendJob:
        """Start a background send (``start`` is given the progress callback) and watch it."""
        self._set_running(True, total=total)
        self.status.value = html.esc(f"{verb}: starting…")
        try:
            job = start(self._callback(self._on_progress))
        except BaseException:
            self._set_running(False)
            raise
        self.job = job
        self._verb = verb
        self._where = sending.target.label
        self._pending = sending
        self._workers.start(self._finish, job)
        return job

    def _on_progress(self, progress: Progress) -> None:
        """Called by the sender's threads (through :meth:`_callback`): traits only."""
        if not progress.finished and not self._throttle.ready():
            return
        self.show_progress(progress, self._verb)

    def _finish(self, job: SendJob) -> None:
        try:
            self.result = job.result()
            self._sent = self._pending
            self._confirmed = ""
            self.show_result(self.result, where=self._where)
        except Exception as exc:  # a bug: said next to Send, with its traceback
            self.progress.bar_style = "danger"
            self._show_error(exc, in_status=True, what="the send failed")
        finally:
            self._set_running(False)

    def _set_running(self, running: bool, total: int = 0) -> None:
        self._busy = running
        if running:
            self._throttle = Throttle()
        self.show_running(running, total=total)
        self._refresh_retry()

    def cancel(self) -> None:
        """Stop the running send at the next batch boundary (the rest stays ``not_sent``)."""
        if self.job is None or self.job.done():
            return
        self.job.cancel()
        self.cancel_button.disabled = True
        self.cancel_button.description = "Cancelling…"

    # ================================================================= regions

    def probe(self) -> None:
        """Measure every endpoint in the background (the Probe button); see the Regions tab."""
        self.regions_tab.start_probe()
        self._workers.start(self.regions_tab.run_probe, self._prober)

    def _on_region_chosen(self, _change: Mapping[str, Any]) -> None:
        label = self.region_list.value
        if self.regions_tab.choosing or not label:
            return
        self.choose_target(label)

    def choose_target(self, label: str, *, internal: bool | None = None) -> None:
        """Make a Regions row the send target: ``"public"``, or a region id: its public
        endpoint, or its internal one (reachable only from inside that region) when
        ``internal`` is True (default: the Regions tab's toggle, which starts on public).
        Other labels (custom probe targets) are ignored. The tab shown stays as it is."""
        value = probe_choice(label)
        if value is None:
            return
        use_internal = self.regions_tab.use_internal.value if internal is None else internal
        self.custom_endpoint.value = ""
        if value != PUBLIC:
            self.internal.value = bool(use_internal)
        self.region.value = value

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the panel's background work (send, retry, probe) has finished and
        its results are shown; True if it has (False: ``timeout`` passed)."""
        return self._workers.wait(timeout)
