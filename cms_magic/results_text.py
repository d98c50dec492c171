"""How a :class:`~cms_magic.results.SendResult` reads: its summary line, its repr and its
HTML, as pure functions of a few facts about it (:class:`ResultFacts`), so the wording lives
in one place and the result module stays about outcomes; and its ``events`` frame
(:func:`events_frame`), built column by column from the compact per-row arrays.

**The frame's memory** (issue 16): ``status``, ``reason`` and ``request_id`` are
categoricals (a code of 1-4 bytes a row, each text once), ``batch`` a nullable ``Int32``,
``attempts`` an ``int16``, ``possible_duplicate`` a bool; the index is the input's own
(not copied). 5M rows: about 70 MB, against 175 MB with object and int64 columns, and
the peak while it is built stays near that (one column's temporary at a time). The
columns are computed for the rows asked only (``positions``), so ``failed()`` and the
HTML repr never build the whole frame."""

from __future__ import annotations

import html
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from cms_magic.progress import plural

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ResultFacts", "RowArrays", "events_frame", "result_html", "result_repr", "summary_line"]

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


class SettlesView(Protocol):
    """What the rows of one request share (:class:`cms_magic.results.Settles`)."""

    @property
    def batch(self) -> np.ndarray[Any, Any]: ...
    @property
    def attempts(self) -> np.ndarray[Any, Any]: ...
    @property
    def request(self) -> np.ndarray[Any, Any]: ...
    @property
    def reason(self) -> tuple[str | None, ...]: ...
    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RowArrays:
    """What a result keeps per row, as :func:`events_frame` reads it."""

    status: np.ndarray[Any, Any]  # uint8 codes of STATUS_ORDER
    duplicate: np.ndarray[Any, Any]  # bool
    group: np.ndarray[Any, Any]  # int32: the row's settle, -1 for none
    settles: SettlesView
    reasons: Mapping[int, str | None]  # of single rows, sparse: win over the settle's
    request_ids: Sequence[str]
    index: pd.Index | Sequence[Hashable] | None
    copies: np.ndarray[Any, Any] | None  # int32 after confirm(), -1: not looked up
    not_sent_reason: str


_CHUNK = 1 << 20  # rows at a time, where a whole-column temporary is not needed


def _used_only(
    codes: np.ndarray[Any, Any], categories: Sequence[str]
) -> tuple[np.ndarray[Any, Any], list[str]]:
    """``codes`` and ``categories`` without the categories no row uses (a request's reason
    every row of which got its own since, a request id no row points at after a retry), so
    ``value_counts()`` shows no zero rows. Checked a chunk at a time (no big temporary)."""
    used = np.zeros(len(categories) + 1, dtype=bool)  # the last: code -1
    for start in range(0, len(codes), _CHUNK):
        used[codes[start : start + _CHUNK]] = True
    used = used[:-1]
    if used.all():
        return codes, list(categories)
    renumber = np.full(len(categories) + 1, -1, dtype=np.int32)
    renumber[np.flatnonzero(used)] = np.arange(int(used.sum()), dtype=np.int32)
    kept = [text for text, keep in zip(categories, used.tolist(), strict=True) if keep]
    return renumber[codes], kept


def _categorical(codes: np.ndarray[Any, Any], categories: Sequence[str]) -> Any:
    import pandas as pd

    codes, categories = _used_only(codes, categories)

    # from_codes keeps the smallest integer type that holds the categories' codes.
    texts = np.empty(len(categories), dtype=object)
    texts[:] = list(categories)
    return pd.Categorical.from_codes(codes, categories=pd.Index(texts))


def _nullable_int(values: np.ndarray[Any, Any]) -> Any:
    """``values`` (int32, a fresh array: changed in place) as ``Int32``, NA where < 0."""
    import pandas as pd

    missing = values < 0
    values[missing] = 0
    return pd.arrays.IntegerArray(values, missing)


def _reason_codes(
    rows: RowArrays, positions: np.ndarray[Any, Any] | None, group: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], list[str]]:
    """Each row's reason as a code into the returned texts (-1: none)."""
    texts: dict[str, int] = {}
    per_settle = np.empty(len(rows.settles) + 1, dtype=np.int32)  # the last: no settle
    for number, reason in enumerate(rows.settles.reason):
        per_settle[number] = -1 if reason is None else texts.setdefault(reason, len(texts))
    per_settle[-1] = -1
    codes: np.ndarray[Any, Any] = per_settle[group]  # group -1 picks the last
    status = rows.status if positions is None else rows.status[positions]
    unsent = (codes < 0) & (status == STATUS_ORDER.index("not_sent"))
    if unsent.any():
        codes[unsent] = texts.setdefault(rows.not_sent_reason, len(texts))
    if rows.reasons:
        keys = np.fromiter(rows.reasons.keys(), dtype=np.int64, count=len(rows.reasons))
        values = list(rows.reasons.values())
        if positions is None:
            where, chosen = keys, range(len(keys))
        else:
            at = np.searchsorted(positions, keys).clip(0, max(len(positions) - 1, 0))
            hit = (positions[at] == keys) if len(positions) else np.zeros(len(keys), dtype=bool)
            where, chosen = at[hit], np.flatnonzero(hit).tolist()
        codes[where] = [
            -1 if (text := values[i]) is None else texts.setdefault(text, len(texts))
            for i in chosen
        ]
    return codes, list(texts)


def events_frame(rows: RowArrays, positions: np.ndarray[Any, Any] | None = None) -> pd.DataFrame:
    """The ``events`` frame of a result, for every row or the rows at ``positions``
    (ascending), column by column with compact dtypes (see the module docstring)."""
    import pandas as pd

    n = len(rows.status)
    index: Any = rows.index if rows.index is not None else pd.RangeIndex(n)
    if not isinstance(index, pd.Index):
        index = pd.Index(index)
    if positions is not None:
        positions = np.asarray(positions, dtype=np.int64)
        index = index[positions]

    def pick(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return array if positions is None else array[positions]

    # One column at a time, each temporary dropped before the next (the peak stays near
    # the frame's own size): a per-settle table first, then indexed by each row's settle.
    group = pick(rows.group)
    settles = rows.settles
    columns: dict[str, Any] = {"status": _categorical(pick(rows.status), STATUS_ORDER)}
    codes, texts = _reason_codes(rows, positions, group)
    columns["reason"] = _categorical(codes, texts)
    del codes
    columns["batch"] = _nullable_int(np.append(settles.batch, -1).astype(np.int32)[group])
    columns["attempts"] = np.append(settles.attempts, 0).astype(np.int16)[group]
    ids = list(dict.fromkeys(rows.request_ids))  # categories are unique
    id_code = {text: code for code, text in enumerate(ids)}
    per_request = np.asarray([id_code[text] for text in rows.request_ids] + [-1], dtype=np.int32)
    per_settle = per_request[np.append(settles.request, -1)]  # request -1: the trailing -1
    columns["request_id"] = _categorical(per_settle[group], ids)
    columns["possible_duplicate"] = (
        rows.duplicate.copy() if positions is None else pick(rows.duplicate)
    )
    del group
    if rows.copies is not None:  # after confirm(): the copies the service holds
        columns["copies"] = _nullable_int(pick(rows.copies).astype(np.int32))
    frame: pd.DataFrame = pd.DataFrame(columns, index=index, copy=False)
    return frame
