"""The emulator's SQLite store (:mod:`cms_magic.emulator.store`): the read actions' queries
(every filter, paging at its edges, histogram buckets), event times across DST changes,
CJK content, the visibility delay on a fake clock, a file that survives a restart, and
concurrent writers."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from cms_magic.emulator.store import (
    EventQuery,
    EventStore,
    MemoryStore,
    SqliteStore,
    Store,
    StoredEvent,
    event_time_ms,
)
from cms_magic.errors import ConfigError
from tests.conftest import FakeClock

T0 = 1_764_547_200_000  # 2025-12-01T00:00:00Z in ms
RECORD = {"status": 200, "code": "200", "msg": ""}


def stored(store: SqliteStore, *events: dict[str, Any]) -> None:
    store.add(list(events), request=RECORD)


def ev(name: str, content: str, time: object = None, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"name": name, "content": content, **extra}
    if time is not None:
        event["time"] = time
    return event


def contents(got: list[StoredEvent]) -> list[str]:
    return [e.content for e in got]


@pytest.fixture
def store(clock: FakeClock) -> SqliteStore:
    return MemoryStore(clock=clock)


def test_both_stores_are_stores_and_event_stores() -> None:
    memory: Store = MemoryStore()
    assert isinstance(memory, EventStore)
    assert "in memory, 0 events, 0 requests" in repr(memory)


# --------------------------------------------------------------------------- ids and times


def test_each_event_gets_an_id_never_reused_and_its_stored_time(
    store: SqliteStore, clock: FakeClock
) -> None:
    stored(store, ev("a", "1"), ev("a", "2"))
    clock.advance(1.5)
    stored(store, ev("a", "3"))
    got = {e.content: e for e in store.query(EventQuery())}
    assert [got[c].id for c in "123"] == ["1", "2", "3"]
    assert got["1"].stored_ms == int(clock.now * 1000) - 1500
    assert got["3"].stored_ms == int(clock.now * 1000)
    # no time given: the event's time is the time it was stored
    assert got["3"].time_ms == got["3"].stored_ms
    store.clear()
    stored(store, ev("a", "4"))
    assert store.query(EventQuery())[0].id == "4"


def test_stored_at_overrides_the_clock(store: SqliteStore) -> None:
    store.add([ev("a", "x")], request=RECORD, stored_at=1_000.25)
    assert store.query(EventQuery(), now=2_000)[0].stored_ms == 1_000_250


def test_events_read_back_exactly_as_given(store: SqliteStore) -> None:
    given = [
        ev("a", "x", time="20261201T104412.123+0800", groupId=7),
        ev("b", "y", time=1_764_547_200_000),
        ev("c", "z", time="1764547200000"),
        {"name": "d", "content": "w", "groupId": 2**63 - 1},
        {"odd": [1, 2], "name": 5, "time": 2**70, "groupId": True},
    ]
    stored(store, *given)
    assert store.events() == given
    assert [type(e.get("time")) for e in store.events()] == [str, int, str, type(None), int]


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("20171023T144439.948+0800", 1_508_741_079_948),
        ("1508741079948", 1_508_741_079_948),
        (1_508_741_079_948, 1_508_741_079_948),
        # Europe/Berlin, spring forward: 01:59:59.999 CET then 03:00:00.000 CEST, 1 ms apart
        ("20260329T015959.999+0100", 1_774_745_999_999),
        ("20260329T030000.000+0200", 1_774_746_000_000),
        # fall back: 02:59:59.999 CEST, then 02:00:00.000 CET (the same wall hour again)
        ("20261025T025959.999+0200", 1_792_889_999_999),
        ("20261025T020000.000+0100", 1_792_890_000_000),
        ("not a time", None),
        (True, None),
        (1.5, None),
    ],
)
def test_event_time_ms(text: object, ms: int | None) -> None:
    assert event_time_ms(text) == ms


# --------------------------------------------------------------------------- filters


@pytest.fixture
def filled(store: SqliteStore) -> SqliteStore:
    stored(
        store,
        ev("deploy", "v1 ok", T0, groupId=1),
        ev("deploy", "v2 ValueError in cell", T0 + 1000, groupId=2),
        ev("alarm", "disk full", T0 + 2000),
        ev("alarm", "ValueError and disk", T0 + 3000, groupId=0),
        ev("部署", "磁盘已满 警告", T0 + 4000, groupId=2),
    )
    return store


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            EventQuery(),
            ["磁盘已满 警告", "ValueError and disk", "disk full", "v2 ValueError in cell", "v1 ok"],
        ),
        (EventQuery(name="deploy"), ["v2 ValueError in cell", "v1 ok"]),
        (EventQuery(name="Deploy"), []),
        (EventQuery(name="部署"), ["磁盘已满 警告"]),
        (EventQuery(group_id=2), ["磁盘已满 警告", "v2 ValueError in cell"]),
        # no groupId and groupId 0 are the same: no application group
        (EventQuery(group_id=0), ["ValueError and disk", "disk full"]),
        (EventQuery(event_id="2"), ["v2 ValueError in cell"]),
        (EventQuery(event_id="99"), []),
        (EventQuery(event_id="x"), []),
        (EventQuery(event_id="99999999999999999999"), []),
        (
            EventQuery(since_ms=T0 + 1000, until_ms=T0 + 3000),
            ["ValueError and disk", "disk full", "v2 ValueError in cell"],
        ),
        (EventQuery(since_ms=T0 + 3001), ["磁盘已满 警告"]),
        (EventQuery(until_ms=T0), ["v1 ok"]),
        (EventQuery(since_ms=T0 + 5000), []),
        (EventQuery(keywords=(("disk",),)), ["ValueError and disk", "disk full"]),
        (EventQuery(keywords=(("ValueError", "disk"),)), ["ValueError and disk"]),
        (EventQuery(keywords=(("ok",), ("full",))), ["disk full", "v1 ok"]),
        (EventQuery(keywords=(("valueerror",),)), []),  # case-sensitive
        (EventQuery(keywords=(("已满",),)), ["磁盘已满 警告"]),
        (EventQuery(keywords=(("%",), ("_",))), []),  # no LIKE wildcards
        (EventQuery(name="alarm", keywords=(("disk",),), until_ms=T0 + 2000), ["disk full"]),
    ],
)
def test_query_filters(filled: SqliteStore, query: EventQuery, expected: list[str]) -> None:
    assert contents(filled.query(query)) == expected
    assert filled.count_matching(query) == len(expected)


def test_a_query_result_row(filled: SqliteStore, clock: FakeClock) -> None:
    (row,) = filled.query(EventQuery(name="部署"))
    assert row == StoredEvent("5", "部署", "磁盘已满 警告", 2, T0 + 4000, int(clock.now * 1000))


def test_count_by_name(filled: SqliteStore) -> None:
    assert filled.count_by_name(EventQuery()) == [
        ("alarm", 2, T0 + 3000),
        ("deploy", 2, T0 + 1000),
        ("部署", 1, T0 + 4000),
    ]
    assert filled.count_by_name(EventQuery(keywords=(("nothing",),))) == []


def test_the_newest_event_comes_first_and_ties_by_id(store: SqliteStore) -> None:
    stored(store, ev("a", "first", T0), ev("a", "second", T0), ev("a", "older", T0 - 1))
    assert contents(store.query(EventQuery())) == ["second", "first", "older"]


# --------------------------------------------------------------------------- paging


@pytest.mark.parametrize("n", [0, 1, 10, 11])
def test_paging_at_its_edges(store: SqliteStore, n: int) -> None:
    """0, 1, a page, a page and one: pages of 10 read every event once, the last short."""
    stored(store, *(ev("p", f"{i}", T0 + i) for i in range(n)))
    pages: list[list[StoredEvent]] = []
    while True:
        page = store.query(EventQuery(), offset=10 * len(pages), limit=10)
        pages.append(page)
        if len(page) < 10:
            break
    seen = [e.content for page in pages for e in page]
    assert seen == [str(i) for i in reversed(range(n))]
    assert [len(page) for page in pages] == {0: [0], 1: [1], 10: [10, 0], 11: [10, 1]}[n]
    assert store.query(EventQuery(), limit=0) == []


# --------------------------------------------------------------------------- histogram


def test_histogram_buckets_cover_the_range_and_count_each_event_once(filled: SqliteStore) -> None:
    query = EventQuery(since_ms=T0 + 500, until_ms=T0 + 3000)
    assert filled.histogram(query, width_ms=1000) == [
        (T0 + 500, T0 + 1000, 0),
        (T0 + 1000, T0 + 2000, 1),
        (T0 + 2000, T0 + 3000, 1),
        (T0 + 3000, T0 + 3001, 1),
    ]
    assert filled.histogram(EventQuery(since_ms=T0, until_ms=T0 + 4000), width_ms=10**6) == [
        (T0, T0 + 4001, 5)
    ]
    name = EventQuery(name="deploy", since_ms=T0, until_ms=T0 + 1999)
    assert filled.histogram(name, width_ms=1000) == [(T0, T0 + 1000, 1), (T0 + 1000, T0 + 2000, 1)]
    assert filled.histogram(EventQuery(since_ms=T0 + 1, until_ms=T0), width_ms=1000) == []


def test_histogram_across_a_dst_change_is_uniform_in_utc(store: SqliteStore) -> None:
    stored(
        store,
        ev("d", "before", "20260329T015959.999+0100"),
        ev("d", "after", "20260329T030000.000+0200"),
    )
    edge = 1_774_746_000_000
    buckets = store.histogram(
        EventQuery(since_ms=edge - 3_600_000, until_ms=edge + 3_599_999), width_ms=3_600_000
    )
    assert buckets == [(edge - 3_600_000, edge, 1), (edge, edge + 3_600_000, 1)]
    assert contents(store.query(EventQuery(since_ms=edge))) == ["after"]
    assert contents(store.query(EventQuery(until_ms=edge - 1))) == ["before"]


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"query": EventQuery(since_ms=T0), "width_ms": 1}, "query"),
        ({"query": EventQuery(since_ms=T0, until_ms=T0), "width_ms": 0}, "width_ms"),
        ({"query": EventQuery(since_ms=T0, until_ms=T0), "width_ms": True}, "width_ms"),
        ({"query": EventQuery(since_ms=0, until_ms=T0), "width_ms": 1}, "width_ms"),
    ],
)
def test_histogram_refuses_what_cannot_work(
    store: SqliteStore, kwargs: dict[str, Any], option: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        store.histogram(**kwargs)
    assert excinfo.value.option == option


# --------------------------------------------------------------------------- the lag


def test_events_become_visible_delay_seconds_after_they_were_stored(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock, delay=5)
    stored(store, ev("lag", "x", T0))
    everything = EventQuery()
    assert store.query(everything) == []
    assert store.count_matching(everything) == 0
    assert store.count_by_name(everything) == []
    assert store.histogram(EventQuery(since_ms=T0, until_ms=T0), width_ms=1) == [(T0, T0 + 1, 0)]
    assert store.count() == 1  # the emulator's own view sees it at once
    assert len(store.events()) == 1
    clock.advance(4.999)
    assert store.count_matching(everything) == 0
    clock.advance(0.001)
    assert contents(store.query(everything)) == ["x"]
    assert store.count_matching(everything, now=clock.now - 0.001) == 0  # an explicit now
    store.delay = 0
    stored(store, ev("lag", "y", T0 + 1))
    assert contents(store.query(everything)) == ["y", "x"]


def test_without_a_delay_an_event_stored_later_than_now_is_not_seen_yet(
    store: SqliteStore, clock: FakeClock
) -> None:
    stored(store, ev("a", "now"))
    store.add([ev("a", "later")], request=RECORD, stored_at=clock.now + 10)
    assert contents(store.query(EventQuery())) == ["now"]
    assert contents(store.query(EventQuery(), now=clock.now + 10)) == ["later", "now"]
    store.clear()
    stored(store, ev("a", "again"))
    assert contents(store.query(EventQuery())) == ["again"]


@pytest.mark.parametrize("delay", [-1, True, "5", float("nan")])
def test_a_bad_delay_is_named(delay: Any) -> None:
    with pytest.raises(ConfigError) as excinfo:
        MemoryStore(delay=delay)
    assert excinfo.value.option == "delay"
    with pytest.raises(ConfigError):
        MemoryStore().delay = delay


# --------------------------------------------------------------------------- files


def test_a_file_store_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "events.sqlite"
    with SqliteStore(path, clock=clock) as first:
        stored(first, ev("keep", "私の", T0, groupId=3))
        first.add((), request={**RECORD, "status": 400})
    assert "closed" in repr(first)
    with pytest.raises(ConfigError):
        first.count()
    with SqliteStore(str(path), clock=clock) as again:
        assert again.events() == [ev("keep", "私の", T0, groupId=3)]
        assert [r["status"] for r in again.requests()] == [200, 400]
        assert contents(again.query(EventQuery(name="keep"))) == ["私の"]
        stored(again, ev("keep", "more", T0 + 1))
        assert [e.id for e in again.query(EventQuery())] == ["2", "1"]
        assert repr(again) == f"SqliteStore({str(path)!r}, 2 events, 3 requests)"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_a_file_that_is_not_the_emulators_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database, just text that is long enough " * 20)
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    for path in (text, other, tmp_path / "missing" / "dir" / "x.sqlite"):
        with pytest.raises(ConfigError) as excinfo:
            SqliteStore(path)
        assert excinfo.value.option == "path"
    assert text.read_text().startswith("not a database")


@pytest.mark.parametrize("path", ["", ":memory:"])
def test_memory_is_asked_for_with_none(path: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        SqliteStore(path)
    assert excinfo.value.option == "path"


def test_a_temporary_store_keeps_its_events_in_a_file_of_its_own(clock: FakeClock) -> None:
    with SqliteStore(temporary=True, clock=clock) as store:
        stored(store, ev("t", "x", T0))
        assert store.path is None
        assert contents(store.query(EventQuery())) == ["x"]
        assert repr(store) == "SqliteStore(temporary, 1 events, 1 requests)"
    with pytest.raises(ConfigError) as excinfo:
        SqliteStore("x.sqlite", temporary=True)
    assert excinfo.value.option == "temporary"


def test_close_is_idempotent(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.sqlite")
    store.close()
    store.close()
    with pytest.raises(ConfigError):
        store.add([ev("a", "b")], request=RECORD)


# --------------------------------------------------------------------------- threads


@pytest.mark.parametrize("where", ["memory", "file"])
def test_concurrent_adds_and_queries(tmp_path: Path, where: str) -> None:
    """8 writers and 2 readers at once: every request's events land whole, ids unique."""
    store = MemoryStore() if where == "memory" else SqliteStore(tmp_path / "t.sqlite")
    start = threading.Barrier(10)
    stop = threading.Event()
    errors: list[BaseException] = []
    seen_counts: list[int] = []

    def writer(n: int) -> None:
        start.wait()
        for i in range(100):
            store.add([ev(f"w{n}", f"{i}-{j}") for j in range(3)], request={"worker": n})

    def reader() -> None:
        start.wait()
        try:
            while not stop.is_set():
                count = store.count_matching(EventQuery())
                assert count % 3 == 0  # never half a request
                seen_counts.append(count)
                store.query(EventQuery(keywords=(("-1",),)), limit=5)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for thread in writers + readers:
        thread.start()
    for thread in writers:
        thread.join(timeout=60)
    stop.set()
    for thread in readers:
        thread.join(timeout=60)
    assert not errors
    assert seen_counts
    rows = store.query(EventQuery())
    assert store.count() == len(rows) == 8 * 100 * 3
    assert len({e.id for e in rows}) == len(rows)
    assert len(store.requests()) == 800
    kept = store.events()
    for k in range(0, len(kept), 3):
        batch = kept[k : k + 3]
        assert len({e["name"] for e in batch}) == 1
        assert [e["content"].split("-")[1] for e in batch] == ["0", "1", "2"]
    store.close()


def test_a_failed_add_keeps_nothing(store: SqliteStore) -> None:
    class Unserializable:
        pass

    with pytest.raises(TypeError):
        store.add([ev("a", "b")], request={"bad": Unserializable()})
    with pytest.raises(TypeError):
        store.add([{"name": "a", "content": "b", "odd": Unserializable()}], request=RECORD)
    assert (store.count(), store.requests()) == (0, [])
