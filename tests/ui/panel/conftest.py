"""Fixtures of the panel tests: every widget message recorded, the embedded emulator
emptied, a gated upload server, a listening socket. Everything is on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import comm
import pytest

from cms_magic import emulator
from tests.ui.panel._support import GatedServer, RecordingComm


@pytest.fixture(autouse=True)
def recording_comm(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    RecordingComm.sent = []
    monkeypatch.setattr(comm, "create_comm", RecordingComm)
    return RecordingComm.sent


@pytest.fixture
def local_emulator() -> emulator.EmulatorServer:
    """The embedded emulator the panel's ``local`` target starts, emptied."""
    server = emulator.embedded()
    server.reset()
    return server


@pytest.fixture
def gated() -> Iterator[GatedServer]:
    server = GatedServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.gate.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def listening() -> Iterator[int]:
    """The port of a socket on 127.0.0.1 that accepts connections (and never answers)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]
