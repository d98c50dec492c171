"""cms_magic benchmarks: the issue's performance targets, measured against baselines.

Usage (from the repository root)::

    .venv/bin/python benchmarks/run.py                      # full suite (several minutes)
    .venv/bin/python benchmarks/run.py --quick              # smoke run, < 90 s
    .venv/bin/python benchmarks/run.py --only 1,3           # some benchmarks
    .venv/bin/python benchmarks/run.py --write benchmarks/RESULTS.md
    .venv/bin/python benchmarks/run.py --only 1 --profile   # + where prepare spends its time

Prints one markdown table: per benchmark the figure (median of several runs),
the baseline(s) measured in the same run, the ratio, the target and PASS/FAIL.
Each benchmark is a function in :data:`REGISTRY` returning table rows. See
``benchmarks/README.md`` for what each one measures and how.

Everything runs on 127.0.0.1; every server started here is stopped here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import email.utils
import gc
import hashlib
import hmac
import json
import os
import platform
import pstats
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from bench_credentials import bench_import, bench_signing
from bench_journal import bench_journal
from bench_memory import bench_memory
from bench_processes import bench_processes
from bench_readback import bench_readback, bench_readback_import
from common import Config, Row, mb, rate, spread, verdict

import cms_magic
from cms_magic.batching import plan_batches
from cms_magic.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, demo_credentials
from cms_magic.events.convert import EventMapping, events_from_frame, iter_conversions
from cms_magic.protocol import UPLOAD_PATH
from cms_magic.sending._transport import http_transport, post
from cms_magic.signing import CmsAuth

REPO = Path(__file__).resolve().parent.parent
FAKE_URL = "http://127.0.0.1:9"  # only used to build requests in memory; nothing is sent
EVENT_NAME = "bench_event"
MAPPING = {
    "name": EVENT_NAME,
    "content_col": "message",
    "group_id_col": "group_id",
    "time_col": "ts",
}


# --------------------------------------------------------------------------- the input frame

_TEMPLATES = (  # 3 of 8 messages carry CJK or emoji
    "disk usage {} % on /data",
    "用户登录失败 {} 次, 请检查账号",
    "connection timeout after {} s, retrying",
    "payment gateway latency {} ms 🚀",
    "cache miss ratio {} permille on shard {}",
    "GC pause {} ms (young gen), heap near limit",
    "ディスク容量が不足しています: {} MB 残り",
    "deploy finished in {} s",
)


def make_frame(n: int, seed: int = 7) -> pd.DataFrame:
    """A realistic event frame: host, severity, message (some CJK and emoji), a tz-aware
    timestamp and an integer group id. Deterministic for a given ``n`` and ``seed``."""
    rng = np.random.default_rng(seed)
    hosts = np.array([f"web-{i:03d}.prod.example.com" for i in range(200)], dtype=object)
    severities = np.array(["INFO", "WARN", "ERROR", "CRITICAL"], dtype=object)
    which = rng.integers(0, len(_TEMPLATES), n).tolist()
    values = rng.integers(0, 100_000, n).tolist()
    messages = [_TEMPLATES[t].format(v, v % 97) for t, v in zip(which, values, strict=True)]
    return pd.DataFrame(
        {
            "host": hosts[rng.integers(0, len(hosts), n)],
            "severity": severities[rng.integers(0, len(severities), n)],
            "message": messages,
            "ts": pd.date_range("2024-03-01 08:00", periods=n, freq="37ms", tz="Asia/Shanghai"),
            "group_id": rng.integers(1, 10_000_000, n, dtype=np.int64),
        }
    )


# --------------------------------------------------------------------------- prepare paths


def new_auth() -> CmsAuth:
    return CmsAuth(DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, source_ip="10.0.0.1")


_UPLOAD_URLS: dict[str, httpx.URL] = {}


def sign_body(auth: CmsAuth, body: bytes, url: str = FAKE_URL) -> httpx.Request:
    # The URL is parsed once, as the sender does per send (cms_magic.sending.client._Run).
    upload = _UPLOAD_URLS.get(url)
    if upload is None:  # not setdefault: its argument would parse the URL on every call
        upload = _UPLOAD_URLS[url] = httpx.URL(url + UPLOAD_PATH)
    request = httpx.Request(
        "POST", upload, content=body, headers={"Content-Type": "application/json"}
    )
    auth.sign(request)
    return request


def prepare_cms(df: pd.DataFrame, chunk_rows: int = 10_000) -> int:
    """The cms_magic path, streamed: chunk -> encoded events -> batches -> signed requests."""
    auth = new_auth()
    mapping = EventMapping(**MAPPING)
    events = 0
    number = 0
    for conversion in iter_conversions(df, mapping, chunk_rows=chunk_rows):
        plan = plan_batches(
            conversion.payloads, positions=conversion.positions, first_number=number
        )
        number += len(plan.batches)
        for batch in plan.batches:
            sign_body(auth, batch.body)
            events += len(batch)
        # Drop this chunk before the next is converted, as the sender does (its planner
        # keeps a chunk only while planning it).
        del conversion, plan
    return events


def prepare_upfront(df: pd.DataFrame) -> tuple[int, Any]:
    """Baseline for memory: every event of the frame built first, then one plan."""
    auth = new_auth()
    conversion = events_from_frame(df, **MAPPING)
    plan = plan_batches(conversion.payloads, positions=conversion.positions)
    events = 0
    for batch in plan.batches:
        sign_body(auth, batch.body)
        events += len(batch)
    return events, (conversion, plan)  # returned so both stay alive until the peak is read


_CANONICAL = "x-cms-api-version:1.0\nx-cms-ip:10.0.0.1\nx-cms-signature:hmac-sha1"


def naive_sign(body: bytes) -> dict[str, str]:
    """Hand-written CloudMonitor signing, as a script would do it (no httpx objects)."""
    date = email.utils.formatdate(time.time(), usegmt=True)
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest().upper()
    sign_string = "\n".join(("POST", md5, "application/json", date, _CANONICAL, UPLOAD_PATH))
    digest = hmac.new(
        DEMO_ACCESS_KEY_SECRET.encode(), sign_string.encode(), hashlib.sha1
    ).hexdigest()
    return {
        "Authorization": f"{DEMO_ACCESS_KEY_ID}:{digest.upper()}",
        "Content-MD5": md5,
        "Content-Type": "application/json",
        "Date": date,
        "x-cms-signature": "hmac-sha1",
        "x-cms-api-version": "1.0",
        "x-cms-ip": "10.0.0.1",
    }


def naive_batches(payloads: list[str]) -> int:
    """Batches of 100 joined into a JSON array, each signed."""
    for start in range(0, len(payloads), 100):
        body = ("[" + ",".join(payloads[start : start + 100]) + "]").encode("utf-8")
        naive_sign(body)
    return len(payloads)


def naive_time(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y%m%dT%H%M%S.%f")[:-3] + ts.strftime("%z")


def prepare_iterrows(df: pd.DataFrame) -> int:
    """Baseline (a): ``iterrows`` + dict + strftime + ``json.dumps`` per row."""
    payloads = []
    for _, row in df.iterrows():
        event = {
            "content": row["message"],
            "groupId": int(row["group_id"]),
            "name": EVENT_NAME,
            "time": naive_time(row["ts"]),
        }
        payloads.append(json.dumps(event))
    return naive_batches(payloads)


def prepare_records(df: pd.DataFrame) -> int:
    """Baseline (b): ``to_dict("records")`` + strftime + ``json.dumps`` per row."""
    payloads = [
        json.dumps(
            {
                "content": record["message"],
                "groupId": int(record["group_id"]),
                "name": EVENT_NAME,
                "time": naive_time(record["ts"]),
            }
        )
        for record in df.to_dict("records")
    ]
    return naive_batches(payloads)


def check_same_events(df: pd.DataFrame) -> None:
    """The baselines must produce the same events as cms_magic (else the race is unfair)."""
    conversion = events_from_frame(df, **MAPPING)
    ours = [json.loads(p) for p in conversion.payloads]
    theirs = [
        {
            "content": row["message"],
            "groupId": int(row["group_id"]),
            "name": EVENT_NAME,
            "time": naive_time(row["ts"]),
        }
        for _, row in df.iterrows()
    ]
    if ours != theirs:
        raise AssertionError("baseline events differ from cms_magic's events")


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    began = time.perf_counter()
    count = fn()
    return time.perf_counter() - began, count


# --------------------------------------------------------------------------- 1. prepare speed


def bench_prepare(cfg: Config) -> list[Row]:
    rows = 200_000 if cfg.quick else 1_000_000
    naive_rows = 10_000 if cfg.quick else 50_000
    reps_cheap = 2 if cfg.quick else 5
    reps_records = 1 if cfg.quick else 3
    df = make_frame(rows)
    check_same_events(df.iloc[:200])

    # Warm up every path once (first-touch allocation is slow on this VM).
    prepare_cms(df)
    prepare_iterrows(df.iloc[: naive_rows // 5])
    prepare_records(df.iloc[: rows // 10])

    cms_rates: list[float] = []
    naive_rates: list[float] = []
    records_rates: list[float] = []
    naive_df = df.iloc[:naive_rows]
    for _ in range(reps_cheap):  # interleaved, so drift hits both sides alike
        seconds, count = timed(lambda: prepare_cms(df))
        assert count == rows, count
        cms_rates.append(count / seconds)
        seconds, count = timed(lambda: prepare_iterrows(naive_df))
        naive_rates.append(count / seconds)
    for _ in range(reps_records):
        gc.collect()
        seconds, count = timed(lambda: prepare_records(df))
        records_rates.append(count / seconds)

    cms, naive, records = (statistics.median(v) for v in (cms_rates, naive_rates, records_rates))
    speedup_naive = cms / naive
    speedup_records = cms / records
    size = f"{rows / 1e6:g}M" if rows >= 1_000_000 else f"{rows // 1000}k"
    baselines = (
        f"(a) iterrows: {spread(naive_rates, 'ev/s')}, measured on {naive_rows // 1000}k rows, "
        f"per-row rate extrapolated to {size}; "
        f"(b) to_dict: {spread(records_rates, 'ev/s')} on {size} rows"
    )
    return [
        Row(
            "1",
            f"prepare {size} rows -> signed bodies (events/s)",
            spread(cms_rates, "ev/s"),
            baselines,
            f"{speedup_naive:.1f}x (a), {speedup_records:.1f}x (b)",
            ">= 500,000 ev/s",
            verdict(cms >= 500_000),
            [
                "Path: iter_conversions(chunk_rows=10,000) -> plan_batches -> httpx.Request + "
                "CmsAuth.sign per batch of 100; baselines sign by hand (hashlib/hmac, no httpx "
                "objects), which is cheaper than the cms_magic signing step.",
                *(
                    [f"Short by {500_000 - cms:,.0f} ev/s ({(1 - cms / 500_000) * 100:.1f}%)."]
                    if cms < 500_000
                    else []
                ),
            ],
        ),
        Row(
            "1",
            f"prepare {size} rows: speed-up vs naive iterrows",
            f"{speedup_naive:.1f}x",
            f"(a) iterrows {rate(naive)}",
            f"{speedup_naive:.1f}x",
            ">= 20x naive",
            verdict(speedup_naive >= 20),
            [
                f"Short by {20 - speedup_naive:.1f}x: 20x would need {20 * naive:,.0f} ev/s "
                "at this naive rate."
            ]
            if speedup_naive < 20
            else [],
        ),
    ]


# --------------------------------------------------------------------------- 2. peak memory


def _status_kb(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM and ru_maxrss) via clear_refs (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kb("VmHWM") <= _status_kb("VmRSS") + 1024


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_child(mode: str, rows: int) -> dict[str, Any]:
    """Runs in a fresh process: build the frame, then measure the prepare path's extra RSS."""
    import resource

    import psutil

    df = make_frame(rows)
    gc.collect()
    _malloc_trim()
    process = psutil.Process()
    after_frame = process.memory_info().rss
    exact = _reset_peak()
    sampled = [after_frame]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.002):
            sampled.append(process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.perf_counter()
    try:
        if mode == "stream":
            events = prepare_cms(df)
            keep: Any = None
        else:
            events, keep = prepare_upfront(df)
        seconds = time.perf_counter() - began
        peak_hwm = _status_kb("VmHWM") * 1024
        peak_ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    finally:
        stop.set()
        sampler.join()
    del keep
    gc.collect()
    _malloc_trim()
    retained = process.memory_info().rss
    peak_sampled = max(sampled)
    peak = max(peak_hwm, peak_sampled) if exact else max(peak_ru, peak_sampled)
    return {
        "mode": mode,
        "rows": rows,
        "events": events,
        "seconds": seconds,
        "after_frame": after_frame,
        "peak": peak,
        "peak_hwm": peak_hwm,
        "peak_ru_maxrss": peak_ru,
        "peak_sampled": peak_sampled,
        "exact_peak": exact,
        "extra_mb": (peak - after_frame) / 2**20,
        "retained_mb": (retained - after_frame) / 2**20,
    }


def run_rss_child(mode: str, rows: int) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--rss-child", mode, str(rows)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"RSS child {mode} {rows} failed:\n{completed.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def bench_rss(cfg: Config) -> list[Row]:
    small, large = 100_000, 1_000_000
    reps = 1 if cfg.quick else 3
    extra: dict[tuple[str, int], list[float]] = {}
    exact = True
    for _ in range(reps):
        for mode in ("stream", "upfront"):
            for rows in (small, large):
                out = run_rss_child(mode, rows)
                if out["events"] != rows:
                    raise AssertionError(f"{mode} {rows}: {out['events']} events")
                exact = exact and out["exact_peak"]
                extra.setdefault((mode, rows), []).append(out["extra_mb"])
    med = {key: statistics.median(values) for key, values in extra.items()}
    s_small, s_large = med["stream", small], med["stream", large]
    u_small, u_large = med["upfront", small], med["upfront", large]
    growth = s_large / s_small if s_small > 0 else float("inf")
    how = (
        "peak = VmHWM after resetting it with /proc/self/clear_refs (exact), cross-checked by "
        "psutil sampling every 2 ms"
        if exact
        else "peak = max(ru_maxrss, psutil sampling every 2 ms)"
    )
    return [
        Row(
            "2",
            "extra peak RSS, prepare 1M rows (fresh process)",
            spread(extra["stream", large], "MB", 1),
            f"all events up front (events_from_frame + one plan_batches): {spread(extra['upfront', large], 'MB', 1)}",
            f"{s_large / u_large:.2f}x of up-front" if u_large > 0 else "n/a",
            "<= +50 MB",
            verdict(s_large <= 50),
            [
                f"extra = peak RSS during the prepare path - RSS after building the frame; {how}. "
                "No warm-up here on purpose: a warmed heap would hide the allocation."
            ],
        ),
        Row(
            "2",
            "extra peak RSS is flat: 1M extra / 100k extra",
            f"{growth:.2f} ({mb(s_large)} / {mb(s_small)})",
            f"up front: {u_large / u_small:.2f} ({mb(u_large)} / {mb(u_small)})"
            if u_small > 0
            else "n/a",
            f"{growth:.2f}",
            "<= 2 (flat)",
            verdict(growth <= 2),
            [f"100k rows, streamed: {spread(extra['stream', small], 'MB', 1)}."],
        ),
    ]


# --------------------------------------------------------------------------- loopback server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def emulator_counts(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/_emulator/count", timeout=5) as response:  # noqa: S310 - loopback
        counts: dict[str, Any] = json.loads(response.read())
        return counts


@contextlib.contextmanager
def uvicorn_emulator(qps: float) -> Iterator[tuple[str, int]]:
    """``benchmarks/asgi_emulator.py`` under uvicorn in its own process; yields (URL, pid)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, BENCH_EMULATOR_QPS=str(qps), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "uvicorn", "benchmarks.asgi_emulator:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                output = server.stdout.read().decode(errors="replace") if server.stdout else ""
                raise RuntimeError(f"uvicorn exited with {server.returncode}:\n{output}")
            try:
                emulator_counts(url)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url, server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        if server.stdout:
            server.stdout.close()


def send_kwargs(url: str) -> dict[str, Any]:
    return {
        "endpoint": url,
        "credentials": demo_credentials(),
        "progress": False,
        **MAPPING,
    }


# --------------------------------------------------------------------------- 3. end to end


def presigned_requests(df: pd.DataFrame, url: str) -> tuple[list[httpx.Request], int]:
    """Every batch of ``df`` as a signed request, built before any timing starts."""
    auth = CmsAuth.from_credentials(demo_credentials(), source_ip="10.0.0.1")
    conversion = events_from_frame(df, **MAPPING)
    plan = plan_batches(conversion.payloads, positions=conversion.positions)
    requests = [sign_body(auth, batch.body, url) for batch in plan.batches]
    timeouts = httpx.Timeout(10.0).as_dict()  # what the sender sets (and a client would)
    for request in requests:
        request.extensions["timeout"] = timeouts
    return requests, len(conversion.payloads)


def _http_only(concurrency: int, stock: bool) -> tuple[Any, Callable[[httpx.Request], Any]]:
    """The HTTP layer of a baseline: cms_magic's own transport (the default), or a stock
    ``httpx.AsyncClient`` with the same pool size (``stock``). Returns (context, post)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    if stock:
        client = httpx.AsyncClient(timeout=10.0, limits=limits, trust_env=False)

        async def post_stock(request: httpx.Request) -> int:
            return (await client.send(request)).status_code

        return client, post_stock
    transport = http_transport(limits)

    async def post_own(request: httpx.Request) -> int:
        return (await post(transport, request)).status_code  # as the sender posts

    return transport, post_own


async def post_all(requests: list[httpx.Request], concurrency: int, stock: bool = False) -> int:
    """The HTTP-only baseline: ``concurrency`` tasks over one keep-alive pool, as cms_magic."""
    ok = 0
    pending = iter(requests)
    context, post = _http_only(concurrency, stock)
    async with context:

        async def worker() -> None:
            nonlocal ok
            for request in pending:
                status = await post(request)  # not `ok += await ...`: that loses updates
                ok += status == 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok


@dataclass
class Usage:
    """Wall time and CPU seconds (client process, server process) of one timed run."""

    wall: float
    client_cpu: float
    server_cpu: float


@contextlib.contextmanager
def measure(server_pid: int) -> Iterator[list[Usage]]:
    import psutil

    server = psutil.Process(server_pid)
    out: list[Usage] = []
    s0 = sum(server.cpu_times()[:2])
    c0 = time.process_time()
    began = time.perf_counter()
    yield out
    wall = time.perf_counter() - began
    out.append(Usage(wall, time.process_time() - c0, sum(server.cpu_times()[:2]) - s0))


def bench_e2e(cfg: Config) -> list[Row]:
    rows = 50_000 if cfg.quick else 200_000
    reps = 2 if cfg.quick else 5
    concurrency = 8
    df = make_frame(rows)
    cms_runs: list[Usage] = []
    http_runs: list[Usage] = []
    stock_runs: list[Usage] = []
    problems: list[str] = []
    with uvicorn_emulator(qps=0) as (url, pid):
        kwargs = send_kwargs(url)
        # Warm up both clients (and the server) once.
        warm = df.iloc[: rows // 10]
        cms_magic.send(warm, qps=0, concurrency=concurrency, **kwargs)
        warm_requests, _ = presigned_requests(warm, url)
        asyncio.run(post_all(warm_requests, concurrency))
        asyncio.run(post_all(warm_requests, concurrency, stock=True))
        for rep in range(reps):  # interleaved, so drift and neighbours hit both alike
            before = emulator_counts(url)["events"]
            with measure(pid) as usage:
                result = cms_magic.send(df, qps=0, concurrency=concurrency, **kwargs)
            cms_runs += usage
            counted = emulator_counts(url)["events"] - before
            if result.accepted != rows or counted != rows:
                problems.append(
                    f"cms_magic run {rep}: {result.accepted:,} accepted, emulator counted "
                    f"{counted:,}, of {rows:,}"
                )

            requests, events = presigned_requests(df, url)  # outside the timing
            for label, stock, runs in (
                ("HTTP-only", False, http_runs),
                ("stock-client", True, stock_runs),
            ):
                before = emulator_counts(url)["events"]
                with measure(pid) as usage:
                    ok = asyncio.run(post_all(requests, concurrency, stock=stock))
                runs.extend(usage)
                counted = emulator_counts(url)["events"] - before
                if ok != len(requests) or counted != events or events != rows:
                    problems.append(
                        f"{label} run {rep}: {ok}/{len(requests)} requests OK, emulator "
                        f"counted {counted:,} of {events:,}"
                    )
    cms_rates = [rows / u.wall for u in cms_runs]
    http_rates = [rows / u.wall for u in http_runs]
    stock_rates = [rows / u.wall for u in stock_runs]
    cms, http = statistics.median(cms_rates), statistics.median(http_rates)
    ratio = cms / http
    pairs = [c / h for c, h in zip(cms_rates, http_rates, strict=True)]
    size = f"{rows // 1000}k"

    def cpu(runs: list[Usage]) -> str:
        client = statistics.median(1000 * u.client_cpu / rows * 1000 for u in runs)
        server = statistics.median(100 * u.server_cpu / u.wall for u in runs)
        busy = statistics.median(100 * u.client_cpu / u.wall for u in runs)
        return (
            f"client {client:.1f} ms CPU per 1k events ({busy:.0f}% of a core), "
            f"server {server:.0f}% of a core"
        )

    return [
        Row(
            "3",
            f"loopback end to end, quota off, {size} rows, concurrency {concurrency}",
            spread(cms_rates, "ev/s"),
            f"HTTP only (pre-built, pre-signed bodies, cms_magic's transport, {concurrency} "
            f"tasks): {spread(http_rates, 'ev/s')}",
            f"{ratio:.2f}",
            ">= 0.8 of HTTP only",
            verdict(ratio >= 0.8),
            [
                "Server: benchmarks/asgi_emulator.py (every emulator check, events counted not "
                "stored) under uvicorn in its own process; the cms_magic figure includes "
                "conversion, batching, signing and the per-row result. "
                f"Ratio per interleaved pair: {', '.join(f'{r:.2f}' for r in pairs)} "
                f"(median {statistics.median(pairs):.2f}). "
                f"CPU (medians): cms_magic: {cpu(cms_runs)}; HTTP only: {cpu(http_runs)}. "
                "The same HTTP-only run through a stock httpx.AsyncClient (same pool size): "
                f"{spread(stock_rates, 'ev/s')}, {cpu(stock_runs)}; cms_magic is "
                f"{cms / statistics.median(stock_rates):.2f}x of it."
            ]
            + (
                [f"Short by {0.8 - ratio:.2f} (needs {0.8 * http:,.0f} ev/s)."]
                if ratio < 0.8
                else []
            ),
        ),
        Row(
            "3",
            "emulator counted every event",
            "all counted" if not problems else "; ".join(problems),
            f"{reps} x {rows:,} rows per client (cms_magic, HTTP only, stock client)",
            "",
            "every event accepted and counted",
            verdict(not problems),
        ),
    ]


# --------------------------------------------------------------------------- 4. quota


def quota_run(url: str, df: pd.DataFrame, window: float) -> dict[str, Any]:
    before = emulator_counts(url)["by_status"]
    cpu0 = time.process_time()
    began = time.perf_counter()
    job = cms_magic.send(df, qps=20, concurrency=4, background=True, **send_kwargs(url))
    try:
        time.sleep(max(0.0, window - (time.perf_counter() - began)))
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - began
    finally:
        job.cancel()
        job.wait(timeout=60)
    result = job.result(timeout=10)
    requests = result.requests
    after = emulator_counts(url)["by_status"]
    server_403 = after.get("403", 0) - before.get("403", 0)
    server_total = sum(after.values()) - sum(before.values())
    sent = requests["sent_at"].sort_values()
    span = (sent.iloc[-1] - sent.iloc[0]).total_seconds()
    n = len(requests)
    return {
        "requests": n,
        "span": span,
        "rate_strict": (n - 1) / span,
        "rate_brief": n / span,
        "client_403": int((requests["code"] == "403").sum()),
        "retried": int((requests["attempts"] > 1).sum()),
        "server_403": server_403,
        "server_requests": server_total,
        "cpu_pct": 100 * cpu / wall,
        "rows": len(df),
        "accepted": result.accepted,
    }


async def post_paced(
    requests: list[httpx.Request], qps: float, concurrency: int, stock: bool = False
) -> int:
    """The CPU baseline: the same requests, pre-signed, started ``qps`` per second with at
    most ``concurrency`` in flight, over the same HTTP layer (see :func:`_http_only`)."""
    ok = 0
    context, post = _http_only(concurrency, stock)
    async with context:
        slots = asyncio.Semaphore(concurrency)
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def one(request: httpx.Request) -> None:
            nonlocal ok
            async with slots:
                status = await post(request)
                ok += status == 200

        tasks = []
        for i, request in enumerate(requests):
            await asyncio.sleep(max(0.0, start + i / qps - loop.time()))
            tasks.append(asyncio.create_task(one(request)))
        await asyncio.gather(*tasks)
    return ok


def paced_baseline(
    url: str, df: pd.DataFrame, window: float, stock: bool = False
) -> dict[str, Any]:
    requests, _ = presigned_requests(df, url)
    requests = requests[: int(20 * window)]
    before = emulator_counts(url)["by_status"]
    cpu0 = time.process_time()
    began = time.perf_counter()
    ok = asyncio.run(post_paced(requests, 20, 4, stock))
    wall = time.perf_counter() - began
    cpu = time.process_time() - cpu0
    after = emulator_counts(url)["by_status"]
    return {
        "cpu_pct": 100 * cpu / wall,
        "ok": ok,
        "requests": len(requests),
        "server_403": after.get("403", 0) - before.get("403", 0),
    }


def bench_quota(cfg: Config) -> list[Row]:
    window = 10.0 if cfg.quick else 30.0
    reps = 1 if cfg.quick else 3
    rows = int(2_000 * window * 1.2)
    df = make_frame(rows)
    base_window = min(window, 10.0)
    runs: list[dict[str, Any]] = []
    paced: list[dict[str, Any]] = []
    stock: list[dict[str, Any]] = []
    with uvicorn_emulator(qps=20) as (url, _):
        cms_magic.send(df.iloc[:500], qps=20, **send_kwargs(url))  # warm-up: 5 requests
        for _ in range(reps):
            time.sleep(1.5)  # let the server's bucket refill
            runs.append(quota_run(url, df, window))
            time.sleep(1.5)
            paced.append(paced_baseline(url, df, base_window))
            time.sleep(1.5)
            stock.append(paced_baseline(url, df, base_window, stock=True))
    finished_early = [r for r in runs if r["accepted"] >= r["rows"]]
    rates = [r["rate_strict"] for r in runs]
    throttled = [r["server_403"] + r["client_403"] for r in runs]
    cpu = [r["cpu_pct"] for r in runs]
    achieved = statistics.median(rates)
    cpu_median = statistics.median(cpu)
    base_cpu = [b["cpu_pct"] for b in paced]
    stock_cpu = [b["cpu_pct"] for b in stock]
    window_note = (
        f"{reps} x {window:g} s windows, {rows:,} rows each (the send was cancelled at the end "
        "of the window" + (")" if not finished_early else "; some sends finished early!)")
    )
    return [
        Row(
            "4",
            "quota 20 req/s: achieved request rate",
            spread(rates, "req/s", 2),
            "emulator quota: 20 req/s per AccessKeyId",
            f"{achieved / 20:.3f} of quota",
            ">= 19.5 req/s",
            verdict(achieved >= 19.5),
            [
                window_note + "; rate = (requests - 1) / (last sent_at - first sent_at); "
                "requests / span as in the issue: "
                + ", ".join(f"{r['rate_brief']:.2f}" for r in runs)
                + f"; requests per window: {', '.join(str(r['requests']) for r in runs)}."
            ],
        ),
        Row(
            "4",
            "quota 20 req/s: throttled responses",
            f"{sum(throttled)} (server 403s: {sum(r['server_403'] for r in runs)}, "
            f"client rows code 403: {sum(r['client_403'] for r in runs)}, "
            f"retried requests: {sum(r['retried'] for r in runs)})",
            f"{sum(r['server_requests'] for r in runs):,} requests seen by the server",
            "",
            "0 throttled",
            verdict(sum(throttled) == 0),
        ),
        Row(
            "4",
            "quota 20 req/s: client CPU (% of one core)",
            spread(cpu, "% of a core", 2),
            f"HTTP only, pre-signed, paced at 20 req/s, cms_magic's transport: "
            f"{spread(base_cpu, '% of a core', 2)}",
            f"{cpu_median / statistics.median(base_cpu):.2f}x HTTP only",
            "<= 5% of a core",
            verdict(cpu_median <= 5),
            [
                "CPU = time.process_time() delta (all threads of the client process: "
                "conversion, event loop, signing) / wall time of the window; the emulator runs "
                f"in a separate uvicorn process. Baseline windows: {base_window:g} s"
                + (
                    ""
                    if all(b["ok"] == b["requests"] and not b["server_403"] for b in paced + stock)
                    else " (some baseline requests failed!)"
                )
                + ". The same paced baseline through a stock httpx.AsyncClient (same pool "
                f"size): {spread(stock_cpu, '% of a core', 2)}; cms_magic is "
                f"{cpu_median / statistics.median(stock_cpu):.2f}x of it."
            ],
        ),
    ]


# --------------------------------------------------------------------------- 5. magic import


_LOAD_EXT_PROBE = """
import time
from IPython.core.interactiveshell import InteractiveShell
import pandas
shell = InteractiveShell.instance()
started = time.perf_counter()
shell.run_line_magic("load_ext", "cms_magic")
print(time.perf_counter() - started)
"""


def bench_magic_import(cfg: Config) -> list[Row]:
    """``%load_ext cms_magic`` in a fresh process, after IPython and pandas are imported."""
    reps = 3 if cfg.quick else 9
    costs = []
    for _ in range(reps):
        done = subprocess.run(
            [sys.executable, "-c", _LOAD_EXT_PROBE],
            capture_output=True,
            text=True,
            check=True,
        )
        costs.append(float(done.stdout.strip().splitlines()[-1]))
    median = statistics.median(costs)
    return [
        Row(
            "5",
            "`%load_ext cms_magic` beyond importing IPython and pandas",
            spread([c * 1000 for c in costs], "ms", 1),
            "IPython shell and pandas already imported in the same fresh process",
            "",
            "<= 0.2 s",
            verdict(median <= 0.2),
            ["Each run is a new interpreter; the figure is the load_ext call alone."],
        )
    ]


REGISTRY: dict[int, tuple[str, Callable[[Config], list[Row]]]] = {
    1: ("prepare 1M rows", bench_prepare),
    2: ("extra peak RSS", bench_rss),
    3: ("loopback end to end, quota off", bench_e2e),
    4: ("quota", bench_quota),
    5: ("%load_ext import cost", bench_magic_import),
    6: ("signing with refreshing credentials", bench_signing),
    7: ("import cms_magic", bench_import),
    8: ("read back events vs the official SDK", bench_readback),
    9: ("import cost of the read-back path", bench_readback_import),
    10: ("journal overhead and size", bench_journal),
    11: ("two processes sharing one quota", bench_processes),
    12: ("memory flat in rows: RSS with the result, result.events, kernel latency", bench_memory),
}


# --------------------------------------------------------------------------- profile


def profile_prepare(rows: int = 200_000) -> str:
    """Where the cms_magic prepare path spends its time: stages (no profiler), then cProfile."""
    df = make_frame(rows)
    prepare_cms(df)  # warm-up
    auth = new_auth()
    mapping = EventMapping(**MAPPING)
    stages = {"convert (iter_conversions)": 0.0, "plan_batches": 0.0}
    stages |= {"httpx.Request(...)": 0.0, "CmsAuth.sign": 0.0}
    stage_runs: list[dict[str, float]] = []
    upload = httpx.URL(FAKE_URL + UPLOAD_PATH)  # parsed once, as the sender does
    for _ in range(3):
        spent = dict.fromkeys(stages, 0.0)
        chunks = iter_conversions(df, mapping, chunk_rows=10_000)
        number = 0
        while True:
            t0 = time.perf_counter()
            conversion = next(chunks, None)
            t1 = time.perf_counter()
            spent["convert (iter_conversions)"] += t1 - t0
            if conversion is None:
                break
            plan = plan_batches(
                conversion.payloads, positions=conversion.positions, first_number=number
            )
            number += len(plan.batches)
            spent["plan_batches"] += time.perf_counter() - t1
            for batch in plan.batches:
                t2 = time.perf_counter()
                request = httpx.Request(
                    "POST",
                    upload,
                    content=batch.body,
                    headers={"Content-Type": "application/json"},
                )
                t3 = time.perf_counter()
                auth.sign(request)
                spent["httpx.Request(...)"] += t3 - t2
                spent["CmsAuth.sign"] += time.perf_counter() - t3
        stage_runs.append(spent)
    lines = [f"### Profile of the cms_magic prepare path ({rows:,} rows)", ""]
    total = statistics.median(sum(run.values()) for run in stage_runs)
    lines += [
        f"Stages, timed without a profiler (median of 3; total {total:.3f} s = "
        f"{rows / total:,.0f} ev/s):",
        "",
        "| stage | seconds | share |",
        "|---|---|---|",
    ]
    for stage in stages:
        seconds = statistics.median(run[stage] for run in stage_runs)
        lines.append(f"| {stage} | {seconds:.3f} | {100 * seconds / total:.1f}% |")

    profiler = cProfile.Profile()
    profiler.enable()
    prepare_cms(df)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    grand = sum(entry[2] for entry in raw.values())

    def where(key: tuple[str, int, str]) -> str:
        filename, line, func = key
        if filename == "~":
            return func
        path = filename.replace(str(REPO) + "/", "")
        path = re.sub(r".*site-packages/", "", path)
        return f"{path}:{line}({func})"

    def area(key: tuple[str, int, str]) -> str:
        filename, _, func = key
        if "cms_magic/events" in filename:
            return "cms_magic.events.convert (conversion)"
        if "cms_magic/batching" in filename:
            return "cms_magic.batching"
        if "cms_magic/signing" in filename:
            return "cms_magic.signing"
        if "httpx" in filename:
            return "httpx (Request, URL, Headers)"
        if "pandas" in filename or "numpy" in filename:
            return "pandas/numpy (Python side)"
        if filename == "~":
            if "orjson" in func:
                return "orjson.dumps (C)"
            if "hashlib" in func or "hmac" in func or "md5" in func or "sha1" in func:
                return "md5/hmac (C)"
            return "builtins (list.append, len, isinstance, numpy C, ...)"
        return "other Python (stdlib, run.py)"

    by_area: dict[str, float] = {}
    for key, entry in raw.items():
        by_area[area(key)] = by_area.get(area(key), 0.0) + entry[2]
    lines += [
        "",
        f"cProfile, self time by area (total {grand:.3f} s under the profiler):",
        "",
        "| area | self time | share |",
        "|---|---|---|",
    ]
    for name, seconds in sorted(by_area.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {seconds:.3f} s | {100 * seconds / grand:.1f}% |")
    lines += [
        "",
        "cProfile, top functions by self time:",
        "",
        "| function | calls | self time | share | cumulative |",
        "|---|---|---|---|---|",
    ]
    top = sorted(raw.items(), key=lambda kv: -kv[1][2])[:15]
    for key, (_, calls, tottime, cumtime, _) in top:
        lines.append(
            f"| `{where(key)}` | {calls:,} | {tottime:.3f} s | "
            f"{100 * tottime / grand:.1f}% | {cumtime:.3f} s |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- output


def render(rows: list[Row]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [
        "| # | Benchmark | Figure (median, n, min-max) | Baseline(s), same run | Ratio "
        "| Target | Result |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [row.bench, row.name, row.figure, row.baseline, row.ratio, row.target]
        lines.append("| " + " | ".join(cell(c) for c in cells) + f" | **{row.result}** |")
    notes = [(row.bench, note) for row in rows for note in row.notes]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- ({bench}) {note}" for bench, note in notes]
    return "\n".join(lines)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _loadavg() -> str:
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_header(cfg: Config, argv: Sequence[str], seconds: float, load: tuple[str, str]) -> str:
    packages = ["cms_magic", "pandas", "numpy", "httpx", "orjson", "uvicorn", "psutil"]
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "# cms_magic benchmark results",
            "",
            f"- Date: {now}",
            f"- Command: `{' '.join(['.venv/bin/python', 'benchmarks/run.py', *argv])}` "
            f"({cfg.mode} mode, {seconds:,.0f} s)",
            f"- Machine: {platform.platform()}; CPU {_cpu_model()}; {os.cpu_count()} cores",
            f"- Python {platform.python_version()} ({platform.python_implementation()})",
            f"- Load average (1, 5, 15 min) at start: {load[0]}; at end: {load[1]} "
            "(other processes on the machine add noise; see the min-max spreads)",
            f"- Packages: {versions}",
            "- Figures are medians over the runs shown (n); baselines are measured in the same "
            "run, interleaved where cheap. See benchmarks/README.md for the method.",
            "",
        ]
    )


def parse_only(text: str | None) -> list[int]:
    if not text:
        return sorted(REGISTRY)
    chosen = []
    for part in text.split(","):
        number = int(part.strip())
        if number not in REGISTRY:
            raise SystemExit(f"--only: no benchmark {number}; known: {sorted(REGISTRY)}")
        chosen.append(number)
    return chosen


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description="Run the cms_magic benchmarks.")
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, < 90 s")
    parser.add_argument("--only", help="comma-separated benchmark numbers, e.g. 1,3")
    parser.add_argument("--write", metavar="PATH", help="also write the table to a markdown file")
    parser.add_argument(
        "--profile", action="store_true", help="also profile the prepare path on 200k rows"
    )
    parser.add_argument("--rss-child", nargs=2, metavar=("MODE", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        mode, rows = args.rss_child
        print(json.dumps(rss_child(mode, int(rows))))
        return 0

    cfg = Config(quick=args.quick)
    load_start = _loadavg()
    began = time.perf_counter()
    rows: list[Row] = []
    for number in parse_only(args.only):
        title, bench = REGISTRY[number]
        print(f"[{time.perf_counter() - began:6.1f} s] {number}. {title} ...", file=sys.stderr)
        try:
            rows += bench(cfg)
        except Exception as exc:
            rows.append(
                Row(str(number), title, f"error: {type(exc).__name__}: {exc}", "", "", "", "ERROR")
            )
    profile = ""
    if args.profile:
        print(f"[{time.perf_counter() - began:6.1f} s] profile ...", file=sys.stderr)
        profile = profile_prepare(50_000 if cfg.quick else 200_000)
    seconds = time.perf_counter() - began
    table = render(rows)
    print(table)
    if profile:
        print()
        print(profile)
    print(f"\n({cfg.mode} mode, {seconds:,.0f} s)", file=sys.stderr)
    if args.write:
        text = machine_header(cfg, argv, seconds, (load_start, _loadavg())) + "\n" + table + "\n"
        if profile:
            text += "\n" + profile + "\n"
        Path(args.write).write_text(text, encoding="utf-8")
    # A missed target is a result, not a crash: only a benchmark that could not run fails.
    return 1 if any(row.result == "ERROR" for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
