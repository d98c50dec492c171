"""An abort tells rows in flight (unknown) from rows that never went out (not_sent)."""

from __future__ import annotations

import threading
import time

import httpx
import pandas as pd

from cms_magic.sending.client import Client
from cms_magic.sending.quota import TokenBucket
from tests.sending._helpers import DEMO


def test_rows_waiting_for_their_quota_slot_at_an_abort_are_not_sent() -> None:
    answered = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        answered.set()
        return httpx.Response(200, json={"code": "200", "msg": ""})

    # One request now, the next slots 30 s and 60 s away: an abort lands while
    # batches 1 and 2 wait for their slots, before anything of theirs went out.
    bucket = TokenBucket(rate=1 / 30, capacity=1)
    client = Client(
        "http://127.0.0.1:9",
        credentials=DEMO,
        quota=bucket,
        concurrency=3,
        transport=httpx.MockTransport(handler),
    )
    frame = pd.DataFrame({"name": ["n"] * 300, "content": [f"row {i}" for i in range(300)]})
    job = client.send(frame, background=True)
    try:
        assert answered.wait(10)
        deadline = time.monotonic() + 10
        # batch 0 settled (its progress reported): only the waiting ones remain
        while job.progress is None or job.progress.accepted < 100:
            assert time.monotonic() < deadline, job.progress
            answered.wait(0.01)
    finally:
        job.abort()  # also when an assertion failed: no send left waiting 60 s for slots
    result = job.result()
    statuses = {k: v for k, v in result.events["status"].value_counts().items() if v}
    assert statuses == {"accepted": 100, "not_sent": 200}
    waiting = result.events[result.events["status"] == "not_sent"]
    assert set(waiting["reason"]) == {"not sent: the send was aborted before this request went out"}
    assert len(result.requests) == 1
