"""Property-based: whatever a frame holds, no row is lost and accepted events round-trip exactly.

Frames mix dtypes, None/NaN/NaT, unicode with astral characters and lone
surrogates, very long strings, naive and aware datetimes, out-of-range values
and integers stored as floats. Sending them through the emulator must raise no
uncaught exception; every row ends with a status, a reason when not accepted,
and the accepted events are stored with exactly the name and content given.

The typed frames add nullable (``Int64``, ``UInt64``, ``string``, ``boolean``) and,
when pyarrow is installed, pyarrow-backed columns, datetimes of any year in any
unit, dates and date-only strings, bytes, dicts and Decimals (``sNaN`` too): the
converter must give every row exactly one outcome, an encoded event or a reason,
and never raise.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import orjson
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st

from cms_magic.emulator import Emulator, demo_credentials
from cms_magic.events.convert import Event, events_from_frame
from cms_magic.events.times import TIME_FORMAT_RE
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
#: Any datetime Python can hold: sentinels such as 0001-01-01 and 9999-12-31 included.
WIDE_DATETIMES = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31))
DATE_STRINGS = st.one_of(
    st.dates().map(dt.date.isoformat),  # '2024-01-31': local midnight in tz
    st.dates().map(lambda d: d.isoformat()[:7]),  # '2024-01': rejected
    st.sampled_from(["now", "today", "Yesterday", " tomorrow ", "NaT", "2024-02-30", "9999-12-31"]),
)
TIME_VALUE = st.one_of(
    DATETIMES,
    MISSING,
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from(
        ["20171023T144439.948+0800", "2024-02-30T00:00:00", "yesterday", "1508741079948", ""]
    ),
    TEXT,
    WIDE_DATETIMES,
    st.dates(),
    DATE_STRINGS,
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
    assert all(isinstance(r, str) and len(r) > 10 for r in not_ok["reason"])

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


# --------------------------------------------------------------------------- typed frames

try:
    import pyarrow as pa
except ImportError:  # pragma: no cover - depends on the environment
    pa = None

#: Without pyarrow the typed frames draw no pyarrow column (and say so in the statistics).
HAVE_PYARROW = pa is not None
SIGNED_GROUP_IDS = st.one_of(st.integers(-5, 2**63 - 1), st.integers(2**63 - 5, 2**63 - 1))
UNSIGNED_GROUP_IDS = st.one_of(st.integers(0, 2**63 - 1), st.integers(2**63 - 5, 2**64 - 1))
EPOCHS = st.one_of(
    st.none(), st.integers(-(2**62), 2**62), st.integers(946_684_800_000, 4_102_444_799_999)
)
CELLS = st.one_of(
    SCALAR,
    st.binary(max_size=8),
    st.dictionaries(
        st.text(max_size=3), st.one_of(st.integers(), st.floats(), st.none()), max_size=2
    ),
    st.lists(st.floats(allow_nan=True), max_size=3),
    st.sampled_from([decimal.Decimal("1.50"), decimal.Decimal("NaN"), decimal.Decimal("sNaN")]),
)
UNITS = st.sampled_from(["s", "ms", "us"])


@st.composite
def group_column(draw: st.DrawFn, n: int) -> Any:
    kind = draw(st.sampled_from(["object", "Int64", "UInt64", "int64[pyarrow]", "uint64[pyarrow]"]))
    if kind == "object":
        return pd.Series(draw(column(SCALAR, n)), dtype=object)
    if "pyarrow" in kind and not HAVE_PYARROW:
        note_event("pyarrow not installed: a nullable group id column instead")
        kind = kind.replace("int64[pyarrow]", "Int64").replace("uInt64", "UInt64")
    signed = not kind.lower().startswith("u")
    ids = SIGNED_GROUP_IDS if signed else UNSIGNED_GROUP_IDS  # around 2**63 - 1 too
    values = draw(column(st.one_of(st.none(), ids), n))
    return pd.array(values, dtype=kind)


@st.composite
def time_column(draw: st.DrawFn, n: int) -> Any:
    kind = draw(
        st.sampled_from(["object", "Int64", "datetime", "aware", "pyarrow", "dates", "strings"])
    )
    if kind == "object":
        return pd.Series(draw(column(TIME_VALUE, n)), dtype=object)
    if kind == "Int64":
        return pd.array(draw(column(EPOCHS, n)), dtype="Int64")
    if kind == "strings":
        return pd.Series(draw(column(st.one_of(DATE_STRINGS, st.none()), n)), dtype=object)
    if kind == "dates":
        return pd.Series(draw(column(st.one_of(st.dates(), st.none()), n)), dtype=object)
    values = draw(column(st.one_of(WIDE_DATETIMES, st.none()), n))
    unit = draw(UNITS)
    if kind == "pyarrow" and HAVE_PYARROW:
        zone = draw(st.sampled_from([None, "UTC", "Asia/Shanghai"]))
        return pd.array(values, dtype=pd.ArrowDtype(pa.timestamp(unit, tz=zone)))
    if kind == "pyarrow":
        note_event("pyarrow not installed: a numpy datetime column instead")
    stamps = np.array([np.datetime64("NaT") if v is None else v for v in values], f"M8[{unit}]")
    series = pd.Series(stamps)
    return series.dt.tz_localize("UTC") if kind == "aware" else series


@st.composite
def content_column(draw: st.DrawFn, n: int) -> Any:
    kind = draw(st.sampled_from(["object", "string", "string[pyarrow]", "boolean", "Float64"]))
    if kind == "object":
        return pd.Series(draw(column(st.one_of(TEXT, CELLS), n)), dtype=object)
    if kind == "boolean":
        return pd.array(draw(column(st.one_of(st.booleans(), st.none()), n)), dtype="boolean")
    if kind == "Float64":
        return pd.array(
            draw(column(st.one_of(st.floats(allow_nan=False), st.none()), n)), "Float64"
        )
    if kind == "string[pyarrow]" and not HAVE_PYARROW:
        note_event("pyarrow not installed: a python string column instead")
        kind = "string"
    texts = column(
        st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=12), st.none()), n
    )
    return pd.array(draw(texts), dtype=kind)


@st.composite
def typed_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 20))
    frame = pd.DataFrame(
        {
            "name": draw(column(st.one_of(TEXT, MISSING), n)),
            "body": draw(content_column(n)),
            "gid": draw(group_column(n)),
            "when": draw(time_column(n)),
        }
    )
    if draw(st.booleans()):
        frame["extra"] = draw(content_column(n))
    return frame


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    frame=typed_frames(),
    whole_row=st.booleans(),
    with_time=st.booleans(),
    with_group=st.booleans(),
    tz=st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York"]),
)
def test_every_typed_row_ends_with_exactly_one_outcome(
    frame: pd.DataFrame, whole_row: bool, with_time: bool, with_group: bool, tz: str
) -> None:
    mapping: dict[str, Any] = {"tz": tz}
    if not whole_row:
        mapping["content_col"] = "body"
    if with_time:
        mapping["time_col"] = "when"
    if with_group:
        mapping["group_id_col"] = "gid"
    for dtype in frame.dtypes:
        if isinstance(dtype, pd.ArrowDtype) or "pyarrow" in str(dtype):
            note_event("a pyarrow column")
        elif not isinstance(dtype, np.dtype):
            note_event("a nullable (extension) column")
    conversion = events_from_frame(frame, **mapping)  # never raises for a cell

    positions = conversion.positions.tolist()
    assert len(positions) == len(set(positions)) == len(conversion.payloads)
    assert set(positions).isdisjoint(conversion.rejected)
    assert set(positions) | set(conversion.rejected) == set(range(len(frame)))
    for reason in conversion.rejected.values():
        assert isinstance(reason, str)
        assert reason.startswith("'"), reason  # names the field first
    for payload in conversion.payloads:
        event = orjson.loads(payload)
        assert isinstance(event["name"], str)
        assert isinstance(event["content"], str)
        assert event["name"]
        assert event["content"]
        assert "b'" not in event["content"][:2], event  # never a Python repr of bytes
        if "groupId" in event:
            assert with_group
            assert 0 <= event["groupId"] <= 2**63 - 1
        if "time" in event:
            assert with_time
            time = event["time"]
            if time.isdigit():
                assert 946_684_800_000 <= int(time) < 4_102_444_800_000
            else:
                assert TIME_FORMAT_RE.match(time), time
                assert "1900" <= time[:4] <= "2100"


@settings(max_examples=200, deadline=None)
@given(
    # from 1920: before, zones used local mean time, offsets with seconds the format cannot hold
    day=st.dates(min_value=dt.date(1920, 1, 1), max_value=dt.date(2099, 12, 30)),
    zone=st.sampled_from(["Asia/Shanghai", "America/New_York", "America/Sao_Paulo", "UTC"]),
)
def test_a_date_alone_is_midnight_in_the_zone(day: dt.date, zone: str) -> None:
    frame = pd.DataFrame({"name": ["n"], "content": ["c"], "t": [day.isoformat()]})
    conversion = events_from_frame(frame, time_col="t", tz=zone)
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone))
    back = midnight.astimezone(dt.timezone.utc).astimezone(ZoneInfo(zone))
    if back.replace(tzinfo=None) != midnight.replace(tzinfo=None):  # midnight skipped (DST)
        assert "does not exist or is ambiguous" in conversion.rejected[0]
        return
    expected = midnight.strftime("%Y%m%dT000000.000%z")
    if midnight.utcoffset() != midnight.replace(fold=1).utcoffset():
        assert 0 in conversion.rejected  # an ambiguous midnight is refused, not guessed
        return
    assert conversion.events()[0].time == expected


@settings(max_examples=200, deadline=None)
@given(value=WIDE_DATETIMES, as_text=st.booleans())
def test_times_outside_1900_to_2100_reject_their_row(value: dt.datetime, as_text: bool) -> None:
    cell: Any = value.isoformat() if as_text else value
    frame = pd.DataFrame({"name": ["n"], "content": ["c"], "t": pd.Series([cell], dtype=object)})
    conversion = events_from_frame(frame, time_col="t", tz="UTC")
    if dt.datetime(1900, 1, 1) <= value < dt.datetime(2100, 1, 1):
        assert conversion.events()[0].time == value.strftime("%Y%m%dT%H%M%S.") + (
            f"{value.microsecond // 1000:03d}+0000"
        )
    else:
        assert "must lie between 1900 and 2100" in conversion.rejected[0]
