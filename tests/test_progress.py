"""Progress: the snapshot, the one throttle, the plain text renderer, what progress= means."""

from __future__ import annotations

import io

import pytest

from cms_magic.progress import (
    Progress,
    TextProgress,
    Throttle,
    plural,
    progress_callback,
    text_line,
)
from tests.conftest import FakeClock


def snapshot(done: int, *, total: int = 1_000, elapsed: float = 2.0, **kw: object) -> Progress:
    fields: dict[str, object] = {
        "total": total,
        "done": done,
        "accepted": done,
        "rejected": 0,
        "not_sent": total - done,
        "unknown": 0,
        "requests": done // 100,
        "errors": 0,
        "elapsed": elapsed,
    }
    fields.update(kw)
    return Progress(**fields)  # type: ignore[arg-type]


def test_rate_and_eta() -> None:
    p = snapshot(400, elapsed=2.0)
    assert p.rate == 200.0
    assert p.eta == pytest.approx(3.0)
    assert snapshot(0, elapsed=0.0).eta is None
    assert snapshot(1_000).eta == 0.0


def test_the_throttle_lets_one_update_through_per_interval(clock: FakeClock) -> None:
    throttle = Throttle(0.5, clock=clock)
    assert throttle.ready()
    assert not throttle.ready()
    clock.advance(0.49)
    assert not throttle.ready()
    clock.advance(0.01)
    assert throttle.ready()


def test_the_throttle_can_hold_back_the_first_update(clock: FakeClock) -> None:
    throttle = Throttle(2.0, first_after=1.0, clock=clock)
    assert not throttle.ready()
    clock.advance(1.0)
    assert throttle.ready()


def test_text_line_shows_rows_requests_and_eta() -> None:
    assert text_line(snapshot(400)) == (
        "cms_magic: 400/1,000 events (40%), 4 requests, 200 events/s, ETA 3.0s"
    )
    assert text_line(snapshot(0, elapsed=0.0)).endswith("ETA ?")
    done = text_line(snapshot(1_000, elapsed=75.0, finished=True, rejected=2))
    assert done == "cms_magic: 1,000/1,000 events (100%), 10 requests, 2 rejected, done in 1m15s"


def test_text_progress_redraws_one_line_throttled_and_ends_it(clock: FakeClock) -> None:
    out = io.StringIO()
    render = TextProgress(out, throttle=Throttle(1.0, clock=clock))
    render(snapshot(100))
    render(snapshot(200))  # throttled
    clock.advance(1.0)
    render(snapshot(300))
    render(snapshot(1_000, finished=True))  # always drawn
    text = out.getvalue()
    assert text.count("\r") == 3
    assert "200/1,000" not in text
    assert text.endswith("\n")
    assert text.count("\n") == 1


def test_what_progress_means(monkeypatch: pytest.MonkeyPatch) -> None:
    def mine(_: Progress) -> None:
        return None

    assert progress_callback(mine) is mine
    assert progress_callback(False) is None
    assert isinstance(progress_callback(True), TextProgress)
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a TTY
    assert progress_callback(None) is None

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Tty())
    assert isinstance(progress_callback(None), TextProgress)
    assert progress_callback(None, background=True) is None


def test_one_helper_says_1_request_and_2_requests() -> None:
    assert plural(1, "request") == "1 request"
    assert plural(0, "request") == "0 requests"
    assert plural(1_200, "event") == "1,200 events"
    assert plural(2, "entry", "entries") == "2 entries"


def test_the_line_agrees_in_number() -> None:
    one = Progress(1, 1, 1, 0, 0, 0, 1, 1, 0.5, finished=True)
    assert one.line() == "1/1 event, 1 request, 1 error, done in 0.5s"
    assert "2 requests" in snapshot(200).line()


def test_pending_rows_are_not_counted_as_not_sent() -> None:
    running = Progress(5_000, 1_200, 1_200, 0, 100, 0, 12, 0, 2.0, pending=3_700)
    assert (running.pending, running.not_sent) == (3_700, 100)
    assert running.eta == pytest.approx(3_700 / 600)
    assert "100 not sent" in running.line()
    # A producer that does not count pending apart: its rows without an outcome are
    # pending while it runs, not sent once it has finished.
    legacy = snapshot(400)
    assert (legacy.pending, legacy.not_sent) == (600, 0)
    assert "not sent" not in legacy.line()
    ended = snapshot(400, finished=True)
    assert (ended.pending, ended.not_sent) == (0, 600)
    assert "600 not sent" in ended.line()


def test_the_eta_comes_from_the_quota_before_there_is_a_rate() -> None:
    # 50,000 rows at 20 requests/s of 100 events: 25 s, known before the first answer.
    start = Progress(50_000, 0, 0, 0, 0, 0, 0, 0, 0.0, pending=50_000, max_rate=2_000.0)
    assert start.eta == pytest.approx(25.0)
    assert start.line().endswith("ETA 25s")
    # A first burst faster than the quota does not make the estimate shorter than it allows.
    burst = Progress(50_000, 10_000, 10_000, 0, 0, 0, 100, 0, 1.0, pending=40_000, max_rate=2_000.0)
    assert burst.eta == pytest.approx(20.0)
    # Slower than the quota: the rate so far says more.
    slow = Progress(50_000, 1_000, 1_000, 0, 0, 0, 10, 0, 2.0, pending=49_000, max_rate=2_000.0)
    assert slow.eta == pytest.approx(98.0)


def test_the_repr_rounds_the_elapsed_time_and_shows_pending() -> None:
    p = Progress(10, 4, 4, 0, 0, 0, 1, 0, 2.621074889000056, pending=6)
    assert repr(p) == (
        "Progress(total=10, done=4, accepted=4, rejected=0, not_sent=0, unknown=0, pending=6, "
        "requests=1, errors=0, elapsed=2.6, eta=3.9, finished=False)"
    )
    assert str(p) == p.line() == "4/10 events, 1 request, 2 events/s, ETA 3.9s"


def test_a_running_sends_rows_still_to_go_are_pending_not_not_sent() -> None:
    from cms_magic.emulator import Emulator
    from tests.sending._helpers import frame, no_sleep_client

    seen: list[Progress] = []
    client = no_sleep_client(Emulator(qps=0).handle_request, concurrency=1)
    client.send(frame(300), content_col="content", progress=seen.append)
    first = seen[0]
    assert (first.done, first.pending, first.not_sent) == (100, 200, 0)
    assert first.eta is not None
    assert "not sent" not in first.line()
    last = seen[-1]
    assert last.finished
    assert (last.done, last.pending, last.not_sent) == (300, 0, 0)


def test_rows_settled_as_not_sent_while_the_send_runs_are_not_pending() -> None:
    import httpx

    from cms_magic.emulator import Emulator
    from cms_magic.sending.client import RetryPolicy
    from tests.sending._helpers import Script, frame, no_sleep_client

    emulator = Emulator(qps=0)
    script = Script(emulator, [httpx.ConnectError("refused")] * 2)
    client = no_sleep_client(script, retry=RetryPolicy(max_attempts=2), concurrency=1)
    seen: list[Progress] = []
    client.send(frame(300), content_col="content", progress=seen.append)
    first = seen[0]  # the first batch ran out of attempts: not sent, and will not be
    assert (first.done, first.not_sent, first.pending) == (0, 100, 200)
