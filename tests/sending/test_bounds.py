"""Bounded time and memory whatever the server does (issue 12, items 6 and 7).

- Every attempt has one total deadline (connect + write + read, body included) of
  the ``timeout`` setting: a server trickling its status line or a chunked body
  cannot hold a send, and a timeout after the request went out leaves its rows
  ``unknown``.
- ``SendJob.cancel()`` ends the send within a few seconds whatever the server does
  (requests still in flight after the cancel's grace are abandoned: ``unknown``).
- An answer is read to at most ``MAX_ANSWER_BYTES`` and never decoded: a larger or
  content-encoded answer is malformed (its rows ``unknown``: the request was sent).
"""

from __future__ import annotations

import time
import tracemalloc

import httpx
import pandas as pd
import pytest

import cms_magic
from cms_magic.sending._transport import MAX_ANSWER_BYTES
from cms_magic.sending.jobs import CANCEL_GRACE
from tests.sending._bounded_servers import HostileServer, Mode, wait_until
from tests.sending._helpers import DEMO, no_sleep_client


def rows(n: int) -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame({"name": "bounds", "content": [f"b-{k}" for k in range(n)]})
    return frame


def reasons(result: cms_magic.SendResult) -> set[str]:
    return set(result.events["reason"].dropna().astype(str))


@pytest.mark.parametrize("mode", ["trickle_status", "trickle_chunked"])
def test_a_trickling_answer_ends_the_attempt_at_its_total_deadline(mode: Mode) -> None:
    timeout = 2.0
    with HostileServer(mode, interval=0.2) as server:
        began = time.monotonic()
        job = cms_magic.send(
            rows(100),
            endpoint=server.url,
            credentials=DEMO,
            content_col="content",
            background=True,
            qps=0,
            timeout=timeout,
        )
        ended = job.wait(timeout + 3)
        took = time.monotonic() - began
        assert ended, f"the send was still running after {took:.1f} s ({mode})"
        result = job.result()
    assert server.requests == 1  # sent once: a timeout after sending is not retried
    assert server.bytes_sent > 3  # the server did keep trickling
    assert result.counts()["unknown"] == 100
    (reason,) = reasons(result)
    assert "timeout" in reason.lower() or "deadline" in reason.lower()
    assert "may or may not have been delivered" in reason


def test_cancel_during_a_trickle_returns_within_a_few_seconds_and_rows_are_unknown() -> None:
    with HostileServer("trickle_status", interval=0.2) as server:
        job = cms_magic.send(
            rows(300),
            endpoint=server.url,
            credentials=DEMO,
            content_col="content",
            background=True,
            qps=0,
            concurrency=1,
            timeout=60,
        )
        assert server.request_seen.wait(10)
        began = time.monotonic()
        job.cancel()
        ended = job.wait(CANCEL_GRACE + 1.5)
        took = time.monotonic() - began
        assert ended, f"still running {took:.1f} s after cancel()"
        result = job.result()
    assert took < 3.5
    assert result.cancelled
    counts = result.counts()
    assert counts["unknown"] == 100  # the batch in flight
    assert counts["not_sent"] == 200  # the rest never went out
    assert server.requests == 1
    assert all("aborted" in r or "cancel" in r for r in reasons(result) if r.startswith("unknown"))


# ---------------------------------------------------------------------- memory


def send_measured(server: HostileServer) -> tuple[cms_magic.SendResult, int]:
    """Send 10 rows to ``server``; the result and the peak of traced memory meanwhile."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = cms_magic.send(
            rows(10),
            endpoint=server.url,
            credentials=DEMO,
            content_col="content",
            qps=0,
            timeout=20,
            progress=False,
        )
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.mark.parametrize("mode", ["huge_declared", "huge_chunked"])
def test_a_huge_answer_is_read_no_further_than_the_bound(mode: Mode) -> None:
    with HostileServer(mode, max_bytes=64 * 1_048_576) as server:
        result, peak = send_measured(server)
        # The client closed the connection instead of reading on: the server got no
        # further than what the sockets' buffers hold.
        assert wait_until(lambda: server.closed_by_client == 1, 10)
    assert peak < 50 * 1_048_576
    assert server.bytes_sent < 16 * 1_048_576
    assert server.requests == 1
    assert result.counts()["unknown"] == 10
    (reason,) = reasons(result)
    assert "too large" in reason
    assert f"{MAX_ANSWER_BYTES:,}" in reason


def test_a_gzip_bomb_is_not_inflated() -> None:
    with HostileServer("gzip_bomb", bomb_bytes=30 * 1_048_576) as server:
        result, peak = send_measured(server)
    assert peak < 50 * 1_048_576
    assert result.counts()["unknown"] == 10
    (reason,) = reasons(result)
    assert "gzip" in reason
    assert "encod" in reason


def test_the_client_asks_for_no_compression() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept-encoding"))
        return httpx.Response(200, json={"code": "200", "msg": "success"})

    result = no_sleep_client(handler).send(rows(3), content_col="content", progress=False)
    assert result.ok
    assert seen == ["identity"]


def test_a_malformed_answer_is_unknown_and_not_retried_even_with_retry_ambiguous() -> None:
    from cms_magic.sending._transport import AnswerTooLarge, EncodedAnswer
    from cms_magic.sending.answers import decide_failure

    for exc in (AnswerTooLarge("the answer is too large"), EncodedAnswer("gzip")):
        _, decision = decide_failure(exc, retry_ambiguous=True)
        assert decision.status == "unknown"
        assert not decision.retryable  # the same server would answer the same way
        assert decision.reason is not None
        assert "malformed answer" in decision.reason
