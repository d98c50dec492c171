"""A real redis-server on loopback for the Redis quota tests (issue 16).

:func:`start_redis` runs Debian's ``redis-server`` on a free 127.0.0.1 port with no
persistence (``--save '' --appendonly no``), waits until it answers PING and stops it
afterwards. Where it (or the ``redis`` package) is missing the tests are skipped with a
message, except when ``CI`` is set: there they fail (``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL = "apt-get install redis-server (Debian's package) and pip install cms_magic[redis]"


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI ({INSTALL}; .ci/run installs it)")
    pytest.skip(f"{what} is not installed here: {INSTALL}")


def redis_binary() -> str:
    """The redis-server to run (skips or, in CI, fails when there is none)."""
    try:
        import redis  # noqa: F401
    except ImportError:
        _missing("the redis client package")
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server")
    assert binary is not None
    return binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def start_redis(directory: Path, *, ready_within: float = 10.0) -> Iterator[str]:
    """Run a redis-server on loopback; yield its ``redis://127.0.0.1:PORT/0`` URL."""
    binary = redis_binary()
    for _ in range(3):  # a free port can be taken between the probe and the bind
        port = _free_port()
        process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
                "--protected-mode",
                "yes",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + ready_within
        while process.poll() is None and time.monotonic() < deadline and not _answers(port):
            time.sleep(0.02)  # polling the server's readiness, bounded
        if process.poll() is None and _answers(port):
            break
        process.kill()
        process.wait(timeout=5)
    else:
        pytest.fail("redis-server did not start on 127.0.0.1")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
