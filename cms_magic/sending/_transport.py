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

Two bounds hold whatever the server does (issue 12, items 6 and 7):

- **One total deadline per attempt.** :func:`post` gives the attempt ``total``
  seconds for connect, write and read together, the body included: every network
  call of the stream gets what is left of it as its timeout, so a server that
  trickles its status line or a chunked body a byte at a time cannot hold the
  attempt past it. The error is httpcore's own for the step it stopped (a connect
  or write timeout: not sent; a read timeout: sent, no answer), which
  :func:`~cms_magic.sending.answers.decide_failure` reads as it always has. A
  transport that is not ours (a test's ``MockTransport``) is held to the same
  deadline, plus :data:`_BACKSTOP_SECONDS`, by an anyio cancel scope.
- **An answer is small and plain.** The request says ``Accept-Encoding: identity``;
  at most :data:`MAX_ANSWER_BYTES` of an answer is read, and never decoded. An
  answer declaring or sending more, or with a ``Content-Encoding`` other than
  identity, raises :class:`AnswerTooLarge` / :class:`EncodedAnswer` (both
  :class:`MalformedAnswer`) and its connection is closed unread.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import time
import typing
import weakref
from collections.abc import Iterable
from contextvars import ContextVar
from functools import cache

import anyio
import httpcore
import httpx

__all__ = [
    "MAX_ANSWER_BYTES",
    "AnswerTooLarge",
    "EncodedAnswer",
    "MalformedAnswer",
    "http_transport",
    "post",
]

#: The most of an answer the sender reads (64 KiB): the service answers in a few hundred
#: bytes, and its longest error message is well under 1 KB.
MAX_ANSWER_BYTES: typing.Final = 65536

#: How far past its deadline an attempt over a transport that is not ours is cut off (our
#: own stream stops at the deadline itself, with the error of the step it was in).
_BACKSTOP_SECONDS: typing.Final = 0.5

#: The transports made by :func:`http_transport`, whose streams keep the deadline.
_bounded: weakref.WeakSet[httpx.AsyncBaseTransport] = weakref.WeakSet()

#: The monotonic time the current attempt must end by (set by :func:`post` for its task).
_deadline: ContextVar[float | None] = ContextVar("cms_magic attempt deadline", default=None)


class MalformedAnswer(httpx.RemoteProtocolError):
    """An answer the sender does not read: the request was sent, what came back is not
    an answer of the service (its events' fate is unknown)."""


class AnswerTooLarge(MalformedAnswer):
    """The answer declared or sent more than :data:`MAX_ANSWER_BYTES`."""


class EncodedAnswer(MalformedAnswer):
    """The answer has a ``Content-Encoding`` (gzip, say), though identity was asked for."""


def _within(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """``timeout``, shortened to what is left of the attempt's deadline (if any).

    Raises ``expired`` when nothing is left.
    """
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the attempt's total deadline passed")
    return left if timeout is None or left < timeout else timeout


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
        timeout = _within(self._write_timeout, httpcore.WriteTimeout)
        with contextlib.suppress(httpcore.WriteError):
            await self._stream.write(data, timeout=timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self._flush()
        return await self._stream.read(max_bytes, timeout=_within(timeout, httpcore.ReadTimeout))

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
        timeout = _within(timeout, httpcore.ConnectTimeout)
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
            host,
            port,
            timeout=_within(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _CoalescingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(
            path, timeout=_within(timeout, httpcore.ConnectTimeout), socket_options=socket_options
        )
        return _CoalescingStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


@cache
@functools.lru_cache(maxsize=1)
def ssl_context() -> ssl.SSLContext:
    """One verifying context for the process (building one loads the CA bundle: ~20 ms),
    shared by every send and every OpenAPI call."""
    return httpx.create_ssl_context(trust_env=False)


def http_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's transport for ``limits``, its connections writing each request at once.

    httpx offers no argument for a network backend, so its connection pool is replaced
    by an equal one that has ours. Should a future httpx lay its transport out
    differently, the transport is returned as httpx made it (``tests/test_transport.py``
    notices).
    """
    context = ssl_context()
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
        _bounded.add(transport)
    return transport


async def post(
    transport: httpx.AsyncBaseTransport, request: httpx.Request, *, total: float | None = None
) -> httpx.Response:
    """Send a signed ``request`` through ``transport``; the answer, its body read and closed.

    ``total``: the seconds the whole attempt may take, connect to the end of the body
    (None: only the request's own per-step timeouts). At most :data:`MAX_ANSWER_BYTES`
    of the body is read, undecoded; more, or an encoded body, raises a
    :class:`MalformedAnswer`.

    No ``httpx.AsyncClient`` is involved: its cookie jar, redirects, auth flow and hooks
    would be per-request work for nothing here (measured over a no-op transport:
    125 -> 48 us per signed request). Errors are httpx's, as a client would raise them.
    """
    request.headers["Accept-Encoding"] = "identity"
    if total is None:
        return await _exchange(transport, request)
    token = _deadline.set(time.monotonic() + total)
    try:
        if transport in _bounded:  # our streams keep the deadline themselves
            return await _exchange(transport, request)
        with anyio.move_on_after(total + _BACKSTOP_SECONDS):
            return await _exchange(transport, request)
        raise httpx.ReadTimeout(f"no complete answer within {total:g} s", request=request)
    finally:
        _deadline.reset(token)


async def _exchange(transport: httpx.AsyncBaseTransport, request: httpx.Request) -> httpx.Response:
    response = await transport.handle_async_request(request)
    try:
        headers = response.headers
        encoding = headers.get("content-encoding")
        if encoding is not None and encoding.strip().lower() not in ("", "identity"):
            raise EncodedAnswer(
                f"the answer is encoded (Content-Encoding: {encoding[:40]}) though identity "
                "was asked for; it was not read",
                request=request,
            )
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_ANSWER_BYTES:
            raise AnswerTooLarge(
                f"the answer is too large (Content-Length: {int(length):,} bytes, over "
                f"{MAX_ANSWER_BYTES:,}); it was not read",
                request=request,
            )
        response._content = await _read_body(response, request)
    finally:
        await response.aclose()
    return response


async def _read_body(response: httpx.Response, request: httpx.Request) -> bytes:
    """The raw body, at most :data:`MAX_ANSWER_BYTES` (more raises :class:`AnswerTooLarge`)."""
    stream = response.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise TypeError("an async transport gave a synchronous body")
    parts = aiter(stream)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in parts:
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise AnswerTooLarge(
                    f"the answer is too large (over {MAX_ANSWER_BYTES:,} bytes); it was "
                    "not read to its end",
                    request=request,
                )
            chunks.append(chunk)
    finally:
        close = getattr(parts, "aclose", None)
        if close is not None:
            await close()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
