"""The sender's transport: httpx's own, each request written to the socket in one call."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpcore
import httpx
import pandas as pd
import pytest

import cms_magic
from cms_magic.emulator import serve
from cms_magic.sending._transport import _CoalescingBackend, _CoalescingStream, http_transport


class Recorder(httpcore.AsyncNetworkStream):
    """An inner network stream that logs what the wrapper does to it."""

    def __init__(self, *, broken: bool = False) -> None:
        self.log: list[tuple[str, Any]] = []
        self.broken = broken

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self.broken:
            raise httpcore.WriteError("connection reset by peer")
        self.log.append(("write", (buffer, timeout)))

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.log.append(("read", (max_bytes, timeout)))
        return b"HTTP/1.1 200 OK\r\n"

    async def aclose(self) -> None:
        self.log.append(("close", None))

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.log.append(("start_tls", server_hostname))
        return Recorder()

    def get_extra_info(self, info: str) -> Any:
        return f"info:{info}"


def test_a_request_is_written_in_one_call_when_the_answer_is_first_read() -> None:
    inner = Recorder()
    stream = _CoalescingStream(inner)

    async def exchange() -> bytes:
        await stream.write(b"POST / HTTP/1.1\r\n\r\n", timeout=3.0)
        await stream.write(b"", timeout=3.0)  # h11's end of message for a sized body
        await stream.write(b'[{"content":"x"}]', timeout=4.0)
        assert inner.log == []  # nothing is sent before the request is complete
        first = await stream.read(4096, timeout=5.0)
        await stream.read(4096, timeout=5.0)  # nothing left to send: a plain read
        return first

    assert asyncio.run(exchange()) == b"HTTP/1.1 200 OK\r\n"
    assert inner.log == [
        ("write", (b'POST / HTTP/1.1\r\n\r\n[{"content":"x"}]', 4.0)),
        ("read", (4096, 5.0)),
        ("read", (4096, 5.0)),
    ]
    assert stream.get_extra_info("is_readable") == "info:is_readable"


def test_a_failed_write_is_left_for_the_read_to_report_as_httpcore_does() -> None:
    inner = Recorder(broken=True)
    stream = _CoalescingStream(inner)

    async def exchange() -> bytes:
        await stream.write(b"head")
        return await stream.read(10)  # an early answer of the server is still read

    assert asyncio.run(exchange()) == b"HTTP/1.1 200 OK\r\n"
    assert inner.log == [("read", (10, None))]


def test_tls_upgrade_sends_pending_bytes_first_and_close_drops_them() -> None:
    inner = Recorder()
    stream = _CoalescingStream(inner)

    async def upgrade() -> httpcore.AsyncNetworkStream:
        await stream.write(b"CONNECT example:443 HTTP/1.1\r\n\r\n")
        tls = await stream.start_tls(ssl.create_default_context(), "example")
        await tls.write(b"dropped")
        await tls.aclose()
        return tls

    tls = asyncio.run(upgrade())
    assert isinstance(tls, _CoalescingStream)
    assert inner.log == [
        ("write", (b"CONNECT example:443 HTTP/1.1\r\n\r\n", None)),
        ("start_tls", "example"),
    ]


def test_the_sender_transport_has_the_coalescing_backend() -> None:
    # httpx has no argument for a network backend, so http_transport swaps its pool. If a
    # new httpx lays the transport out differently, this fails and says so.
    transport = http_transport(httpx.Limits(max_connections=3, max_keepalive_connections=2))
    pool = transport._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert isinstance(pool._network_backend, _CoalescingBackend)
    assert (pool._max_connections, pool._max_keepalive_connections) == (3, 2)


def test_each_request_of_a_send_is_one_socket_write(monkeypatch: pytest.MonkeyPatch) -> None:
    from httpcore._backends.anyio import AnyIOStream

    writes: list[int] = []
    write = AnyIOStream.write

    async def counting(self: AnyIOStream, buffer: bytes, timeout: float | None = None) -> None:
        writes.append(len(buffer))
        await write(self, buffer, timeout)

    monkeypatch.setattr(AnyIOStream, "write", counting)
    df = pd.DataFrame({"content": [f"row {i}" for i in range(1_000)]})
    with serve(qps=0) as server:
        result = cms_magic.send(
            df,
            name="one_write",
            endpoint=server.url,
            credentials=server.credentials,
            concurrency=3,
            progress=False,
        )
        stored = len(server.events())
    assert result.counts()["accepted"] == stored == 1_000
    assert len(result.requests) == 10
    assert len(writes) == 10  # head and body together, once per request
    assert all(size > result.requests["bytes"].min() for size in writes)
