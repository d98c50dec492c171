"""Running a send in the foreground or the background: cancel, Ctrl-C, the latest result.

- :class:`Control` is shared between a running send and whoever started it:
  ``cancel()`` stops at the next batch boundary and gives the requests in flight
  :data:`CANCEL_GRACE` seconds to finish, ``abort()`` cancels them at once; rows of
  an abandoned request are ``unknown`` (it may have arrived);
- :func:`run_foreground` waits in short timed waits so Ctrl-C is handled at
  once: the first Ctrl-C cancels and waits for the requests in flight, a second
  one aborts them; either way the partial result is kept (:func:`last_result`)
  and ``KeyboardInterrupt`` is raised again;
- :func:`start_background` returns a :class:`~cms_magic.results.SendJob`;
- :func:`await_run` awaits a send from any event loop (``asend``); cancelling the
  awaiting task aborts the run and keeps its partial result (in
  :func:`last_result` and on the ``CancelledError`` as ``.result``);
- :func:`merge` / :func:`merged_job` fold a resend into the result it retries.

The latest result lives in a :mod:`cms_magic._state` slot, and so do the
background jobs still running (:func:`running_jobs`: a job is there from its
start until it ends, done, cancelled or failed), so ``_state.reset()`` forgets
both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

import numpy as np

from cms_magic import _state
from cms_magic.errors import ConfigError
from cms_magic.progress import Progress
from cms_magic.results import SendJob, SendResult
from cms_magic.sending import _loop

__all__ = [
    "ASEND_WIND_DOWN",
    "CANCEL_GRACE",
    "Control",
    "SendJob",
    "await_run",
    "last_result",
    "merge",
    "merged_job",
    "remember",
    "run_foreground",
    "running_jobs",
    "start_background",
]

log = logging.getLogger("cms_magic")

_latest: _state.Slot[SendResult] = _state.slot("latest result")

# The background jobs running, in the order they started (a dict used as an ordered set).
_running: _state.Slot[dict[SendJob, None]] = _state.slot("running jobs")
_running_lock = threading.Lock()

#: After a cancel, how long requests in flight may take to finish before they are abandoned.
CANCEL_GRACE: Final = 1.5

#: After an ``asend`` is cancelled, how long it waits for the aborted run's partial result.
ASEND_WIND_DOWN: Final = 5.0

#: Makes the coroutine of one run (called only once the send may start).
Execute = Callable[[], Coroutine[Any, Any, SendResult]]


class Control:
    """Shared between a running send and whoever started it: cancel and progress."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.progress: Progress | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.aborted = False
        self._grace: float | None = None  # asked for before the run had its loop
        self._lock = threading.Lock()  # between cancel() (any thread) and started()

    def cancel(self, grace: float | None = CANCEL_GRACE) -> None:
        """Stop at the next batch boundary; requests in flight get ``grace`` seconds to
        finish, then they are abandoned as by :meth:`abort` (``None``: no limit)."""
        self.cancelled.set()
        if grace is None:
            return
        with self._lock:
            loop = self.loop
            if loop is None:  # the run has not started: it sets the timer when it does
                self._grace = grace if self._grace is None else min(grace, self._grace)
                return
        with contextlib.suppress(RuntimeError):  # a closed loop: nothing runs on it
            loop.call_soon_threadsafe(loop.call_later, grace, self._abort_if_running)

    def abort(self) -> None:
        """Hard stop: cancel in-flight requests too (their rows become ``unknown``)."""
        self.aborted = True
        self.cancelled.set()
        loop = self.loop
        if loop is not None:
            for task in list(self.tasks):
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(task.cancel)

    def started(self, loop: asyncio.AbstractEventLoop, tasks: list[asyncio.Task[Any]]) -> None:
        """The run's tasks are running on ``loop`` (called there): a cancel or abort asked
        for before now takes effect."""
        self.tasks = tasks
        with self._lock:
            self.loop = loop
            grace = self._grace
        if self.aborted:  # abort() may have seen no tasks yet
            for task in tasks:
                task.cancel()
        elif grace is not None:
            loop.call_later(grace, self._abort_if_running)

    def _abort_if_running(self) -> None:
        if any(not task.done() for task in self.tasks):
            log.info("requests still in flight after the cancel's grace: abandoned")
            self.abort()


def last_result() -> SendResult | None:
    """The result of the latest send in this process, also after a Ctrl-C."""
    return _latest.get()


def running_jobs() -> list[SendJob]:
    """The background jobs of this process still running, oldest first (``%cms last``
    says a send is running and gives its job). A job is listed while ``job.done()`` is
    False; by the time it is not, its result is :func:`last_result` (or a later one's)."""
    with _running_lock:
        jobs = list(_running.get() or ())
    return [job for job in jobs if not job.done()]


def _track(job: SendJob) -> SendJob:
    """Keep ``job`` in :func:`running_jobs` until it ends."""
    with _running_lock:
        _running.get_or_create(dict)[job] = None
    job.add_done_callback(_untrack)  # at once if it has already ended
    return job


def _untrack(job: SendJob) -> None:
    with _running_lock:
        jobs = _running.get()
        if jobs is not None:
            jobs.pop(job, None)


def remember(result: SendResult) -> SendResult:
    """Make ``result`` the latest result; returns it."""
    _latest.set(result)
    return result


def wait_interruptibly(
    future: concurrent.futures.Future[SendResult], within: float | None = None
) -> SendResult:
    """Wait for ``future`` in short timed waits, so Ctrl-C (SIGINT) is handled promptly.

    Raises ``TimeoutError`` if ``within`` seconds pass first.
    """
    deadline = None if within is None else time.monotonic() + within
    while True:
        try:
            return future.result(timeout=0.1)
        except concurrent.futures.TimeoutError:
            if deadline is not None and time.monotonic() >= deadline:
                raise


def run_foreground(execute: Execute, control: Control, *, grace: float) -> SendResult:
    """Run a send and wait for it; on Ctrl-C keep the partial result, then re-raise.

    After the first Ctrl-C the requests in flight get ``grace`` seconds to finish.
    """
    if _loop.in_library_loop():
        raise ConfigError(
            "a synchronous send cannot run inside cms_magic's own loop (a progress callback, say)",
            option="send",
            hint="use `await client.asend(...)` from async code",
        )
    future = _loop.run_in_background(execute())
    try:
        return remember(wait_interruptibly(future))
    except KeyboardInterrupt:
        control.cancel(grace=None)  # this wait is the grace: a second Ctrl-C ends it
        try:  # requests in flight may finish; a second Ctrl-C aborts them
            result = wait_interruptibly(future, within=grace)
        except (KeyboardInterrupt, concurrent.futures.TimeoutError):
            control.abort()
            result = future.result()
        remember(result)
        log.warning(
            "send interrupted: %s", result.summary("cms_magic.last_result()", interrupted=True)
        )
        raise


def start_background(execute: Execute, control: Control) -> SendJob:
    """Start a send and return its job at once; its result becomes the latest when done."""

    async def remembered() -> SendResult:
        # The result is the latest before the job is done: once running_jobs() no
        # longer lists a job, last_result() is its result (or a later one).
        return remember(await execute())

    return _track(SendJob(_loop.run_in_background(remembered()), control))


def _remember_outcome(future: concurrent.futures.Future[SendResult]) -> None:
    if not future.cancelled() and future.exception() is None:
        remember(future.result())


async def await_run(
    execute: Execute, control: Control, *, wind_down: float = ASEND_WIND_DOWN
) -> SendResult:
    """Run a send on the library loop and ``await`` it from any event loop.

    If the awaiting task is cancelled (``asyncio.wait_for`` timing out, a task group
    ending, ``task.cancel()``), the run is aborted: the producer stops, requests in
    flight are abandoned (their rows ``unknown``), connections close. Its partial
    result is awaited (at most ``wind_down`` seconds, further cancellations
    meanwhile waiting with it), becomes :func:`last_result`, and is attached to the
    ``CancelledError`` raised again, as its ``result`` attribute
    (``asyncio.wait_for`` raises ``TimeoutError`` from it: ``err.__cause__.result``).
    """
    future = _loop.run_in_background(execute())
    waiting = asyncio.wrap_future(future)
    try:
        # Shielded: cancelling us must not cancel the run's future, which would drop
        # its result; the run is wound down through its control instead.
        result = await asyncio.shield(waiting)
    except asyncio.CancelledError as cancelled:
        control.abort()
        partial = await _outlast(waiting, wind_down)
        if partial is None:  # slower than the wind-down: kept when it comes
            future.add_done_callback(_remember_outcome)
        else:
            remember(partial)
            cancelled.result = partial  # type: ignore[attr-defined]
        raise
    return remember(result)


async def _outlast(waiting: asyncio.Future[SendResult], within: float) -> SendResult | None:
    """``waiting``'s result if it comes within ``within`` seconds, whatever cancels us."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within
    while not waiting.done() and loop.time() < give_up:
        with contextlib.suppress(asyncio.CancelledError):  # the first one is re-raised
            await asyncio.wait([waiting], timeout=give_up - loop.time())
    if waiting.done() and not waiting.cancelled() and waiting.exception() is None:
        return waiting.result()
    return None


def merge(previous: SendResult, again: SendResult, positions: np.ndarray[Any, Any]) -> SendResult:
    """``previous`` with the rows at ``positions`` taken from ``again``; the latest result."""
    merged = previous.merged(again, positions)
    if merged.error is not None and merged.error.result is again:
        merged.error.result = merged
    return remember(merged)


def merged_job(previous: SendResult, job: SendJob, positions: np.ndarray[Any, Any]) -> SendJob:
    """A job whose result is ``job``'s merged into ``previous`` (its control is ``job``'s);
    it stands for ``job`` in :func:`running_jobs`."""
    done: concurrent.futures.Future[SendResult] = concurrent.futures.Future()

    def finish(ended: SendJob) -> None:
        try:
            done.set_result(merge(previous, ended.result(), positions))
        except BaseException as exc:  # handed to whoever waits on the job
            done.set_exception(exc)

    merged = _track(SendJob(done, job.control))
    _untrack(job)
    job.add_done_callback(finish)
    return merged
