"""Small hostile HTTP servers on 127.0.0.1 for the sender's bounds (time, memory, cancel).

:class:`HostileServer` runs an asyncio server in its own thread. Every request is read
(head and ``Content-Length`` body), then answered as its ``mode`` says:

- ``trickle_status``: the status line and head one byte per ``interval``, never ending;
- ``trickle_chunked``: a prompt chunked head, then a body one byte (one chunk) per
  ``interval``, never ending;
- ``huge_declared``: ``Content-Length: 2 GiB``, then spaces until the client closes;
- ``huge_chunked``: a chunked body of spaces until the client closes;
- ``gzip_bomb``: a small gzip body (``Content-Encoding: gzip``) that inflates to
  ``bomb_bytes`` of spaces;
- ``hold``: no answer at all until the client closes.

Bounded: no connection lives longer than ``lifetime`` seconds or is sent more than
``max_bytes``; leaving the ``with`` block closes every connection and stops the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import zlib
from collections.abc import Callable
from functools import cache
from types import TracebackType
from typing import Literal

Mode = Literal[
    "trickle_status", "trickle_chunked", "huge_declared", "huge_chunked", "gzip_bomb", "hold"
]

_OK_BODY = b'{"code":"200","msg":"success","requestId":"hostile"}'
_SPACES = b" " * 65536


@cache
def gzip_bomb(size: int) -> bytes:
    """``size`` spaces, gzip-compressed (about 1,000 to 1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b" " * 1_048_576) for _ in range(size // 1_048_576)]
    parts.append(packer.flush())
    return b"".join(parts)


class HostileServer:
    """One hostile HTTP/1.1 server; ``url`` to send to, counters for what it saw."""

    def __init__(
        self,
        mode: Mode,
        *,
        interval: float = 0.2,
        lifetime: float = 30.0,
        max_bytes: int = 4 * 1_048_576,
        bomb_bytes: int = 100 * 1_048_576,
    ) -> None:
        self.mode = mode
        self.interval = interval
        self.lifetime = lifetime
        self.max_bytes = max_bytes
        self.bomb = gzip_bomb(bomb_bytes) if mode == "gzip_bomb" else b""
        self.url = ""
        #: Requests whose head and body arrived (set the moment each one does).
        self.requests = 0
        self.request_seen = threading.Event()
        #: Answer bytes written, over all connections.
        self.bytes_sent = 0
        self.open_connections = 0
        #: Connections that ended because the client closed them (a write or read failed).
        self.closed_by_client = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"hostile-{mode}", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> HostileServer:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("the hostile server did not start")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.lifetime + 5)
        server.close()
        for writer in list(self._writers):
            writer.close()
        await server.wait_closed()

    # ------------------------------------------------------------------ one connection

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.open_connections += 1
        try:
            await asyncio.wait_for(self._connection(reader, writer), self.lifetime)
        except (OSError, asyncio.IncompleteReadError):
            self.closed_by_client += 1
        except (TimeoutError, asyncio.CancelledError):
            pass  # the bound, or the server stopping
        finally:
            self._writers.discard(writer)
            self.open_connections -= 1
            writer.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            self.requests += 1
            self.request_seen.set()
            await self._answer(reader, writer)

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if self.bytes_sent >= self.max_bytes:
            raise TimeoutError  # enough: end this connection
        writer.write(data)
        self.bytes_sent += len(data)
        await writer.drain()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.mode
        if mode == "hold":
            await reader.read()  # until the client closes
            raise TimeoutError
        if mode == "trickle_status":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            for byte in head + b"X-Slow: " + b"a" * 10_000:
                await self._send(writer, bytes([byte]))
                await asyncio.sleep(self.interval)
            raise TimeoutError
        chunked = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        chunked += b"Transfer-Encoding: chunked\r\n\r\n"
        if mode == "trickle_chunked":
            await self._send(writer, chunked)
            for byte in _OK_BODY + b" " * 10_000:
                await self._send(writer, b"1\r\n" + bytes([byte]) + b"\r\n")
                await asyncio.sleep(self.interval)
            raise TimeoutError
        if mode == "huge_declared":
            await self._send(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\n\r\n")
            while True:
                await self._send(writer, _SPACES)
        if mode == "huge_chunked":
            start = _OK_BODY[:-1]
            await self._send(writer, chunked + b"%x\r\n%s\r\n" % (len(start), start))
            while True:
                await self._send(writer, b"10000\r\n" + _SPACES + b"\r\n")
        if mode == "gzip_bomb":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            head += b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(self.bomb)
            await self._send(writer, head + self.bomb)
            await reader.read()  # until the client closes
            raise TimeoutError
        raise AssertionError(f"unknown mode {mode}")


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition()`` (state another thread changes) until true or ``timeout``."""
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            return False
        threading.Event().wait(0.01)
    return True
