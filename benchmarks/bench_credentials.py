"""Benchmarks of issue 14: the cost of signing with refreshing credentials, and the
import cost of the package.

6. Signing one upload request (get the request's keys, sign it) with a refreshing source
   (a RefreshingCredentials holding a valid triple: the path every request takes between
   refreshes) against static credentials, interleaved in the same run.
7. ``import cms_magic`` in a fresh interpreter, against an interpreter importing only what
   the package itself needs of the stdlib (``logging``, ``typing``); and the heavy modules
   it must not load (httpx, pandas, numpy, sqlite3, asyncio).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import httpx
from common import Config, Row, spread, verdict

from cms_magic.credentials import Credentials
from cms_magic.credentials.refreshing import RefreshingCredentials, Triple
from cms_magic.protocol import UPLOAD_PATH
from cms_magic.sending.keys import Keys

__all__ = ["bench_import", "bench_signing"]

_URL = "http://127.0.0.1:9" + UPLOAD_PATH  # requests are built in memory; nothing is sent
_BODY = b'[{"name":"bench","content":"' + b"x" * 4_000 + b'","time":"20261201T000000.000+0000"}]'


_KEY_ID, _SECRET, _TOKEN = "STS.NUbench1234abcd", "s" * 30, "t" * 400


def _refreshing_keys() -> Keys:
    async def fetch() -> Triple:
        return Triple(_KEY_ID, _SECRET, _TOKEN, expires_at=time.time() + 3600)

    return Keys(RefreshingCredentials(fetch, source="benchmark STS"))


def _signing_loop(keys: Keys, requests: int) -> Callable[[], Awaitable[float]]:
    async def run() -> float:
        await keys.signer()  # the first fetch is not what is measured
        began = time.perf_counter()
        for _ in range(requests):
            signer = await keys.signer()
            request = httpx.Request("POST", _URL, content=_BODY)
            signer.auth.sign(request)
        return (time.perf_counter() - began) / requests

    return run


def bench_signing(cfg: Config) -> list[Row]:
    """Microseconds per signed request: refreshing vs static keys (pairs interleaved)."""
    requests = 2_000 if cfg.quick else 20_000
    pairs = 3 if cfg.quick else 7
    # The same key, secret and token as static credentials: the difference is the machinery.
    static_keys = Keys(Credentials(_KEY_ID, _SECRET, _TOKEN))
    refreshing_keys = _refreshing_keys()
    static: list[float] = []
    refreshing: list[float] = []
    ratios: list[float] = []
    loop = asyncio.new_event_loop()
    try:
        for _ in range(pairs):
            s = loop.run_until_complete(_signing_loop(static_keys, requests)())
            r = loop.run_until_complete(_signing_loop(refreshing_keys, requests)())
            static.append(s * 1e6)
            refreshing.append(r * 1e6)
            ratios.append(r / s)
    finally:
        loop.close()
    ratio = statistics.median(ratios)
    return [
        Row(
            "6",
            "signing one upload request with a refreshing source (us/request)",
            spread(refreshing, "us", 1),
            f"static credentials (same key, secret and STS token), interleaved: {spread(static, 'us', 1)}",
            f"{ratio:.3f}x",
            "<= 1.10x of static",
            verdict(ratio <= 1.10),
            [
                f"{requests:,} requests per run, a 4 KB body; per-pair ratios: "
                + ", ".join(f"{x:.3f}" for x in ratios)
                + ". Each request awaits Keys.signer() (RefreshingCredentials.current() "
                "between refreshes, the STS token in x-cms-security-token) and CmsAuth.sign."
            ],
        )
    ]


_IMPORT_PROBE = """
import sys, time
began = time.perf_counter()
import {module}
took = time.perf_counter() - began
heavy = sorted(m for m in ("httpx", "pandas", "numpy", "sqlite3", "asyncio") if m in sys.modules)
print(__import__("json").dumps({{"seconds": took, "heavy": heavy}}))
"""


def _probe(module: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
    )
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def bench_import(cfg: Config) -> list[Row]:
    """``import cms_magic`` in fresh interpreters, against ``import logging, typing``."""
    reps = 5 if cfg.quick else 15
    ours: list[float] = []
    base: list[float] = []
    heavy: set[str] = set()
    for _ in range(reps):
        probe = _probe("cms_magic")
        ours.append(float(probe["seconds"]) * 1000)  # type: ignore[arg-type]
        heavy |= set(probe["heavy"])  # type: ignore[call-overload]
        base.append(float(_probe("logging, typing")["seconds"]) * 1000)  # type: ignore[arg-type]
    median = statistics.median(ours)
    return [
        Row(
            "7",
            "`import cms_magic` in a fresh interpreter (ms)",
            spread(ours, "ms", 1),
            f"`import logging, typing` (what it needs of the stdlib): {spread(base, 'ms', 1)}",
            f"+{median - statistics.median(base):.1f} ms",
            "<= 30 ms; loads none of httpx, pandas, numpy, sqlite3, asyncio",
            verdict(median <= 30 and not heavy),
            [
                "heavy modules loaded by `import cms_magic`: "
                + (", ".join(sorted(heavy)) if heavy else "none")
                + "; the sources, the sender and the read-back path are imported on first use."
            ],
        )
    ]
