"""Running a send in the foreground or the background: cancel, Ctrl-C, the latest result.

- :class:`Control` is shared between a running send and whoever started it:
  ``cancel()`` stops at the next batch boundary, ``abort()`` also cancels the
  requests in flight (their rows become ``unknown``);
- :func:`run_foreground` waits in short timed waits so Ctrl-C is handled at
  once: the first Ctrl-C cancels and waits for the requests in flight, a second
  one aborts them; either way the partial result is kept (:func:`last_result`)
  and ``KeyboardInterrupt`` is raised again;
- :func:`start_background` returns a :class:`~cms_magic.results.SendJob`;
- :func:`merge` / :func:`merged_job` fold a resend into the result it retries.

The latest result lives in a :mod:`cms_magic._state` slot, so
``_state.reset()`` forgets it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from cms_magic import _state
from cms_magic.errors import ConfigError
from cms_magic.progress import Progress
from cms_magic.results import SendJob, SendResult
from cms_magic.sending import _loop

__all__ = [
    "Control",
    "SendJob",
    "last_result",
    "merge",
    "merged_job",
    "remember",
    "run_foreground",
    "start_background",
]

log = logging.getLogger("cms_magic")

_latest: _state.Slot[SendResult] = _state.slot("latest result")

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

    def cancel(self) -> None:
        """Stop at the next batch boundary; requests in flight finish."""
        self.cancelled.set()

    def abort(self) -> None:
        """Hard stop: cancel in-flight requests too (their rows become ``unknown``)."""
        self.aborted = True
        self.cancelled.set()
        loop = self.loop
        if loop is not None:
            for task in list(self.tasks):
                loop.call_soon_threadsafe(task.cancel)


def last_result() -> SendResult | None:
    """The result of the latest send in this process, also after a Ctrl-C."""
    return _latest.get()


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
        control.cancel()
        try:  # requests in flight may finish; a second Ctrl-C aborts them
            result = wait_interruptibly(future, within=grace)
        except (KeyboardInterrupt, concurrent.futures.TimeoutError):
            control.abort()
            result = future.result()
        remember(result)
        log.warning("send interrupted: %s (cms_magic.last_result())", result.summary())
        raise


def start_background(execute: Execute, control: Control) -> SendJob:
    """Start a send and return its job at once; its result becomes the latest when done."""
    future = _loop.run_in_background(execute())
    future.add_done_callback(
        lambda f: remember(f.result()) if not f.cancelled() and not f.exception() else None
    )
    return SendJob(future, control)


def merge(previous: SendResult, again: SendResult, positions: np.ndarray[Any, Any]) -> SendResult:
    """``previous`` with the rows at ``positions`` taken from ``again``; the latest result."""
    merged = previous.merged(again, positions)
    if merged.error is not None and merged.error.result is again:
        merged.error.result = merged
    return remember(merged)


def merged_job(previous: SendResult, job: SendJob, positions: np.ndarray[Any, Any]) -> SendJob:
    """A job whose result is ``job``'s merged into ``previous`` (its control is ``job``'s)."""
    done: concurrent.futures.Future[SendResult] = concurrent.futures.Future()

    def finish(ended: SendJob) -> None:
        try:
            done.set_result(merge(previous, ended.result(), positions))
        except BaseException as exc:  # handed to whoever waits on the job
            done.set_exception(exc)

    job.add_done_callback(finish)
    return SendJob(done, job.control)
