"""Benchmarks of issue 15: reading events back, against the official SDK in the same run.

8. Reading back ``N`` events (100k; 20k with ``--quick``) from a served emulator on
   127.0.0.1 (its SQLite store, as ``cms-event emulator`` keeps it) into a DataFrame:
   :func:`cms_magic.readback.query_events` (paged ``DescribeCustomEventAttribute`` over
   httpx, our ACS3 signer) against the official ``alibabacloud-cms20190101`` SDK making the
   same paged calls (same page size, same window) and building the same DataFrame (``id``
   str, ``time`` tz-aware UTC, ``name``, ``group_id`` int64, ``content``). Runs interleaved
   in pairs; the figure is rows/s, the ratio ours / SDK per pair.
9. The import cost of the read-back path, each in a fresh interpreter: ``import
   cms_magic.readback`` and then a first ``query_events`` (10 events, one page) against an
   emulator already running, vs ``import alibabacloud_cms20190101.client`` and then the
   SDK's first call of the same query.

Standalone: ``.venv/bin/python benchmarks/bench_readback.py [--quick]`` prints the table.
Needs the SDK (the ``test`` extra); without it the rows are SKIP.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

from common import Config, Row, spread, verdict

__all__ = ["bench_readback", "bench_readback_import"]

PAGE_SIZE = 1000  # the emulator's largest page (openapi_cms.MAX_PAGE_SIZE), for both clients
NAME = "bench_readback"
#: The events' times: one per 10 ms from here (a fixed window, the same for both clients).
BASE = datetime(2026, 11, 30, 0, 0, tzinfo=timezone.utc)
_CONTENTS = (
    "disk usage {} % on /data",
    "用户登录失败 {} 次, 请检查账号",
    "connection timeout after {} s, retrying",
    "ディスク容量が不足しています: {} MB 残り",
)


def _sdk_available() -> bool:
    try:
        import alibabacloud_cms20190101.client  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


_SERVER = """
import sys
from cms_magic.emulator import serve
from cms_magic.emulator.store import SqliteStore
server = serve(qps=0, store=SqliteStore(temporary=True))
store = server.emulator.store
events, base_ms, name, contents = {events}, {base_ms}, {name!r}, {contents!r}
for start in range(0, events, 10_000):
    store.add(
        [
            {{
                "name": name,
                "content": contents[i % len(contents)].format(i),
                "groupId": i % 1000,
                "time": str(base_ms + 10 * i),
            }}
            for i in range(start, min(events, start + 10_000))
        ],
        request={{"bench": "load"}},
    )
print(server.url, flush=True)
sys.stdin.read()  # until the parent closes it
server.stop()
"""


@contextmanager
def _emulator(events: int) -> Iterator[str]:
    """The URL of a served emulator in its own process (its own GIL, as a remote service
    would be), SQLite store in a private file, holding ``events`` events."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)  # the SDK would send through one
    code = _SERVER.format(
        events=events, base_ms=int(BASE.timestamp() * 1000), name=NAME, contents=_CONTENTS
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the emulator did not start: {url!r}")
        yield url
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _window(events: int) -> tuple[datetime, datetime]:
    return BASE - timedelta(seconds=1), BASE + timedelta(milliseconds=10 * events + 1000)


def _ours(url: str, events: int) -> Any:
    from cms_magic.credentials import Credentials
    from cms_magic.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET
    from cms_magic.readback import query_events

    since, until = _window(events)
    return query_events(
        NAME,
        since=since,
        until=until,
        endpoint=url,
        credentials=Credentials(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET),
        page_size=PAGE_SIZE,
    )


def _sdk_client(url: str) -> Any:
    from alibabacloud_cms20190101.client import Client
    from alibabacloud_tea_openapi import utils_models  # type: ignore[import-untyped]

    from cms_magic.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET

    return Client(
        utils_models.Config(
            access_key_id=DEMO_ACCESS_KEY_ID,
            access_key_secret=DEMO_ACCESS_KEY_SECRET,
            endpoint=url.split("://", 1)[1],
            protocol="http",
            region_id="cn-hangzhou",
            read_timeout=60_000,
        )
    )


def _sdk(url: str, events: int, client: Any = None) -> Any:
    """The SDK's paged calls, and the same frame built from its models."""
    import pandas as pd
    from alibabacloud_cms20190101 import models

    client = client or _sdk_client(url)
    since, until = _window(events)
    ids: list[str] = []
    times: list[int] = []
    names: list[str] = []
    groups: list[int] = []
    contents: list[str] = []
    page = 1
    while True:
        body = client.describe_custom_event_attribute(
            models.DescribeCustomEventAttributeRequest(
                name=NAME,
                start_time=str(int(since.timestamp() * 1000)),
                end_time=str(int(until.timestamp() * 1000)),
                page_number=page,
                page_size=PAGE_SIZE,
            )
        ).body
        found = body.custom_events.custom_event if body.custom_events else []
        for event in found:
            ids.append(event.id)
            times.append(int(event.time))
            names.append(event.name)
            groups.append(int(event.group_id))
            contents.append(event.content)
        if len(found) < PAGE_SIZE:
            break
        page += 1
    return pd.DataFrame(
        {
            "id": pd.Series(ids, dtype=str),
            "time": pd.to_datetime(pd.Series(times, dtype="int64"), unit="ms", utc=True),
            "name": pd.Series(names, dtype=str),
            "group_id": pd.Series(groups, dtype="int64"),
            "content": pd.Series(contents, dtype=str),
        }
    )


def bench_readback(cfg: Config) -> list[Row]:
    """Rows/s reading ``N`` events back into a DataFrame: ours vs the SDK, interleaved."""
    events = 20_000 if cfg.quick else 100_000
    pairs = 5 if cfg.quick else 9
    if not _sdk_available():
        return [_skip("8", "read back events from the emulator (rows/s)")]
    ours: list[float] = []
    sdk: list[float] = []
    ratios: list[float] = []
    ours_cpu: list[float] = []
    sdk_cpu: list[float] = []
    with _emulator(events) as url:
        first, theirs = _ours(url, events), _sdk(url, events)  # warm-up + check
        same = (
            len(first) == len(theirs) == events
            and list(first.columns[:5]) == list(theirs.columns)
            and first["id"].tolist() == theirs["id"].tolist()
            and first["time"].equals(theirs["time"])
            and first["group_id"].equals(theirs["group_id"])
            and str(first["time"].dtype) == str(theirs["time"].dtype)
        )
        for _ in range(pairs):
            wall, cpu = _timed(lambda: _ours(url, events))
            ours.append(events / wall)
            ours_cpu.append(cpu / events * 1e6)
            wall, cpu = _timed(lambda: _sdk(url, events))
            sdk.append(events / wall)
            sdk_cpu.append(cpu / events * 1e6)
            ratios.append(ours[-1] / sdk[-1])
    ratio = statistics.median(ratios)
    cpu_ratio = statistics.median(ours_cpu) / statistics.median(sdk_cpu)
    note = (
        f"{PAGE_SIZE} events a page ({events // PAGE_SIZE} calls), loopback, the emulator in "
        "its own process (SQLite store); per-pair ratios: "
        + ", ".join(f"{x:.2f}" for x in ratios)
        + f"; frames identical (ids, times, group ids, dtypes): {same}. Each query_events "
        "call opens its client; the SDK's client is built per run too."
    )
    return [
        Row(
            "8",
            f"read back {events:,} events from the emulator into a DataFrame (rows/s)",
            spread(ours, "rows/s"),
            f"official SDK, same paged calls, same frame, interleaved: {spread(sdk, 'rows/s')}",
            f"{ratio:.2f}x",
            ">= 1.0x the SDK; the same frame",
            verdict(ratio >= 1.0 and same),
            [note],
        ),
        Row(
            "8",
            "client CPU per event read back (us/event, the reading process only)",
            spread(ours_cpu, "us", 2),
            f"official SDK, same runs: {spread(sdk_cpu, 'us', 2)}",
            f"{cpu_ratio:.2f}x",
            "<= 1.0x the SDK",
            verdict(cpu_ratio <= 1.0),
            [
                "process CPU time (time.process_time: every thread of the reader, the "
                "library loop's included; the emulator is another process): what a loaded "
                "machine does not blur"
            ],
        ),
    ]


def _timed(run: Any) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


_PROBE_OURS = """
import json, sys, time
began = time.perf_counter()
import cms_magic.readback
imported = time.perf_counter()
heavy = sorted(m for m in ("httpx", "pandas", "numpy", "sqlite3") if m in sys.modules)
from datetime import datetime, timezone
from cms_magic.credentials import Credentials
frame = cms_magic.readback.query_events(
    {name!r}, since=datetime.fromtimestamp({since}, timezone.utc),
    until=datetime.fromtimestamp({until}, timezone.utc), endpoint={url!r},
    credentials=Credentials({key!r}, {secret!r}), page_size={page},
)
done = time.perf_counter()
assert len(frame) == {events}, len(frame)
print(json.dumps({{"import": imported - began, "first": done - imported, "heavy": heavy}}))
"""

_PROBE_SDK = """
import json, sys, time
began = time.perf_counter()
import alibabacloud_cms20190101.client
imported = time.perf_counter()
from alibabacloud_cms20190101 import models
from alibabacloud_tea_openapi import utils_models
client = alibabacloud_cms20190101.client.Client(utils_models.Config(
    access_key_id={key!r}, access_key_secret={secret!r}, endpoint={host!r},
    protocol="http", region_id="cn-hangzhou"))
body = client.describe_custom_event_attribute(models.DescribeCustomEventAttributeRequest(
    name={name!r}, start_time=str(int({since} * 1000)), end_time=str(int({until} * 1000)),
    page_number=1, page_size={page})).body
import pandas as pd
found = body.custom_events.custom_event
frame = pd.DataFrame({{"id": [e.id for e in found], "time": pd.to_datetime(
    [int(e.time) for e in found], unit="ms", utc=True)}})
done = time.perf_counter()
assert len(frame) == {events}, len(frame)
print(json.dumps({{"import": imported - began, "first": done - imported, "heavy": []}}))
"""


def _probe(template: str, url: str, events: int) -> dict[str, Any]:
    from cms_magic.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET

    since, until = _window(events)
    code = template.format(
        name=NAME,
        since=since.timestamp(),
        until=until.timestamp(),
        url=url,
        host=url.split("://", 1)[1],
        key=DEMO_ACCESS_KEY_ID,
        secret=DEMO_ACCESS_KEY_SECRET,
        page=PAGE_SIZE,
        events=events,
    )
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def bench_readback_import(cfg: Config) -> list[Row]:
    """Fresh interpreters: import + first query, ours vs the SDK (interleaved)."""
    reps = 5 if cfg.quick else 11
    if not _sdk_available():
        return [_skip("9", "import cost of the read-back path (ms)")]
    events = 10
    ours_import: list[float] = []
    ours_total: list[float] = []
    sdk_import: list[float] = []
    sdk_total: list[float] = []
    heavy: set[str] = set()
    with _emulator(events) as url:
        for _ in range(reps):
            o = _probe(_PROBE_OURS, url, events)
            s = _probe(_PROBE_SDK, url, events)
            ours_import.append(o["import"] * 1000)
            ours_total.append((o["import"] + o["first"]) * 1000)
            heavy |= set(o["heavy"])
            sdk_import.append(s["import"] * 1000)
            sdk_total.append((s["import"] + s["first"]) * 1000)
    ratio_import = statistics.median(ours_import) / statistics.median(sdk_import)
    ratio_total = statistics.median(ours_total) / statistics.median(sdk_total)
    return [
        Row(
            "9",
            "`import cms_magic.readback` in a fresh interpreter (ms)",
            spread(ours_import, "ms", 1),
            f"`import alibabacloud_cms20190101.client`: {spread(sdk_import, 'ms', 1)}",
            f"{ratio_import:.2f}x",
            "<= 0.5x the SDK's import",
            verdict(ratio_import <= 0.5),
            [
                f"heavy modules loaded by the import itself: {', '.join(sorted(heavy)) or 'none of note'}"
            ],
        ),
        Row(
            "9",
            "import + first query_events (10 events, one page) in a fresh interpreter (ms)",
            spread(ours_total, "ms", 1),
            f"SDK import + first call + the same frame: {spread(sdk_total, 'ms', 1)}",
            f"{ratio_total:.2f}x",
            "<= 1.0x the SDK",
            verdict(ratio_total <= 1.0),
            [
                "the emulator runs in its own process; each probe is a new interpreter "
                "(the first query includes pandas, httpx and the library loop)"
            ],
        ),
    ]


def _skip(number: str, name: str) -> Row:
    return Row(
        number,
        name,
        "-",
        "alibabacloud-cms20190101 not installed (the test extra)",
        "-",
        "-",
        "SKIP",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    cfg = Config(quick=args.quick)
    rows = bench_readback(cfg) + bench_readback_import(cfg)
    print(f"mode: {cfg.mode}\n")
    print("| # | benchmark | figure | baseline (same run) | ratio | target | result |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        cells = (row.bench, row.name, row.figure, row.baseline, row.ratio, row.target, row.result)
        print("| " + " | ".join(cells) + " |")
    for row in rows:
        for note in row.notes:
            print(f"\n{row.bench}. {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
