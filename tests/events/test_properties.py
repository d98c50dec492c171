"""Property-based: whatever a frame holds, no row is lost and accepted events round-trip exactly.

Frames mix dtypes, None/NaN/NaT, unicode with astral characters and lone
surrogates, very long strings, naive and aware datetimes, out-of-range values
and integers stored as floats. Sending them through the emulator must raise no
uncaught exception; every row ends with a status, a reason when not accepted,
and the accepted events are stored with exactly the name and content given.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st

from cms_magic.emulator import Emulator, demo_credentials
from cms_magic.events.convert import Event, events_from_frame
from cms_magic.sending.client import Client

ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=30),  # includes lone surrogates and astral characters
    st.text(st.sampled_from('abc 中文😀\n"\\/'), min_size=1, max_size=12),
    st.builds(lambda k: "长" * k, st.integers(1_000, 60_000)),  # long, multi-byte
)
MISSING = st.sampled_from([None, math.nan, pd.NaT, pd.NA])
SCALAR = st.one_of(
    TEXT,
    MISSING,
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.integers(0, 10**6).map(float),  # integers stored as floats
)
ZONES = st.sampled_from(
    [
        dt.timezone.utc,
        dt.timezone(dt.timedelta(hours=8)),
        dt.timezone(dt.timedelta(hours=-3, minutes=-30)),
    ]
)
DATETIMES = st.one_of(
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2090, 1, 1)),
    st.datetimes(
        min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2090, 1, 1), timezones=ZONES
    ),
)
TIME_VALUE = st.one_of(
    DATETIMES,
    MISSING,
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from(
        ["20171023T144439.948+0800", "2024-02-30T00:00:00", "yesterday", "1508741079948", ""]
    ),
    TEXT,
)


def column(values: st.SearchStrategy[Any], n: int) -> st.SearchStrategy[list[Any]]:
    return st.lists(values, min_size=n, max_size=n)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 25))
    data = {
        "name": draw(column(st.one_of(TEXT, MISSING, SCALAR), n)),
        "content": draw(column(st.one_of(TEXT, SCALAR), n)),
        "gid": draw(column(SCALAR, n)),
        "when": draw(column(TIME_VALUE, n)),
    }
    frame = pd.DataFrame(data, dtype=object)
    if draw(st.booleans()):  # sometimes let pandas infer dtypes, as read_csv would
        frame = frame.infer_objects()
    return frame


def _client(emulator: Emulator) -> Client:
    return Client(
        "http://127.0.0.1:9",
        credentials=demo_credentials(),
        qps=0,
        transport=httpx.MockTransport(emulator.handle_request),
        source_ip="10.0.0.1",
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(frame=frames(), with_time=st.booleans(), with_group=st.booleans())
def test_every_row_has_a_status_and_accepted_rows_round_trip(
    frame: pd.DataFrame, with_time: bool, with_group: bool
) -> None:
    emulator = Emulator(qps=0)
    mapping: dict[str, Any] = {"content_col": "content", "tz": "Asia/Shanghai"}
    if with_time:
        mapping["time_col"] = "when"
    if with_group:
        mapping["group_id_col"] = "gid"
    result = _client(emulator).send(frame, **mapping)

    events = result.events
    assert len(events) == len(frame)
    assert list(events.index) == list(frame.index)
    status = events["status"].astype(str)
    assert status.isin(["accepted", "rejected"]).all()
    not_ok = events[status != "accepted"]
    assert not_ok["reason"].map(lambda r: isinstance(r, str) and len(r) > 10).all()

    stored = emulator.events()
    accepted = np.flatnonzero(status.to_numpy() == "accepted")
    note_event(f"accepted rows: {'some' if len(accepted) else 'none'}")
    note_event(f"rejected rows: {'some' if len(not_ok) else 'none'}")
    if any("not valid Unicode" in str(r) for r in not_ok["reason"]):
        note_event("a lone surrogate was rejected")
    assert len(stored) == len(accepted)
    for position, event in zip(accepted.tolist(), stored, strict=True):
        name, content = frame["name"].iloc[position], frame["content"].iloc[position]
        assert event["name"] == (name if isinstance(name, str) else str(name))
        assert event["content"] == (content if isinstance(content, str) else str(content))
        assert ("groupId" in event) <= with_group
        assert ("time" in event) <= with_time


@settings(max_examples=200, deadline=None)
@given(value=DATETIMES)
def test_times_match_the_reference_formatter(value: dt.datetime) -> None:
    """Vectorised formatting equals strftime; naive times are read in the zone, with its DST."""
    zone = ZoneInfo("Asia/Shanghai")  # had daylight saving time from 1986 to 1991
    frame = pd.DataFrame({"name": ["n"], "content": ["c"], "t": pd.Series([value], dtype=object)})
    conversion = events_from_frame(frame, content_col="content", time_col="t", tz="Asia/Shanghai")
    if value.tzinfo is None:
        early, late = value.replace(tzinfo=zone, fold=0), value.replace(tzinfo=zone, fold=1)
        exists = early.astimezone(dt.timezone.utc).astimezone(zone).replace(tzinfo=None) == value
        if early.utcoffset() != late.utcoffset() or not exists:
            assert "ambiguous" in conversion.rejected[0]  # a DST change: refused, not guessed
            return
        value = early
    expected = (
        value.strftime("%Y%m%dT%H%M%S.") + f"{value.microsecond // 1000:03d}" + value.strftime("%z")
    )
    assert conversion.events()[0].time == expected


@given(name=TEXT, content=TEXT)
def test_event_json_round_trips(name: str, content: str) -> None:
    try:
        event = Event(name, content)
    except ValueError:
        assert not name or not content
        return
    try:
        payload = event.to_json()
    except Exception:  # orjson refuses lone surrogates: the row path rejects those rows
        assert any(0xD800 <= ord(ch) <= 0xDFFF for ch in name + content)
        return
    decoded = httpx.Response(200, content=payload).json()
    assert decoded == {"content": content, "name": name}
