"""Cancelling ``await client.asend(...)`` (issue 12, item 8).

The run on the library loop is aborted (producer stopped, requests in flight
abandoned, connections closed), its partial result is ``cms_magic.last_result()``
and the ``CancelledError``'s ``result`` (``asyncio.wait_for``'s ``TimeoutError``
has that error as its ``__cause__``), and nothing is left behind: no task on the
library loop, no open file descriptor.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

import cms_magic
from cms_magic.sending._loop import library_loop
from cms_magic.sending.client import Client
from tests.sending._bounded_servers import HostileServer
from tests.sending._helpers import DEMO, frame

ROWS = 1_000  # 10 batches: a cancel always lands mid-send


def library_tasks() -> int:
    """The tasks on the library loop, besides the one counting them."""

    async def count() -> int:
        return len(asyncio.all_tasks()) - 1

    return asyncio.run_coroutine_threadsafe(count(), library_loop()).result(5)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settle(baseline: tuple[int, int], within: float) -> tuple[int, int]:
    """Poll the (tasks, fds) counts until they are back to ``baseline`` or ``within`` ends."""
    give_up = time.monotonic() + within
    now = (library_tasks(), open_fds())
    while now != baseline and time.monotonic() < give_up:
        await asyncio.sleep(0.05)
        now = (library_tasks(), open_fds())
    return now


def check_partial(result: object) -> cms_magic.SendResult:
    assert isinstance(result, cms_magic.SendResult)
    counts = result.counts()
    assert sum(counts.values()) == ROWS
    assert counts["accepted"] == 0  # the server never answers
    assert counts["unknown"] >= 100  # the batches in flight were abandoned...
    assert counts["not_sent"] >= ROWS - 300  # ...and the rest never went out
    assert result.cancelled
    assert cms_magic.last_result() is result
    return result


def test_a_cancelled_asend_keeps_its_result_and_leaves_nothing_behind() -> None:
    with HostileServer("hold") as server:
        client = Client(server.url, credentials=DEMO, qps=0, concurrency=2, timeout=30)

        async def main() -> None:
            library_tasks()  # the library loop is running (its own fds are in the baseline)
            baseline = (0, open_fds())  # no task on the library loop, the fds open now
            for _ in range(20):
                with pytest.raises(TimeoutError) as timed_out:
                    await asyncio.wait_for(client.asend(frame(ROWS), content_col="content"), 0.2)
                cancelled = timed_out.value.__cause__
                assert isinstance(cancelled, asyncio.CancelledError)
                check_partial(getattr(cancelled, "result", None))
            assert await settle(baseline, 10) == baseline

        asyncio.run(main())
    assert server.requests >= 20


def test_cancelling_the_task_of_an_asend_gives_the_result_on_the_error() -> None:
    with HostileServer("hold") as server:
        client = Client(server.url, credentials=DEMO, qps=0, concurrency=2, timeout=30)

        async def main() -> None:
            task = asyncio.create_task(client.asend(frame(ROWS), content_col="content"))
            while server.requests < 2:  # both workers have a request held
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError) as cancelled:
                await task
            result = check_partial(getattr(cancelled.value, "result", None))
            assert result.counts()["unknown"] == 200

        asyncio.run(asyncio.wait_for(main(), 30))
