"""Benchmarks of issue 16's "memory flat in rows": what a finished send keeps, what
``result.events`` costs, and how a notebook kernel answers while a send runs.

- **M1 end-to-end extra RSS, result kept** (1M and 5M rows): a fresh process builds the
  frame, warms the client up with a small send, then sends every row at quota off to
  ``benchmarks/asgi_emulator.py`` under uvicorn in its own process (every emulator check;
  events counted, not kept) and keeps the result. Extra = RSS after the send returned
  (``gc.collect()``, ``malloc_trim``) - RSS before it started, per row too. The same child
  checks with a weakref that the :class:`~cms_magic.sending.run.Run` is freed.
- **M2 bytes per row of the result**: the ``nbytes`` of the per-row arrays the result
  keeps (:attr:`cms_magic.SendResult.nbytes`), over its rows; and the RSS figure of M1
  over the rows (which also counts the per-request records and the allocator's slack).
- **M3 peak of ``result.events``** (5M rows): the extra peak RSS while the frame is
  built (VmHWM reset with ``/proc/self/clear_refs``, cross-checked by sampling), and
  what ``failed()`` / ``summary()`` / ``counts()`` / the HTML repr cost without it.
- **M4 cell latency of a kernel during a background send**: a real IPython kernel
  (``jupyter_client.KernelManager`` + ipykernel) runs ``%%cms_event --background`` to
  the emulator, at the quota (20 requests/s, the emulator's quota too) and with the
  quota off; meanwhile a trivial cell (``1``) is executed again and again and its
  round trip (execute_request -> execute_reply) timed; p50/p99 against the same cells
  on the idle kernel.

Run ``.venv/bin/python benchmarks/bench_memory.py [--quick] [--only e2e,events,kernel]``:
a markdown table on stdout. ``bench_memory(cfg)`` returns the same rows for
``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from common import Config, Row, mb, spread, verdict

__all__ = ["bench_memory", "events_child", "send_child"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MiB = 2**20


# --------------------------------------------------------------------------- measuring


@contextlib.contextmanager
def peak_rss() -> Iterator[dict[str, Any]]:
    """The peak RSS of this process inside the block: VmHWM after resetting it (exact on
    Linux >= 4.0), and psutil sampling every 2 ms; ``out["peak"]`` after the block."""
    import psutil
    import run as bench_run

    process = psutil.Process()
    out: dict[str, Any] = {"exact": bench_run._reset_peak()}
    sampled = [process.memory_info().rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.002):
            sampled.append(process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield out
    finally:
        hwm = bench_run._status_kb("VmHWM") * 1024
        stop.set()
        sampler.join()
    out["peak"] = max(hwm, *sampled) if out["exact"] else max(sampled)


def settled_rss() -> int:
    import psutil
    import run as bench_run

    gc.collect()
    bench_run._malloc_trim()
    rss: int = psutil.Process().memory_info().rss
    return rss


def send_child(rows: int, url: str, events: bool) -> dict[str, Any]:
    """In a fresh process: send ``rows`` rows at quota off, keep the result, measure."""
    import run as bench_run

    import cms_magic
    from cms_magic.sending import client as client_module
    from cms_magic.sending.run import Run

    runs: list[weakref.ref[Run]] = []

    class Watched(Run):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            runs.append(weakref.ref(self))

    client_module.Run = Watched  # type: ignore[attr-defined]
    df = bench_run.make_frame(rows)
    kwargs = dict(bench_run.send_kwargs(url), qps=0, quota="off", concurrency=8)
    warm = cms_magic.send(df.iloc[:20_000], **kwargs)  # imports, pools, threads
    assert warm.accepted == 20_000, warm.summary()
    del warm
    cms_magic.sending.jobs._latest.set(None)  # the warm-up result is not the one measured
    before = settled_rss()
    began = time.perf_counter()
    result = cms_magic.send(df, **kwargs)
    seconds = time.perf_counter() - began
    after = settled_rss()
    out: dict[str, Any] = {
        "rows": rows,
        "accepted": result.accepted,
        "seconds": seconds,
        "retained": after - before,
        "run_freed": len(runs) == 2 and all(ref() is None for ref in runs),
        "result_nbytes": _nbytes(result),
        "requests": len(result.request_records),
    }
    if events:
        out.update(_events_costs(result))
    return out


def _nbytes(result: Any) -> int:
    """Bytes of the per-row arrays ``result`` keeps (its ``nbytes``, or, for a result of a
    version without it, every numpy array among its attributes)."""
    import numpy as np

    value = getattr(result, "nbytes", None)
    if isinstance(value, int):
        return value
    return sum(v.nbytes for v in vars(result).values() if isinstance(v, np.ndarray))


def _events_costs(result: Any) -> dict[str, Any]:
    """Peak RSS and time of the other views first (they must not build the frame), then
    of ``result.events``."""
    out: dict[str, Any] = {}
    base = settled_rss()
    for label, view in (
        ("nothing", lambda: None),  # the floor of the measure (the sampler, page faults)
        ("counts", result.counts),
        ("summary", result.summary),
        ("failed", result.failed),
        ("html", result._repr_html_),
    ):
        with peak_rss() as peak:
            began = time.perf_counter()
            view()
        out[f"{label}_seconds"] = time.perf_counter() - began
        out[f"{label}_peak"] = peak["peak"] - base
    base = settled_rss()
    with peak_rss() as peak:
        began = time.perf_counter()
        frame = result.events
        out["events_seconds"] = time.perf_counter() - began
    out["events_peak"] = peak["peak"] - base
    out["events_exact"] = peak["exact"]
    out["events_deep"] = int(frame.memory_usage(deep=False, index=True).sum())
    out["events_kept"] = settled_rss() - base
    out["events_dtypes"] = {k: str(v) for k, v in frame.dtypes.items()}
    return out


def events_child(rows: int) -> dict[str, Any]:
    """In a fresh process: the costs of ``result.events`` for a result of ``rows`` rows as
    a send to an emulator leaves it (100 rows a request, every row accepted), made
    without sending (so M3 can run without a server)."""

    from cms_magic.sending.outcomes import ResultBuilder

    builder = ResultBuilder(rows, None)
    for number, first in enumerate(range(0, rows, 100)):
        builder.settle(
            range(first, min(first + 100, rows)),
            "accepted",
            None,
            batch=number,
            attempts=1,
            request_id=f"{number:08X}-0F1E-4D3C-8B2A-{number:012X}",
        )
    result = builder.build(elapsed=1.0)
    del builder
    return {"rows": rows, "result_nbytes": _nbytes(result), **_events_costs(result)}


def run_child(
    *args: str, timeout: float = 900, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run a child mode in a fresh interpreter; ``env``: its environment (a ``PYTHONPATH``
    with another copy of ``cms_magic`` measures that copy)."""
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- M1-M3


def bench_e2e_memory(cfg: Config) -> list[Row]:
    import run as bench_run

    sizes = (200_000, 1_000_000) if cfg.quick else (1_000_000, 5_000_000)
    reps = 1 if cfg.quick else 2
    got: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    with bench_run.uvicorn_emulator(qps=0) as (url, _pid):
        for _ in range(reps):
            for n in sizes:
                got[n].append(run_child("send", str(n), url, "events" if n == sizes[-1] else ""))
    rows: list[Row] = []
    problems = [
        f"{n:,} rows: {o['accepted']:,} accepted"
        for n in sizes
        for o in got[n]
        if o["accepted"] != n
    ]
    freed = all(o["run_freed"] for n in sizes for o in got[n])
    small, large = sizes
    per_row = {n: [o["retained"] / n for o in got[n]] for n in sizes}
    for n in sizes:
        extra = [o["retained"] / MiB for o in got[n]]
        rows.append(
            Row(
                "M1",
                f"end-to-end extra RSS, {n / 1e6:g}M rows, result kept (fresh process)",
                spread(extra, "MB", 1),
                "of which the result's arrays (nbytes): "
                f"{mb(statistics.median(o['result_nbytes'] for o in got[n]) / MiB)}",
                f"{statistics.median(per_row[n]):.1f} B/row",
                "<= 16 B/row",
                verdict(statistics.median(per_row[n]) <= 16 and not problems and freed),
                [
                    "extra = RSS after the send returned (gc, malloc_trim) - RSS before it "
                    "(after a 20k-row warm-up send); quota off, concurrency 8, "
                    "benchmarks/asgi_emulator.py under uvicorn (counts, keeps nothing). "
                    f"Send took {spread([o['seconds'] for o in got[n]], 's', 1)}, "
                    f"{got[n][0]['requests']:,} requests. The Run was "
                    f"{'freed' if freed else 'NOT freed'} after the send (weakref).",
                    *problems,
                ],
            )
        )
    nbytes = [o["result_nbytes"] / large for o in got[large]]
    rows.append(
        Row(
            "M2",
            f"bytes per row of the result's per-row arrays, {large / 1e6:g}M rows",
            spread(nbytes, "B/row", 1),
            f"RSS kept per row: {spread(per_row[large], 'B/row', 1)} (with the per-request "
            "records and the allocator's slack)",
            "",
            "<= 16 B/row",
            verdict(statistics.median(nbytes) <= 16),
            [f"{small / 1e6:g}M rows: {spread(per_row[small], 'B/row', 1)} of RSS."],
        )
    )
    rows += _events_rows(got[large], large, "send")
    return rows


def _events_rows(outs: list[dict[str, Any]], rows: int, how: str) -> list[Row]:
    peaks = [o["events_peak"] / MiB for o in outs]
    others = {
        label: max(o[f"{label}_peak"] for o in outs) / MiB
        for label in ("counts", "summary", "failed", "html")
    }
    seconds = {
        label: statistics.median(o[f"{label}_seconds"] for o in outs) * 1000
        for label in ("counts", "summary", "failed", "html")
    }
    first = outs[0]
    return [
        Row(
            "M3",
            f"peak extra RSS of result.events, {rows / 1e6:g}M rows ({how})",
            spread(peaks, "MB", 1),
            f"frame kept: {mb(statistics.median(o['events_kept'] for o in outs) / MiB)} "
            f"(memory_usage {mb(first['events_deep'] / MiB)}); built in "
            f"{spread([o['events_seconds'] for o in outs], 's', 2)}",
            "",
            "< 250 MB",
            verdict(statistics.median(peaks) < 250),
            [
                "peak = VmHWM reset by /proc/self/clear_refs"
                + (" (exact)" if first["events_exact"] else " (not available: sampled)")
                + ", cross-checked by psutil sampling every 2 ms. dtypes: "
                + ", ".join(f"{k} {v}" for k, v in first["events_dtypes"].items())
                + f". The measure's floor (a call that does nothing): "
                f"{max(o['nothing_peak'] for o in outs) / MiB:.1f} MB"
                + ". Without the frame (peak MB / ms): "
                + ", ".join(
                    f"{label}() {others[label]:.1f} MB / {seconds[label]:.1f} ms"
                    for label in ("counts", "summary", "failed", "html")
                )
                + "."
            ],
        ),
        Row(
            "M3",
            f"failed() / summary() / counts() / HTML repr of {rows / 1e6:g}M rows do not "
            "build the frame",
            f"max peak {max(others.values()):.1f} MB",
            f"result.events: {mb(statistics.median(peaks))}",
            "",
            "each < 1/4 of result.events' peak",
            verdict(max(others.values()) < statistics.median(peaks) / 4),
        ),
    ]


def bench_events_memory(cfg: Config) -> list[Row]:
    """M3 without a server (a result made by the builder, as a send leaves it)."""
    rows = 1_000_000 if cfg.quick else 5_000_000
    reps = 1 if cfg.quick else 3
    outs = [run_child("events", str(rows)) for _ in range(reps)]
    return _events_rows(outs, rows, "made by the ResultBuilder, no server")


# --------------------------------------------------------------------------- M4


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def kernel_child(url: str, quota: str, window: float, rows: int) -> dict[str, Any]:
    """In a fresh process: start a kernel, time trivial cells for ``window`` seconds on the
    idle kernel, then for ``window`` seconds while a background ``%%cms_event`` send of
    ``rows`` rows runs at ``quota`` (``on``: 20 req/s, ``off``), then cancel the send."""
    from jupyter_client.manager import KernelManager

    from cms_magic.emulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET

    manager = KernelManager(kernel_name="python3")
    # (a PYTHONPATH given to the benchmark, another copy of cms_magic, comes first)
    paths = [p for p in (os.environ.get("PYTHONPATH"), str(REPO), str(HERE)) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = DEMO_ACCESS_KEY_ID
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = DEMO_ACCESS_KEY_SECRET
    manager.start_kernel(extra_arguments=["--HistoryManager.enabled=False"], env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)

        def execute(code: str, timeout: float = 60) -> tuple[float, dict[str, Any]]:
            began = time.perf_counter()
            msg_id = client.execute(code, store_history=False)
            while True:
                reply = client.get_shell_msg(timeout=timeout)
                if reply["parent_header"].get("msg_id") == msg_id:
                    return time.perf_counter() - began, reply["content"]

        def evaluate(expression: str) -> Any:
            msg_id = client.execute("", store_history=False, user_expressions={"x": expression})
            while True:
                reply = client.get_shell_msg(timeout=60)
                if reply["parent_header"].get("msg_id") == msg_id:
                    got = reply["content"]["user_expressions"]["x"]
                    if got.get("status") != "ok":
                        raise RuntimeError(f"{expression}: {got}")
                    return ast.literal_eval(got["data"]["text/plain"])

        def cells_for(seconds: float) -> list[float]:
            out: list[float] = []
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                out.append(execute("1")[0] * 1000)
            return out

        setup = f"import run as bench_run\ndf = bench_run.make_frame({rows})\n%load_ext cms_magic\n"
        _, content = execute(setup, timeout=300)
        if content["status"] != "ok":
            raise RuntimeError(f"kernel setup failed: {content}")
        cells_for(1.0)  # warm-up
        idle = cells_for(window)
        qps = "--qps 20" if quota == "on" else "--qps 0 --quota off"
        cell = (
            f"%%cms_event job --background --quiet --df df --endpoint {url} --name bench_event "
            f"--content-col message --group-id-col group_id --time-col ts {qps}\n"
        )
        _, content = execute(cell)
        if content["status"] != "ok":
            raise RuntimeError(f"the background send failed to start: {content}")
        began = time.perf_counter()
        busy = cells_for(window)
        seconds = time.perf_counter() - began
        overlapped = evaluate("job.done()") is False
        progress = evaluate("job.progress.line() if job.progress else 'no progress'")
        execute("job.cancel()\nassert job.wait(120)")
        summary = evaluate("job.result().summary(None)")
        return {
            "quota": quota,
            "idle": idle,
            "busy": busy,
            "overlapped": overlapped,
            "progress": progress,
            "seconds": seconds,
            "summary": summary,
        }
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def bench_kernel(cfg: Config) -> list[Row]:
    import run as bench_run

    try:
        import jupyter_client  # noqa: F401
    except ImportError:
        return [
            Row(
                "M4",
                "cell latency during a background send",
                "",
                "",
                "",
                "",
                "SKIP",
                ["jupyter_client is not installed in .venv"],
            )
        ]
    window = 5.0 if cfg.quick else 15.0
    rows: list[Row] = []
    for quota, qps, size in (("on", 20, 100_000), ("off", 0, 3_000_000)):
        with bench_run.uvicorn_emulator(qps=qps) as (url, _pid):
            out = run_child("kernel", url, quota, str(window), str(size), timeout=900)
        idle, busy = out["idle"], out["busy"]
        p50, p99 = _percentile(busy, 0.5), _percentile(busy, 0.99)
        i50, i99 = _percentile(idle, 0.5), _percentile(idle, 0.99)
        label = "at the quota (20 req/s)" if quota == "on" else "quota off"
        rows.append(
            Row(
                "M4",
                f"cell latency of a kernel during a background send, {label}",
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (n={len(busy):,})",
                f"idle kernel: p50 {i50:.1f} ms, p99 {i99:.1f} ms (n={len(idle):,})",
                f"p50 {p50 / i50:.1f}x, p99 {p99 / i99:.1f}x",
                "report (no target in the issue)",
                "INFO" if out["overlapped"] else "ERROR",
                [
                    "jupyter_client.KernelManager + ipykernel (python3 kernel of .venv): the "
                    "trivial cell `1` executed back to back for "
                    f"{window:.0f} s, execute_request -> execute_reply; the send: "
                    f"`%%cms_event job --background` of {size:,} rows to "
                    f"benchmarks/asgi_emulator.py under uvicorn (emulator quota {qps or 'off'}), "
                    f"cancelled after the window. At the end of the window: {out['progress']}"
                    f"; after the cancel: {out['summary']}."
                ]
                + ([] if out["overlapped"] else ["the send ended before the window did"]),
            )
        )
    return rows


# --------------------------------------------------------------------------- entry


def bench_memory(cfg: Config) -> list[Row]:
    return bench_e2e_memory(cfg) + bench_kernel(cfg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 run")
    parser.add_argument("--only", default="", help="some of: e2e,events,kernel")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        if kind == "send":
            out = send_child(int(rest[0]), rest[1], bool(rest[2:] and rest[2]))
        elif kind == "events":
            out = events_child(int(rest[0]))
        else:
            out = kernel_child(rest[0], rest[1], float(rest[2]), int(rest[3]))
        print(json.dumps(out))
        return 0
    cfg = Config(quick=args.quick)
    chosen = {part.strip() for part in args.only.split(",") if part.strip()}
    benches: dict[str, Callable[[Config], list[Row]]] = {
        "e2e": bench_e2e_memory,
        "events": bench_events_memory,
        "kernel": bench_kernel,
    }
    out_rows: list[Row] = []
    for name, bench in benches.items():
        if (not chosen and name != "events") or name in chosen:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            out_rows += bench(cfg)
    from run import render

    print(render(out_rows))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    raise SystemExit(main())
