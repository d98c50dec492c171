"""The widget panel: choose a target and a DataFrame, map its columns, send, read the results.

``cms_magic.panel(df=None)`` (or ``%cms panel``) returns a :class:`Panel`; display
it to get a ``VBox`` with two tabs. **Send**: the target (a region dropdown, public
or internal, a custom URL that also takes ``local``, ``public`` or a region id, and
where the credentials come from; fields for a key when none resolve, cleared as
soon as read), the data (a DataFrame of the namespace, the mapping, a live
preview), Dry run / Send / Cancel with a progress bar, and the results (the
summary line, requests, events, failed rows, Retry failed). **Regions**: the
catalog and a Probe of every endpoint (nothing is contacted before the click).

The panel is a skin: what a target means is :func:`cms_magic.targets.parse_target`'s
answer, a send is :func:`cms_magic.send`, a retry :meth:`SendResult.retry`, the
summary :meth:`SendResult.summary`; errors are the core's, worded with the
controls' labels (:func:`cms_magic.ui.options.label_subject`). The rooms:
:mod:`.controls` (the widgets), :mod:`.html` (what they show), :mod:`.regions`
(target choices, the Regions tab), :mod:`.credentials` (typing a key),
:mod:`.frames` (which DataFrames), :mod:`.preview`, :mod:`.background` (threads),
and this one: the panel's state and callbacks. Every callback goes through one
wrapper that shows exceptions inside the panel; worker threads change widgets
only through their traits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cms_magic.credentials import Credentials
from cms_magic.errors import CmsError, ConfigError, InputError
from cms_magic.probe import ProbeResult, default_targets, probe
from cms_magic.progress import Progress, Throttle
from cms_magic.results import SendJob, SendResult
from cms_magic.sending.client import send
from cms_magic.targets import LOCAL, PUBLIC, Target
from cms_magic.ui.panel import html
from cms_magic.ui.panel.background import Workers
from cms_magic.ui.panel.controls import Controls
from cms_magic.ui.panel.frames import FramePicker
from cms_magic.ui.panel.preview import preview
from cms_magic.ui.panel.regions import initial_choice, probe_choice

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LOCAL", "PUBLIC", "Panel", "panel"]


def panel(df: pd.DataFrame | None = None, **options: Any) -> Panel:
    """Open the panel, on ``df`` if given (else on the DataFrames of the user namespace).

    Options are :class:`Panel`'s keyword arguments.
    """
    return Panel(df, **options)


class Panel(Controls):
    """The widget panel; display it to use it. ``panel.widget`` is the ``VBox``.

    ``df``: the DataFrame to start on (the namespace's DataFrames are listed too).
    ``namespace``: where to look for DataFrames (default: the IPython user namespace,
    when there is one). ``credentials_resolver``: how credentials are found for a
    real endpoint (default: the target's, :meth:`cms_magic.targets.Target.credentials`).
    ``prober``: what the Probe button runs (default: :func:`cms_magic.probe.probe` over
    ``probe_targets``, each step bounded by ``probe_timeout`` seconds).
    ``region``: the initial target, :data:`LOCAL` (default), :data:`PUBLIC`, a region id,
    or an endpoint URL (it goes to the custom URL field).

    Attributes: ``result`` (the latest :class:`~cms_magic.results.SendResult`),
    ``job`` (the current or latest :class:`~cms_magic.results.SendJob`),
    ``probe_results``, ``last_error``, and the widgets (:class:`.controls.Controls`);
    methods :meth:`send`, :meth:`dry_run`, :meth:`cancel`, :meth:`retry_failed`,
    :meth:`probe`, :meth:`refresh`, :meth:`wait`.
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
            raise InputError(f"must be a pandas DataFrame, got {type(df).__name__}", option="df")
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

        self._workers = Workers(self._callback)
        self._throttle = Throttle()
        self._verb = "sending"
        self._where = ""  # the label of the target of the running (or latest) send
        self._busy = False  # a send, dry run or retry runs or its results are being drawn

        value, internal, custom = initial_choice(region)
        super().__init__(
            region=value,
            internal=internal,
            custom=custom,
            probe_targets=targets if targets is not None else default_targets(),
        )
        self._wire()
        self._callback(self._refresh_target)()
        self._callback(self.refresh)()

    def _wire(self) -> None:
        for widget in (self.region, self.internal, self.custom_endpoint):
            self._on(widget, lambda _change: self._refresh_target())
        self._on(self.key_id, self.entry.take_key_id)
        self._on(self.secret, self._on_secret)
        self._on(self.frame_picker, self._on_frame)
        for mode in (self.name_mode, self.content_mode, self.group_mode):
            self._on(mode, lambda _change: self.show_modes())
        for widget in self.mapping_widgets():
            self._on(widget, lambda _change: self._refresh_preview())
        self._on(self.region_list, self._on_region_chosen)
        for button, handler in (
            (self.refresh_button, self.refresh),
            (self.dry_run_button, self.dry_run),
            (self.send_button, self.send),
            (self.cancel_button, self.cancel),
            (self.retry_button, self.retry_failed),
            (self.probe_button, self.probe),
            (self.dismiss_button, self.clear_error),
        ):
            button.on_click(self._callback(lambda _button, handler=handler: handler()))

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

    def _show_error(self, exc: BaseException) -> None:
        self.last_error = exc
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
        try:
            choice = self.target_choice()
            url = choice.target.resolve_url()
        except CmsError as exc:  # shown where it was typed, not in the error area
            self.internal.disabled = True
            self.url_label.value = html.target_error(exc)
            return
        self.internal.disabled = not choice.internal_applies
        self.url_label.value = html.target_line(choice.target, url)
        self.entry.resolve(choice.target, self._resolve)

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
            self.counts.value = html.muted(
                "no DataFrame: pass one to panel(df), or create one and press Refresh"
            )
            self.preview.value = ""
            return
        try:
            shown = preview(frame, self.mapping())
        except CmsError as exc:  # shown where the mapping is, not in the error area
            self.counts.value = html.bad(html.message(exc))
            self.preview.value = ""
            return
        self.counts.value = shown.counts
        self.preview.value = shown.events

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
                **options,
            )
            return job

        verb = "dry run" if dry_run else "sending"
        return self._launch(start, total=len(frame), verb=verb, where=target.label)

    def retry_failed(self) -> SendJob:
        """Resend, in the background, the rows of the latest result that were not accepted
        (``unknown`` rows excluded: they may have arrived), with the same target and mapping."""
        if self._busy:
            raise ConfigError("a send is already running: wait for it, or Cancel it")
        previous = self.result
        if previous is None or not self._retryable():
            raise ConfigError("nothing to retry: every row of the latest send was accepted")
        self.clear_error()

        def start(progress: Callable[[Progress], None]) -> SendJob:
            # Not-sent and rejected rows, not unknown ones; merged into the previous result.
            job: SendJob = previous.retry(include_rejected=True, background=True, progress=progress)
            return job

        return self._launch(start, total=self._retryable(), verb="retrying", where=self._where)

    def _retryable(self) -> int:
        if self.result is None:
            return 0
        return int(self.result.failed_mask(include_unknown=False).sum())

    def _launch(
        self,
        start: Callable[[Callable[[Progress], None]], SendJob],
        *,
        total: int,
        verb: str,
        where: str,
    ) -> SendJob:
        """Start a background send (``start`` is given the progress callback) and watch it."""
        self._set_running(True, total=total)
        self.status.value = html.esc(f"{verb}: starting…")
        try:
            job = start(self._callback(self._on_progress))
        except BaseException:
            self._set_running(False)
            self.status.value = html.bad("not started")
            raise
        self.job = job
        self._verb = verb
        self._where = where
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
            self.show_result(self.result, where=self._where, retryable=self._retryable())
        except BaseException:
            self.progress.bar_style = "danger"
            self.status.value = html.bad("the send failed (see below)")
            raise
        finally:
            self._set_running(False)

    def _set_running(self, running: bool, total: int = 0) -> None:
        self._busy = running
        if running:
            self._throttle = Throttle()
        self.show_running(running, total=total, retryable=self._retryable())

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

    def _on_region_chosen(self, change: Mapping[str, Any]) -> None:
        if self.regions_tab.choosing or not change["new"]:
            return
        self.choose_target(change["new"])

    def choose_target(self, label: str) -> None:
        """Make a probe target the send target: ``"public"`` or a region id (its internal
        endpoint). Other labels (custom probe targets) are ignored."""
        choice = probe_choice(label)
        if choice is None:
            return
        value, internal = choice
        self.custom_endpoint.value = ""
        if internal:
            self.internal.value = True
        self.region.value = value
        if internal:
            self.tabs.selected_index = 0

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the panel's background work (send, retry, probe) has finished and
        its results are shown; True if it has (False: ``timeout`` passed)."""
        return self._workers.wait(timeout)
