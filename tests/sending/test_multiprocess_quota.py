"""Two and three processes on one key share the account's quota (issue 16, Done when).

Each process is a real ``cms_magic`` send (``Client(..., quota=spec).send``, as a user
writes it), all sending with the emulator's demo key to ONE emulator enforcing 20 requests/s.
With the host-wide file bucket they share one ``CMS_MAGIC_QUOTA_DIR``; with Redis each
has its own directory (they cannot share the file: "hosts"), and only the Redis server
joins them. Every process waits for "go" on stdin, so they send at the same time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cms_magic.emulator import serve
from cms_magic.protocol import MAX_EVENTS_PER_REQUEST
from tests.redis_support import start_redis

pytestmark = pytest.mark.slow  # about 40 s for the five

ROOT = Path(__file__).resolve().parents[2]

WORKER = r"""
import json, sys, time
import pandas as pd
from cms_magic.emulator import demo_credentials
from cms_magic.sending.client import Client
url, spec, rows, marker = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
demo = demo_credentials()
client = Client(url, credentials=demo, qps=20, quota=spec, timeout=10)  # as a user writes it
bucket = client.quota_bucket()
frame = pd.DataFrame({
    "name": [f"ev{i % 7}" for i in range(rows)],
    "content": [f"{marker}-{i}" for i in range(rows)],
})
print("ready", flush=True)
sys.stdin.readline()
began = time.time()
result = client.send(frame, content_col="content", progress=False)
ended = time.time()
print(json.dumps({
    "counts": result.counts(),
    "began": began,
    "ended": ended,
    "bucket": type(bucket).__name__,
    "shared": getattr(bucket, "host_wide", getattr(bucket, "shared", None)),
}), flush=True)
"""


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


def _run_processes(
    url: str, spec: str, dirs: list[Path], rows: int, *, timeout: float = 40
) -> list[dict[str, Any]]:
    processes = []
    for k, directory in enumerate(dirs):
        env = dict(os.environ, CMS_MAGIC_QUOTA_DIR=str(directory), PYTHONPATH=str(ROOT))
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, url, spec, str(rows), f"p{k}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=ROOT,
            )
        )
    try:
        for process in processes:  # each has imported everything and made its bucket
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.strip() == "ready", process.stderr.read() if process.stderr else line
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        reports = []
        for process in processes:
            out, err = process.communicate(timeout=timeout)
            assert process.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=5)


def _check(server: Any, reports: list[dict[str, Any]], rows: int, bucket: str) -> None:
    log = server.requests()
    throttled = sum(1 for r in log if r["status"] in (403, 429))
    requests = len(log)
    # The rate as the service sees it: requests between its first and last (ms times).
    times = [datetime.fromisoformat(r["time"]).timestamp() for r in log]
    duration = max(times) - min(times)
    rate = (requests - 1) / duration
    wall = max(r["ended"] for r in reports) - min(r["began"] for r in reports)
    summary = (
        f"{len(reports)} processes, {requests} requests in {duration:.2f} s = {rate:.2f} req/s "
        f"({wall:.2f} s from go to the last result), "
        f"{throttled} throttled, counts {[r['counts'] for r in reports]}"
    )
    print(summary)
    assert all(r["bucket"] == bucket and r["shared"] for r in reports), reports
    assert all(r["counts"]["not_sent"] == 0 for r in reports), summary
    assert all(r["counts"]["accepted"] == rows for r in reports), summary
    assert throttled < 0.01 * requests, summary
    assert rate >= 19, summary


@pytest.mark.parametrize("n", [2, 3])
def test_processes_share_the_host_wide_bucket(tmp_path: Path, n: int) -> None:
    rows = 160 // n * MAX_EVENTS_PER_REQUEST  # 160 (2) or 159 (3) requests: about 8 s at 20/s
    with serve(qps=20) as server:
        reports = _run_processes(server.url, "host", [tmp_path] * n, rows)
        _check(server, reports, rows, "HostBucket")
    assert len(list(tmp_path.glob("*.quota"))) == 1


@pytest.mark.parametrize("n", [2, 3])
def test_hosts_share_the_redis_bucket(tmp_path: Path, redis_url: str, n: int) -> None:
    rows = 160 // n * MAX_EVENTS_PER_REQUEST
    dirs = [tmp_path / f"host{k}" for k in range(n)]  # no shared file: only Redis joins them
    with serve(qps=20) as server:
        reports = _run_processes(server.url, redis_url, dirs, rows)
        _check(server, reports, rows, "RedisBucket")
    assert not any(d.exists() and any(d.iterdir()) for d in dirs)


def test_without_a_shared_bucket_the_processes_are_throttled(tmp_path: Path) -> None:
    """The control: the same two processes, each with its own process bucket."""
    rows = 40 * MAX_EVENTS_PER_REQUEST
    with serve(qps=20) as server:
        _run_processes(server.url, "process", [tmp_path / "a", tmp_path / "b"], rows)
        throttled = sum(1 for r in server.requests() if r["status"] in (403, 429))
    assert throttled > 0
