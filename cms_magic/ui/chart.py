"""A histogram frame as a light chart: an inline SVG bar chart, or a text table with bars.

Both take the frame :func:`cms_magic.readback.event_histogram` returns (``start``, ``end``,
``count``; one row per bucket) and are pure: no matplotlib, no IPython, no pandas import of
their own (they only read the frame they are given). The SVG is one well-formed string
(``xmlns`` set, every text escaped) that a notebook shows with ``IPython.display.SVG`` or
inside HTML; each bar is a ``<rect class="bar">`` whose ``<title>`` (the tooltip) says its
bucket and count.

- :func:`histogram_svg` ``(frame, *, width=640, height=220, title=None) -> str``
- :func:`histogram_text` ``(frame, *, width=40) -> str``: ``start  end  count  ####``
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BAR_COLOR", "histogram_svg", "histogram_text"]

#: The bars' fill (a blue that reads on light and dark notebook themes).
BAR_COLOR: Final = "#4c78a8"
_AXIS_COLOR: Final = "#888888"
_FONT: Final = "font-family:sans-serif;font-size:11px"
_LEFT: Final = 44  # room for the y axis's numbers
_RIGHT: Final = 8
_BOTTOM: Final = 30  # room for the x axis's times
_TOP_TITLE: Final = 24
_TOP_PLAIN: Final = 10


def _counts(frame: pd.DataFrame) -> list[int]:
    """The buckets' counts as ints (a missing count draws as 0)."""
    out: list[int] = []
    for value in frame["count"].tolist() if "count" in frame else []:
        try:
            out.append(max(int(value), 0))
        except (TypeError, ValueError):
            out.append(0)
    return out


def _stamps(frame: pd.DataFrame, column: str) -> list[object]:
    return list(frame[column].tolist()) if column in frame else [None] * len(frame)


def _iso(value: object) -> str:
    """An ISO 8601 time with its zone; empty for a missing one."""
    isoformat = getattr(value, "isoformat", None)
    if value is None or not callable(isoformat) or str(value) == "NaT":
        return ""
    return str(isoformat())


def _short(value: object, *, with_day: bool) -> str:
    strftime = getattr(value, "strftime", None)
    if value is None or not callable(strftime) or str(value) == "NaT":
        return ""
    return str(strftime("%m-%d %H:%M" if with_day else "%H:%M"))


def _spans_days(starts: list[object]) -> bool:
    days = {getattr(s, "date", lambda: None)() for s in starts if str(s) != "NaT"}
    return len(days) > 1


def _plural(count: int) -> str:
    return f"{count:,} event" if count == 1 else f"{count:,} events"


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _text(x: float, y: float, words: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}"{extra}>{escape(words)}</text>'


def histogram_svg(
    frame: pd.DataFrame,
    *,
    width: int = 640,
    height: int = 220,
    title: str | None = None,
) -> str:
    """The histogram as an inline SVG bar chart (a ``str``): one ``<rect class="bar">`` per
    bucket (row), its height proportional to ``count``, its ``<title>`` the bucket's start,
    end and count; the y axis shows 0 and the largest count, the x axis the first and last
    bucket's start. ``title`` (escaped) is drawn above. No rows: a chart saying "no events".
    """
    counts = _counts(frame)
    starts, ends = _stamps(frame, "start"), _stamps(frame, "end")
    top = _TOP_TITLE if title else _TOP_PLAIN
    plot_w = max(width - _LEFT - _RIGHT, 1)
    plot_h = max(height - top - _BOTTOM, 1)
    base = top + plot_h
    label = title or "event histogram"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'style="{_FONT}">',
        f"<title>{escape(label)}</title>",
    ]
    if title:
        parts.append(_text(_LEFT, 15, title, extra=' font-weight="bold"'))
    axis = f'stroke="{_AXIS_COLOR}" stroke-width="1"'
    parts.append(f'<line x1="{_LEFT}" y1="{base}" x2="{_LEFT + plot_w}" y2="{base}" {axis}/>')
    parts.append(f'<line x1="{_LEFT}" y1="{top}" x2="{_LEFT}" y2="{base}" {axis}/>')
    if not counts:
        parts.append(_text(_LEFT + plot_w / 2, top + plot_h / 2, "no events", "middle"))
        parts.append("</svg>")
        return "".join(parts)
    peak = max(counts) or 1
    parts.append(_text(_LEFT - 4, top + 4, f"{peak:,}", "end"))
    parts.append(_text(_LEFT - 4, base, "0", "end"))
    slot = plot_w / len(counts)
    gap = min(2.0, slot * 0.2)
    with_day = _spans_days(starts)
    for index, count in enumerate(counts):
        bar_h = plot_h * count / peak
        x = _LEFT + index * slot + gap / 2
        tip = f"{_iso(starts[index])} to {_iso(ends[index])}: {_plural(count)}"
        parts.append(
            f'<rect class="bar" x="{_num(x)}" y="{_num(base - bar_h)}" '
            f'width="{_num(max(slot - gap, 0.5))}" height="{_num(bar_h)}" fill="{BAR_COLOR}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    below = base + 14
    parts.append(_text(_LEFT, below, _short(starts[0], with_day=with_day)))
    if len(counts) > 1:
        last = _short(starts[-1], with_day=with_day)
        parts.append(_text(_LEFT + plot_w, below, last, "end"))
    parts.append("</svg>")
    return "".join(parts)


def histogram_text(frame: pd.DataFrame, *, width: int = 40) -> str:
    """The histogram as a text table: a header, then per bucket its start and end (ISO 8601
    with the zone), its count, and a bar of ``#`` (the largest count is ``width`` long;
    any count above 0 at least one)."""
    counts = _counts(frame)
    starts = [_iso(s) for s in _stamps(frame, "start")]
    ends = [_iso(e) for e in _stamps(frame, "end")]
    shown = [f"{c:,}" for c in counts]
    start_w = max([len("start"), *map(len, starts)])
    end_w = max([len("end"), *map(len, ends)])
    count_w = max([len("count"), *map(len, shown)])
    peak = max(counts, default=0) or 1
    lines = [f"{'start':<{start_w}}  {'end':<{end_w}}  {'count':>{count_w}}"]
    for start, end, count, words in zip(starts, ends, counts, shown, strict=True):
        bar = "#" * (max(1, round(width * count / peak)) if count > 0 else 0)
        lines.append(f"{start:<{start_w}}  {end:<{end_w}}  {words:>{count_w}}  {bar}".rstrip())
    return "\n".join(lines)
