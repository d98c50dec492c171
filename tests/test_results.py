"""Results: frames, the one summary line, what a result keeps to resend, whole-send errors."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np
import orjson
import pytest

import cms_magic
from cms_magic.emulator import Emulator
from cms_magic.errors import ConfigError, InternalError, SendError
from cms_magic.results import ResendSpec, SendJob, SendResult
from cms_magic.sending import client as client_module
from cms_magic.sending.run import Run
from tests.results_support import make_result
from tests.sending._helpers import frame, no_sleep_client


def _empty(n: int, **kw: Any) -> SendResult:
    return make_result(*([0] * n), elapsed=1.25, **kw)


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
    assert "<b>149</b> accepted" in html
    assert "<b>1</b> rejected" in html
    assert "poison marker" in html
    assert result.summary() not in html  # the bar showed the summary line: not again
    body = orjson.loads(orjson.dumps(emulator.events()[0]))
    assert body["name"] == "ev0"


def _reachable(root: object, depth: int, *, besides: object = None) -> list[object]:
    """Objects reachable from ``root`` in ``depth`` steps of gc.get_referents, not through
    ``besides``."""
    seen: dict[int, object] = {id(root): root, id(besides): besides}
    frontier = [root]
    for _ in range(depth):
        frontier = [r for o in frontier for r in gc.get_referents(o) if id(r) not in seen]
        seen.update((id(r), r) for r in frontier)
    return list(seen.values())


def test_a_result_keeps_its_input_and_options_not_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[weakref.ref[Run]] = []
    parts: list[weakref.ref[Any]] = []

    class Watched(Run):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            runs.append(weakref.ref(self))
            # its prepared input, the chunks it streams and its result builder
            parts.extend(map(weakref.ref, (self.prepared, self.prepared.chunks, self.builder)))

    monkeypatch.setattr(client_module, "Run", Watched)
    emulator = Emulator(qps=0, poison_marker="BAD")
    client = no_sleep_client(emulator.handle_request)
    df = frame(250)
    df.loc[7, "content"] = "BAD"
    result = client.send(df, content_col="content", dry_run=False)
    gc.collect()
    assert len(runs) == 1
    assert runs[0]() is None  # the run (its per-row buffers, its queue) is gone
    assert [part() for part in parts] == [None, None, None]
    # Nothing reachable from the result is a numpy array of someone else's buffer: each
    # per-row array owns its memory (a view would keep the run's buffer alive).
    for held in _reachable(result, 3, besides=result.request):  # (the input is the user's)
        if isinstance(held, np.ndarray) and held.size:
            assert held.base is None or not isinstance(held.base, np.ndarray)
    spec = result.request
    assert isinstance(spec, ResendSpec)
    assert spec.data is df
    assert dict(spec.mapping) == {"content_col": "content"}
    assert spec.sender is client
    assert spec.dry_run is False


def test_retry_resends_through_the_client_with_the_same_options() -> None:
    emulator = Emulator(qps=0)
    client = no_sleep_client(emulator.handle_request)
    first = client.send(frame(5), content_col="content", dry_run=True)
    assert first.counts()["dry_run"] == 5
    again = first.retry(include_rejected=True)
    assert isinstance(again, SendResult)
    assert emulator.events() == []  # nothing was not_sent: nothing resent, still a dry run
    assert cms_magic.last_result() is again


def test_a_result_not_made_by_a_send_cannot_be_retried() -> None:
    with pytest.raises(ConfigError, match="cannot be retried") as info:
        _empty(2).retry()
    assert info.value.option == "retry"


def test_merging_the_wrong_number_of_rows_is_an_internal_error() -> None:
    with pytest.raises(InternalError) as info:
        _empty(3).merged(_empty(1), np.array([0, 1]))
    assert info.value.option == "positions"


def test_raise_for_error_raises_the_whole_send_error_else_returns_the_result() -> None:
    fine = _empty(2)
    assert fine.raise_for_error() is fine
    stopped = _empty(2, error=SendError("reading the input failed"))
    with pytest.raises(SendError, match="reading the input failed"):
        stopped.raise_for_error()
    assert not stopped.ok
    assert "; stopped: reading the input failed" in stopped.summary()


def test_the_summary_line() -> None:
    result = _empty(1_200)
    assert result.summary() == "1,200/1,200 events accepted in 1.2 s"
    status = np.zeros(4, dtype=np.uint8)
    status[1], status[2], status[3] = 1, 2, 3
    mixed = SendResult(
        status=status,
        batch=np.zeros(4, dtype=np.int32),
        attempts=np.ones(4, dtype=np.uint16),
        reasons={},
        request_index=np.full(4, -1, dtype=np.int32),
        request_ids=[],
        index=None,
        request_records=[],
        elapsed=0.5,
        cancelled=True,
    )
    assert mixed.summary("r") == (
        "1/4 events accepted in 0.5 s; 1 rejected, 1 not sent, 1 unknown; cancelled -> r.failed()"
    )


def test_send_job_is_the_public_type_of_a_background_send() -> None:
    assert cms_magic.SendJob is SendJob
    from cms_magic.sending.client import SendJob as from_client
    from cms_magic.sending.jobs import SendJob as from_jobs

    assert from_client is from_jobs is SendJob


def _mixed(*codes: int, resender: bool = False, **kw: Any) -> SendResult:
    return make_result(*codes, resender=resender, **kw)


def test_the_summary_agrees_in_number() -> None:
    assert _mixed(0).summary() == "1/1 event accepted in 0.5 s"
    assert _mixed(4, 4).summary().startswith("dry run: 2/2 events would be sent")


def test_the_summary_names_the_result_as_the_skin_does() -> None:
    rejected = _mixed(0, 1, resender=True)
    assert rejected.summary("panel.result").endswith("1 rejected -> panel.result.failed()")
    assert rejected.summary(name=None) == "1/2 events accepted in 0.5 s; 1 rejected"
    assert rejected.summary(next_step="see failed.csv").endswith("1 rejected -> see failed.csv")
    assert _mixed(0).summary(next_step="see failed.csv") == "1/1 event accepted in 0.5 s"


def test_an_interrupted_or_cancelled_summary_says_how_to_resume() -> None:
    cancelled = _mixed(0, 2, 2, resender=True, cancelled=True)
    assert cancelled.resumable
    assert cancelled.summary("r") == (
        "1/3 events accepted in 0.5 s; 2 not sent; cancelled -> r.retry() resumes"
    )
    assert cancelled.summary("r", interrupted=True) == (
        "1/3 events accepted in 0.5 s; 2 not sent; interrupted -> r.retry() resumes"
    )
    both = _mixed(0, 1, 2, resender=True, cancelled=True)
    assert both.summary("r").endswith("-> r.retry() resumes, r.failed()")
    # not sent without a cancel (throttled to the end): retry() sends them, no "resumes"
    assert _mixed(0, 2, resender=True).summary("r").endswith("1 not sent -> r.retry()")
    # refused credentials would refuse a retry too: only failed() is offered
    refused = _mixed(2, 2, resender=True, error=SendError("the service refused the credentials"))
    assert not refused.resumable
    assert refused.summary("r").endswith("-> r.failed()")


def test_the_outcome_in_one_word() -> None:
    assert _mixed(0, 0).outcome == "ok"
    assert _mixed(0, 1).outcome == "partial"
    assert _mixed(1, 3).outcome == "failed"
    assert _mixed(0, 2, cancelled=True).outcome == "cancelled"
    assert _mixed(4, 4).outcome == "dry_run"
    assert _mixed(2, error=SendError("stopped")).outcome == "failed"


def test_the_repr_is_a_short_line_of_its_own() -> None:
    assert repr(_mixed(0, 0, 0)) == "<SendResult 3 events in 0.5 s: 3 accepted>"
    assert repr(_mixed(0, 1, 2, resender=True, cancelled=True)) == (
        "<SendResult 3 events in 0.5 s: 1 accepted, 1 rejected, 1 not sent; cancelled>"
    )
    assert repr(_mixed(0)) == "<SendResult 1 event in 0.5 s: 1 accepted>"
    assert "failed()" not in repr(_mixed(1, 1))  # a repr does not know the variable


def test_the_requests_frame_shows_latency_to_a_tenth_of_a_millisecond() -> None:
    result = no_sleep_client(Emulator(qps=0).handle_request).send(frame(3), content_col="content")
    exact = result.request_records[0].latency_ms
    shown = result.requests["latency_ms"].iloc[0]
    assert shown == round(exact, 1)
    assert str(shown) == f"{exact:.1f}"


def test_a_jobs_repr_rounds_and_points_at_its_result() -> None:
    import concurrent.futures

    from cms_magic.progress import Progress

    class Still:
        progress: Progress | None = Progress(10, 4, 4, 0, 6, 0, 1, 0, 2.621074889000056)

        def cancel(self) -> None: ...

        def abort(self) -> None: ...

    future: concurrent.futures.Future[SendResult] = concurrent.futures.Future()
    job = SendJob(future, Still())
    assert repr(job) == "<SendJob running: 4/10 events, 1 request, 2 events/s, ETA 3.9s>"
    assert job.progress is not None
    assert (job.progress.pending, job.progress.not_sent) == (6, 0)
    assert "elapsed=2.6," in repr(job.progress)
    future.set_result(_mixed(0, 1))
    assert repr(job) == ("<SendJob done: 1/2 events accepted in 0.5 s; 1 rejected (.result())>")
