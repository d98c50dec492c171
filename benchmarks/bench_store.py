"""The emulator's store: memory per event and query times, SQLite against the old list.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_store.py              # 1M events (about a minute)
    .venv/bin/python benchmarks/bench_store.py --events 100000

Each store is filled in a fresh subprocess, the way the emulator fills it: bodies of
100 events parsed by ``json.loads`` (as the upload handler parses them), one
``add`` per body with its request record. The figure is the growth of the process's
resident memory (``VmRSS``, after ``gc.collect()``) divided by the events held:

- ``list``: the store before issue 15 (two Python lists of the parsed dicts);
- ``sqlite memory``: :class:`~cms_magic.emulator.store.MemoryStore` (``:memory:``);
- ``sqlite temporary``: ``SqliteStore(temporary=True)``, a private file SQLite deletes
  on close (resident memory: its page cache);
- ``sqlite file``: :class:`~cms_magic.emulator.store.SqliteStore` on a file in a temp
  directory (WAL): resident memory is SQLite's page cache; the file's size is shown too.

Then, on the filled SQLite stores, the read actions' queries are timed (median of 5):
a count of everything, the first page and a page in the middle (100 events), a name
+ keyword filter, counts by name and a 60-bucket histogram over the whole range.
Prints one markdown table.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

KINDS = ("list", "sqlite memory", "sqlite temporary", "sqlite file")
BATCH = 100
T0_MS = 1_764_556_252_123  # 2025-12-01T10:30:52.123+08:00


class ListStore:
    """The store before issue 15: every parsed event and record kept in two lists."""

    def __init__(self) -> None:
        self._events: list[Mapping[str, Any]] = []
        self._requests: list[Mapping[str, Any]] = []

    def add(self, events: Sequence[Mapping[str, Any]], *, request: Mapping[str, Any]) -> None:
        self._events.extend(events)
        self._requests.append(request)

    def count(self) -> int:
        return len(self._events)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def body(start: int) -> bytes:
    """100 events as the client sends them (CJK in some contents, a time string each)."""
    events = []
    for i in range(start, start + BATCH):
        ms = T0_MS + i * 37
        local = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ms // 1000 + 8 * 3600))
        events.append(
            {
                "content": f"host-{i % 50:02d} ERROR disk usage {i % 100}% on /dev/sda{i % 4}"
                + (" 磁盘空间不足" if i % 3 == 0 else ""),
                "groupId": 1000 + i % 7,
                "name": "bench_event" if i % 2 else "deploy",
                "time": f"{local}.{ms % 1000:03d}+0800",
            }
        )
    return json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def record(n: int) -> dict[str, Any]:
    return {
        "status": 200,
        "code": "200",
        "msg": "",
        "events": n,
        "bytes": 9000,
        "key_id": "LTAIcmsEmulatorDemo",
        "time": "2026-12-01T10:44:12.123+00:00",
        "request_id": "9E12F340-005F-42E7-9DA0-C634A2AEA94C",
        "fault": None,
    }


def median_ms(fn: Callable[[], object], runs: int = 5) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def child(kind: str, n: int) -> dict[str, Any]:
    """Fill one store with ``n`` events in this process; what it cost."""
    from cms_magic.emulator.store import EventQuery, MemoryStore, SqliteStore

    bodies = [body(start) for start in range(0, min(n, 10 * BATCH), BATCH)]  # reused text
    tmp = tempfile.TemporaryDirectory()
    store: Any
    path = Path(tmp.name) / "events.sqlite"
    if kind == "list":
        store = ListStore()
    elif kind == "sqlite memory":
        store = MemoryStore(clock=lambda: T0_MS / 1000 + 3600)
    elif kind == "sqlite temporary":
        store = SqliteStore(temporary=True, clock=lambda: T0_MS / 1000 + 3600)
    else:
        store = SqliteStore(path, clock=lambda: T0_MS / 1000 + 3600)
    gc.collect()
    before = rss_bytes()
    start = time.perf_counter()
    for k, first in enumerate(range(0, n, BATCH)):
        events = json.loads(bodies[k % len(bodies)])[: n - first]
        store.add(events, request=record(len(events)))
    fill_s = time.perf_counter() - start
    gc.collect()
    grown = rss_bytes() - before
    out: dict[str, Any] = {
        "kind": kind,
        "events": store.count(),
        "rss_per_event": grown / n,
        "fill_events_per_s": n / fill_s,
    }
    if kind != "list":
        conn = store._conn  # the benchmark reads the database size
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        out["db_per_event"] = pages * page_size / n
        if kind == "sqlite file":
            store.close()
            out["file_per_event"] = path.stat().st_size / n
            store = SqliteStore(path, clock=lambda: T0_MS / 1000 + 3600)
        last = T0_MS + n * 37
        everything = EventQuery()
        out["queries_ms"] = {
            "count all": median_ms(lambda: store.count_matching(everything)),
            "first page (100)": median_ms(lambda: store.query(everything, limit=100)),
            "middle page (100)": median_ms(
                lambda: store.query(everything, offset=n // 2, limit=100)
            ),
            "name + keyword, 1 page": median_ms(
                lambda: store.query(
                    EventQuery(name="deploy", keywords=(("磁盘", "sda2"),)), limit=100
                )
            ),
            "one hour, 1 page": median_ms(
                lambda: store.query(EventQuery(since_ms=last - 3_600_000, until_ms=last), limit=100)
            ),
            "counts by name": median_ms(lambda: store.count_by_name(everything)),
            "histogram, 60 buckets": median_ms(
                lambda: store.histogram(
                    EventQuery(since_ms=T0_MS, until_ms=last),
                    width_ms=-(-(last - T0_MS + 1) // 60),
                )
            ),
        }
        store.close()
    tmp.cleanup()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.events)))
        return 0
    results = []
    for kind in KINDS:
        print(f"filling {kind} with {args.events:,} events...", file=sys.stderr)
        done = subprocess.run(  # this script, with our own arguments
            [sys.executable, __file__, "--child", kind, "--events", str(args.events)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(done.stdout))
    base = results[0]["rss_per_event"]
    print(f"\n{args.events:,} events, bodies of {BATCH} parsed by json.loads, one add per body\n")
    print("| store | resident bytes/event | vs list | database bytes/event | fill, events/s |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        db = r.get("file_per_event", r.get("db_per_event"))
        print(
            f"| {r['kind']} | {r['rss_per_event']:.0f} | {r['rss_per_event'] / base:.2f} "
            f"| {'' if db is None else f'{db:.0f}'} | {r['fill_events_per_s']:,.0f} |"
        )
    print("\n| query (median of 5, ms) | " + " | ".join(r["kind"] for r in results[1:]) + " |")
    print("|---|" + "---:|" * (len(results) - 1))
    for name in results[1]["queries_ms"]:
        cells = " | ".join(f"{r['queries_ms'][name]:.1f}" for r in results[1:])
        print(f"| {name} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
