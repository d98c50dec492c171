"""Benchmarks of issue 16's journal: what a journal costs a send, and its size.

- **Overhead per request** (micro): the journal calls a request makes (``sending`` before
  it goes out, ``settled`` when it is answered, and its share of the chunk's ``plan``
  with the fingerprint of 100 events of ~200 bytes), in a loop, with
  ``synchronous=NORMAL`` (the default) and ``FULL`` (``durable=True``), against the same
  loop without the journal calls.
- **Size per million rows**: the file (and its WAL) after 10,000 requests of 100 rows,
  each planned, sent and settled with a request id.
- **Prepare + send, quota off, loopback** (the issue's target: >= 0.8 of the throughput
  without a journal): the real :class:`~cms_magic.sending.run.Run` (conversion,
  batching, signing, HTTP, results) against ``benchmarks/asgi_emulator.py`` under
  uvicorn in its own process, 100 events per request, concurrency 8, with the journal
  wired in at the points the run will call it (``_plan_next``: fingerprint + ``plan``;
  ``_deliver``: ``sending`` before the request; ``ResultBuilder.settle`` /
  ``reject``), interleaved with the same run without a journal.

Run ``.venv/bin/python benchmarks/bench_journal.py [--quick]``: a markdown table on
stdout. ``bench_journal(cfg)`` returns the same rows for ``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import Config, Row, spread, verdict

from cms_magic.batching import Batch
from cms_magic.sending.journal import Fingerprinter, Journal, JournalTarget, read_journal

__all__ = ["bench_journal"]

_EVENT = b'{"name":"bench_event","content":"' + b"m" * 160 + b'","groupId":1234567}'
_LAYOUT = {"chunk_rows": 10_000, "max_events": 100, "max_bytes": 512_000}
_TARGET = JournalTarget.of("http://127.0.0.1:9", "LTAI5tBenchKey0001abcd")


def _files_size(path: Path) -> int:
    return sum(
        os.path.getsize(str(path) + suffix)
        for suffix in ("", "-wal")
        if os.path.exists(str(path) + suffix)
    )


def _chunk(first: int, count: int = 100, per: int = 100) -> list[Batch]:
    body = b"[" + b",".join([_EVENT] * per) + b"]"
    payloads = (_EVENT,) * per
    return [
        Batch(n, tuple(range(n * per, n * per + per)), payloads, body)
        for n in range(first, first + count)
    ]


def _requests_loop(
    journal: Journal | None, requests: int, latencies: list[float] | None = None
) -> float:
    """Seconds per request of the journal calls of ``requests`` requests (a chunk of 100
    batches planned at a time); ``latencies`` gets each ``sending`` call's seconds."""
    fingerprint = Fingerprinter(**_LAYOUT)
    digest = base64.b64decode("1B2M2Y8AsgTpgAmY7PhCfg==")
    chunks = [_chunk(first) for first in range(0, requests, 100)]
    began = time.perf_counter()
    for planned in chunks:
        if journal is not None:
            journal.plan(fingerprint.prints(planned))
        for batch in planned:
            if journal is not None:
                began_call = time.perf_counter()
                journal.sending(batch.number, batch.positions, attempt=1, digest=digest)
                if latencies is not None:
                    latencies.append(time.perf_counter() - began_call)
                journal.settled(
                    batch.positions,
                    "accepted",
                    None,
                    batch=batch.number,
                    request_id=f"{batch.number:08X}-0000-4000-8000-000000000000",
                )
    return (time.perf_counter() - began) / requests


def bench_overhead(cfg: Config, folder: Path) -> list[Row]:
    requests = 2_000 if cfg.quick else 10_000
    runs = 2 if cfg.quick else 5
    rows: list[Row] = []
    base = [_requests_loop(None, requests) * 1e6 for _ in range(runs)]
    for durable in (False, True):
        n = requests if not durable else max(200, requests // 10)  # FULL: an fsync a record
        figures: list[float] = []
        latencies: list[float] = []
        for run in range(runs):
            path = folder / f"overhead-{durable}-{run}.db"
            with Journal.open(
                path,
                fingerprint=Fingerprinter(**_LAYOUT),
                target=_TARGET,
                total=n * 100,
                durable=durable,
            ) as journal:
                figures.append(_requests_loop(journal, n, latencies) * 1e6)
        median = statistics.median(figures)
        latencies.sort()
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        tail = (
            f"One sending() call (the event loop waits for it): p50 {p50 * 1e6:.0f} us, "
            f"p99 {p99 * 1e6:.0f} us, max {latencies[-1] * 1e6:,.0f} us (a WAL checkpoint "
            "runs in the committing call every ~1,000 pages)."
        )
        share = median / 1000  # of a request at 1,000 requests/s (1 ms each)
        mode = "FULL (durable=True)" if durable else "NORMAL (default)"
        rows.append(
            Row(
                "J1",
                f"journal overhead per request, synchronous={mode}, {n:,} requests",
                spread(figures, "us"),
                f"a request at 1,000 requests/s: 1,000 us (the loop without the journal "
                f"calls: {spread(base, 'us', 2)})",
                f"{share:.1%} of 1 ms",
                "<= 20% of a request at 1,000 req/s" if not durable else "INFO",
                verdict(share <= 0.2) if not durable else "INFO",
                [tail]
                if durable
                else [
                    "Per request: sending (committed before the request goes out) + "
                    "settled (committed) + 1/100 of a chunk's plan() with its fingerprint "
                    "(SHA-256 of the rows and the ~19 KB body); in a send the fingerprint "
                    "runs in the producer's thread, not on the event loop. " + tail
                ],
            )
        )
    return rows


def bench_size(cfg: Config, folder: Path) -> list[Row]:
    requests = 10_000
    path = folder / "size.db"
    began = time.perf_counter()
    with Journal.open(
        path, fingerprint=Fingerprinter(**_LAYOUT), target=_TARGET, total=requests * 100
    ) as journal:
        _requests_loop(journal, requests)
        open_size = _files_size(path)
        replay_began = time.perf_counter()
        state = journal.state()
        replay = time.perf_counter() - replay_began
    wrote = time.perf_counter() - began
    size = _files_size(path)
    assert state.counts["accepted"] == requests * 100
    return [
        Row(
            "J2",
            "journal size per million rows (100 rows a request, planned, sent, settled)",
            f"{size / 1e6:.2f} MB ({size / 1e6:.2f} bytes a row)",
            f"while open (file + WAL): {open_size / 1e6:.2f} MB",
            "",
            "INFO",
            "INFO",
            [
                f"Writing the 10,000 requests' records took {wrote:.2f} s; replaying them "
                f"into the per-row state (Journal.state) {replay * 1000:.0f} ms; the state "
                "holds 2 bytes a row."
            ],
        )
    ]


# --------------------------------------------------------------------------- end to end


def _send(url: str, df: Any, journal_path: Path | None) -> tuple[float, float, int, int]:
    """One prepare + send of ``df``: (seconds, CPU seconds of this process, rows accepted,
    journal bytes)."""
    import run as bench_run

    from cms_magic.emulator import demo_credentials
    from cms_magic.sending.client import Client

    client = Client(url, credentials=demo_credentials(), qps=0, concurrency=8)
    began, cpu = time.perf_counter(), time.process_time()
    result = client.send(df, journal=journal_path, progress=False, **bench_run.MAPPING)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    size = _files_size(journal_path) if journal_path is not None else 0
    if journal_path is not None:  # the journal agrees with the result
        assert read_journal(journal_path).state.counts["accepted"] == result.accepted
    return seconds, cpu, result.accepted, size


def bench_e2e(cfg: Config, folder: Path) -> list[Row]:
    import run as bench_run

    rows = 50_000 if cfg.quick else 200_000
    reps = 2 if cfg.quick else 5
    df = bench_run.make_frame(rows)
    plain: list[float] = []
    with_journal: list[float] = []
    cpu: dict[bool, list[float]] = {False: [], True: []}
    problems: list[str] = []
    sizes: list[int] = []
    with bench_run.uvicorn_emulator(qps=0) as (url, _pid):
        _send(url, df.iloc[: rows // 10], None)  # warm up the client and the server
        _send(url, df.iloc[: rows // 10], folder / "warm.db")
        for rep in range(reps):  # interleaved: drift and neighbours hit both alike
            for label, path, out in (
                ("without", None, plain),
                ("with", folder / f"e2e-{rep}.db", with_journal),
            ):
                seconds, used, accepted, size = _send(url, df, path)
                out.append(rows / seconds)
                cpu[path is not None].append(used / (rows / 100) * 1e6)
                if path is not None:
                    sizes.append(size)
                if accepted != rows:
                    problems.append(
                        f"{label} journal, run {rep}: {accepted:,} of {rows:,} accepted"
                    )
    ratio = statistics.median(with_journal) / statistics.median(plain)
    pairs = [j / p for j, p in zip(with_journal, plain, strict=True)]
    requests = rows / 100
    per_request = (1 / statistics.median(with_journal) - 1 / statistics.median(plain)) * 100 * 1e6
    cpu_with, cpu_without = statistics.median(cpu[True]), statistics.median(cpu[False])
    return [
        Row(
            "J3",
            f"prepare + send, quota off, loopback, {rows // 1000}k rows, 100 a request, "
            "concurrency 8, with a journal",
            spread(with_journal, "ev/s"),
            f"the same send without a journal: {spread(plain, 'ev/s')}",
            f"{ratio:.2f}",
            ">= 0.8 of without",
            verdict(ratio >= 0.8 and not problems),
            [
                f"{requests:,.0f} requests a send, ~{statistics.median(plain) / 100:,.0f} "
                f"requests/s without a journal; the journal adds {per_request:.0f} us a "
                "request (median). Ratio per interleaved pair: "
                f"{', '.join(f'{r:.2f}' for r in pairs)}. Journal file after each send: "
                f"{statistics.median(sizes) / 1e6:.2f} MB "
                f"({statistics.median(sizes) / rows:.2f} MB per million rows). Client CPU "
                f"per request (all threads; less noisy than wall time on a shared machine): "
                f"{cpu_with:.0f} us with the journal, {cpu_without:.0f} us without "
                f"(+{cpu_with - cpu_without:.0f} us, {cpu_with / cpu_without - 1:+.1%}).",
                *problems,
            ],
        )
    ]


def bench_journal(cfg: Config) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as folder:
        where = Path(folder)
        return bench_overhead(cfg, where) + bench_size(cfg, where) + bench_e2e(cfg, where)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 runs")
    parser.add_argument("--only", default="", help="some of: overhead,size,e2e")
    args = parser.parse_args(argv)
    cfg = Config(quick=args.quick)
    chosen = {part.strip() for part in args.only.split(",") if part.strip()}
    benches: dict[str, Callable[[Config, Path], list[Row]]] = {
        "overhead": bench_overhead,
        "size": bench_size,
        "e2e": bench_e2e,
    }
    out: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as folder:
        for name, bench in benches.items():
            if not chosen or name in chosen:
                print(f"running {name} ...", file=sys.stderr, flush=True)
                out += bench(cfg, Path(folder))
    from run import render

    print(render(out))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
