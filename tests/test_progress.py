"""Progress: the snapshot, the one throttle, the plain text renderer, what progress= means."""

from __future__ import annotations

import io

import pytest

from cms_magic.progress import Progress, TextProgress, Throttle, progress_callback, text_line
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
        "cms_magic: 400/1,000 events (40%), 4 requests, 200 events/s, ETA 3s"
    )
    assert text_line(snapshot(0, elapsed=0.0)).endswith("ETA ?")
    done = text_line(snapshot(1_000, elapsed=75.0, finished=True, rejected=2))
    assert (
        done == "cms_magic: 1,000/1,000 events (100%), 10 requests, 2 rejected, 0 unknown, "
        "done in 1m15s"
    )


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
