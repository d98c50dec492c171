"""The sender: every row accounted for, quota shared, retries re-signed, failures handled."""

from __future__ import annotations

import _thread
import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

import cms_magic
from cms_magic.credentials.static import Credentials
from cms_magic.emulator import Emulator, EmulatorServer, demo_credentials, serve
from cms_magic.sending.client import Client, RetryPolicy, classify, shared_quota
from cms_magic.sending.quota import TokenBucket

DEMO = demo_credentials()


def no_sleep_client(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> Client:
    """A client over a MockTransport that never really waits (sleeps are recorded)."""
    sleeps: list[float] = kw.pop("sleeps", [])

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    kw.setdefault("qps", 0)
    kw.setdefault("credentials", DEMO)
    return Client(
        "http://127.0.0.1:9",
        transport=httpx.MockTransport(handler),
        sleep=sleep,
        random=lambda: 0.5,
        source_ip="10.0.0.1",
        **kw,
    )


def frame(n: int, marker: str = "row") -> pd.DataFrame:
    return pd.DataFrame(
        {"name": [f"ev{i % 7}" for i in range(n)], "content": [f"{marker}-{i}" for i in range(n)]}
    )


@pytest.fixture
def emulator_server() -> Iterator[EmulatorServer]:
    with serve(qps=0) as server:
        yield server


# ----------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"code":"200","msg":""}', "accepted"),
        (200, b'{"code":200,"msg":"success"}', "accepted"),
        (200, b'{"code":"400","msg":"bad"}', "rejected"),
        (200, b"not json", "bad_response"),
        (400, b'{"code":"400","msg":"syntax"}', "rejected"),
        (403, b'{"code":"403","msg":"Throttling: rate limit exceeded"}', "throttled"),
        (403, b'{"code":"403","msg":"signature does not match"}', "auth"),
        (403, b'{"code":"403","msg":"cannot upload event, please use ram to auth"}', "auth"),
        (500, b'{"code":"500","msg":"oops"}', "server_error"),
        (503, b"<html>busy</html>", "server_error"),
        (404, b'{"code":"404","msg":"no such path"}', "rejected"),
    ],
)
def test_classify(status: int, body: bytes, outcome: str) -> None:
    assert classify(status, body).outcome == outcome


def test_retry_after_is_read() -> None:
    verdict = classify(403, b'{"code":"403","msg":"throttled"}', {"retry-after": "2"})
    assert verdict.retry_after == 2.0


# ----------------------------------------------------------------- end to end (issue 2)


def test_end_to_end_1000_rows_every_row_has_a_status(emulator_server: EmulatorServer) -> None:
    n = 1000
    names: list[Any] = [f"事件-{i}" for i in range(n)]
    contents = [f"内容 {i} 🚀 payload" for i in range(n)]
    groups: list[Any] = [i % 5 for i in range(n)]
    names[10] = np.nan  # missing name
    groups[20] = "abc"  # not an integer
    contents[30] = "x" * (600 * 1024)  # too large for any request
    df = pd.DataFrame(
        {"name": names, "content": contents, "gid": groups}, index=range(5000, 5000 + n)
    )
    result = cms_magic.send(
        df,
        endpoint=emulator_server.url,
        credentials=emulator_server.credentials,
        content_col="content",
        group_id_col="gid",
        progress=False,
    )
    events = result.events
    assert list(events.index) == list(df.index)
    assert events["status"].notna().all()
    assert result.counts()["accepted"] == n - 3
    rejected = events[events["status"] == "rejected"]
    assert list(rejected.index) == [5010, 5020, 5030]
    assert "'name'" in rejected.loc[5010, "reason"]
    assert "'groupId'" in rejected.loc[5020, "reason"]
    assert "at most 512,000 bytes" in rejected.loc[5030, "reason"]
    stored = emulator_server.events()
    accepted_positions = np.flatnonzero(events["status"].to_numpy() == "accepted")
    assert [e["content"] for e in stored] == [contents[i] for i in accepted_positions]
    assert [e["name"] for e in stored] == [names[i] for i in accepted_positions]
    assert result.requests["http_status"].eq(200).all()
    assert "997/1,000 events accepted" in result.summary()
    assert "3 rejected -> result.failed()" in result.summary()
    assert list(result.failed().index) == [5010, 5020, 5030]


def test_list_of_events_and_dicts(emulator_server: EmulatorServer) -> None:
    result = cms_magic.send(
        [cms_magic.Event("a", "b", 1), {"name": "c", "content": "d"}, {"name": "x"}],
        endpoint=emulator_server.url,
        credentials=emulator_server.credentials,
        progress=False,
    )
    assert result.events["status"].tolist() == ["accepted", "accepted", "rejected"]
    assert [e["name"] for e in emulator_server.events()] == ["a", "c"]
    assert result.failed() == [{"name": "x"}]


def test_dry_run_sends_nothing_and_masks_the_preview(emulator_server: EmulatorServer) -> None:
    secret_creds = Credentials("LTAI5tDryRunKey0000abcd", "SECRET-dry-run-xyz")
    result = cms_magic.send(
        frame(250),
        endpoint=emulator_server.url,
        credentials=secret_creds,
        dry_run=True,
        progress=False,
    )
    assert result.counts()["dry_run"] == 250
    assert emulator_server.requests() == []
    assert result.preview is not None
    assert result.preview["headers"]["authorization"] == "LTAI****abcd:<signature>"
    assert "SECRET-dry-run-xyz" not in repr(result.preview)
    assert result.summary().startswith("dry run: 250/250 events would be sent")


def test_endpoint_is_required() -> None:
    with pytest.raises(cms_magic.ConfigError, match="endpoint is required"):
        cms_magic.send(frame(1), credentials=DEMO)


def test_unknown_option_is_a_clear_error() -> None:
    with pytest.raises(cms_magic.ConfigError, match="unknown option"):
        Client("http://127.0.0.1:9", credentials=DEMO).send(frame(1), content_column="x")


# ----------------------------------------------------------------- streaming


def test_large_frame_streams_in_chunks_with_continuous_batches() -> None:
    emulator = Emulator(qps=0)
    client = no_sleep_client(emulator.handle_request, chunk_rows=1_000)
    result = client.send(frame(25_050), content_col="content")
    assert result.ok
    assert len(emulator.events()) == 25_050
    assert result.requests["batch"].tolist() == list(range(251))
    assert result.events["batch"].max() == 250


# ----------------------------------------------------------------- retries


class Script:
    """A handler that answers from a script first, then passes to the emulator."""

    def __init__(self, emulator: Emulator, script: list[Any]) -> None:
        self.emulator = emulator
        self.script = list(script)
        self.dates: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.dates.append(request.headers["Date"])
            step = self.script.pop(0) if self.script else None
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return self.emulator.handle_request(request)


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
    assert "5 unknown -> result.failed()" in result.summary()
    # retry() leaves unknown rows alone unless asked
    assert result.retry().counts()["unknown"] == 5
    assert result.retry(include_unknown=True).ok


def test_retry_ambiguous_opt_in() -> None:
    script = Script(Emulator(qps=0), [httpx.ReadTimeout("slow")])
    result = no_sleep_client(script, retry_ambiguous=True).send(frame(5), content_col="content")
    assert result.ok
    assert result.requests["attempts"].tolist() == [2]


# ----------------------------------------------------------------- failures that must not retry


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
    assert result.error is not None
    assert "check the AccessKey secret" in result.error
    assert "not-the-secret" not in result.error
    assert "stopped: the service refused the credentials" in result.summary()
    assert not result.ok


def test_missing_permission_says_what_to_fix() -> None:
    denied = httpx.Response(
        403, json={"code": "403", "msg": "cannot upload event, please use ram to auth"}
    )
    result = no_sleep_client(Script(Emulator(qps=0), [denied])).send(
        frame(3), content_col="content"
    )
    assert result.error is not None
    assert "RAM user CloudMonitor permission" in result.error


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


# ----------------------------------------------------------------- quota


def test_token_bucket_with_a_fake_clock() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=20, capacity=1, clock=lambda: now[0])
    delays = [bucket.reserve() for _ in range(5)]
    assert delays == pytest.approx([0.0, 0.05, 0.10, 0.15, 0.20])
    now[0] = 10.0
    assert bucket.reserve() == 0.0
    emulator_bucket = TokenBucket(rate=20, clock=lambda: now[0])
    assert sum(emulator_bucket.try_acquire() for _ in range(25)) == 20
    now[0] += 0.5
    assert sum(emulator_bucket.try_acquire() for _ in range(25)) == 10


def test_quota_is_one_per_access_key_process_wide() -> None:
    a = Client("http://127.0.0.1:9", credentials=Credentials("LTAIshared0001", "s1"))
    b = Client("http://127.0.0.1:9", credentials=Credentials("LTAIshared0001", "s1"))
    c = Client("http://127.0.0.1:9", credentials=Credentials("LTAIother00002", "s2"))
    assert a._quota() is b._quota() is shared_quota("LTAIshared0001")
    assert a._quota() is not c._quota()


def test_two_concurrent_sends_share_the_quota_without_throttling() -> None:
    """Two sends at once, each alone allowed 20 req/s, against an emulator enforcing 20/s."""
    with serve(qps=20) as server:
        jobs = [
            cms_magic.send(
                frame(2_000, marker=f"job{k}"),
                endpoint=server.url,
                credentials=server.credentials,
                content_col="content",
                background=True,
                qps=20,
            )
            for k in range(2)
        ]
        results = [job.result(timeout=60) for job in jobs]
        statuses = [r["status"] for r in server.requests()]
    assert all(r.ok for r in results)
    assert statuses.count(200) == 40
    assert 403 not in statuses  # 40 requests at 20/s total: never throttled


# ----------------------------------------------------------------- event loops, cancel, interrupt


def test_send_from_inside_a_running_event_loop(emulator_server: EmulatorServer) -> None:
    async def main() -> tuple[cms_magic.SendResult, cms_magic.SendResult]:
        sync_result = cms_magic.send(
            frame(300), endpoint=emulator_server.url, credentials=DEMO, content_col="content", qps=0
        )
        client = Client(emulator_server.url, credentials=DEMO, qps=0)
        async_result = await client.asend(frame(200), content_col="content")
        return sync_result, async_result

    sync_result, async_result = asyncio.run(main())
    assert sync_result.ok
    assert async_result.ok
    assert len(emulator_server.events()) == 500


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


def test_background_job_api(emulator_server: EmulatorServer) -> None:
    job = cms_magic.send(
        frame(500),
        endpoint=emulator_server.url,
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


def test_result_frames_and_html() -> None:
    emulator = Emulator(qps=0, poison_marker="BAD")
    df = frame(150)
    df.loc[3, "content"] = "BAD"
    result = no_sleep_client(emulator.handle_request).send(df, content_col="content")
    requests = result.requests
    assert set(requests.columns) >= {
        "batch",
        "events",
        "bytes",
        "http_status",
        "code",
        "msg",
        "request_id",
        "attempts",
        "latency_ms",
        "sent_at",
    }
    events = result.events
    assert events.loc[0, "request_id"] is not None
    assert events.loc[3, "status"] == "rejected"
    html = result._repr_html_()
    assert "149/150 events accepted" in html
    assert "poison marker" in html
    body = orjson.loads(orjson.dumps(emulator.events()[0]))
    assert body["name"] == "ev0"


def test_clock_skew_is_warned_once_with_what_to_do(caplog: pytest.LogCaptureFixture) -> None:
    from cms_magic.sending import client as sender

    real_now = [2_000_000_000.0]
    emulator = Emulator(qps=0, clock=lambda: real_now[0])  # the server's clock
    ours = [real_now[0] + 600.0]  # ten minutes fast: still accepted (under 15), but warned
    sender._skew_warned.discard("http://127.0.0.1:9")
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
    sender._skew_warned.discard("http://127.0.0.1:9")
    in_time = no_sleep_client(emulator.handle_request, clock=lambda: real_now[0] + 60)
    assert in_time.send(frame(1), content_col="content").warnings == []


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
