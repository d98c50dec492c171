"""Ctrl-C in a foreground send and cancel in a background one, at random points.

Each run stops a send of uniquely marked rows after a random number of
requests (seeded), then checks the partial result is consistent with what the
emulator holds, and that ``retry()`` finishes the job with no duplicates among
acknowledged rows.
"""

from __future__ import annotations

import _thread
import collections
import random
import threading
import time
from collections.abc import Callable

import pandas as pd
import pytest

import cms_magic
from cms_magic.emulator import EmulatorServer, Faults, demo_credentials, serve

N = 5_000  # 50 requests at 40 per second: the stop always lands mid-send
POINTS = random.Random(20261126).sample(range(1, 19), 3)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` (a state another thread changes) until true or ``timeout`` passes."""
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            return False
        threading.Event().wait(0.002)
    return True


def rows() -> pd.DataFrame:
    return pd.DataFrame({"name": "interrupt", "content": [f"i-{k}" for k in range(N)]})


def check_consistent_and_finish(result: cms_magic.SendResult, server: EmulatorServer) -> None:
    counts = result.counts()
    assert sum(counts.values()) == N
    assert counts["rejected"] == 0
    assert result.cancelled
    status = result.events["status"].astype(str).tolist()
    contents = rows()["content"].tolist()
    stored = collections.Counter(e["content"] for e in server.events())
    accepted = {c for c, s in zip(contents, status, strict=True) if s == "accepted"}
    unknown = {c for c, s in zip(contents, status, strict=True) if s == "unknown"}
    assert all(stored[c] == 1 for c in accepted)
    assert set(stored) <= accepted | unknown
    finished = result.retry()
    final = finished.events["status"].astype(str)
    assert ((final == "accepted") | (final == "unknown")).all()
    stored = collections.Counter(e["content"] for e in server.events())
    acknowledged = {c for c, s in zip(contents, final, strict=True) if s == "accepted"}
    assert all(stored[c] == 1 for c in acknowledged), "a duplicate among acknowledged rows"


@pytest.mark.parametrize("after", POINTS)
def test_cancel_a_background_send_at_a_random_point(after: int) -> None:
    with serve(qps=0) as server:
        reached = threading.Event()

        def watch(progress: cms_magic.Progress) -> None:
            if progress.requests >= after:
                reached.set()

        job = cms_magic.send(
            rows(),
            endpoint=server.url,
            credentials=demo_credentials(),
            content_col="content",
            background=True,
            qps=40,
            progress=watch,
        )
        assert reached.wait(15)
        job.cancel()
        assert job.wait(15)
        check_consistent_and_finish(job.result(), server)


@pytest.mark.parametrize("after", POINTS)
def test_ctrl_c_in_a_foreground_send_at_a_random_point(after: int) -> None:
    with serve(qps=0) as server:

        def interrupt() -> None:
            if wait_until(lambda: len(server.requests()) >= after, timeout=30):
                _thread.interrupt_main()

        watcher = threading.Thread(target=interrupt, daemon=True)
        watcher.start()
        with pytest.raises(KeyboardInterrupt):
            cms_magic.send(
                rows(),
                endpoint=server.url,
                credentials=demo_credentials(),
                content_col="content",
                qps=40,
                progress=False,
            )
        watcher.join(5)
        partial = cms_magic.last_result()
        assert partial is not None
        check_consistent_and_finish(partial, server)


def test_abort_settles_requests_in_flight_as_unknown_and_returns_promptly() -> None:
    """The hard stop (a second Ctrl-C): requests held by the server are abandoned."""
    with serve(qps=0) as server:
        server.emulator.set_faults(Faults(delay=1.0, delay_seconds=60))
        job = cms_magic.send(
            rows(),
            endpoint=server.url,
            credentials=demo_credentials(),
            content_col="content",
            background=True,
            qps=0,
            concurrency=2,
            timeout=120,
        )
        # Both workers have a request held by the server.
        assert wait_until(lambda: len(server.requests()) >= 2, timeout=10)
        job.abort()
        assert job.wait(10)  # far sooner than the 60 s delay or the 120 s timeout
        result = job.result()
        counts = result.counts()
        assert counts["unknown"] == 200  # the two batches in flight (they were stored)
        assert counts["not_sent"] == N - 200
        assert len(server.events()) == 200
