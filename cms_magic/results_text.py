"""How a :class:`~cms_magic.results.SendResult` reads: its summary line, its repr and its
HTML, as pure functions of a few facts about it (:class:`ResultFacts`), so the wording lives
in one place and the result module stays about outcomes."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cms_magic.progress import plural

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ResultFacts", "result_html", "result_repr", "summary_line"]

STATUS_ORDER = ("accepted", "rejected", "not_sent", "unknown", "dry_run")
COLOURS = {
    "accepted": "#2e7d32",
    "rejected": "#c62828",
    "not_sent": "#ef6c00",
    "unknown": "#6a1b9a",
    "dry_run": "#1565c0",
}


@dataclass(frozen=True, slots=True)
class ResultFacts:
    """What the wording needs to know about a result."""

    counts: Mapping[str, int]
    total: int
    elapsed: float
    possibly_duplicated: int
    cancelled: bool
    error: BaseException | None
    resumable: bool
    endpoint: str
    confirmed: str | None = None  # what a confirm() found, in a few words
    confirmable: bool = False  # confirm() can read back (a result made by a send)


def summary_line(
    facts: ResultFacts,
    name: str | None = "result",
    *,
    next_step: str | None = None,
    interrupted: bool = False,
) -> str:
    """One line: accepted out of total, the time, what else happened, what to do next
    (see :meth:`cms_magic.results.SendResult.summary`)."""
    counts = facts.counts
    total = facts.total
    if counts["dry_run"]:
        head = f"dry run: {counts['dry_run']:,}/{plural(total, 'event')} would be sent"
    else:
        head = f"{counts['accepted']:,}/{plural(total, 'event')} accepted in {facts.elapsed:.1f} s"
    others = [
        f"{counts[s]:,} {s.replace('_', ' ')}"
        for s in ("rejected", "not_sent", "unknown")
        if counts[s]
    ]
    duplicated = facts.possibly_duplicated
    marks = [f"{duplicated:,} possibly duplicated"] if duplicated else []
    line = head + ("; " + ", ".join(others + marks) if others or marks else "")
    if facts.confirmed:
        line += f"; {facts.confirmed}"
    if facts.cancelled:
        line += "; interrupted" if interrupted else "; cancelled"
    if facts.error:
        line += f"; stopped: {facts.error}"
    if not others:
        return line
    if next_step is not None:
        return f"{line} -> {next_step}"
    if name is None:
        return line
    pointers = []
    if facts.resumable:
        pointers.append(f"{name}.retry()" + (" resumes" if facts.cancelled else ""))
    if counts["unknown"] and facts.confirmable and not facts.confirmed:
        pointers.append(f"{name}.confirm()")
    if counts["rejected"] or counts["unknown"] or not facts.resumable:
        pointers.append(f"{name}.failed()")
    return f"{line} -> {', '.join(pointers)}"


def result_repr(facts: ResultFacts) -> str:
    """``<SendResult 1,000 events in 1.2 s: 997 accepted, 3 rejected>``."""
    counts = facts.counts
    shown = ", ".join(f"{counts[s]:,} {s.replace('_', ' ')}" for s in STATUS_ORDER if counts[s])
    extra = []
    if facts.possibly_duplicated:
        extra.append(f"{facts.possibly_duplicated:,} possibly duplicated")
    if facts.confirmed:
        extra.append(facts.confirmed)
    if facts.cancelled:
        extra.append("cancelled")
    if facts.error is not None:
        extra.append(f"stopped: {type(facts.error).__name__}")
    tail = "; " + "; ".join(extra) if extra else ""
    return (
        f"<SendResult {plural(facts.total, 'event')} in {facts.elapsed:.1f} s"
        f"{': ' + shown if shown else ''}{tail}>"
    )


def result_html(facts: ResultFacts, failed: pd.DataFrame | None, methods: str) -> str:
    """The counts in colour, where the events went, the first rows not accepted (``failed``,
    status and reason) and the methods to reach more."""
    counts = facts.counts
    cells = "".join(
        f'<td style="padding:2px 8px;color:{COLOURS[s]}"><b>{counts[s]:,}</b> {s.replace("_", " ")}</td>'
        for s in STATUS_ORDER
        if counts[s]
    )
    if facts.possibly_duplicated:
        cells += (
            '<td style="padding:2px 8px;color:#6a1b9a">'
            f"<b>{facts.possibly_duplicated:,}</b> possibly duplicated</td>"
        )
    notes: list[Any] = []
    if facts.confirmed:
        notes.append(facts.confirmed)
    if facts.cancelled:
        notes.append("cancelled")
    if facts.error is not None:
        notes.append(f"stopped: {facts.error}")
    where = f" to {facts.endpoint}" if facts.endpoint else ""
    head = f"SendResult: {plural(facts.total, 'event')}{where} in {facts.elapsed:.1f} s" + "".join(
        f"; {n}" for n in notes
    )
    table = "" if failed is None else failed.to_html(notebook=False, border=0)
    return (
        '<div class="cms-magic-result">'
        f"<div>{html.escape(head)}</div>"
        f"<table><tr>{cells}</tr></table>{table}"
        f'<div style="color:#666">{html.escape(methods)}</div></div>'
    )
