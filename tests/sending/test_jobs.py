"""Jobs: event loops, background sends, cancel, Ctrl-C, the latest result, retry."""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any

import httpx
import numpy as np
import pytest

import cms_magic
from cms_magic import _state
from cms_magic.emulator import Emulator, EmulatorServer, serve
from cms_magic.errors import ConfigError
from cms_magic.results import SendResult
from cms_magic.sending import _loop
from cms_magic.sending.client import Client, RetryPolicy
from cms_magic.sending.jobs import (
    Control,
    merged_job,
    run_foreground,
    running_jobs,
    start_background,
)
from tests.results_support import make_result
from tests.sending._helpers import DEMO, Script, frame, no_sleep_client


def test_send_from_inside_a_running_event_loop(emulator: EmulatorServer) -> None:
    async def main() -> tuple[cms_magic.SendResult, cms_magic.SendResult]:
        sync_result = cms_magic.send(
            frame(300), endpoint=emulator.url, credentials=DEMO, content_col="content", qps=0
        )
        client = Client(emulator.url, credentials=DEMO, qps=0)
        async_result = await client.asend(frame(200), content_col="content")
        return sync_result, async_result

    sync_result, async_result = asyncio.run(main())
    assert sync_result.ok
    assert async_result.ok
    assert len(emulator.events()) == 500


def test_cancel_keeps_a_consistent_partial_result_that_retry_finishes() -> None:
    with serve(qps=0) as server:
        started = threading.Event()

        def on_progress(progress: cms_magic.Progress) -> None:
            if progress.requests >= 3:
                started.set()

        job = cms_magic.send(
            frame(3_000),
            endpoint=server.url,
            credentials=DEMO,
            content_col="content",
            background=True,
            qps=20,
            progress=on_progress,
        )
        assert started.wait(10)
        job.cancel()
        assert job.wait(10)
        result = job.result()
        assert job.status == "cancelled"
        assert result.cancelled
        counts = result.counts()
        assert counts["accepted"] + counts["not_sent"] == 3_000
        assert 300 <= counts["accepted"] < 3_000
        stored = [e["content"] for e in server.events()]
        assert len(stored) == counts["accepted"]
        finished = result.retry()
        assert finished.ok
        stored = [e["content"] for e in server.events()]
        assert sorted(stored) == sorted(frame(3_000)["content"])  # no duplicates, none missing
        assert cms_magic.last_result() is not None


def test_keyboard_interrupt_in_a_foreground_send_keeps_the_partial_result() -> None:
    with serve(qps=0) as server:

        def interrupt_when_started() -> None:
            while len(server.requests()) < 3:
                threading.Event().wait(0.005)
            _thread.interrupt_main()

        watcher = threading.Thread(target=interrupt_when_started, daemon=True)
        watcher.start()
        with pytest.raises(KeyboardInterrupt):
            cms_magic.send(
                frame(3_000), endpoint=server.url, credentials=DEMO, content_col="content", qps=20
            )
        watcher.join(5)
        partial = cms_magic.last_result()
        assert partial is not None
        assert partial.cancelled
        counts = partial.counts()
        assert counts["accepted"] + counts["not_sent"] + counts["unknown"] == 3_000
        assert counts["not_sent"] > 0
        assert len(server.events()) == counts["accepted"]
        finished = partial.retry()
        assert finished.ok
        contents = [e["content"] for e in server.events()]
        assert len(contents) == len(set(contents)) == 3_000


def test_background_job_api(emulator: EmulatorServer) -> None:
    job = cms_magic.send(
        frame(500),
        endpoint=emulator.url,
        credentials=DEMO,
        content_col="content",
        background=True,
        qps=0,
    )
    assert isinstance(job, cms_magic.SendJob)
    assert job.wait(30)
    assert job.status == "done"
    assert job.result().ok
    assert job.progress is not None
    assert job.progress.done == 500
    assert job.progress.finished
    assert "done" in repr(job)


def test_retry_in_the_background_returns_a_job_with_the_merged_result() -> None:
    emulator = Emulator(qps=0)
    script = Script(emulator, [httpx.ConnectError("refused")] * 2)
    client = no_sleep_client(script, retry=RetryPolicy(max_attempts=2), concurrency=1)
    first = client.send(frame(150), content_col="content")
    assert first.counts()["not_sent"] == 100  # the first batch ran out of attempts
    job = first.retry(background=True)
    assert isinstance(job, cms_magic.SendJob)
    assert job.wait(30)
    assert job.status == "done"
    merged = job.result()
    assert merged.ok
    assert len(merged) == 150
    assert cms_magic.last_result() is merged
    assert len(emulator.events()) == 150


def test_last_result_lives_in_the_resettable_state(emulator: EmulatorServer) -> None:
    result = cms_magic.send(
        frame(5), endpoint=emulator.url, credentials=DEMO, content_col="content", qps=0
    )
    assert cms_magic.last_result() is result
    assert "latest result" in _state.names()
    _state.reset()
    assert cms_magic.last_result() is None


def test_a_synchronous_send_from_inside_the_library_loop_is_refused() -> None:
    control = Control()
    calls: list[str] = []

    async def execute() -> cms_magic.SendResult:
        raise AssertionError("never started")

    def make() -> Coroutine[Any, Any, cms_magic.SendResult]:
        calls.append("made")
        return execute()

    def inside() -> None:
        try:
            run_foreground(make, control, grace=1)
        except ConfigError as exc:
            calls.append(str(exc.option))

    loop = _loop.library_loop()
    done = threading.Event()

    def then_done() -> None:
        inside()
        done.set()

    loop.call_soon_threadsafe(then_done)
    assert done.wait(5)
    assert calls == ["send"]  # refused before the run's coroutine was made


def test_a_cancel_or_abort_asked_before_the_run_started_takes_effect_when_it_does() -> None:
    async def main() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        late_cancel, late_abort = Control(), Control()
        late_cancel.cancel(grace=0.05)  # before the run has its loop and tasks
        late_abort.abort()
        held = [asyncio.create_task(asyncio.sleep(30)) for _ in range(2)]
        late_cancel.started(loop, [held[0]])
        late_abort.started(loop, [held[1]])
        await asyncio.wait(held, timeout=5)
        return held[0].cancelled(), held[1].cancelled()

    assert asyncio.run(main()) == (True, True)  # the grace ran out; the abort applied


def test_a_cancel_grace_does_not_abort_a_run_that_ended() -> None:
    async def main() -> bool:
        control = Control()
        done = asyncio.create_task(asyncio.sleep(0))
        control.started(asyncio.get_running_loop(), [done])
        await done
        control.cancel(grace=0.01)
        await asyncio.sleep(0.05)
        return control.aborted

    assert asyncio.run(main()) is False


def _result(*codes: int) -> SendResult:
    return make_result(*codes, elapsed=0.1)


def _held() -> tuple[concurrent.futures.Future[SendResult], Any]:
    """A run that ends when the test says, with the result it is given."""
    release: concurrent.futures.Future[SendResult] = concurrent.futures.Future()

    async def execute() -> SendResult:
        return await asyncio.wrap_future(release)

    return release, execute


def test_running_jobs_lists_a_background_job_until_it_ends() -> None:
    assert running_jobs() == []
    release, execute = _held()
    job = start_background(execute, Control())
    assert running_jobs() == [job]
    second_release, second = _held()
    other = start_background(second, Control())
    assert running_jobs() == [job, other]  # oldest first
    result = _result(0, 0)
    release.set_result(result)
    assert job.wait(10)
    # No window where the job is gone and the latest result still the previous one.
    assert running_jobs() == [other]
    assert cms_magic.last_result() is result
    second_release.set_exception(RuntimeError("broken"))
    assert other.wait(10)
    assert running_jobs() == []


def test_running_jobs_live_in_the_resettable_state() -> None:
    release, execute = _held()
    job = start_background(execute, Control())
    assert "running jobs" in _state.names()
    assert running_jobs() == [job]
    _state.reset()
    assert running_jobs() == []
    release.set_result(_result(0))
    assert job.wait(10)
    assert running_jobs() == []


def test_a_background_retry_is_listed_once_as_the_merged_job() -> None:
    release, execute = _held()
    inner = start_background(execute, Control())
    previous = _result(0, 2, 2)
    merged = merged_job(previous, inner, np.array([1, 2]))
    assert running_jobs() == [merged]
    release.set_result(_result(0, 0))
    assert merged.wait(10)
    assert running_jobs() == []
    assert merged.result().ok
    assert cms_magic.last_result() is merged.result()
