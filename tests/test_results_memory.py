"""Issue 16, memory flat in rows: what a result keeps per row, what its frame costs, and
that the views a skin shows (failed, summary, counts, the reprs) never build the frame."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cms_magic.emulator import Emulator
from cms_magic.results import NOT_SENT_REASON, SendResult
from cms_magic.sending.outcomes import ResultBuilder
from tests.sending._helpers import frame, no_sleep_client


def _arrays(result: SendResult) -> Iterator[np.ndarray[Any, Any]]:
    """Every numpy array the result holds, one level into its own containers."""
    for value in vars(result).values():
        if isinstance(value, np.ndarray):
            yield value
        elif hasattr(value, "__dataclass_fields__"):
            for inner in vars(value).values() if hasattr(value, "__dict__") else ():
                if isinstance(inner, np.ndarray):
                    yield inner
            for name in getattr(value, "__slots__", ()):
                inner = getattr(value, name)
                if isinstance(inner, np.ndarray):
                    yield inner


def _built(rows: int, per_request: int = 100) -> SendResult:
    """A result as a send of ``rows`` rows leaves it: every request accepted, with an id."""
    builder = ResultBuilder(rows, None)
    for number, first in enumerate(range(0, rows, per_request)):
        builder.settle(
            range(first, min(first + per_request, rows)),
            "accepted",
            None,
            batch=number,
            attempts=1,
            request_id=f"req-{number}",
        )
    return builder.build(elapsed=1.0)


def test_a_sent_result_keeps_at_most_16_bytes_a_row() -> None:
    result = no_sleep_client(Emulator(qps=0).handle_request).send(
        frame(20_000), content_col="content"
    )
    assert result.accepted == 20_000
    held = sum(a.nbytes for a in _arrays(result))
    assert held == result.nbytes
    assert result.nbytes / len(result) <= 16
    big = _built(1_000_000)
    assert big.nbytes / len(big) <= 16
    assert sum(a.nbytes for a in _arrays(big)) == big.nbytes


def test_the_result_owns_its_arrays_and_nothing_of_the_builder() -> None:
    builder = ResultBuilder(1_000, None)
    builder.settle(range(1_000), "accepted", None, batch=0, attempts=1, request_id="r")
    result = builder.build(elapsed=0.1)
    for array in _arrays(result):
        assert array.base is None or not isinstance(array.base, np.ndarray)
    watched = weakref.ref(builder)
    del builder
    gc.collect()
    assert watched() is None
    for referent in gc.get_referents(result):
        assert not isinstance(referent, ResultBuilder)


class _NoFrame:
    def __get__(self, obj: object, owner: type | None = None) -> Any:
        raise AssertionError("the whole events frame was built")


@pytest.mark.parametrize("from_frame", [True, False])
def test_failed_summary_counts_and_reprs_do_not_build_the_frame(
    monkeypatch: pytest.MonkeyPatch, from_frame: bool
) -> None:
    emulator = Emulator(qps=0, poison_marker="BAD")
    df = frame(300)
    df.loc[[3, 250], "content"] = "BAD"
    client = no_sleep_client(emulator.handle_request)
    data: Any = df if from_frame else [dict(r) for r in df.to_dict("records")]
    result = client.send(data, content_col="content") if from_frame else client.send(data)
    monkeypatch.setattr(SendResult, "events", _NoFrame())
    assert result.counts()["rejected"] == 2
    assert "2 rejected" in result.summary()
    assert "rejected" in repr(result)
    html = result._repr_html_()
    assert "poison marker" in html
    failed = result.failed()
    assert len(failed) == 2
    rows = result.failed_events()
    assert list(rows.index) == [3, 250]
    assert rows["status"].astype(str).tolist() == ["rejected"] * 2
    assert rows["reason"].str.contains("poison marker").all()
    assert result._events_frame is None


def test_failed_of_a_result_without_its_input_gives_the_failed_rows_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builder = ResultBuilder(5, pd.Index(list("abcde")))
    builder.reject({1: "rejected: too long"})
    builder.settle([0, 2], "accepted", None, batch=0, attempts=1, request_id="req-0")
    builder.settle([3], "unknown", "unknown: timed out", batch=1, attempts=3)
    result = builder.build(elapsed=0.1)  # row 4: never settled (not sent)
    monkeypatch.setattr(SendResult, "events", _NoFrame())
    failed = result.failed()
    assert list(failed.index) == ["b", "d", "e"]
    assert failed["reason"].tolist() == [
        "rejected: too long",
        "unknown: timed out",
        NOT_SENT_REASON,
    ]


def test_the_events_frame_is_compact_and_says_what_it_said() -> None:
    builder = ResultBuilder(6, None)
    builder.reject({1: "rejected: too long"})
    builder.settle([0, 2], "accepted", None, batch=0, attempts=1, request_id="req-0")
    builder.settle([3], "unknown", "unknown: timed out", batch=1, attempts=3)
    builder.settle([5], "accepted", None, batch=2, attempts=2, possible_duplicate=True)
    events = builder.build(elapsed=0.1).events
    assert str(events["status"].dtype) == "category"
    assert str(events["reason"].dtype) == "category"
    assert str(events["request_id"].dtype) == "category"
    assert str(events["batch"].dtype) == "Int32"
    assert events["attempts"].dtype == np.int16
    assert events["status"].astype(str).tolist() == [
        "accepted",
        "rejected",
        "accepted",
        "unknown",
        "not_sent",
        "accepted",
    ]
    reasons = events["reason"].astype(object).where(events["reason"].notna(), None).tolist()
    assert reasons == [
        None,
        "rejected: too long",
        None,
        "unknown: timed out",
        NOT_SENT_REASON,
        None,
    ]
    assert events["batch"].tolist() == [0, pd.NA, 0, 1, pd.NA, 2]
    assert events["attempts"].tolist() == [1, 0, 1, 3, 0, 2]
    assert events.loc[0, "request_id"] == "req-0"
    assert events["request_id"].isna().tolist() == [False, True, False, True, True, True]
    assert events["possible_duplicate"].tolist() == [False] * 5 + [True]


def test_the_events_frame_of_a_million_rows_is_a_few_bytes_a_row() -> None:
    result = _built(1_000_000)
    events = result.events
    assert len(events) == 1_000_000
    per_row = events.memory_usage(deep=True, index=True).sum() / len(events)
    assert per_row <= 20  # status 1, reason 1, batch 4+1, attempts 2, request_id 4+, dup 1
    assert result.events is events  # built once


def test_a_frame_inputs_index_is_kept_by_reference() -> None:
    df = frame(50)
    df.index = pd.Index([f"k{i}" for i in range(50)])
    result = no_sleep_client(Emulator(qps=0).handle_request).send(df, content_col="content")
    assert result.events.index is df.index or result.events.index.equals(df.index)
    assert result._index is df.index  # not a copy


def test_the_categoricals_hold_only_what_rows_use() -> None:
    first = ResultBuilder(3, None)
    first.settle([0, 1], "unknown", "unknown: timed out", batch=0, attempts=2, request_id="a")
    first.settle([2], "accepted", None, batch=1, attempts=1, request_id="b")
    again = ResultBuilder(2, None)
    again.settle([0, 1], "accepted", None, batch=0, attempts=1, request_id="c")
    merged = first.build(elapsed=0.1).merged(again.build(elapsed=0.1), np.array([0, 1]))
    events = merged.events
    assert events["request_id"].tolist() == ["c", "c", "b"]
    assert sorted(events["request_id"].cat.categories) == ["b", "c"]  # "a": no row now
    assert "unknown: timed out" not in set(events["reason"].cat.categories)
    assert (events["reason"].value_counts() > 0).all()
    assert events["batch"].tolist() == [2, 2, 1]  # the resend's batches follow the first's
    assert events["possible_duplicate"].tolist() == [True, True, False]
