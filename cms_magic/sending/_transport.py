"""The sender's HTTP transport: httpx's own, with each request's writes sent as one.

httpcore writes a request in two parts, the head and then the body, and each write
is a ``send`` system call plus an anyio cancel scope and checkpoint. On our 2-core
VM a loopback ``send`` costs about 0.36 ms of CPU. Here the connection's network
stream holds what is written until the request is complete, that is until
httpcore first reads, and sends it in one call. Benchmarks 3 and 4 measure this
layer alone and a stock ``httpx.AsyncClient`` side by side.

Nothing else changes: the wrapped stream is anyio's, as httpx would use; a failed
write is left for the read that follows to report, exactly as httpcore does itself
(it ignores a write error and reads, since a server may answer early and close).
"""

from __future__ import annotations

import contextlib
import ssl
import typing
from collections.abc import Iterable
from functools import cache

import httpcore
import httpx

__all__ = ["http_transport", "post"]


class _CoalescingStream(httpcore.AsyncNetworkStream):
    """A network stream that sends what was written when it is first read from."""

    __slots__ = ("_pending", "_stream", "_write_timeout")

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._pending: list[bytes] = []
        self._write_timeout: float | None = None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            self._pending.append(buffer)
            self._write_timeout = timeout

    async def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        # As httpcore does with its own write errors: read anyway, so an early answer is
        # seen; if there is none, the read fails and says so.
        with contextlib.suppress(httpcore.WriteError):
            await self._stream.write(data, timeout=self._write_timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self._flush()
        return await self._stream.read(max_bytes, timeout=timeout)

    async def aclose(self) -> None:
        self._pending.clear()
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        await self._flush()
        stream = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return _CoalescingStream(stream)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _CoalescingBackend(httpcore.AsyncNetworkBackend):
    """anyio's network backend (as httpx uses under asyncio and trio), coalescing writes."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _CoalescingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return _CoalescingStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


@cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying context for the process (building one loads the CA bundle: ~20 ms)."""
    return httpx.create_ssl_context(trust_env=False)


def http_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's transport for ``limits``, its connections writing each request at once.

    httpx offers no argument for a network backend, so its connection pool is replaced
    by an equal one that has ours. Should a future httpx lay its transport out
    differently, the transport is returned as httpx made it (``tests/test_transport.py``
    notices).
    """
    context = _ssl_context()
    transport = httpx.AsyncHTTPTransport(verify=context, limits=limits, trust_env=False)
    if isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=_CoalescingBackend(),
        )
    return transport


async def post(transport: httpx.AsyncBaseTransport, request: httpx.Request) -> httpx.Response:
    """Send a signed ``request`` through ``transport``; the answer, its body read and closed.

    No ``httpx.AsyncClient`` is involved: its cookie jar, redirects, auth flow and hooks
    would be per-request work for nothing here (measured over a no-op transport:
    125 -> 48 us per signed request). Errors are httpx's, as a client would raise them.
    """
    response = await transport.handle_async_request(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response
