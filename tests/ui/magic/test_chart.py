"""The inline SVG bar chart of a histogram frame (cms_magic.ui.chart): pure, no matplotlib."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET

import pandas as pd

from cms_magic.ui.chart import histogram_svg, histogram_text

_SVG = "{http://www.w3.org/2000/svg}"


def _frame(counts: list[int], tz: str = "UTC") -> pd.DataFrame:
    start = pd.date_range("2026-12-01 09:00", periods=len(counts), freq="h", tz=tz)
    frame: pd.DataFrame = pd.DataFrame(
        {
            "start": start,
            "end": start + pd.Timedelta(hours=1),
            "count": pd.Series(counts, dtype="int64"),
        }
    )
    return frame


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, checked for well-formedness


def _bars(svg: str) -> list[ET.Element]:
    root = _parse(svg)
    return [r for r in root.iter(f"{_SVG}rect") if r.get("class") == "bar"]


def test_one_bar_per_bucket_and_heights_follow_counts() -> None:
    svg = histogram_svg(_frame([1, 4, 0, 2]), width=400, height=160)
    bars = _bars(svg)
    assert len(bars) == 4
    heights = [float(b.get("height", "0")) for b in bars]
    assert heights[1] == max(heights)
    assert heights[2] == 0
    assert abs(heights[0] * 4 - heights[1]) < 0.05
    root = _parse(svg)
    assert root.get("width") == "400"
    assert root.get("height") == "160"


def test_each_bar_says_its_bucket_and_count() -> None:
    svg = histogram_svg(_frame([3, 5]))
    titles = [t.text or "" for t in _parse(svg).iter(f"{_SVG}title")]
    assert any("5 events" in t and "10:00" in t for t in titles)


def test_labels_are_escaped() -> None:
    svg = histogram_svg(_frame([1]), title="<script>alert('x')</script> & co")
    assert "<script>" not in svg
    root = _parse(svg)  # well-formed
    texts = " ".join(t.text or "" for t in root.iter(f"{_SVG}text"))
    assert "<script>alert('x')</script> & co" in texts


def test_an_empty_frame_is_a_chart_saying_so() -> None:
    svg = histogram_svg(_frame([]))
    assert _bars(svg) == []
    assert "no events" in svg


def test_no_matplotlib_needed() -> None:
    before = "matplotlib" in sys.modules
    histogram_svg(_frame([2, 2]))
    assert ("matplotlib" in sys.modules) == before


def test_the_text_table_has_a_bar_of_hashes() -> None:
    text = histogram_text(_frame([1, 4, 0]), width=20)
    lines = text.splitlines()
    assert len(lines) == 4  # header + 3 buckets
    assert lines[2].rstrip().endswith("#" * 20)
    assert re.search(r"\b0\s*$", lines[3])
    assert "#" not in lines[3]
    assert "2026-12-01T09:00:00+00:00" in lines[1]
