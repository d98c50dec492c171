"""The panel's read-back actions (issue 15): *Confirm* a result, *Read* the Events tab.

:class:`ReadBackActions` is the part of :class:`~cms_magic.ui.panel.panel.Panel` that
reads back: :meth:`~ReadBackActions.confirm` runs :meth:`SendResult.confirm` on the
latest result in a worker thread (the kernel stays free, as for a send), then shows
the confirmed result, whose rows known not stored *Retry failed* resends;
:meth:`~ReadBackActions.read_events` reads what the Events tab's filters match
(:func:`cms_magic.ui.panel.events.read_back`) in a worker thread. Both change widgets
only through their traits, and say their errors in the panel's words.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Final

from cms_magic.errors import CmsError, ConfigError
from cms_magic.readback import openapi_url
from cms_magic.ui.panel import html
from cms_magic.ui.panel.controls import Controls
from cms_magic.ui.panel.events import EventsFilters, EventsRead, read_back
from cms_magic.ui.panel.plans import ConfirmPlan, Sending, confirm_plan, confirmed_note

if TYPE_CHECKING:
    from cms_magic.results import SendResult
    from cms_magic.ui.panel.background import Workers

__all__ = ["ReadBackActions"]


def _default_wait() -> float:
    from cms_magic.results import SendResult

    wait: float = inspect.signature(SendResult.confirm).parameters["wait"].default
    return wait


#: How long :meth:`SendResult.confirm` polls unless told (said next to Confirm).
_CONFIRM_WAIT: Final = _default_wait()


class ReadBackActions(Controls):
    """Confirm and Read, over the panel's state (set by :class:`~.panel.Panel`)."""

    result: SendResult | None
    events_read: EventsRead | None
    last_error: BaseException | None
    _busy: bool
    _where: str
    _now: Sending | None
    _confirmed: str
    _confirm_options: dict[str, Any]
    _read_options: dict[str, Any]
    _workers: Workers

    if TYPE_CHECKING:  # the panel's

        def clear_error(self) -> None: ...
        def _show_error(
            self, exc: BaseException, *, in_status: bool = False, what: str = "not started"
        ) -> None: ...
        def _set_running(self, running: bool, total: int = 0) -> None: ...
        def _refresh_retry(self) -> None: ...

    def _refresh_confirm(self) -> None:
        plan = confirm_plan(self.result, busy=self._busy)
        rows = 0 if plan is None else len(plan.positions)
        note = self._confirmed
        if rows and not note:
            note = html.muted(
                f"reads back the {rows:,} row{'s' if rows != 1 else ''} that may or may not "
                f"have arrived, from {self._where} (needs cms:DescribeCustomEventAttribute)"
            )
        self.show_confirm(rows, note, keep=bool(note))

    def confirm(self) -> None:
        """Read back, in the background, the latest result's ``unknown`` rows and possible
        duplicates (:meth:`SendResult.confirm`, where they were sent); the confirmed result
        replaces it, so *Retry failed* then resends exactly the rows known not stored."""
        if self._busy:
            raise ConfigError("a send is already running: wait for it, or Cancel it")
        previous = self.result
        plan = confirm_plan(previous, busy=False)
        if previous is None or plan is None:
            raise ConfigError("nothing to confirm: no row of the latest send is unknown")
        self.clear_error()
        self._busy = True
        self.send_button.disabled = self.dry_run_button.disabled = True
        rows = len(plan.positions)
        wait = self._confirm_options.get("wait", _CONFIRM_WAIT)
        self._confirmed = html.esc(
            f"confirming: reading back {rows:,} row{'s' if rows != 1 else ''} "
            f"(waiting up to {wait:g} s for the service's index)…"
        )
        self.status.value = html.esc("confirming…")
        self._refresh_retry()
        self._workers.start(self._run_confirm, previous, plan)

    def _run_confirm(self, previous: SendResult, plan: ConfirmPlan) -> None:
        try:
            confirmed = previous.confirm(**self._confirm_options)
            self.result = confirmed
            self._confirmed = html.esc(confirmed_note(previous, confirmed, len(plan.positions)))
            self.show_result(confirmed, where=self._where)
        except Exception as exc:
            self._confirmed = ""
            self._show_error(exc, in_status=True, what="not confirmed")
        finally:
            self._set_running(False)

    def read_events(self) -> None:
        """Read back, in the background, what the Events tab's filters match, from the Send
        tab's target with its credentials: the histogram, the first events and how many
        (``events_read``). A mistake in a field is said next to Read, naming the field."""
        tab = self.events_tab
        if tab.reading:  # its outcome will show; the button is disabled meanwhile
            raise ConfigError("a read is already running: wait for it")
        try:
            filters = tab.filters()
            source = self._now
            if source is None:
                raise ConfigError("choose a target with credentials in the Send tab first")
            openapi_url(source.target)  # 'public' names no region: said now
        except CmsError as exc:
            self.last_error = exc
            tab.show_error(exc)
            return
        tab.start(filters)
        self._workers.start(self._read, source, filters)

    def _read(self, source: Sending, filters: EventsFilters) -> None:
        try:
            self.events_read = read_back(source, filters, **self._read_options)
            self.events_tab.show(self.events_read)
        except Exception as exc:
            self.last_error = exc
            self.events_tab.show_error(exc)
        finally:
            self.events_tab.done()
