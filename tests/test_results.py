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
from tests.sending._helpers import frame, no_sleep_client


def _empty(n: int, **kw: Any) -> SendResult:
    return SendResult(
        status=np.zeros(n, dtype=np.uint8),
        batch=np.zeros(n, dtype=np.int32),
        attempts=np.ones(n, dtype=np.uint16),
        reasons={},
        request_index=np.full(n, -1, dtype=np.int32),
        request_ids=[],
        index=None,
        request_records=[],
        elapsed=1.25,
        **kw,
    )


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


def test_a_result_keeps_its_input_and_options_not_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[weakref.ref[Run]] = []

    class Watched(Run):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            runs.append(weakref.ref(self))

    monkeypatch.setattr(client_module, "Run", Watched)
    emulator = Emulator(qps=0)
    client = no_sleep_client(emulator.handle_request)
    df = frame(20)
    result = client.send(df, content_col="content", dry_run=False)
    gc.collect()
    assert len(runs) == 1
    assert runs[0]() is None  # the run (its per-row buffers, its queue) is gone
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
