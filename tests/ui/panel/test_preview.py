"""The panel's live preview: the first events from the first rows only, the whole frame
counted (at once when small, in the background when large), the latest count only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import cms_magic
from cms_magic.batching import count_frame
from cms_magic.emulator import EmulatorServer
from cms_magic.errors import MappingError
from cms_magic.events import convert
from cms_magic.ui.panel import preview as preview_module
from cms_magic.ui.panel.preview import LivePreview, counting_line, duration_text

MILLION = 1_000_000


class Shown:
    """What the preview put into the panel, and the counts it was asked to run."""

    def __init__(self) -> None:
        self.counts: list[str] = []
        self.events: list[str] = []
        self.started: list[tuple[Callable[..., object], tuple[Any, ...]]] = []

    def start(self, target: Callable[..., object], *args: Any) -> None:
        self.started.append((target, args))  # run by the test, when it chooses

    def run(self, which: int = -1) -> None:
        target, args = self.started[which]
        target(*args)

    def live(self, **options: Any) -> LivePreview:
        options.setdefault("settle", 0)
        return LivePreview(self.counts.append, self.events.append, start=self.start, **options)


@pytest.fixture
def converted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of rows of each chunk the converter is given."""
    sizes: list[int] = []
    real = convert.convert_chunk

    def counting(df: pd.DataFrame, *args: Any, **kwargs: Any) -> convert.Conversion:
        sizes.append(len(df))
        return real(df, *args, **kwargs)

    monkeypatch.setattr(convert, "convert_chunk", counting)
    return sizes


def messages(n: int, empty: tuple[int, ...] = ()) -> pd.DataFrame:
    content = np.array(["disk full on /var", "deploy 中文 done"], dtype=object)[np.arange(n) % 2]
    content[list(empty)] = ""
    frame: pd.DataFrame = pd.DataFrame({"content": content})
    return frame


def test_a_million_rows_preview_converts_only_the_rows_shown(converted: list[int]) -> None:
    shown = Shown()
    live = shown.live()
    frame = messages(MILLION, empty=(17, 654_321))
    live.update(frame, {"name": "disk"})
    assert sum(converted) == 3  # the three events shown, nothing more
    assert shown.counts == [counting_line(MILLION)]
    assert "counting events and requests" in shown.counts[0]
    assert "first 3 events" in shown.events[-1]
    assert shown.events[-1].count("disk full on /var") == 2
    assert len(shown.started) == 1
    converted.clear()
    shown.run()  # the background count, run here
    assert sum(converted) == MILLION  # every row, once, in the send's chunks
    assert max(converted) == 10_000
    final = shown.counts[-1]
    assert (
        "<b>1,000,000</b> rows → <b>999,998</b> events in <b>10,000</b> requests; "
        '<span class="cms-bad"><b>2</b> rejected by validation</span>'
    ) in final
    assert "about 8 min at 20 requests/s" in final
    assert "row 17: &#x27;content&#x27;" in final
    assert "row 654321: " in final


def test_the_head_grows_only_while_its_rows_are_rejected(converted: list[int]) -> None:
    shown = Shown()
    frame = messages(50_000, empty=(0, 1, 2, 3, 4))
    shown.live().update(frame, {"name": "n"})
    assert converted == [3, 30]
    assert shown.events[-1].count("&quot;name&quot;:&quot;n&quot;") == 3
    rejected_everywhere = messages(50_000, empty=tuple(range(50_000)))
    converted.clear()
    shown.live().update(rejected_everywhere, {"name": "n"})
    assert converted == [3, 30, 300, 3_000]  # bounded: a few thousand rows at most
    assert "first 0 events" in shown.events[-1]


def test_a_small_frame_is_counted_at_once() -> None:
    shown = Shown()
    frame = messages(250, empty=(3,))
    shown.live(qps=2).update(frame, {"name": "n"})
    assert shown.started == []
    (counts,) = shown.counts
    assert "<b>250</b> rows → <b>249</b> events in <b>3</b> requests" in counts
    assert "about 2 s at 2 requests/s" in counts
    assert "row 3: " in counts
    shown.live().update(messages(1), {"name": "n"})
    assert "<b>1</b> row → <b>1</b> event in <b>1</b> request; " in shown.counts[-1]
    assert "under a second at 20 requests/s" in shown.counts[-1]


def test_only_the_latest_count_is_shown(converted: list[int]) -> None:
    shown = Shown()
    live = shown.live()
    frame = messages(30_000)
    live.update(frame, {"name": "first"})
    live.update(frame, {"name": "second"})
    shown.run(0)  # the first count has been replaced: it stops before converting
    assert shown.counts == [counting_line(30_000)] * 2
    assert sum(converted) == 6  # the two heads only
    shown.run(1)
    assert "<b>30,000</b> events in <b>300</b> requests" in shown.counts[-1]
    live.update(frame, {"name": "third"})
    live.stop()  # e.g. the mapping became invalid
    before = len(shown.counts)
    shown.run(2)
    assert len(shown.counts) == before


def test_changes_in_quick_succession_start_no_count_until_they_settle(
    converted: list[int],
) -> None:
    counts: list[str] = []
    live = LivePreview(counts.append, lambda _html: None, settle=60)
    frame = messages(30_000)
    for name in ("t", "ty", "typ", "type"):  # e.g. keystrokes in a text field
        live.update(frame, {"name": name})
    live.stop()  # the last one too, here: no count ever ran
    assert live.wait(10)
    assert converted == [3, 3, 3, 3]
    assert counts == [counting_line(30_000)] * 4


def test_a_count_that_fails_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise MappingError("the frame changed", option="content_col")

    shown = Shown()
    live = shown.live()
    live.update(messages(20_000), {"name": "n"})
    monkeypatch.setattr(preview_module, "count_frame", broken)
    shown.run()
    assert "could not count the frame" in shown.counts[-1]
    assert "the frame changed" in shown.counts[-1]


def test_a_bad_mapping_raises_before_anything_is_counted() -> None:
    shown = Shown()
    with pytest.raises(MappingError):
        shown.live().update(messages(20_000), {"name": "n", "content_col": "nope"})
    assert shown.started == []


def test_the_count_arrives_from_a_thread_of_its_own() -> None:
    counts: list[str] = []
    events: list[str] = []
    live = LivePreview(counts.append, events.append)
    live.update(messages(40_000, empty=(5,)), {"name": "n"})
    assert live.wait(60)
    assert "<b>40,000</b> rows → <b>39,999</b> events in <b>400</b> requests" in counts[-1]


def test_the_count_is_what_a_send_does(emulator: EmulatorServer) -> None:
    n = 25_000
    frame = messages(n, empty=(7, 12_000))
    frame.loc[20_001, "content"] = "x" * (600 * 1024)  # too large for any request
    frame["gid"] = np.arange(n) % 3
    frame.loc[15, "gid"] = -1
    options = {"name": "n", "content_col": "content", "group_id_col": "gid"}
    count = count_frame(frame, options)
    assert count is not None
    result = cms_magic.send(
        frame,
        endpoint=emulator.url,
        credentials=emulator.credentials,
        qps=0,
        progress=False,
        name="n",
        content_col="content",
        group_id_col="gid",
    )
    counts = result.counts()
    assert count.rows == n
    assert count.events == counts["accepted"] == n - 4
    assert count.rejected == counts["rejected"] == 4
    assert count.requests == len(result.requests)
    assert sorted(count.reasons) == [7, 15, 12_000, 20_001]
    assert count.seconds_at(20) == count.requests / 20
    assert count.seconds_at(0) is None


def test_a_stopped_count_returns_nothing() -> None:
    calls: list[int] = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    assert count_frame(messages(50_000), {"name": "n"}, stop=stop) is None
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "under a second"),
        (40.2, "about 40 s"),
        (500, "about 8 min"),
        (3 * 3600 + 5 * 60, "about 3 h 05 min"),
    ],
)
def test_durations_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text
