"""Where the emulator keeps what it was sent (:mod:`cms_magic.emulator.store`): a request's
events and its record go in together, reads are copies in the order received."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cms_magic.emulator.store import MemoryStore, Store
from cms_magic.errors import ConfigError


def record(status: int = 200, **extra: Any) -> dict[str, Any]:
    return {"status": status, "code": str(status), "msg": "", **extra}


def events(*names: str) -> list[dict[str, Any]]:
    return [{"name": name, "content": f"c-{name}"} for name in names]


def test_a_new_store_is_empty() -> None:
    store: Store = MemoryStore()  # MemoryStore is a Store (checked by mypy)
    assert (store.events(), store.requests(), store.count()) == ([], [], 0)


def test_events_and_requests_are_kept_in_the_order_received() -> None:
    store = MemoryStore()
    store.add(events("a", "b"), request=record(200, events=2))
    store.add((), request=record(400, events=1))
    store.add(events("c"), request=record(200, events=1))
    assert [e["name"] for e in store.events()] == ["a", "b", "c"]
    assert [r["status"] for r in store.requests()] == [200, 400, 200]
    assert store.count() == 3
    assert "3 events, 3 requests" in repr(store)


def test_events_are_read_with_offset_and_limit() -> None:
    store = MemoryStore()
    store.add(events(*"abcde"), request=record())

    def names(got: list[dict[str, Any]]) -> list[str]:
        return [e["name"] for e in got]

    assert names(store.events(offset=1, limit=2)) == ["b", "c"]
    assert names(store.events(offset=3)) == ["d", "e"]
    assert names(store.events(limit=0)) == []
    assert names(store.events(offset=10)) == []


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [({"offset": -1}, "offset"), ({"offset": True}, "offset"), ({"limit": -1}, "limit")],
)
def test_a_bad_window_is_named(kwargs: dict[str, Any], option: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        MemoryStore().events(**kwargs)
    assert excinfo.value.option == option


def test_reads_are_copies() -> None:
    store = MemoryStore()
    store.add(events("a"), request=record())
    read = store.events()
    read[0]["name"] = "changed after reading"
    store.requests()[0]["status"] = 503
    store.requests().clear()
    assert store.events() == events("a")
    assert store.requests() == [record()]


def test_clear_forgets_events_and_requests() -> None:
    store = MemoryStore()
    store.add(events("a"), request=record())
    store.clear()
    assert (store.events(), store.requests(), store.count()) == ([], [], 0)
    store.add(events("b"), request=record())
    assert store.count() == 1


def test_concurrent_requests_keep_their_events_together() -> None:
    """Each request's events stay adjacent and whole, whatever the threads' interleaving."""
    store = MemoryStore()
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        start.wait()
        for i in range(200):
            batch = [{"name": f"w{n}", "content": f"{i}-{j}"} for j in range(3)]
            store.add(batch, request=record(worker=n))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = store.events()
    assert store.count() == len(kept) == 8 * 200 * 3
    assert len(store.requests()) == 8 * 200
    for k in range(0, len(kept), 3):
        batch = kept[k : k + 3]
        assert len({e["name"] for e in batch}) == 1
        assert [e["content"].split("-")[1] for e in batch] == ["0", "1", "2"]
