"""The run: streaming, retries re-signed, failures that must not retry, bisection, progress."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

import cms_magic
from cms_magic import _state
from cms_magic.credentials.static import Credentials
from cms_magic.emulator import Emulator
from cms_magic.errors import AuthError
from cms_magic.sending.bisection import BisectBudget, next_step, unnarrowed_reason
from cms_magic.sending.client import RetryPolicy
from tests.sending._helpers import DEMO, Script, frame, no_sleep_client


def test_large_frame_streams_in_chunks_with_continuous_batches() -> None:
    emulator = Emulator(qps=0)
    client = no_sleep_client(emulator.handle_request, chunk_rows=1_000)
    result = client.send(frame(25_050), content_col="content")
    assert result.ok
    assert len(emulator.events()) == 25_050
    assert result.requests["batch"].tolist() == list(range(251))
    assert result.events["batch"].max() == 250


def test_each_retry_is_signed_again_with_a_fresh_date() -> None:
    now = [1_800_000_000.0]

    def clock() -> float:
        now[0] += 1.0
        return now[0]

    emulator = Emulator(qps=0, clock=lambda: now[0])
    script = Script(
        emulator,
        [httpx.Response(503, json={"code": "503", "msg": "busy"}), httpx.ConnectError("refused")],
    )
    sleeps: list[float] = []
    client = no_sleep_client(script, clock=clock, sleeps=sleeps)
    result = client.send(frame(10), content_col="content")
    assert result.ok
    assert len(script.dates) == 3
    assert len(set(script.dates)) == 3  # a new Date each attempt, and the emulator verified it
    assert result.requests["attempts"].tolist() == [3]
    assert result.events["attempts"].eq(3).all()
    assert sleeps == [0.5 * 0.25, 0.5 * 0.5]  # full jitter with random() = 0.5


def test_retry_after_is_honoured() -> None:
    emulator = Emulator(qps=0)
    throttle = httpx.Response(
        403, json={"code": "403", "msg": "Throttling"}, headers={"Retry-After": "3"}
    )
    sleeps: list[float] = []
    client = no_sleep_client(Script(emulator, [throttle]), sleeps=sleeps)
    assert client.send(frame(1), content_col="content").ok
    assert sleeps == [3.0]


def test_retries_are_bounded_and_rows_end_not_sent() -> None:
    emulator = Emulator(qps=0)
    script = Script(emulator, [httpx.ConnectError("refused")] * 4)
    client = no_sleep_client(script, retry=RetryPolicy(max_attempts=4))
    result = client.send(frame(3), content_col="content")
    assert result.events["status"].tolist() == ["not_sent"] * 3
    assert result.requests["attempts"].tolist() == [4]
    assert "ConnectError" in result.events["reason"].iloc[0]
    assert emulator.events() == []
    again = result.retry()
    assert again.ok
    assert len(emulator.events()) == 3


def test_retries_stop_after_max_time_on_the_injected_clock() -> None:
    ticks = [0.0]

    def monotonic() -> float:
        ticks[0] += 10.0
        return ticks[0]

    script = Script(Emulator(qps=0), [httpx.ConnectError("refused")] * 10)
    client = no_sleep_client(
        script, monotonic=monotonic, retry=RetryPolicy(max_attempts=10, max_time=25.0)
    )
    result = client.send(frame(1), content_col="content")
    # The clock reads 20, 30, 40 s after the start at the checks: the third stops.
    assert result.requests["attempts"].tolist() == [3]


def test_timeout_after_sending_is_unknown_and_not_retried_by_default() -> None:
    emulator = Emulator(qps=0)
    script = Script(emulator, [httpx.ReadTimeout("slow")])
    result = no_sleep_client(script).send(frame(5), content_col="content")
    assert result.events["status"].tolist() == ["unknown"] * 5
    assert result.requests["attempts"].tolist() == [1]
    assert "may or may not have been delivered" in result.events["reason"].iloc[0]
    assert "5 unknown -> result.confirm(), result.failed()" in result.summary()
    # retry() leaves unknown rows alone unless asked
    assert result.retry().counts()["unknown"] == 5
    assert result.retry(include_unknown=True).ok


def test_retry_ambiguous_opt_in() -> None:
    script = Script(Emulator(qps=0), [httpx.ReadTimeout("slow")])
    result = no_sleep_client(script, retry_ambiguous=True).send(frame(5), content_col="content")
    assert result.ok
    assert result.requests["attempts"].tolist() == [2]


def test_auth_failure_stops_the_whole_send_at_once() -> None:
    emulator = Emulator(qps=0)
    wrong = Credentials(DEMO.access_key_id, "not-the-secret")
    client = no_sleep_client(emulator.handle_request, credentials=wrong, concurrency=2)
    result = client.send(frame(5_000), content_col="content")
    counts = result.counts()
    assert counts["accepted"] == 0
    assert counts["not_sent"] == 5_000
    assert len(emulator.requests()) <= 2  # the in-flight ones, then nothing more
    assert result.requests["attempts"].max() == 1
    assert isinstance(result.error, AuthError)
    assert result.error.hint is not None
    assert "check the AccessKey secret" in result.error.hint
    assert "not-the-secret" not in str(result.error)
    assert result.error.result is result
    assert "stopped: the service refused the credentials" in result.summary()
    assert not result.ok
    with pytest.raises(AuthError, match="refused the credentials"):
        result.raise_for_error()


def test_missing_permission_says_what_to_fix() -> None:
    denied = httpx.Response(
        403, json={"code": "403", "msg": "cannot upload event, please use ram to auth"}
    )
    result = no_sleep_client(Script(Emulator(qps=0), [denied])).send(
        frame(3), content_col="content"
    )
    assert isinstance(result.error, AuthError)
    assert "RAM user CloudMonitor permission" in str(result.error)


def test_a_400_batch_is_bisected_98_accepted_2_rejected() -> None:
    emulator = Emulator(qps=0, poison_marker="POISON")
    df = frame(100)
    df.loc[17, "content"] = "bad POISON here"
    df.loc[83, "content"] = "also POISON"
    result = no_sleep_client(emulator.handle_request).send(df, content_col="content")
    counts = result.counts()
    assert (counts["accepted"], counts["rejected"]) == (98, 2)
    rejected = result.events[result.events["status"] == "rejected"]
    assert list(rejected.index) == [17, 83]
    assert "poison marker" in rejected["reason"].iloc[0]
    stored = [e["content"] for e in emulator.events()]
    assert sorted(stored) == sorted(c for c in df["content"] if "POISON" not in c)
    assert len(stored) == len(set(stored)) == 98


def test_bisecting_is_bounded() -> None:
    emulator = Emulator(qps=0, poison_marker="P")
    df = pd.DataFrame({"name": "n", "content": ["P"] * 100})
    result = no_sleep_client(emulator.handle_request, max_bisect_requests=4).send(
        df, content_col="content"
    )
    assert len(result.requests) == 1 + 4
    assert result.counts()["rejected"] == 100
    assert "could not be narrowed further" in " ".join(result.events["reason"])


def test_rows_left_unnarrowed_are_narrowed_again_by_the_advised_retry() -> None:
    emulator = Emulator(qps=0, poison_marker="P")
    contents = [f"ok-{i}" for i in range(100)]
    for bad in (5, 50, 95):
        contents[bad] = f"P-{bad}"
    df = pd.DataFrame({"name": "n", "content": contents})
    result = no_sleep_client(emulator.handle_request, max_bisect_requests=8).send(
        df, content_col="content"
    )
    unnarrowed = result.events["reason"].str.contains("could not be narrowed", na=False)
    assert unnarrowed.sum() > 3  # good rows among them: the budget ran out
    assert "retry(include_rejected=True)" in result.events["reason"][unnarrowed].iloc[0]
    for _ in range(10):
        if set(result.failed()["content"]) == {"P-5", "P-50", "P-95"}:
            break
        result = result.retry(include_rejected=True)
    assert set(result.failed()["content"]) == {"P-5", "P-50", "P-95"}
    stored = [event["content"] for event in emulator.events()]
    assert sorted(stored) == sorted(c for c in contents if not c.startswith("P"))


def test_progress_callback_sees_every_row_settle() -> None:
    seen: list[cms_magic.Progress] = []
    emulator = Emulator(qps=0)
    result = no_sleep_client(emulator.handle_request).send(
        frame(1_000), content_col="content", progress=seen.append
    )
    assert result.ok
    assert seen[-1].finished
    assert seen[-1].done == seen[-1].accepted == 1_000
    assert [p.done for p in seen] == sorted(p.done for p in seen)


def test_clock_skew_is_warned_once_with_what_to_do(caplog: pytest.LogCaptureFixture) -> None:
    real_now = [2_000_000_000.0]
    emulator = Emulator(qps=0, clock=lambda: real_now[0])  # the server's clock
    ours = [real_now[0] + 600.0]  # ten minutes fast: still accepted (under 15), but warned
    client = no_sleep_client(emulator.handle_request, clock=lambda: ours[0])
    with caplog.at_level("WARNING", logger="cms_magic"):
        first = client.send(frame(300), content_col="content")
        second = client.send(frame(10), content_col="content")
    assert first.ok
    assert len(first.warnings) == 1
    assert "600 s ahead of the server" in first.warnings[0]
    assert "synchronise the clock" in first.warnings[0]
    assert second.warnings == []  # once per endpoint
    assert sum("clock" in r.getMessage() for r in caplog.records) == 1
    _state.reset()  # forget the warning given, so a quiet send below means an in-time clock
    in_time = no_sleep_client(emulator.handle_request, clock=lambda: real_now[0] + 60)
    assert in_time.send(frame(1), content_col="content").warnings == []


def test_bisection_splits_rejected_groups_within_the_budget() -> None:
    budget = BisectBudget(4)
    assert next_step("accepted", 100, budget, stopping=False) == "settle"
    assert next_step("rejected", 1, budget, stopping=False) == "settle"
    assert next_step("rejected", 100, budget, stopping=True) == "unnarrowed"
    assert budget.remaining == 4  # a stopping send spends nothing
    assert next_step("rejected", 100, budget, stopping=False) == "split"
    assert next_step("rejected", 50, budget, stopping=False) == "split"
    assert budget.remaining == 0
    assert next_step("rejected", 25, budget, stopping=False) == "unnarrowed"
    reason = unnarrowed_reason("rejected by the service (HTTP 400)", 4)
    assert reason.startswith("rejected by the service (HTTP 400) (the batch could not be narrowed")
    assert "max_bisect_requests=4" in reason
