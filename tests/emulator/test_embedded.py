"""The process's own emulator (:mod:`cms_magic.emulator.embedded`): one server, started on
first use, the same until it is stopped, and stopped by :func:`cms_magic._state.reset`."""

from __future__ import annotations

import socket
import threading

import httpx

from cms_magic import _state
from cms_magic.emulator import (
    EmulatorServer,
    demo_credentials,
    embedded,
    embedded_running,
    stop_embedded,
)
from cms_magic.protocol import DEFAULT_QPS


def refuses_connections(server: EmulatorServer) -> bool:
    host, port = server.server_address[:2]
    try:
        with socket.create_connection((str(host), int(port)), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def test_nothing_runs_until_it_is_asked_for() -> None:
    assert embedded_running() is None
    assert stop_embedded() is False
    assert "embedded emulator" in _state.names()


def test_embedded_is_the_same_server_until_reset() -> None:
    first = embedded()
    assert embedded() is first
    assert embedded_running() is first
    assert first.url.startswith("http://127.0.0.1:")
    assert first.credentials == demo_credentials()
    assert first.emulator.qps == DEFAULT_QPS
    assert httpx.get(f"{first.url}/_emulator/health", timeout=5).json() == {"ok": True}

    _state.reset()

    assert embedded_running() is None
    assert "stopped" in repr(first)
    assert refuses_connections(first)
    second = embedded()
    assert second is not first
    assert embedded() is second


def test_stop_embedded_stops_it_once() -> None:
    server = embedded()
    assert stop_embedded() is True
    assert refuses_connections(server)
    assert embedded_running() is None
    assert stop_embedded() is False
    _state.reset()  # nothing left to stop: harmless


def test_concurrent_first_uses_start_one_server() -> None:
    start = threading.Barrier(6)
    got: list[EmulatorServer] = []
    lock = threading.Lock()

    def use() -> None:
        start.wait()
        server = embedded()
        with lock:
            got.append(server)

    threads = [threading.Thread(target=use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 6
    assert len({id(server) for server in got}) == 1
